/* SPDX-License-Identifier: MIT */
/*
 * lab.h — what the parts of hmap-lab share.
 *
 * hmap-lab runs the experiments behind the popular claims about Go's map and memory ("delete does not
 * free", "B never decreases", ...) on Go's real map and on hmap, side by side, and gives each claim a
 * verdict. One experiment per file (exp_*.c), each a subcommand; the tour runs them all.
 *
 * How a measurement flows:
 *   1. A measuring process prints lines (the protocol below): a forked child for hmap (lab_run_c), the Go
 *      companion program for Go's map (lab_run_go, tools/lab/go). Each runs alone, so its RSS is its own.
 *   2. The parent parses the lines into a lab_data per implementation (data.c).
 *   3. The experiment turns its lab_data into a lab_section: text, tables, SVG plots and claims with
 *      verdicts (section.c), which is printed for the terminal, written to JSON, and into the report
 *      (report.c: one self-contained HTML page).
 *
 * The line protocol, the same from C and Go (fields separated by one space):
 *   m <key> <number>          a figure: bytes, nanoseconds, counts
 *   s <key> <text...>         a string (rest of the line)
 *   r <table> <field>...      a row of a named table (no spaces inside fields)
 *   p <series> <x> <y>        a point of a named series, for plots
 * Any other line (e.g. GODEBUG=gctrace=1 output, when stderr is merged) is kept verbatim as a raw line.
 */
#ifndef HMAP_LAB_H
#define HMAP_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hmap.h"
#include "tools_common.h"

/* ---- the context every experiment gets (main.c) ---- */
typedef struct lab_ctx {
    const char *go_binary; /* the Go companion, or "" */
    bool go_ok;            /* it exists and answered `version` */
    char go_why[256];      /* why not, when !go_ok */
    char go_version[64];   /* runtime.Version() */
    const char *go_tool;   /* the `go` command (for go tool pprof), or "" */
    const char *out_dir;   /* where report.html and profiles go */
    bool quick;            /* the small sizes (smoke test) */
} lab_ctx;

/* ---- data.c: one implementation's results ---- */
typedef struct lab_kv {
    char key[64];
    double v; /* NaN for strings */
    char *s;  /* NULL for numbers */
} lab_kv;
typedef struct lab_row {
    char table[32];
    size_t nf;
    char **f;
} lab_row;
typedef struct lab_point {
    char series[40];
    double x, y;
} lab_point;
typedef struct lab_data {
    char impl[24]; /* "hmap", "no_shrink", "go", ... */
    bool ran, ok;
    char why[256]; /* why !ok */
    lab_kv *kv;
    size_t nkv, cap_kv;
    lab_row *rows;
    size_t nrows, cap_rows;
    lab_point *pts;
    size_t npts, cap_pts;
    char **raw;
    size_t nraw, cap_raw;
} lab_data;

double lab_num(const lab_data *d, const char *key);      /* NaN when absent or not run */
const char *lab_str(const lab_data *d, const char *key); /* NULL when absent */
/* The points of one series, x and y malloc'd (free both); returns the count. */
size_t lab_series(const lab_data *d, const char *series, double **x, double **y);
size_t lab_rows(const lab_data *d, const char *table, const lab_row **out, size_t max);
double lab_fnum(const lab_row *r, size_t i); /* field i as a number, NaN when absent */
void lab_data_free(lab_data *d);

/* Runs body in a forked child, its lines parsed into d (labelled impl). */
bool lab_run_c(lab_data *d, const char *impl, void (*body)(void *arg, FILE *out), void *arg);
/* Runs the Go companion: `<go> <subcommand> -n N [extra args]`, extra environment, stderr merged or not. */
bool lab_run_go(lab_data *d, const lab_ctx *ctx, const char *subcommand, uint64_t n,
                const char *const extra[], char *const env[], bool merge_stderr);
/* Runs this very program again (`hmap-lab __child <name> N`) with extra environment: for settings the
 * library reads once at load time (HMAP_TRACE). stderr merged. */
bool lab_run_self(lab_data *d, const char *impl, const char *child, uint64_t n, char *const env[]);

