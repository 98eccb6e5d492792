/* SPDX-License-Identifier: MIT */
/*
 * svg.c — charts as inline SVG text.
 *
 * Two kinds: a line chart (series of points, optionally as steps) and a grouped bar chart. Both take axes
 * that are linear or logarithmic. Memory is plotted on a log axis because what matters spans three orders
 * of magnitude: a map of 300 MiB that should have gone down to 5 MiB sits in the bottom 1% of a linear axis.
 * Log ticks are powers of two for bytes (labelled KiB, MiB, ...) and powers of ten otherwise.
 *
 * A line chart may be cut into phases (fill, delete, ...): each gets a shaded band, a label on top and a
 * boundary line; with equal_phases each phase gets the same width whatever its share of the x range, so a
 * phase of 1% of the operations is as readable as one of 50% (the boundaries carry the real x values).
 * The legend goes under the plot. Everything is escaped; the output is a single <svg> element.
 */
#include "tools_common.h"

#include <math.h>
#include <string.h>

enum { LEFT = 84, RIGHT = 24, TOP = 58, LEGEND_ROW = 20 };

typedef struct frame {
    double x0, x1, y0, y1;     /* plot area in pixels */
    double dx0, dx1, dy0, dy1; /* data range (log10 of it on log axes) */
    const tc_chart *c;
} frame;

static double to_axis(tc_scale s, double v) { return s == TC_LOG ? log10(v) : v; }

static double px_y(const frame *f, tc_scale s, double v) {
    double a = to_axis(s, v);
    if (!isfinite(a))
        a = f->dy0;
    a = a < f->dy0 ? f->dy0 : a > f->dy1 ? f->dy1 : a;
    return f->y1 - (f->y1 - f->y0) * (a - f->dy0) / (f->dy1 - f->dy0);
}

static double px_x_plain(const frame *f, tc_scale s, double v) {
    double a = to_axis(s, v);
    if (!isfinite(a))
        a = f->dx0;
    a = a < f->dx0 ? f->dx0 : a > f->dx1 ? f->dx1 : a;
    return f->x0 + (f->x1 - f->x0) * (a - f->dx0) / (f->dx1 - f->dx0);
}

static double px_x(const frame *f, double v) {
    const tc_chart *c = f->c;
    if (!c || !c->equal_phases || c->nphases == 0)
        return px_x_plain(f, c ? c->x.scale : TC_LINEAR, v);
    double seg = (f->x1 - f->x0) / (double)c->nphases;
    for (size_t i = 0; i < c->nphases; i++) {
        const tc_phase *p = &c->phases[i];
        if (v <= p->x1 || i + 1 == c->nphases) {
            double t = p->x1 > p->x0 ? (v - p->x0) / (p->x1 - p->x0) : 1;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            return f->x0 + seg * ((double)i + t);
        }
    }
    return f->x1;
}

/* Label of an axis value. */
static void fmt_value(tc_unit u, double v, char buf[32]) {
    switch (u) {
    case TC_BYTES: {
        if (v >= 1 && fabs(log2(v) - round(log2(v))) < 1e-9) { /* a power of two: "4 KiB", not "4.0 KiB" */
            static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
            int e = (int)round(log2(v));
            snprintf(buf, 32, "%d %s", 1 << (e % 10), units[e / 10 < 4 ? e / 10 : 4]);
        } else {
            tc_fmt_bytes((uint64_t)(v < 0 ? 0 : v), buf);
        }
        return;
    }
    case TC_NS:
        tc_fmt_ns(v, buf);
        return;
    case TC_COUNT:
        if (v >= 1e6)
            snprintf(buf, 32, "%gM", v / 1e6);
        else if (v >= 1e3)
            snprintf(buf, 32, "%gk", v / 1e3);
        else
            snprintf(buf, 32, "%g", v);
        return;
    case TC_PLAIN:
        snprintf(buf, 32, "%g", v);
        return;
    }
}

