/* SPDX-License-Identifier: MIT */
/*
 * suite.c — what one worker measures, for one implementation, key set and size.
 *
 * A worker is a fresh forked process (see main.c), so its heap and RSS belong to one implementation.
 * It runs, in this order:
 *
 *  1. The memory and latency experiment, first, on a clean heap. Fill an empty map with keys [0, n),
 *     timing every single insert with ticks(); read bytes held (bytes per entry) and RSS; delete keys
 *     [n/100, n) so that 1% survive, timing the deletes as a whole ("delete": the sampling below is
 *     taken out of it); read bytes held and RSS again; compact where the implementation
 *     can; then build a fresh map of the same survivors and divide. RSS figures are growth over the RSS
 *     before the fill (the key arena and the latency buffer are already resident then). With
 *     cfg->series, bytes held is also sampled 256 times along the fill-then-delete run (outside the
 *     timed region) for the chart.
 *  2. The speed rounds, cfg->rounds times (small maps are repeated until they are timeable): insert
 *     from empty, lookups of L present keys spread over the whole set, lookups of L absent keys,
 *     iteration, L churn steps (insert a new key, delete an old one: the size stays n); then, where the map
 * takes a size hint, insert after reserve. Each phase is timed as a whole with CLOCK_MONOTONIC. Lookup sums
 * go to a volatile sink and every count is checked, so that nothing is elided and a broken map stops the run.
 *
 * The "limit" and "noise" workers measure the machine instead of a map: random cache-line reads and
 * writes in an array of n * 32 bytes (about a map's size), a sequential read of n * 16 bytes, and n
 * timed trivial writes, for the floor each map figure is compared with.
 *
 * The small-maps worker (suite_run_small) makes n maps of 1..8 entries, all alive at once, timing their
 * creation and fill as a whole, then, after freeing them, n empty maps. Its RSS figure is taken on the
 * first phase, while the heap is fresh: the second reuses what the first freed.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const lat_metric[LAT_POINTS] = {"lat_p50",    "lat_p99",     "lat_p99.9",
                                            "lat_p99.99", "lat_p99.999", "lat_max"};
const double lat_fraction[LAT_POINTS] = {0.50, 0.99, 0.999, 0.9999, 0.99999, 1.0};

static volatile uint64_t sink; /* lookups add into it: their results are used */

#define MiB (1024.0 * 1024.0)

size_t malloc_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "hmap-bench: out of memory\n");
        exit(1);
    }
    return p;
}

static void check(bool ok, const char *impl, const char *what, size_t got, size_t want) {
    if (ok)
        return;
    fprintf(stderr, "hmap-bench: %s: %s: got %zu, want %zu\n", impl, what, got, want);
    exit(2);
}

static void emit(FILE *out, const char *metric, double value, const char *unit) {
    fprintf(out, "R %s %.6g %s\n", metric, value, unit);
}

/* ---- latency percentiles ---- */

/* Sorts n 32-bit values: two 16-bit radix passes (10M values in ~0.1 s, where qsort takes seconds). */
static void radix_sort_u32(uint32_t *a, size_t n) {
    uint32_t *tmp = xcalloc(n ? n : 1, sizeof *tmp);
    size_t *count = xcalloc(65536 + 1, sizeof *count);
    for (int shift = 0; shift < 32; shift += 16) {
        memset(count, 0, (65536 + 1) * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[((a[i] >> shift) & 0xffff) + 1]++;
        for (size_t d = 0; d < 65536; d++)
            count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i] >> shift) & 0xffff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
    free(count);
    free(tmp);
}

static double percentile_ns(const uint32_t *sorted, size_t n, double fraction) {
    size_t idx = fraction >= 1.0 ? n - 1 : (size_t)(fraction * (double)n);
    if (idx >= n)
        idx = n - 1;
    return (double)sorted[idx] / ticks_per_ns();
}