/* Emitting from a measuring child. */
void lab_m(FILE *out, const char *key, double v);
void lab_s(FILE *out, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lab_r(FILE *out, const char *table, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lab_p(FILE *out, const char *series, double x, double y);

/* A progress line on stderr while a long step runs (only when stderr is a terminal); done clears it. */
void lab_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lab_progress_done(void);
void lab_progress_enable(bool on);

/* ---- keys and maps shared by the experiments (keys.c) ---- */
uint64_t lab_key(uint64_t i);  /* the i-th key: splitmix64's finalizer; the Go companion uses the same */
bool lab_survives(uint64_t i); /* kept by a "delete 99%": one index in a hundred */
hmap *lab_u64_map(size_t hint, bool no_shrink, const char *name);
void lab_put(hmap *m, uint64_t i); /* lab_key(i) -> i; exits on error */
void lab_del(hmap *m, uint64_t i); /* exits when absent */
/* The fresh map of `count` live keys (indices first, first+step, ...): see LAB_FRESH_MAP. */
size_t lab_fresh_bytes(uint64_t first, uint64_t step, uint64_t count);
const char *lab_phase_name(hmap_phase p);
/* tc_fmt_bytes / tc_fmt_count of a figure that may be missing (NaN, or negative): "—" then. */
const char *lab_fmt_bytes(double v, char buf[32]);
const char *lab_fmt_count(double v, char buf[32]);
/* Blocks until the library's freed arrays are back with the OS (hmap_release_os_memory); returns ns. */
uint64_t lab_release(void);

/* The one definition of "fresh map" behind every ratio; stated once, at the top of the output. */
#define LAB_FRESH_MAP                                                                                        \
    "fresh map = a new map of the same implementation, made with the live count as its size hint and "       \
    "filled with the same live keys, its bytes counted the same way as the map it is compared with "         \
    "(hmap: hmap_get_stats().bytes, hmap_sync: hmap_sync_get_stats().bytes; Go: HeapAlloc after "            \
    "runtime.GC(), before minus after)."

/* ---- section.c: what an experiment shows ---- */
typedef enum { LAB_HOLDS, LAB_DOES_NOT_HOLD, LAB_PARTLY, LAB_UNTESTED } lab_verdict;
const char *lab_verdict_name(lab_verdict v);

typedef struct lab_claim {
    char *text;     /* the claim, in the lab's words */
    char *measured; /* what was measured */
    char *reason;   /* one line: why this verdict */
    lab_verdict verdict;
} lab_claim;

typedef enum { LAB_ITEM_TEXT, LAB_ITEM_NOTE, LAB_ITEM_PRE, LAB_ITEM_TABLE, LAB_ITEM_PLOT } lab_item_kind;
typedef struct lab_item {
    lab_item_kind kind;
    char *text; /* text, note (report only), pre: caption; plot: caption */
    char *body; /* pre: the lines; plot: the <svg> */
    tc_table *table;
    bool report_only;
} lab_item;

struct lab_experiment;
typedef struct lab_section {
    const struct lab_experiment *exp;
    uint64_t n;
    lab_item *items;
    size_t nitems, cap_items;
    lab_claim *claims;
    size_t nclaims, cap_claims;
    lab_data *data[6]; /* owned: every implementation's results, dumped into the JSON */
    size_t ndata;
    double seconds;
} lab_section;

lab_data *lab_section_data(lab_section *s, const char *impl); /* a new lab_data owned by the section */
void lab_text(lab_section *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lab_note(lab_section *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lab_pre(lab_section *s, const char *caption, const char *lines);
void lab_table(lab_section *s, tc_table *t, bool report_only);   /* takes t */
void lab_plot(lab_section *s, tc_buf *svg, const char *caption); /* takes the buffer's text */

/* One implementation in a memory plot: its "bytes" series drawn solid, its "rss" series dashed. */
typedef struct lab_memory_line {
    const lab_data *data;
    const char *name, *colour;
    const char *bytes_label; /* what its bytes are (NULL: "bytes held") */
    double width;            /* 0: the chart's default */
    bool dots;               /* a marker per point (few points) */
} lab_memory_line;

/* The plot of the experiments that fill n entries, delete 99%, delete the rest, then do `last_phase`
 * (last_ops operations): memory on a log axis, every phase drawn the same width. */
void lab_memory_plot(lab_section *s, const lab_memory_line *lines, size_t nlines, const char *last_phase,
                     double last_ops, const char *title, const char *note, const char *caption);
void lab_claim_add(lab_section *s, lab_verdict v, const char *text, const char *measured,
                   const char *reason_fmt, ...) __attribute__((format(printf, 5, 6)));
void lab_section_print(const lab_section *s, FILE *out);
void lab_section_html(const lab_section *s, tc_buf *out);
void lab_section_json(const lab_section *s, tc_json *j, const char *key);
void lab_section_free(lab_section *s);

/* When Go's side did not run: one line saying why, and the claim verdicts that need it become untested. */
void lab_go_missing(lab_section *s, const lab_ctx *ctx, const lab_data *go);

enum { LAB_WIDTH = 120 };                            /* terminal lines are never wider */
void lab_print_wrapped(FILE *out, const char *text); /* text wrapped at spaces to LAB_WIDTH */

/* ---- the experiments (exp_*.c) ---- */
typedef struct lab_experiment {
    const char *name;
    int number;
    const char *title;
    const char *help; /* one line for --help */
    uint64_t default_n, quick_n;
    const char *n_means; /* "entries", "values of 1 MiB", ... */
    void (*run)(lab_section *s, const lab_ctx *ctx);
    /* hmap-lab __child <name> N runs this in a fresh process (see lab_run_self); may be NULL */
    void (*child)(uint64_t n, FILE *out);
} lab_experiment;

extern const lab_experiment lab_grow, lab_delete, lab_tophash, lab_values, lab_iterate, lab_signals,
    lab_release_exp, lab_pool, lab_sync;

/* ---- colours shared by every plot: one per implementation ---- */
#define LAB_C_HMAP "#1f77b4"
#define LAB_C_NOSHRINK "#ff7f0e"
#define LAB_C_GO "#2ca02c"
#define LAB_C_OTHER "#9467bd"

/* ---- report.c ---- */
int lab_write_report(const char *path, const lab_ctx *ctx, lab_section *const sections[], size_t n,
                     const char *command, double seconds);
void lab_print_summary(FILE *out, lab_section *const sections[], size_t n);
void lab_summary_json(tc_json *j, lab_section *const sections[], size_t n);

/* iterate_cxx.cc: std::unordered_map facts the iterate experiment prints */
typedef struct lab_cxx_facts {
    size_t buckets_before_erase, buckets_after_erase; /* erasing half the elements */
    bool held_iterator_valid;    /* an iterator to a kept element still reads it after the erases */
    size_t erase_returned_next;  /* elements visited with it = m.erase(it) while erasing every odd key */
    size_t inserts_until_rehash; /* inserts until bucket_count() changed: a rehash, all iterators invalid */
    size_t buckets_before_rehash, buckets_after_rehash;
    double max_load_factor;
    bool iterator_bidirectional; /* whether `it--` would compile (it does not: forward iterators) */
} lab_cxx_facts;
void lab_cxx_unordered_map_facts(size_t n, lab_cxx_facts *f);

#endif /* HMAP_LAB_H */