/* A round step giving about `want` ticks over span. */
static double nice_step(double span, int want) {
    double raw = span / want, p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* Data range [lo, hi] of an axis (log10 of it on a log axis), rounded out to ticks. */
static void axis_range(const tc_axis *a, double lo, double hi, double *out_lo, double *out_hi) {
    if (a->min != 0 || a->max != 0) {
        lo = a->min;
        hi = a->max;
    }
    if (a->scale == TC_LOG) {
        lo = lo > 0 ? lo : 1;
        hi = hi > lo ? hi : lo * 10;
        if (a->unit == TC_BYTES) { /* to powers of two */
            *out_lo = log10(pow(2, floor(log2(lo))));
            *out_hi = log10(pow(2, ceil(log2(hi))));
        } else {
            *out_lo = floor(log10(lo));
            *out_hi = ceil(log10(hi));
        }
        if (*out_hi <= *out_lo)
            *out_hi = *out_lo + 1;
        return;
    }
    if (a->min == 0 && a->max == 0)
        lo = lo < 0 ? lo : 0;
    if (hi <= lo)
        hi = lo + 1;
    double step = nice_step(hi - lo, 5);
    *out_lo = floor(lo / step) * step;
    *out_hi = ceil(hi / step) * step;
}

static void text(tc_buf *o, double x, double y, const char *anchor, int size, const char *extra,
                 const char *s) {
    tc_buf_printf(o, "<text x='%.1f' y='%.1f' text-anchor='%s' font-size='%d'%s%s>", x, y, anchor, size,
                  extra ? " " : "", extra ? extra : "");
    tc_buf_html(o, s);
    tc_buf_put(o, "</text>\n");
}

/* Horizontal grid lines and y tick labels. */
static void draw_y_axis(tc_buf *o, const frame *f, const tc_axis *a) {
    char b[32];
    if (a->scale == TC_LOG) {
        double span = f->dy1 - f->dy0;
        if (a->unit == TC_BYTES) {
            int e0 = (int)round(f->dy0 / log10(2)), e1 = (int)round(f->dy1 / log10(2));
            int step = (e1 - e0) <= 8 ? 1 : (e1 - e0) <= 16 ? 2 : (e1 - e0) <= 24 ? 3 : 4;
            for (int e = e0; e <= e1; e += step) {
                double v = pow(2, e), y = px_y(f, TC_LOG, v);
                tc_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#e3e3e3'/>\n", f->x0,
                              y, f->x1, y);
                fmt_value(a->unit, v, b);
                text(o, f->x0 - 6, y + 4, "end", 11, NULL, b);
            }
        } else {
            int step = span <= 8 ? 1 : 2;
            for (int e = (int)round(f->dy0); e <= (int)round(f->dy1); e += step) {
                double v = pow(10, e), y = px_y(f, TC_LOG, v);
                tc_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#e3e3e3'/>\n", f->x0,
                              y, f->x1, y);
                fmt_value(a->unit, v, b);
                text(o, f->x0 - 6, y + 4, "end", 11, NULL, b);
            }
        }
    } else {
        double step = nice_step(f->dy1 - f->dy0, 5);
        for (double v = f->dy0; v <= f->dy1 + step / 2; v += step) {
            double y = px_y(f, TC_LINEAR, v);
            tc_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#e3e3e3'/>\n", f->x0, y,
                          f->x1, y);
            fmt_value(a->unit, v, b);
            text(o, f->x0 - 6, y + 4, "end", 11, NULL, b);
        }
    }
    double mid = (f->y0 + f->y1) / 2;
    char rot[64];
    snprintf(rot, sizeof rot, "transform='rotate(-90 16 %.1f)'", mid);
    text(o, 16, mid, "middle", 12, rot, a->label ? a->label : "");
}

static void draw_x_ticks(tc_buf *o, const frame *f, const tc_axis *a) {
    char b[32];
    if (a->scale == TC_LOG) {
        for (int e = (int)round(f->dx0); e <= (int)round(f->dx1); e++) {
            double x = px_x_plain(f, TC_LOG, pow(10, e));
            tc_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#e3e3e3'/>\n", x, f->y0,
                          x, f->y1);
            fmt_value(a->unit, pow(10, e), b);
            text(o, x, f->y1 + 16, "middle", 11, NULL, b);
        }
        return;
    }
    double step = nice_step(f->dx1 - f->dx0, 8);
    for (double v = f->dx0; v <= f->dx1 + step / 2; v += step) {
        double x = px_x_plain(f, TC_LINEAR, v);
        tc_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#e3e3e3'/>\n", x, f->y0, x,
                      f->y1);
        fmt_value(a->unit, v, b);
        text(o, x, f->y1 + 16, "middle", 11, NULL, b);
    }
}

