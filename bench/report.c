/* SPDX-License-Identifier: MIT */
/*
 * report.c — the results of a run, and the three ways they leave the program: a Markdown table on
 * stdout, results.json, and an SVG chart drawn here as plain SVG text.
 *
 * Every value of every repetition is kept; what is shown is the median. The table has one row per
 * (keys, size, metric), one column per implementation, and the ratios hmap/flat (the better of abseil's
 * and boost's flat maps), hmap/go and hmap/limit (for latency rows the "limit" is the noise floor: the same
 * number of timed trivial writes). Every metric is lower-is-better, so a ratio above 1 means hmap is behind.
 * The rows where hmap is furthest behind the best peer (abseil, boost, go, glib, uthash) are listed after the
 * table.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPS 32

typedef struct record {
    char impl[24];
    key_kind keys;
    size_t n;
    char metric[32];
    char unit[16];
    double v[MAX_REPS];
    int nv;
} record;

typedef struct series {
    char impl[24];
    char name[16];
    double *x, *y;
    size_t n, cap;
} series;

static record *recs;
static size_t nrecs, caprecs;
static series ser[32];
static size_t nser;

/* Table layout: metric order, implementation columns, peers for "furthest behind". */
static const char *const METRICS[] = {
    "insert",
    "insert_reserved",
    "lookup_hit",
    "lookup_miss",
    "delete",
    "iterate",
    "churn",
    "lat_p50",
    "lat_p99",
    "lat_p99.9",
    "lat_p99.99",
    "lat_p99.999",
    "lat_max",
    "timer_cost",
    "bytes_per_entry",
    "held_after_del99",
    "held_after_compact",
    "rss_full",
    "rss_after_del99",
};
#define NUM_METRICS (sizeof METRICS / sizeof METRICS[0])
static const char *const COLUMNS[] = {"hmap", "hmap_noshrink", "abseil", "boost",
                                      "go",   "glib",          "uthash", "limit"};
#define NUM_COLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])
static const char *const PEERS[] = {"abseil", "boost", "go", "glib", "uthash"};
#define NUM_PEERS (sizeof PEERS / sizeof PEERS[0])

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "hmap-bench: out of memory\n");
        exit(1);
    }
    return p;
}

static record *find(const char *impl, key_kind keys, size_t n, const char *metric) {
    for (size_t i = 0; i < nrecs; i++)
        if (recs[i].keys == keys && recs[i].n == n && strcmp(recs[i].impl, impl) == 0 &&
            strcmp(recs[i].metric, metric) == 0)
            return &recs[i];
    return NULL;
}

void results_add(const char *impl, key_kind keys, size_t n, const char *metric, const char *unit,
                 double value) {
    record *r = find(impl, keys, n, metric);
    if (!r) {
        if (nrecs == caprecs) {
            caprecs = caprecs ? 2 * caprecs : 256;
            recs = xrealloc(recs, caprecs * sizeof *recs);
        }
        r = &recs[nrecs++];
        memset(r, 0, sizeof *r);
        snprintf(r->impl, sizeof r->impl, "%s", impl);
        r->keys = keys;
        r->n = n;
        snprintf(r->metric, sizeof r->metric, "%s", metric);
        snprintf(r->unit, sizeof r->unit, "%s", unit);
    }
    if (r->nv < MAX_REPS)
        r->v[r->nv++] = value;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const record *r) {
    double v[MAX_REPS];
    memcpy(v, r->v, (size_t)r->nv * sizeof v[0]);
    qsort(v, (size_t)r->nv, sizeof v[0], cmp_double);
    return r->nv % 2 ? v[r->nv / 2] : (v[r->nv / 2 - 1] + v[r->nv / 2]) / 2;
}

/* The median of impl's metric, or NAN when absent. */
static double value_of(const char *impl, key_kind keys, size_t n, const char *metric) {
    const record *r = find(impl, keys, n, metric);
    return r && r->nv ? median(r) : NAN;
}

/* The better (lower) of abseil's and boost's value: the flat maps hmap is measured against. */
static double best_flat(key_kind keys, size_t n, const char *metric) {
    double a = value_of("abseil", keys, n, metric), b = value_of("boost", keys, n, metric);
    if (isnan(a))
        return b;
    return isnan(b) || a < b ? a : b;
}

static bool is_latency(const char *metric) {
    return strncmp(metric, "lat_", 4) == 0 || strcmp(metric, "timer_cost") == 0;
}

