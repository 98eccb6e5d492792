/* SPDX-License-Identifier: MIT */
/*
 * report.c — the results of a run, and the three ways they leave the program: a Markdown table on
 * stdout, results.json (tools/common's JSON writer), and an SVG file of two charts (tools/common's
 * line charts, side by side).
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
    "small_insert",
    "small_map_bytes",
    "small_map_rss",
    "empty_map_bytes",
};
#define NUM_METRICS (sizeof METRICS / sizeof METRICS[0])
static const char *const COLUMNS[] = {"hmap", "hmap_noshrink", "abseil", "boost",
                                      "go",   "glib",          "uthash", "limit"};
#define NUM_COLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])
static const char *const PEERS[] = {"abseil", "boost", "go", "glib", "uthash"};
#define NUM_PEERS (sizeof PEERS / sizeof PEERS[0])

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
            recs = tc_xrealloc(recs, caprecs * sizeof *recs);
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
        s->x = tc_xrealloc(s->x, s->cap * sizeof *s->x);
        s->y = tc_xrealloc(s->y, s->cap * sizeof *s->y);
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
    behind *list = tc_xrealloc(NULL, (nc * NUM_METRICS + 1) * sizeof *list);
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
    for (size_t c = 0; c < nc; c++)
        if (keys[c] == KEYS_SMALL) {
            fprintf(out,
                    "Keys `small`: n maps of 1-%d uint64 entries (map j holds 1 + j %% %d), all alive at "
                    "once, each made with no size hint. small_insert = ns per insert, the maps' creation "
                    "included; small_map_bytes and small_map_rss (RSS growth) per map; empty_map_bytes per "
                    "map for n maps with nothing inserted.\n\n",
                    SMALL_MAX_ENTRIES, SMALL_MAX_ENTRIES);
            break;
        }
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
    tc_json j;
    tc_json_start_array(&j, f);
    for (size_t i = 0; i < nrecs; i++) {
        tc_json_object(&j, NULL);
        tc_json_str(&j, "impl", recs[i].impl);
        tc_json_str(&j, "keys", key_kind_name(recs[i].keys));
        tc_json_num(&j, "n", (double)recs[i].n);
        tc_json_str(&j, "metric", recs[i].metric);
        tc_json_num(&j, "value", median(&recs[i]));
        tc_json_str(&j, "unit", recs[i].unit);
        tc_json_num(&j, "reps", recs[i].nv);
        tc_json_end(&j, '}');
    }
    tc_json_finish(&j);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- SVG: latency distribution and bytes held, two tools/common line charts side by side ---- */

static const char *const CHART_IMPLS[] = {"hmap", "hmap_noshrink", "abseil", "boost", "go", "noise"};
static const char *const CHART_COLORS[] = {"#d62728", "#ff9896", "#1f77b4", "#9467bd", "#2ca02c", "#7f7f7f"};
#define NUM_CHART (sizeof CHART_IMPLS / sizeof CHART_IMPLS[0])
enum { CHART_W = 580, CHART_H = 470, TITLE_H = 36 };

/* The largest x of series `name` over the charted implementations. */
static double series_xmax(const char *name) {
    double xmax = 0;
    for (size_t i = 0; i < NUM_CHART; i++) {
        const series *s = find_series(CHART_IMPLS[i], name, false);
        for (size_t j = 0; s && j < s->n; j++)
            xmax = s->x[j] > xmax ? s->x[j] : xmax;
    }
    return xmax;
}

/* The chart series of `name` for every charted implementation, copied into xs/ys (freed by the caller):
 * on the latency chart the maximum (x < 0) goes to the right edge, half a nine past the last point; bytes
 * are shown in MiB. Returns the number of series. */
static size_t chart_series(const char *name, tc_series out[], double *xs[], double *ys[]) {
    bool lat = strcmp(name, "lat") == 0;
    double xmax = series_xmax(name);
    size_t n = 0;
    for (size_t i = 0; i < NUM_CHART; i++) {
        const series *s = find_series(CHART_IMPLS[i], name, false);
        if (!s || !s->n)
            continue;
        xs[n] = tc_xrealloc(NULL, s->n * sizeof *xs[n]);
        ys[n] = tc_xrealloc(NULL, s->n * sizeof *ys[n]);
        for (size_t j = 0; j < s->n; j++) {
            xs[n][j] = lat && s->x[j] < 0 ? xmax + 0.5 : s->x[j];
            ys[n][j] = lat ? s->y[j] : s->y[j] / (1024.0 * 1024.0);
        }
        bool noise = strcmp(CHART_IMPLS[i], "noise") == 0;
        out[n] = (tc_series){.label = noise ? "noise floor" : CHART_IMPLS[i],
                             .colour = CHART_COLORS[i],
                             .n = s->n,
                             .x = xs[n],
                             .y = ys[n]};
        n++;
    }
    return n;
}

/* One chart into `svg`, shifted right by x_offset; nothing when no implementation has the series. */
static void chart(tc_buf *svg, int x_offset, const char *name, tc_chart *c) {
    tc_series series[NUM_CHART];
    double *xs[NUM_CHART], *ys[NUM_CHART];
    size_t n = chart_series(name, series, xs, ys);
    if (n == 0)
        return;
    c->width = CHART_W;
    c->height = CHART_H;
    c->series = series;
    c->nseries = n;
    tc_buf_printf(svg, "<g transform='translate(%d,%d)'>\n", x_offset, TITLE_H);
    tc_svg_chart(svg, c);
    tc_buf_put(svg, "</g>\n");
    for (size_t i = 0; i < n; i++)
        free(xs[i]), free(ys[i]);
}

int report_svg(const char *path, const char *title, size_t n_fill) {
    tc_buf svg = {0};
    tc_buf_printf(&svg,
                  "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif'>\n"
                  "<rect width='100%%' height='100%%' fill='white'/>\n"
                  "<text x='%d' y='24' font-size='17' text-anchor='middle'>hmap-bench: ",
                  2 * CHART_W, CHART_H + TITLE_H, CHART_W);
    tc_buf_html(&svg, title);
    tc_buf_put(&svg, "</text>\n");

    tc_chart lat = {
        .title = "Latency of each insert while growing from empty",
        .x = {.label = "nines: 1 = p90, 2 = p99, 3 = p99.9 ... (the last point: the maximum)",
              .scale = TC_LINEAR,
              .unit = TC_PLAIN},
        .y = {.label = "latency", .scale = TC_LOG, .unit = TC_NS},
    };
    chart(&svg, 0, "lat", &lat);

    double xmax = series_xmax("bytes");
    tc_phase phases[] = {{"fill", 0, (double)n_fill}, {"delete 99%", (double)n_fill, xmax}};
    tc_chart bytes = {
        .title = "Bytes held: fill from empty, then delete 99%",
        .x = {.label = "operations (inserts, then deletes)", .scale = TC_LINEAR, .unit = TC_COUNT},
        .y = {.label = "MiB held", .scale = TC_LINEAR, .unit = TC_PLAIN},
        .phases = phases,
        .nphases = n_fill > 0 && (double)n_fill < xmax ? 2 : 0,
    };
    chart(&svg, CHART_W, "bytes", &bytes);
    tc_buf_put(&svg, "</svg>\n");

    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        tc_buf_free(&svg);
        return -1;
    }
    fputs(svg.p, f);
    tc_buf_free(&svg);
    return fclose(f) == 0 ? 0 : -1;
}
