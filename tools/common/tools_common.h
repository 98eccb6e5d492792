/* SPDX-License-Identifier: MIT */
/*
 * tools_common.h — what the project's measuring programs (the lab, and whatever else wants it) share.
 *
 * A small static library, `hmap_tools_common`, with no knowledge of hmap itself:
 *
 *   measure.c  the clock, the process's memory (RSS and mapped size, from /proc/self/statm) and the
 *              machine's CPU model
 *   fmt.c      human units ("38.3 MiB", "1.2 µs", "10M") and a growable string buffer
 *   hist.c     a latency histogram that never allocates (4 bins per power of two, ±12% per bin)
 *   proc.c     running a measurement in another process and reading its output line by line: a forked
 *              child (its RSS is its own, its heap fresh) or another program (the Go companions)
 *   table.c    a table printed for a terminal (aligned, wrapped to a width) and as HTML and JSON
 *   svg.c      line charts (linear or log axes, phases of equal width, step lines) and bar charts as
 *              inline SVG text, so a report needs no plotting library and no network
 *   json.c     a streaming JSON writer
 *
 * Everything writes into caller-owned memory or a FILE; nothing here keeps global state except the
 * page size.
 */
#ifndef HMAP_TOOLS_COMMON_H
#define HMAP_TOOLS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" { /* the bench's C++ adapters include it through bench.h */
#endif

/* ---- measure.c ---- */
uint64_t tc_now_ns(void);    /* CLOCK_MONOTONIC */
uint64_t tc_rss_bytes(void); /* resident set size: /proc/self/statm field 2 × page size */
uint64_t tc_vm_bytes(void);  /* mapped size: field 1 × page size */
/* The "model name" of /proc/cpuinfo's first CPU, or "unknown CPU". */
void tc_cpu_model(char *buf, size_t size);
/* /proc/loadavg as it reads ("1.02 1.77 2.72 1/79 27399"), or "unknown". */
void tc_load_average(char *buf, size_t size);

/* ---- fmt.c ---- */
const char *tc_fmt_bytes(uint64_t bytes, char buf[32]); /* "348 B", "38.3 MiB", "1.2 GiB" */
const char *tc_fmt_count(uint64_t n, char buf[32]);     /* "10M", "1.5M", "200k", "6657" */
const char *tc_fmt_ns(double ns, char buf[32]);         /* "850 ns", "1.2 µs", "3.40 ms", "1.20 s" */
const char *tc_fmt_ratio(double r, char buf[32]);       /* "1.99×", "127×" */