/* Emits the LAT_POINTS metrics, the timer cost and, with series, a fine distribution for the chart:
 * fractions 1 - 10^(-k/8) ("k/8 nines") up to the resolution n allows, then the maximum. */
static void emit_latencies(FILE *out, uint32_t *lat, size_t n, bool series) {
    radix_sort_u32(lat, n);
    for (int p = 0; p < LAT_POINTS; p++)
        emit(out, lat_metric[p], percentile_ns(lat, n, lat_fraction[p]), "ns");
    emit(out, "timer_cost", timer_cost_ns(), "ns");
    if (!series)
        return;
    for (int k = 0;; k++) {
        double nines = k / 8.0, f = 1.0 - 1.0 / pow(10.0, nines);
        if ((1.0 - f) * (double)n < 1.0)
            break;
        fprintf(out, "S lat %.4f %.6g\n", nines, percentile_ns(lat, n, f));
    }
    fprintf(out, "S lat max %.6g\n", percentile_ns(lat, n, 1.0));
}

/* ---- 1. memory and latency experiment ---- */

#define MAX_SAMPLES 600

typedef struct sampler {
    const adapter *a;
    void *m;
    size_t offset; /* x of key i is offset + i - from */
    size_t from;
    size_t count;
    uint64_t spent_ns; /* time spent sampling, taken out of the timed delete phase */
    double x[MAX_SAMPLES], y[MAX_SAMPLES];
} sampler;

static void take_sample(void *ctx, size_t i) {
    sampler *s = ctx;
    if (s->count == MAX_SAMPLES)
        return;
    uint64_t t0 = tc_now_ns();
    s->x[s->count] = (double)(s->offset + i - s->from);
    s->y[s->count] = (double)s->a->bytes(s->m);
    s->count++;
    s->spent_ns += tc_now_ns() - t0;
}

static void memory_experiment(const adapter *a, const keyset *ks, const suite_config *cfg, FILE *out) {
    size_t n = cfg->n, survivors = n / 100 ? n / 100 : 1;
    size_t every = n / 256 ? n / 256 : 1;
    uint32_t *lat = xcalloc(n, sizeof *lat); /* calloc + the write below: resident before rss0 */
    memset(lat, 1, n * sizeof *lat);
    sampler *s = xcalloc(1, sizeof *s);
    s->a = a;

    size_t rss0 = tc_rss_bytes();
    void *m = a->create(ks->kind, 0);
    s->m = m;
    a->insert_timed(m, ks, 0, n, lat, every, cfg->series ? take_sample : NULL, s);
    check(a->len(m) == n, a->name, "size after fill", a->len(m), n);
    size_t full = a->bytes(m);
    emit(out, "bytes_per_entry", (double)full / (double)n, "B");
    emit(out, "rss_full", (double)(tc_rss_bytes() - rss0) / MiB, "MiB");

    s->offset = n;
    s->from = survivors;
    s->spent_ns = 0;
    uint64_t t0 = tc_now_ns();
    size_t deleted = a->erase(m, ks, survivors, n, every, cfg->series ? take_sample : NULL, s);
    uint64_t delete_ns = tc_now_ns() - t0 - s->spent_ns;
    check(deleted == n - survivors, a->name, "deleted", deleted, n - survivors);
    emit(out, "delete", (double)delete_ns / (double)deleted, "ns/op");
    size_t after = a->bytes(m);
    size_t rss_after = tc_rss_bytes();
    if (cfg->series)
        take_sample(s, n);
    size_t compacted = 0;
    if (a->compact) {
        a->compact(m);
        compacted = a->bytes(m);
    }
    a->destroy(m);

    void *fresh = a->create(ks->kind, 0);
    a->insert(fresh, ks, 0, survivors);
    size_t fresh_bytes = a->bytes(fresh);
    a->destroy(fresh);

    emit(out, "held_after_del99", (double)after / (double)fresh_bytes, "x");
    if (a->compact)
        emit(out, "held_after_compact", (double)compacted / (double)fresh_bytes, "x");
    emit(out, "rss_after_del99", ((double)rss_after - (double)rss0) / MiB, "MiB");
    emit_latencies(out, lat, n, cfg->series);
    if (cfg->series)
        for (size_t i = 0; i < s->count; i++)
            fprintf(out, "S bytes %.0f %.0f\n", s->x[i], s->y[i]);
    free(s);
    free(lat);
}

