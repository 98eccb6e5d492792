/* SPDX-License-Identifier: MIT */
/*
 * bench.h — what the files of hmap-bench share.
 *
 * hmap-bench is a driver (main.c) that forks one worker per (implementation, key set, size, repetition);
 * a worker runs one measurement suite (suite.c) against one adapter and writes its results as text lines
 * on a pipe. Go's map is measured by a separate program (go/main.go) that prints the very same lines, so
 * the driver treats both alike. The line protocol, shared by C and Go workers:
 *
 *     R <metric> <value> <unit>          one figure, e.g. "R lookup_hit 61.2 ns/op"
 *     S <series> <x> <y>                 one point of a chart series, e.g. "S bytes 512 3.1e7"
 *     I <free text>                      information shown in the output header (e.g. the Go version)
 *
 * Adapters (impl_*.c, impl_absl.cc) expose whole loops rather than single operations, so that the loop
 * around each operation is compiled together with it and no function-pointer call is measured.
 */
#ifndef HMAP_BENCH_H
#define HMAP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- keys.c: the key streams, identical in the Go program ---- */

typedef enum { KEYS_U64, KEYS_STR } key_kind;

/* Key i of a run. Keys [0, n) are inserted; keys [n, n + extra) are never inserted before the miss
 * lookups (they are the misses, and later the new keys of the churn). Value of key i is i + 1. */
typedef struct keyset {
    key_kind kind;
    size_t count;     /* n + extra */
    uint64_t *u64;    /* KEYS_U64: splitmix64(i) */
    const char **str; /* KEYS_STR: NUL-terminated, 16..40 bytes, unique */
    uint32_t *len;    /* KEYS_STR: strlen(str[i]) */
    char *arena;      /* the bytes of all strings */
} keyset;

uint64_t splitmix64(uint64_t x);
void keyset_make(keyset *ks, key_kind kind, size_t count);
void keyset_free(keyset *ks);
uint64_t keyset_checksum(const keyset *ks); /* FNV-1a over every key; go/main.go computes the same */
const char *key_kind_name(key_kind k);

/* ---- clock.c: a cheap per-operation clock ---- */

void clock_init(void); /* calibrates the TSC against CLOCK_MONOTONIC */
uint64_t now_ns(void); /* CLOCK_MONOTONIC */
double ticks_per_ns(void);
double timer_cost_ns(void); /* median cost of one timed empty region (two clock reads) */
const char *clock_name(void);

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
/* lfence keeps the read from drifting into or out of the timed region. */
static inline uint64_t ticks(void) {
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}
#else
static inline uint64_t ticks(void) { return now_ns(); }
#endif

/* ---- adapters ---- */

/* One map implementation, as whole loops over a keyset. `v` is the map. Every loop uses keys
 * [from, to) of the keyset; lookups return the sum of the values found so that nothing can be elided,
 * and count what they found in *found. */
typedef struct adapter {
    const char *name;
    bool (*supports)(key_kind kind);
    void *(*create)(key_kind kind, size_t reserve); /* reserve 0: no hint */
    bool can_reserve;                               /* create() honours reserve */
    void (*destroy)(void *v);
    void (*insert)(void *v, const keyset *ks, size_t from, size_t to);
    /* Like insert, but stores the ticks() each insert took in lat[i - from]. Between inserts, every
     * `sample_every` inserts, calls sample(ctx, i) outside the timed region. */
    void (*insert_timed)(void *v, const keyset *ks, size_t from, size_t to, uint32_t *lat,
                         size_t sample_every, void (*sample)(void *ctx, size_t i), void *ctx);
    /* Lookups of keys from + j*stride for j in [0, count). */
    uint64_t (*lookup)(void *v, const keyset *ks, size_t from, size_t stride, size_t count, size_t *found);
    /* Deletes keys [from, to); calls sample() as insert_timed does. Returns how many were deleted. */
    size_t (*erase)(void *v, const keyset *ks, size_t from, size_t to, size_t sample_every,
                    void (*sample)(void *ctx, size_t i), void *ctx);
    uint64_t (*iterate)(void *v, size_t *count);
    /* count times: insert key ins_from + j, delete key del_from + j. */
    void (*churn)(void *v, const keyset *ks, size_t ins_from, size_t del_from, size_t count);
    size_t (*bytes)(void *v); /* bytes the map holds now (see each adapter for how it counts) */
    int (*compact)(void *v);  /* NULL when the implementation has no such call */
    size_t (*len)(void *v);
} adapter;

extern const adapter adapter_hmap, adapter_hmap_noshrink, adapter_absl, adapter_boost, adapter_glib,
    adapter_uthash;

/* ---- suite.c: what a worker measures ---- */

typedef struct suite_config {
    size_t n;       /* entries at full size */
    size_t lookups; /* lookups / churn operations per round (n capped) */
    size_t rounds;  /* rounds of the speed measurements (small n is repeated to be timeable) */
    bool series;    /* emit the fill-then-delete bytes series and latency distribution */
} suite_config;

void suite_run_map(const adapter *a, const keyset *ks, const suite_config *cfg, FILE *out);
void suite_run_limit(const keyset *ks, const suite_config *cfg, FILE *out);
void suite_run_noise(const suite_config *cfg, FILE *out);

/* The latency percentiles reported, as metric names and as fractions (1.0 = max). */
#define LAT_POINTS 6
extern const char *const lat_metric[LAT_POINTS];
extern const double lat_fraction[LAT_POINTS];

/* ---- report.c: results collected by the driver, and the three outputs ---- */

/* One value of one repetition. The report shows the median over repetitions. */
void results_add(const char *impl, key_kind keys, size_t n, const char *metric, const char *unit,
                 double value);
/* A chart series ("lat": x = nines, y = ns, x < 0 marks the maximum; "bytes": x = operation, y = bytes)
 * for one implementation; a later call replaces an earlier one. */
void series_add_point(const char *impl, const char *series, double x, double y);
void series_reset(const char *impl, const char *series);
void report_markdown(FILE *out, const char *header);
int report_json(const char *path);
int report_svg(const char *path, const char *title, size_t n_fill); /* n_fill: where deletes start */

/* ---- helpers shared by adapters ---- */
size_t rss_bytes(void);     /* resident set size of this process, from /proc/self/statm */
size_t malloc_in_use(void); /* bytes glibc's malloc has handed out and not taken back */

#ifdef __cplusplus
}
#endif
#endif /* HMAP_BENCH_H */
