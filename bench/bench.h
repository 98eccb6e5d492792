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
 *
 * The clock, RSS, child processes, JSON and SVG come from tools/common (tools_common.h), shared with the
 * lab; what is here is the bench's own: the TSC clock, the keys, the adapters, the suite and the report.
 */
#ifndef HMAP_BENCH_H
#define HMAP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- keys.c: the key streams, identical in the Go program ---- */

/* KEYS_SMALL is the small-maps row: many maps of 1..SMALL_MAX_ENTRIES uint64 keys each (suite_run_small);
 * its keys are the uint64 keys, handed out to the maps in order. */
typedef enum { KEYS_U64, KEYS_STR, KEYS_SMALL } key_kind;

/* Key i of a run. Keys [0, n) are inserted; keys [n, n + extra) are never inserted before the miss
 * lookups (they are the misses, and later the new keys of the churn). Value of key i is i + 1. */
typedef struct keyset {
    key_kind kind;
    size_t count;     /* n + extra */
    uint64_t *u64;    /* KEYS_U64, KEYS_SMALL: splitmix64(i) */
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

void clock_init(void); /* calibrates the TSC against CLOCK_MONOTONIC (tc_now_ns) */
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
static inline uint64_t ticks(void) { return tc_now_ns(); }
#endif

/* ---- adapters ---- */

/* The small-maps row: maps of few entries, SMALL_MAX_ENTRIES at most, all alive at once. Map j holds
 * small_entries(j, max) keys; the keys are taken from the keyset in order (map 0 has key 0, map 1 keys 1
 * and 2, ...), and the value of key k is k + 1, as everywhere. */
#define SMALL_MAX_ENTRIES 8
static inline size_t small_entries(size_t j, size_t max) { return max ? 1 + j % max : 0; }
static inline size_t small_total(size_t count, size_t max) {
    size_t total = 0;
    for (size_t j = 0; j < count; j++)
        total += small_entries(j, max);
    return total;
}

/* How an implementation holds `count` small maps (loops.h writes the fill loop). `all` is what the caller
 * keeps: an array of pointers for maps that live on the heap (hmap, written before the measurement starts,
 * so that the array itself is neither counted nor resident growth), or the map objects themselves (C++,
 * constructed in place: sizeof the map is part of what a map costs). */
typedef struct small_ops {
    void *(*many_new)(size_t count);
    /* Creates map j with no size hint and inserts its small_entries(j, max) keys, for every j; max 0:
     * empty maps. */
    void (*many_fill)(void *all, const keyset *ks, size_t count, size_t max);
    size_t (*many_bytes)(void *all, size_t count); /* every byte the maps hold (see each adapter) */
    size_t (*many_len)(void *all, size_t count);   /* entries over all maps */
    void (*many_free)(void *all, size_t count);
} small_ops;

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
    const small_ops *small; /* NULL: not in the small-maps row */
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
/* The small-maps row: cfg->n maps of 1..SMALL_MAX_ENTRIES keys (ks holds small_total of them), then as many
 * empty maps. */
void suite_run_small(const adapter *a, const keyset *ks, const suite_config *cfg, FILE *out);

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
size_t malloc_in_use(void); /* bytes glibc's malloc has handed out and not taken back */

#ifdef __cplusplus
}
#endif
#endif /* HMAP_BENCH_H */