/* ---- 2. speed rounds ---- */

typedef struct phase_times {
    uint64_t insert, hit, miss, iterate, churn, reserved;
} phase_times;

static void speed_round(const adapter *a, const keyset *ks, const suite_config *cfg, phase_times *t) {
    size_t n = cfg->n, L = cfg->lookups, found;
    void *m = a->create(ks->kind, 0);

    uint64_t t0 = tc_now_ns();
    a->insert(m, ks, 0, n);
    uint64_t t1 = tc_now_ns();
    sink += a->lookup(m, ks, 0, n / L, L, &found);
    uint64_t t2 = tc_now_ns();
    check(found == L, a->name, "lookup hits", found, L);
    sink += a->lookup(m, ks, n, 1, L, &found);
    uint64_t t3 = tc_now_ns();
    check(found == 0, a->name, "lookup misses", found, 0);
    size_t count;
    sink += a->iterate(m, &count);
    uint64_t t4 = tc_now_ns();
    check(count == n, a->name, "iterated", count, n);
    a->churn(m, ks, n, 0, L);
    uint64_t t5 = tc_now_ns();
    check(a->len(m) == n, a->name, "size after churn", a->len(m), n);
    a->destroy(m);

    t->insert += t1 - t0;
    t->hit += t2 - t1;
    t->miss += t3 - t2;
    t->iterate += t4 - t3;
    t->churn += t5 - t4;

    if (a->can_reserve) {
        m = a->create(ks->kind, n);
        t0 = tc_now_ns();
        a->insert(m, ks, 0, n);
        t->reserved += tc_now_ns() - t0;
        a->destroy(m);
    }
}

static void speed(const adapter *a, const keyset *ks, const suite_config *cfg, FILE *out) {
    phase_times t = {0};
    for (size_t r = 0; r < cfg->rounds; r++)
        speed_round(a, ks, cfg, &t);
    double ops = (double)cfg->n * (double)cfg->rounds, lops = (double)cfg->lookups * (double)cfg->rounds;
    emit(out, "insert", (double)t.insert / ops, "ns/op");
    if (a->can_reserve)
        emit(out, "insert_reserved", (double)t.reserved / ops, "ns/op");
    emit(out, "lookup_hit", (double)t.hit / lops, "ns/op");
    emit(out, "lookup_miss", (double)t.miss / lops, "ns/op");
    emit(out, "iterate", (double)t.iterate / ops, "ns/entry");
    emit(out, "churn", (double)t.churn / (2 * lops), "ns/op");
}

void suite_run_map(const adapter *a, const keyset *ks, const suite_config *cfg, FILE *out) {
    memory_experiment(a, ks, cfg, out);
    speed(a, ks, cfg, out);
    fprintf(out, "I checksum %llu\n", (unsigned long long)sink);
}

/* ---- the machine's floors ---- */

/* A uniformly random index below `bound`, from j (multiply-shift, no division). */
static inline size_t random_index(uint64_t j, size_t bound) {
    return (size_t)(((unsigned __int128)splitmix64(j) * bound) >> 64);
}