/* Shaded bands, labels and boundaries of the phases; boundary x values under the axis. */
static void draw_phases(tc_buf *o, const frame *f, const tc_chart *c) {
    char b[32];
    double last_label = -1e9;
    for (size_t i = 0; i < c->nphases; i++) {
        const tc_phase *p = &c->phases[i];
        double a = px_x(f, p->x0), z = px_x(f, p->x1);
        if (i % 2 == 0)
            tc_buf_printf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#f3f5f9'/>\n", a,
                          f->y0, z - a, f->y1 - f->y0);
        text(o, (a + z) / 2, f->y0 - 8, "middle", 12, "font-weight='bold'", p->label);
        if (i > 0)
            tc_buf_printf(
                o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#888' stroke-dasharray='4,3'/>\n",
                a, f->y0 - 4, a, f->y1);
        for (int end = 0; end < 2; end++) {
            double x = end ? z : a;
            if (x - last_label < 50)
                continue;
            fmt_value(c->x.unit, end ? p->x1 : p->x0, b);
            text(o, x, f->y1 + 16, "middle", 11, NULL, b);
            last_label = x;
        }
    }
}

/* Entries flow left to right, each as wide as its label (about 6.5 px a character at 12 px), wrapping
 * to a new row at the right edge. Returns the number of rows used. */
static size_t legend_layout(double x0, int width, const char *const labels[], size_t n, double xs[],
                            size_t rows[]) {
    double x = x0;
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        double w = 34 + 6.5 * (double)tc_text_width(labels[i]) + 24;
        if (x > x0 && x + w > width - RIGHT)
            x = x0, row++;
        xs[i] = x, rows[i] = row;
        x += w;
    }
    return n ? row + 1 : 0;
}

static void draw_legend(tc_buf *o, double x0, double y, int width, const char *const labels[],
                        const char *const colours[], const bool dashed[], size_t n) {
    double xs[32];
    size_t rows[32];
    n = n < 32 ? n : 32;
    legend_layout(x0, width, labels, n, xs, rows);
    for (size_t i = 0; i < n; i++) {
        double x = xs[i], yy = y + (double)rows[i] * LEGEND_ROW;
        tc_buf_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' stroke-width='3'%s/>\n",
                      x, yy - 4, x + 28, yy - 4, colours[i],
                      dashed && dashed[i] ? " stroke-dasharray='7,4'" : "");
        text(o, x + 34, yy, "start", 12, NULL, labels[i]);
    }
}

static size_t legend_rows(int width, const char *const labels[], size_t n) {
    double xs[32];
    size_t rows[32];
    return legend_layout(LEFT, width, labels, n < 32 ? n : 32, xs, rows);
}

static void draw_series(tc_buf *o, const frame *f, const tc_chart *c, const tc_series *s) {
    tc_buf_printf(o,
                  "<polyline fill='none' stroke='%s' stroke-width='%.1f'%s stroke-linejoin='round' points='",
                  s->colour, s->width > 0 ? s->width : 2.0, s->dashed ? " stroke-dasharray='7,4'" : "");
    double prev_y = NAN;
    for (size_t i = 0; i < s->n; i++) {
        if (!isfinite(s->y[i]) || !isfinite(s->x[i]))
            continue;
        double x = px_x(f, s->x[i]), y = px_y(f, c->y.scale, s->y[i]);
        if (s->step && isfinite(prev_y))
            tc_buf_printf(o, "%.1f,%.1f ", x, prev_y);
        tc_buf_printf(o, "%.1f,%.1f ", x, y);
        prev_y = y;
    }
    tc_buf_put(o, "'/>\n");
    if (s->dots)
        for (size_t i = 0; i < s->n; i++)
            if (isfinite(s->y[i]) && isfinite(s->x[i]))
                tc_buf_printf(o, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", px_x(f, s->x[i]),
                              px_y(f, c->y.scale, s->y[i]), s->colour);
}

static void svg_open(tc_buf *o, int w, int h, const char *title) {
    tc_buf_printf(o,
                  "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' "
                  "font-family='sans-serif'>\n<rect width='%d' height='%d' fill='white'/>\n",
                  w, h, w, h, w, h);
    text(o, LEFT, 22, "start", 15, "font-weight='bold'", title ? title : "");
}