/* The floor a metric is compared with: the noise row for latencies, the limit row otherwise. */
static double floor_of(key_kind keys, size_t n, const char *metric) {
    return value_of(is_latency(metric) ? "noise" : "limit", keys, n, metric);
}

/* ---- series ---- */

static series *find_series(const char *impl, const char *name, bool create) {
    for (size_t i = 0; i < nser; i++)
        if (strcmp(ser[i].impl, impl) == 0 && strcmp(ser[i].name, name) == 0)
            return &ser[i];
    if (!create || nser == sizeof ser / sizeof ser[0])
        return NULL;
    series *s = &ser[nser++];
    memset(s, 0, sizeof *s);
    snprintf(s->impl, sizeof s->impl, "%s", impl);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

void series_reset(const char *impl, const char *name) {
    series *s = find_series(impl, name, false);
    if (s)
        s->n = 0;
}

void series_add_point(const char *impl, const char *name, double x, double y) {
    series *s = find_series(impl, name, true);
    if (!s)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->x = xrealloc(s->x, s->cap * sizeof *s->x);
        s->y = xrealloc(s->y, s->cap * sizeof *s->y);
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

/* ---- Markdown ---- */

static void fmt_value(char *buf, size_t size, double v) {
    if (isnan(v))
        snprintf(buf, size, "—");
    else if (fabs(v) >= 100)
        snprintf(buf, size, "%.0f", v);
    else if (fabs(v) >= 10)
        snprintf(buf, size, "%.1f", v);
    else
        snprintf(buf, size, "%.2f", v);
}

static void fmt_ratio(char *buf, size_t size, double a, double b) {
    if (isnan(a) || isnan(b) || b == 0)
        snprintf(buf, size, "—");
    else
        snprintf(buf, size, "%.2f", a / b);
}

static const char *size_label(size_t n, char *buf, size_t size) {
    if (n % (1u << 20) == 0)
        snprintf(buf, size, "%zuMi", n >> 20);
    else if (n % 1024 == 0)
        snprintf(buf, size, "%zuKi", n >> 10);
    else
        snprintf(buf, size, "%zu", n);
    return buf;
}

/* The distinct (keys, n) pairs in the order they were first measured. */
static size_t configs(key_kind *keys, size_t *ns, size_t cap) {
    size_t c = 0;
    for (size_t i = 0; i < nrecs; i++) {
        bool seen = false;
        for (size_t j = 0; j < c; j++)
            seen |= keys[j] == recs[i].keys && ns[j] == recs[i].n;
        if (!seen && c < cap) {
            keys[c] = recs[i].keys;
            ns[c] = recs[i].n;
            c++;
        }
    }
    return c;
}

static const char *unit_of(key_kind keys, size_t n, const char *metric) {
    for (size_t i = 0; i < nrecs; i++)
        if (recs[i].keys == keys && recs[i].n == n && strcmp(recs[i].metric, metric) == 0)
            return recs[i].unit;
    return NULL;
}

typedef struct behind {
    double ratio;
    key_kind keys;
    size_t n;
    const char *metric, *peer;
    double hmap, best;
} behind;

static int cmp_behind(const void *a, const void *b) {
    double x = ((const behind *)a)->ratio, y = ((const behind *)b)->ratio;
    return (x < y) - (x > y);
}

static void print_behind(FILE *out, key_kind *keys, size_t *ns, size_t nc) {
    behind *list = xrealloc(NULL, (nc * NUM_METRICS + 1) * sizeof *list);
    size_t nb = 0;
    for (size_t c = 0; c < nc; c++)
        for (size_t m = 0; m < NUM_METRICS; m++) {
            if (strcmp(METRICS[m], "timer_cost") == 0)
                continue;
            double h = value_of("hmap", keys[c], ns[c], METRICS[m]);
            behind b = {NAN, keys[c], ns[c], METRICS[m], NULL, h, INFINITY};
            for (size_t p = 0; p < NUM_PEERS; p++) {
                double v = value_of(PEERS[p], keys[c], ns[c], METRICS[m]);
                if (!isnan(v) && v < b.best) {
                    b.best = v;
                    b.peer = PEERS[p];
                }
            }
            if (isnan(h) || !b.peer || b.best <= 0)
                continue;
            b.ratio = h / b.best;
            list[nb++] = b;
        }
    qsort(list, nb, sizeof *list, cmp_behind);
    fprintf(out, "\n## Where hmap is furthest behind the best peer (abseil, boost, go, glib, uthash)\n\n");
    fprintf(out, "| # | keys | n | metric | hmap | best peer | hmap/best |\n|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < nb && i < 8; i++) {
        char sz[32], hv[32], bv[32];
        fmt_value(hv, sizeof hv, list[i].hmap);
        fmt_value(bv, sizeof bv, list[i].best);
        fprintf(out, "| %zu | %s | %s | %s | %s | %s %s | %.2f |\n", i + 1, key_kind_name(list[i].keys),
                size_label(list[i].n, sz, sizeof sz), list[i].metric, hv, list[i].peer, bv, list[i].ratio);
    }
    free(list);
}

void report_markdown(FILE *out, const char *header) {
    key_kind keys[16];
    size_t ns[16];
    size_t nc = configs(keys, ns, 16);
    fprintf(out, "%s\n", header);
    fprintf(out,
            "Units: ns/op and ns/entry are means over a whole loop; lat_* are single-insert latencies "
            "while growing from empty; bytes_per_entry at full size; held_after_del99 = bytes held after "
            "deleting 99%% / bytes of a fresh map of the survivors; rss_* = RSS growth over the RSS before "
            "the fill. Column `limit` = the machine's floor (random cache-line read or write in an array "
            "of n*32 bytes, sequential read of n*16 bytes, 16 B/entry payload); for lat_* rows it is the "
            "noise floor (n timed trivial writes; it runs for n x ~30 ns, so on a loaded machine a map whose "
            "fill "
            "takes longer meets proportionally more scheduler preemptions in its tail). Lower is better "
            "everywhere.\n\n");
    fprintf(out, "| keys | n | metric | unit |");
    for (size_t i = 0; i < NUM_COLUMNS; i++)
        fprintf(out, " %s |", COLUMNS[i]);
    fprintf(out, " hmap/flat | hmap/go | hmap/limit |\n|---|---|---|---|");
    for (size_t i = 0; i < NUM_COLUMNS + 3; i++)
        fprintf(out, "---:|");
    fprintf(out, "\n");
    for (size_t c = 0; c < nc; c++)
        for (size_t m = 0; m < NUM_METRICS; m++) {
            const char *unit = unit_of(keys[c], ns[c], METRICS[m]);
            if (!unit)
                continue;
            char sz[32], buf[32];
            fprintf(out, "| %s | %s | %s | %s |", key_kind_name(keys[c]), size_label(ns[c], sz, sizeof sz),
                    METRICS[m], unit);
            for (size_t i = 0; i < NUM_COLUMNS; i++) {
                double v = strcmp(COLUMNS[i], "limit") == 0
                               ? floor_of(keys[c], ns[c], METRICS[m])
                               : value_of(COLUMNS[i], keys[c], ns[c], METRICS[m]);
                fmt_value(buf, sizeof buf, v);
                fprintf(out, " %s |", buf);
            }
            double h = value_of("hmap", keys[c], ns[c], METRICS[m]);
            fmt_ratio(buf, sizeof buf, h, best_flat(keys[c], ns[c], METRICS[m]));
            fprintf(out, " %s |", buf);
            fmt_ratio(buf, sizeof buf, h, value_of("go", keys[c], ns[c], METRICS[m]));
            fprintf(out, " %s |", buf);
            fmt_ratio(buf, sizeof buf, h, floor_of(keys[c], ns[c], METRICS[m]));
            fprintf(out, " %s |\n", buf);
        }
    print_behind(out, keys, ns, nc);
}

/* ---- JSON ---- */

int report_json(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f, "[\n");
    for (size_t i = 0; i < nrecs; i++)
        fprintf(f,
                "  {\"impl\": \"%s\", \"keys\": \"%s\", \"n\": %zu, \"metric\": \"%s\", \"value\": %.6g, "
                "\"unit\": \"%s\", \"reps\": %d}%s\n",
                recs[i].impl, key_kind_name(recs[i].keys), recs[i].n, recs[i].metric, median(&recs[i]),
                recs[i].unit, recs[i].nv, i + 1 < nrecs ? "," : "");
    fprintf(f, "]\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- SVG ---- */

typedef struct panel {
    double x0, y0, w, h;           /* plot area in SVG pixels */
    double xmin, xmax, ymin, ymax; /* data range (y already log10 for log panels) */
    bool ylog;
} panel;

static const char *const CHART_IMPLS[] = {"hmap", "hmap_noshrink", "abseil", "boost", "go", "noise"};
static const char *const CHART_COLORS[] = {"#d62728", "#ff9896", "#1f77b4", "#9467bd", "#2ca02c", "#7f7f7f"};
#define NUM_CHART (sizeof CHART_IMPLS / sizeof CHART_IMPLS[0])

static double px(const panel *p, double x) { return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w; }
static double py(const panel *p, double y) {
    if (p->ylog)
        y = log10(y > 0 ? y : 1e-3);
    return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h;
}

static void svg_frame(FILE *f, const panel *p, const char *title, const char *xlabel, const char *ylabel) {
    fprintf(f, "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#333'/>\n", p->x0,
            p->y0, p->w, p->h);
    fprintf(f, "<text x='%.0f' y='%.0f' font-size='15' text-anchor='middle' font-weight='bold'>%s</text>\n",
            p->x0 + p->w / 2, p->y0 - 12, title);
    fprintf(f, "<text x='%.0f' y='%.0f' font-size='12' text-anchor='middle'>%s</text>\n", p->x0 + p->w / 2,
            p->y0 + p->h + 36, xlabel);
    fprintf(f,
            "<text x='%.0f' y='%.0f' font-size='12' text-anchor='middle' transform='rotate(-90 %.0f "
            "%.0f)'>%s</text>\n",
            p->x0 - 52, p->y0 + p->h / 2, p->x0 - 52, p->y0 + p->h / 2, ylabel);
}

static void svg_polyline(FILE *f, const panel *p, const series *s, const char *color, bool lat) {
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    for (size_t i = 0; i < s->n; i++) {
        double x = lat && s->x[i] < 0 ? p->xmax : s->x[i];
        fprintf(f, "%.1f,%.1f ", px(p, x), py(p, s->y[i]));
    }
    fprintf(f, "'/>\n");
}

static void svg_legend(FILE *f, const panel *p, bool with_noise) {
    double y = p->y0 + 16;
    for (size_t i = 0; i < NUM_CHART; i++) {
        if (!with_noise && strcmp(CHART_IMPLS[i], "noise") == 0)
            continue;
        const char *name = strcmp(CHART_IMPLS[i], "noise") == 0 ? "noise floor" : CHART_IMPLS[i];
        fprintf(f, "<line x1='%.0f' y1='%.0f' x2='%.0f' y2='%.0f' stroke='%s' stroke-width='3'/>", p->x0 + 12,
                y, p->x0 + 32, y, CHART_COLORS[i]);
        fprintf(f, "<text x='%.0f' y='%.0f' font-size='12'>%s</text>\n", p->x0 + 38, y + 4, name);
        y += 17;
    }
}

static void latency_panel(FILE *f, panel *p) {
    double lo = INFINITY, hi = 0, xmax = 0;
    for (size_t i = 0; i < NUM_CHART; i++) {
        const series *s = find_series(CHART_IMPLS[i], "lat", false);
        for (size_t j = 0; s && j < s->n; j++) {
            if (s->y[j] > 0 && s->y[j] < lo)
                lo = s->y[j];
            if (s->y[j] > hi)
                hi = s->y[j];
            if (s->x[j] > xmax)
                xmax = s->x[j];
        }
    }
    if (hi <= 0)
        return;
    p->xmin = 0;
    p->xmax = xmax + 0.5;
    p->ymin = floor(log10(lo));
    p->ymax = ceil(log10(hi));
    p->ylog = true;
    svg_frame(f, p, "Latency of each insert while growing from empty", "percentile (max at the right edge)",
              "latency");
    static const char *const units[] = {"1 ns", "10 ns", "100 ns", "1 µs", "10 µs", "100 µs",
                                        "1 ms", "10 ms", "100 ms", "1 s",  "10 s"};
    for (int e = (int)p->ymin; e <= (int)p->ymax; e++) {
        double y = py(p, pow(10, e));
        fprintf(f, "<line x1='%.0f' y1='%.1f' x2='%.0f' y2='%.1f' stroke='#ddd'/>", p->x0, y, p->x0 + p->w,
                y);
        if (e >= 0 && e <= 10)
            fprintf(f, "<text x='%.0f' y='%.1f' font-size='11' text-anchor='end'>%s</text>\n", p->x0 - 4,
                    y + 4, units[e]);
    }
    static const char *const nines[] = {"p0",     "p90",     "p99",      "p99.9",
                                        "p99.99", "p99.999", "p99.9999", "p99.99999"};
    for (int k = 0; k <= (int)xmax && k < 8 && px(p, k) < px(p, p->xmax) - 40; k++)
        fprintf(f, "<text x='%.1f' y='%.0f' font-size='11' text-anchor='middle'>%s</text>\n", px(p, k),
                p->y0 + p->h + 16, nines[k]);
    fprintf(f, "<text x='%.1f' y='%.0f' font-size='11' text-anchor='middle'>max</text>\n", px(p, p->xmax),
            p->y0 + p->h + 16);
    for (size_t i = 0; i < NUM_CHART; i++) {
        const series *s = find_series(CHART_IMPLS[i], "lat", false);
        if (s && s->n)
            svg_polyline(f, p, s, CHART_COLORS[i], true);
    }
    svg_legend(f, p, true);
}

static void bytes_panel(FILE *f, panel *p, size_t n_fill) {
    double xmax = 0, ymax = 0;
    for (size_t i = 0; i < NUM_CHART; i++) {
        const series *s = find_series(CHART_IMPLS[i], "bytes", false);
        for (size_t j = 0; s && j < s->n; j++) {
            if (s->x[j] > xmax)
                xmax = s->x[j];
            if (s->y[j] / (1024.0 * 1024.0) > ymax)
                ymax = s->y[j] / (1024.0 * 1024.0);
        }
    }
    if (xmax <= 0 || ymax <= 0)
        return;
    p->xmin = 0;
    p->xmax = xmax;
    p->ymin = 0;
    p->ymax = ymax * 1.05;
    p->ylog = false;
    svg_frame(f, p, "Bytes held: fill from empty, then delete 99%", "operations (inserts, then deletes)",
              "MiB held");
    for (int t = 0; t <= 5; t++) {
        double v = p->ymax * t / 5, y = py(p, v);
        fprintf(f, "<line x1='%.0f' y1='%.1f' x2='%.0f' y2='%.1f' stroke='#ddd'/>", p->x0, y, p->x0 + p->w,
                y);
        fprintf(f, "<text x='%.0f' y='%.1f' font-size='11' text-anchor='end'>%.0f</text>\n", p->x0 - 4, y + 4,
                v);
    }
    if (n_fill > 0 && (double)n_fill < xmax) { /* where the deletes start */
        double x = px(p, (double)n_fill);
        fprintf(f, "<line x1='%.1f' y1='%.0f' x2='%.1f' y2='%.0f' stroke='#999' stroke-dasharray='5,4'/>", x,
                p->y0, x, p->y0 + p->h);
        fprintf(f, "<text x='%.1f' y='%.0f' font-size='11'>deletes start</text>\n", x + 4, p->y0 + p->h - 8);
    }
    for (int t = 0; t <= 4; t++) {
        double v = xmax * t / 4;
        fprintf(f, "<text x='%.1f' y='%.0f' font-size='11' text-anchor='middle'>%.3g M</text>\n", px(p, v),
                p->y0 + p->h + 16, v / 1e6);
    }
    for (size_t i = 0; i < NUM_CHART; i++) {
        series *s = find_series(CHART_IMPLS[i], "bytes", false);
        if (!s || !s->n)
            continue;
        series mib = *s; /* same x, y in MiB */
        double *y = xrealloc(NULL, s->n * sizeof *y);
        for (size_t j = 0; j < s->n; j++)
            y[j] = s->y[j] / (1024.0 * 1024.0);
        mib.y = y;
        svg_polyline(f, p, &mib, CHART_COLORS[i], false);
        free(y);
    }
    svg_legend(f, p, false);
}

int report_svg(const char *path, const char *title, size_t n_fill) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='1160' height='500' font-family='sans-serif'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n"
            "<text x='580' y='24' font-size='17' text-anchor='middle'>hmap-bench: %s</text>\n",
            title);
    panel lat = {80, 70, 460, 360, 0, 1, 0, 1, true}, bytes = {660, 70, 460, 360, 0, 1, 0, 1, false};
    latency_panel(f, &lat);
    bytes_panel(f, &bytes, n_fill);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}