typedef struct tc_buf {
    char *p;
    size_t len, cap;
} tc_buf; /* zero-initialised is empty; p is always NUL-terminated once anything was added */
void tc_buf_printf(tc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tc_buf_put(tc_buf *b, const char *s);
void tc_buf_html(tc_buf *b, const char *s); /* s with & < > " ' escaped */
void tc_buf_free(tc_buf *b);
char *tc_strdup(const char *s); /* exits on out of memory, as every allocation here does */
void *tc_xrealloc(void *p, size_t size);

/* Display width of UTF-8 text in a terminal: code points (every one used here is one column wide). */
size_t tc_text_width(const char *s);

/* ---- hist.c ---- */
enum { TC_HIST_BINS = 256 };
typedef struct tc_hist {
    uint64_t bins[TC_HIST_BINS];
    uint64_t total, sum, max;
} tc_hist;
void tc_hist_add(tc_hist *h, uint64_t ns);
uint64_t tc_hist_quantile(const tc_hist *h, double q); /* upper bound of the bin holding quantile q */
uint64_t tc_hist_bin_low(unsigned bin);
uint64_t tc_hist_bin_high(unsigned bin); /* largest value in the bin */
void tc_hist_merge(tc_hist *into, const tc_hist *from);

/* ---- proc.c ---- */
typedef void (*tc_line_fn)(void *ctx, char *line); /* line without its newline */

/* Runs body(arg, out) in a forked child; every line it writes to `out` reaches on_line in the parent.
 * The child's stdout is flushed first so it cannot print the parent's buffer twice. Returns true when
 * the child exited 0; otherwise false with a reason in why. */
bool tc_fork_lines(void (*body)(void *arg, FILE *out), void *arg, tc_line_fn on_line, void *ctx, char *why,
                   size_t why_size);

/* Runs argv[0] (a path) with extra environment `env` (NAME=value strings, NULL-terminated; may be NULL)
 * and passes each line of its stdout — and of its stderr too when merge_stderr — to on_line. Stdin is
 * /dev/null. Same return as tc_fork_lines. */
bool tc_spawn_lines(char *const argv[], char *const env[], bool merge_stderr, tc_line_fn on_line, void *ctx,
                    char *why, size_t why_size);

/* ---- table.c ---- */
typedef struct tc_table tc_table;
/* align: one letter per column, 'l' or 'r'. */
tc_table *tc_table_new(const char *title, size_t ncols, const char *const headers[], const char *align);
void tc_table_wrap(tc_table *t, size_t col);        /* this column may wrap to keep the table narrow */
void tc_table_report_only(tc_table *t, size_t col); /* shown in HTML and JSON, not in the terminal */
void tc_table_hide(tc_table *t, size_t col); /* shown nowhere (a column of a run that did not happen) */
void tc_table_add(tc_table *t, const char *const cells[]); /* ncols cells, copied */
void tc_table_addf(tc_table *t, ...);                      /* ncols `const char *` arguments */
size_t tc_table_rows(const tc_table *t);
/* Prints aligned columns no wider than max_width (wrapping the wrappable columns, widest first); returns
 * the width of the widest line printed. */
size_t tc_table_print(const tc_table *t, FILE *out, size_t max_width);
void tc_table_html(const tc_table *t, tc_buf *out);
struct tc_json;
void tc_table_json(const tc_table *t, struct tc_json *j, const char *key);
const char *tc_table_title(const tc_table *t);
void tc_table_free(tc_table *t);

/* ---- svg.c ---- */
typedef enum { TC_LINEAR, TC_LOG } tc_scale;
typedef enum { TC_PLAIN, TC_BYTES, TC_NS, TC_COUNT } tc_unit;
typedef struct tc_axis {
    const char *label;
    tc_scale scale;
    tc_unit unit;
    double min, max; /* both 0: from the data */
} tc_axis;
typedef struct tc_series {
    const char *label;
    const char *colour; /* any SVG colour */
    bool dashed, step, dots;
    double width; /* 0: 2 */
    size_t n;
    const double *x, *y;
} tc_series;
typedef struct tc_phase {
    const char *label;
    double x0, x1; /* data range of the phase on the x axis */
} tc_phase;
typedef struct tc_chart {
    const char *title;
    int width, height; /* 0: 1000 x 420 */
    tc_axis x, y;
    const tc_series *series;
    size_t nseries;
    const tc_phase *phases; /* optional; with equal_phases each gets the same width whatever its length */
    size_t nphases;
    bool equal_phases;
    const char *note; /* one line under the chart */
} tc_chart;
void tc_svg_chart(tc_buf *out, const tc_chart *c);

typedef struct tc_bars {
    const char *title;
    int width, height;
    const char *const *groups; /* x categories */
    size_t ngroups;
    const char *const *labels; /* one bar per label in each group */
    const char *const *colours;
    size_t nbars;
    const double *values; /* ngroups × nbars, row per group; NaN: no bar */
    tc_axis y;
    const char *note;
} tc_bars;
void tc_svg_bars(tc_buf *out, const tc_bars *b);

/* ---- json.c ---- */
typedef struct tc_json {
    FILE *f;
    int depth;
    bool first[64];
    char outer; /* '}' or ']': what tc_json_finish closes */
} tc_json;
void tc_json_start(tc_json *j, FILE *f);          /* writes the outer '{' */
void tc_json_start_array(tc_json *j, FILE *f);    /* the document is an array instead: writes '[' */
void tc_json_finish(tc_json *j);                  /* writes the outer '}' (or ']') and a newline */
void tc_json_object(tc_json *j, const char *key); /* key NULL inside arrays */
void tc_json_array(tc_json *j, const char *key);
void tc_json_end(tc_json *j, char close);                     /* '}' or ']' */
void tc_json_num(tc_json *j, const char *key, double v);      /* NaN and infinities: null */
void tc_json_str(tc_json *j, const char *key, const char *s); /* NULL: null */
void tc_json_bool(tc_json *j, const char *key, bool v);

#ifdef __cplusplus
}
#endif
#endif /* HMAP_TOOLS_COMMON_H */