void tc_svg_chart(tc_buf *o, const tc_chart *c) {
    int w = c->width ? c->width : 1000, h = c->height ? c->height : 420;
    const char *names[32];
    for (size_t i = 0; i < c->nseries && i < 32; i++)
        names[i] = c->series[i].label;
    size_t rows = legend_rows(w, names, c->nseries);
    int bottom = 48 + (int)rows * LEGEND_ROW + (c->note ? 18 : 0);
    frame f = {.x0 = LEFT, .x1 = w - RIGHT, .y0 = TOP, .y1 = h - bottom, .c = c};
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t s = 0; s < c->nseries; s++)
        for (size_t i = 0; i < c->series[s].n; i++) {
            double x = c->series[s].x[i], y = c->series[s].y[i];
            if (!isfinite(x) || !isfinite(y))
                continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x);
            if (c->y.scale != TC_LOG || y > 0)
                ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (!isfinite(xlo))
        xlo = 0, xhi = 1;
    if (!isfinite(ylo))
        ylo = 1, yhi = 10;
    axis_range(&c->x, xlo, xhi, &f.dx0, &f.dx1);
    if (c->x.scale == TC_LINEAR && c->x.min == 0 && c->x.max == 0) /* x: exactly the data */
        f.dx0 = xlo, f.dx1 = xhi > xlo ? xhi : xlo + 1;
    axis_range(&c->y, ylo, yhi, &f.dy0, &f.dy1);

    svg_open(o, w, h, c->title);
    if (c->nphases)
        draw_phases(o, &f, c);
    else
        draw_x_ticks(o, &f, &c->x);
    draw_y_axis(o, &f, &c->y);
    tc_buf_printf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n", f.x0,
                  f.y0, f.x1 - f.x0, f.y1 - f.y0);
    text(o, (f.x0 + f.x1) / 2, f.y1 + 34, "middle", 12, NULL, c->x.label ? c->x.label : "");
    for (size_t s = c->nseries; s-- > 0;) /* the first series on top */
        draw_series(o, &f, c, &c->series[s]);
    const char *labels[32], *colours[32];
    bool dashed[32];
    size_t n = c->nseries < 32 ? c->nseries : 32;
    for (size_t s = 0; s < n; s++)
        labels[s] = c->series[s].label, colours[s] = c->series[s].colour, dashed[s] = c->series[s].dashed;
    draw_legend(o, f.x0, f.y1 + 58, w, labels, colours, dashed, n);
    if (c->note)
        text(o, f.x0, h - 8, "start", 11, "fill='#555'", c->note);
    tc_buf_put(o, "</svg>\n");
}

void tc_svg_bars(tc_buf *o, const tc_bars *b) {
    int w = b->width ? b->width : 1000, h = b->height ? b->height : 380;
    size_t rows = legend_rows(w, (const char *const *)b->labels, b->nbars);
    int bottom = 44 + (int)rows * LEGEND_ROW + (b->note ? 18 : 0);
    tc_chart axis_only = {.y = b->y};
    frame f = {.x0 = LEFT, .x1 = w - RIGHT, .y0 = TOP - 20, .y1 = h - bottom, .c = &axis_only};
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < b->ngroups * b->nbars; i++)
        if (isfinite(b->values[i]) && (b->y.scale != TC_LOG || b->values[i] > 0))
            lo = fmin(lo, b->values[i]), hi = fmax(hi, b->values[i]);
    if (!isfinite(lo))
        lo = 1, hi = 10;
    axis_range(&b->y, b->y.scale == TC_LOG ? lo : 0, hi, &f.dy0, &f.dy1);
    svg_open(o, w, h, b->title);
    draw_y_axis(o, &f, &b->y);
    double group_w = (f.x1 - f.x0) / (double)(b->ngroups ? b->ngroups : 1);
    double bar_w = group_w * 0.8 / (double)(b->nbars ? b->nbars : 1);
    char v[32];
    for (size_t g = 0; g < b->ngroups; g++) {
        double gx = f.x0 + group_w * (double)g + group_w * 0.1;
        for (size_t k = 0; k < b->nbars; k++) {
            double val = b->values[g * b->nbars + k];
            if (!isfinite(val))
                continue;
            double x = gx + bar_w * (double)k,
                   y = px_y(&f, b->y.scale, val > 0 || b->y.scale != TC_LOG ? val : 0);
            tc_buf_printf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>\n", x + 1, y,
                          bar_w - 2, f.y1 - y, b->colours[k]);
            fmt_value(b->y.unit, val, v);
            text(o, x + bar_w / 2, y - 4, "middle", 10, NULL, v);
        }
        text(o, gx + group_w * 0.4, f.y1 + 16, "middle", 12, NULL, b->groups[g]);
    }
    tc_buf_printf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n", f.x0,
                  f.y0, f.x1 - f.x0, f.y1 - f.y0);
    draw_legend(o, f.x0, f.y1 + 40, w, (const char *const *)b->labels, (const char *const *)b->colours, NULL,
                b->nbars);
    if (b->note)
        text(o, f.x0, h - 8, "start", 11, "fill='#555'", b->note);
    tc_buf_put(o, "</svg>\n");
}
