/*
 * svg.c — section 3: the plot of section 2's run, as a plain SVG file.
 *
 * x is the operation number through the run (n inserts, then 0.99·n deletes, then the last 0.01·n), y the
 * memory in MiB. Each implementation has one colour: a solid line for the bytes the map holds and a dashed
 * line for the process's RSS. The SVG is written by hand (a few element types: line, polyline, text), so
 * the lab needs no plotting library; any browser shows it.
 */
#include "lab.h"

#include <math.h>

enum { WIDTH = 960, HEIGHT = 540, LEFT = 80, RIGHT = 230, TOP = 50, BOTTOM = 60 };

static const char *const colours[LAB_IMPLS] = {"#1f77b4", "#d62728", "#2ca02c"};

typedef struct frame {
    double xmax, ymax_mib; /* data range: [0, xmax] x [0, ymax_mib] */
} frame;

static double px_x(const frame *f, double op) { return LEFT + (WIDTH - LEFT - RIGHT) * op / f->xmax; }
static double px_y(const frame *f, double mib) { return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * mib / f->ymax_mib; }
static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* A round number (1, 1.5, 2, ... 8 times a power of ten), at least v: the top of the y axis. */
static double nice_ceiling(double v)
{
    if (v <= 0)
        return 1;
    double p = pow(10, floor(log10(v)));
    static const double steps[] = {1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (v <= steps[i] * p)
            return steps[i] * p;
    return 10 * p;
}

static frame frame_for(const lab_run runs[], size_t nruns)
{
    frame f = {1, 0};
    for (size_t r = 0; r < nruns; r++)
        for (size_t i = 0; i < runs[r].nsamples; i++) {
            const lab_sample *s = &runs[r].samples[i];
            f.xmax = fmax(f.xmax, (double)s->op);
            f.ymax_mib = fmax(f.ymax_mib, fmax(mib(s->bytes), mib(s->rss)));
        }
    f.ymax_mib = nice_ceiling(f.ymax_mib);
    return f;
}

static void draw_axes(FILE *out, const frame *f, uint64_t n)
{
    fprintf(out, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT,
            HEIGHT - BOTTOM);
    fprintf(out, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", LEFT, TOP, LEFT, HEIGHT - BOTTOM);
    for (int i = 0; i <= 5; i++) {
        double v = f->ymax_mib * i / 5;
        fprintf(out, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>\n", LEFT, px_y(f, v), WIDTH - RIGHT,
                px_y(f, v));
        fprintf(out, "<text x='%d' y='%.1f' text-anchor='end' font-size='12'>%g</text>\n", LEFT - 6, px_y(f, v) + 4, v);
    }
    fprintf(out, "<text x='20' y='%d' font-size='13' transform='rotate(-90 20 %d)' text-anchor='middle'>MiB</text>\n",
            (TOP + HEIGHT - BOTTOM) / 2, (TOP + HEIGHT - BOTTOM) / 2);
    /* phase boundaries: end of the fill, end of the 99% delete */
    const double bounds[] = {0, (double)n, (double)n + (double)(n - (n + 99) / 100), f->xmax};
    const char *const phases[] = {"fill", "delete 99%", "rest"};
    char b[32];
    double last_label_x = px_x(f, 0);
    for (int i = 0; i < 3; i++) {
        double x0 = px_x(f, bounds[i]), x1 = px_x(f, bounds[i + 1]);
        bool crowded = i < 2 && px_x(f, bounds[3]) - x1 < 50; /* the end's label would overlap this one */
        fprintf(out, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#999' stroke-dasharray='2,3'/>\n", x1, TOP, x1,
                HEIGHT - BOTTOM);
        fprintf(out, "<text x='%.1f' y='%d' text-anchor='middle' font-size='12'>%s</text>\n", (x0 + x1) / 2, TOP - 8,
                phases[i]);
        if (crowded || x1 - last_label_x < 40)
            continue;
        fprintf(out, "<text x='%.1f' y='%d' text-anchor='middle' font-size='11'>%s</text>\n", x1, HEIGHT - BOTTOM + 16,
                lab_fmt_count((uint64_t)bounds[i + 1], b));
        last_label_x = x1;
    }
    fprintf(out, "<text x='%d' y='%d' text-anchor='middle' font-size='13'>operations (inserts, then deletes)</text>\n",
            (LEFT + WIDTH - RIGHT) / 2, HEIGHT - 20);
}

/* `wide` draws a broader line, for a series that another one drawn later may cover exactly (hmap and
 * no_shrink are the same map until the deletes start). */
static void draw_series(FILE *out, const frame *f, const lab_run *run, const char *colour, bool rss, bool wide)
{
    fprintf(out, "<polyline fill='none' stroke='%s' stroke-width='%s'%s points='", colour,
            rss ? (wide ? "3" : "1.5") : (wide ? "5" : "2"), rss ? " stroke-dasharray='6,4'" : "");
    for (size_t i = 0; i < run->nsamples; i++) {
        const lab_sample *s = &run->samples[i];
        fprintf(out, "%.1f,%.1f ", px_x(f, (double)s->op), px_y(f, mib(rss ? s->rss : s->bytes)));
    }
    fprintf(out, "'/>\n");
}

static void draw_legend(FILE *out, const lab_run runs[], size_t nruns)
{
    int y = TOP + 10;
    for (size_t r = 0; r < nruns; r++)
        for (int rss = 0; rss <= 1; rss++, y += 22) {
            int x = WIDTH - RIGHT + 15;
            fprintf(out, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='2'%s/>\n", x, y, x + 30, y,
                    colours[r], rss ? " stroke-dasharray='6,4'" : "");
            fprintf(out, "<text x='%d' y='%d' font-size='12'>%s %s%s</text>\n", x + 38, y + 4, runs[r].label,
                    rss ? "RSS" : "bytes held", runs[r].ok ? "" : " (missing)");
        }
}

void lab_svg_plot(uint64_t n, const lab_run runs[], size_t nruns)
{
    char path[4096], b[32];
    snprintf(path, sizeof path, "%s/release-%s.svg", lab_output_dir(), lab_fmt_count(n, b));
    FILE *out = fopen(path, "w");
    if (!out) {
        printf("\n(plot not written: cannot open %s)\n", path);
        return;
    }
    frame f = frame_for(runs, nruns);
    fprintf(out, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif'>\n", WIDTH,
            HEIGHT);
    fprintf(out, "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(out, "<text x='%d' y='22' font-size='15' font-weight='bold'>Fill %s uint64 entries, delete 99%%, delete "
                 "all: bytes held (solid) and RSS (dashed)</text>\n",
            LEFT, lab_fmt_count(n, b));
    draw_axes(out, &f, n);
    for (size_t k = nruns; k-- > 0;) { /* hmap (run 0) last, on top of the wider no_shrink line */
        if (runs[k].ok) {
            draw_series(out, &f, &runs[k], colours[k], false, k == 1);
            draw_series(out, &f, &runs[k], colours[k], true, k == 1);
        }
    }
    draw_legend(out, runs, nruns);
    fprintf(out, "</svg>\n");
    fclose(out);
    printf("\n## 3. Plot\n\nBytes held and RSS over the run: `%s`\n", path);
}