void suite_run_limit(const keyset *ks, const suite_config *cfg, FILE *out) {
    (void)ks;
    size_t n = cfg->n, L = cfg->lookups;
    size_t lines = n / 2 ? n / 2 : 1; /* n * 32 bytes in 64-byte lines */
    uint64_t *arr = xcalloc(lines * 8, sizeof *arr);
    memset(arr, 1, lines * 8 * sizeof *arr);
    uint64_t read = 0, write = 0, seq = 0, sum = 0;
    for (size_t r = 0; r < cfg->rounds; r++) {
        uint64_t t0 = tc_now_ns();
        for (size_t j = 0; j < L; j++)
            sum += arr[random_index(j + r * L, lines) * 8];
        uint64_t t1 = tc_now_ns();
        for (size_t j = 0; j < L; j++)
            arr[random_index((j + r * L) ^ 0x5555555555ULL, lines) * 8] += j;
        uint64_t t2 = tc_now_ns();
        for (size_t w = 0; w < 2 * n; w++)
            sum += arr[w]; /* n entries of 16 bytes */
        uint64_t t3 = tc_now_ns();
        read += t1 - t0;
        write += t2 - t1;
        seq += t3 - t2;
    }
    sink += sum;
    double lops = (double)L * (double)cfg->rounds, ops = (double)n * (double)cfg->rounds;
    double rd = (double)read / lops, wr = (double)write / lops;
    emit(out, "lookup_hit", rd, "ns/op");
    emit(out, "lookup_miss", rd, "ns/op");
    emit(out, "insert", wr, "ns/op");
    emit(out, "insert_reserved", wr, "ns/op");
    emit(out, "delete", wr, "ns/op");
    emit(out, "churn", wr, "ns/op");
    emit(out, "iterate", (double)seq / ops, "ns/entry");
    emit(out, "bytes_per_entry", 16, "B"); /* the payload: an 8-byte key (or key pointer) and a value */
    emit(out, "held_after_del99", 1, "x");
    emit(out, "rss_after_del99", (double)(n / 100) * 16 / MiB, "MiB");
    emit(out, "rss_full", (double)n * 16 / MiB, "MiB");
    free(arr);
}

void suite_run_noise(const suite_config *cfg, FILE *out) {
    size_t n = cfg->n;
    uint64_t *arr = xcalloc(n, sizeof *arr);
    uint32_t *lat = xcalloc(n, sizeof *lat);
    memset(arr, 1, n * sizeof *arr);
    memset(lat, 1, n * sizeof *lat);
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = ticks();
        arr[i] = i;
        uint64_t d = ticks() - t0;
        lat[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
    sink += arr[n / 2];
    emit_latencies(out, lat, n, cfg->series);
    free(lat);
    free(arr);
}

/* ---- small maps ---- */

void suite_run_small(const adapter *a, const keyset *ks, const suite_config *cfg, FILE *out) {
    const small_ops *ops = a->small;
    size_t count = cfg->n, entries = small_total(count, SMALL_MAX_ENTRIES);
    check(ks->count >= entries, a->name, "small-map keys", ks->count, entries);

    void *all = ops->many_new(count);
    size_t rss0 = tc_rss_bytes();
    uint64_t t0 = tc_now_ns();
    ops->many_fill(all, ks, count, SMALL_MAX_ENTRIES);
    uint64_t fill_ns = tc_now_ns() - t0;
    size_t rss = tc_rss_bytes();
    check(ops->many_len(all, count) == entries, a->name, "small-map entries", ops->many_len(all, count),
          entries);
    emit(out, "small_insert", (double)fill_ns / (double)entries, "ns/op");
    emit(out, "small_map_bytes", (double)ops->many_bytes(all, count) / (double)count, "B");
    emit(out, "small_map_rss", ((double)rss - (double)rss0) / (double)count, "B");
    ops->many_free(all, count);

    all = ops->many_new(count);
    ops->many_fill(all, ks, count, 0);
    check(ops->many_len(all, count) == 0, a->name, "empty-map entries", ops->many_len(all, count), 0);
    emit(out, "empty_map_bytes", (double)ops->many_bytes(all, count) / (double)count, "B");
    ops->many_free(all, count);
}
