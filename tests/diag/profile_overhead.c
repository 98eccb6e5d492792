/* SPDX-License-Identifier: MIT */
/*
 * profile_overhead.c — what heap-profile sampling costs on inserts. Not a test (timings on a shared
 * machine are too noisy to assert); run it by hand:
 *
 *   build/tests/diag/profile_overhead [max_millions] [repetitions]      (defaults: 10, 3)
 *   build/tests/diag/profile_overhead free [calls]     only the free path (e.g. under callgrind)
 *   build/tests/diag/profile_overhead names [maps]     distinct named maps created and freed at rate 1
 *
 * For N = 1M, 2M, 5M, 10M (up to max_millions) it fills a fresh uint64 -> uint64 map with N inserts from
 * empty, at profile rate 0 (off), the default 512 KiB, and 1 (every allocation), the three interleaved in
 * each repetition so that machine drift hits them alike, and prints the fastest CPU time per insert of
 * each (thread CPU time, so that time spent descheduled on a shared machine does not count; the fastest
 * repetition is the least disturbed one) and the ratios to rate 0.
 *
 * On a loaded 2-core machine those ratios move by several percent from run to run, more than sampling
 * costs. So it also measures the parts directly, which noise cannot hide: the cost of one hook call
 * (alloc + free) when off and at the default rate, the cost of one sample (rate 1: stack capture, record,
 * live table), and how many allocations and bytes one fill makes (hmap_read_memstats). From those:
 * predicted overhead = (allocations x extra hook cost + bytes / rate x sample cost) / fill time.
 *
 * It also times profile_note_free of a block that was not sampled while a sampled one stays live (the
 * usual state at the default rate), from one thread and from two at once, and the time per map and RSS
 * growth of creating and freeing many maps with distinct names at rate 1 (first thousand against last).
 */
#include "diag/profile.h" /* profile_note_alloc / profile_note_free, timed on their own below */
#include "hmap.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NRATES 3
static const size_t rates[NRATES] = {0, 512 * 1024, 1};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds to insert n keys into a new map at the given profile rate. */
static double time_fill(size_t n, size_t rate) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap_set_profile_rate(rate);
    hmap *m = hmap_new(&type, 0);
    if (m == NULL)
        abort();
    double t0 = now_seconds();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = (i + 1) * 0x9E3779B97F4A7C15u;
        if (hmap_put(m, &k, &i) != 1)
            abort();
    }
    double t = now_seconds() - t0;
    hmap_free(m);
    return t;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ns per profile_note_alloc + profile_note_free pair of `size` bytes at `rate`. */
static double hook_cost(size_t rate, size_t size, size_t calls) {
    static char blocks[1024];
    hmap_set_profile_rate(rate);
    double t0 = now_seconds();
    for (size_t i = 0; i < calls; i++) {
        profile_note_alloc(&blocks[i & 1023], size, NULL);
        profile_note_free(&blocks[i & 1023], size);
    }
    return (now_seconds() - t0) / (double)calls * 1e9;
}

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t free_calls = 20000000;

static void *free_unsampled_loop(void *arg) {
    static char blocks[2][4096]; /* never allocated: what a free of an unsampled block looks like */
    char *mine = blocks[arg != NULL];
    for (size_t i = 0; i < free_calls; i++)
        profile_note_free(&mine[i & 4095], 160);
    return NULL;
}

/* ns (wall) per profile_note_free of a block that was not sampled, while one sampled block stays live (at
 * the default rate some sample is almost always live), with 1 or 2 threads freeing at once. */
static double free_cost(int nthreads) {
    static char anchor[1];
    hmap_set_profile_rate(1);
    profile_note_alloc(anchor, 4096, NULL); /* sampled, live until the end */
    hmap_set_profile_rate(512 * 1024);
    pthread_t t[2];
    double t0 = wall_seconds();
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, free_unsampled_loop, i ? anchor : NULL);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    double ns = (wall_seconds() - t0) / (double)free_calls * 1e9;
    profile_note_free(anchor, 4096);
    return ns;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * 4;
}

/* Creates and frees `n` maps with distinct names at rate 1, a few inserts each; prints the time per map of
 * the first and the last thousand and the growth of RSS. */
static void named_maps_churn(int n) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap_set_profile_rate(1);
    long rss0 = rss_kib();
    double first = 0, last = 0, t0 = wall_seconds();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "map-%d", i);
        hmap_options opts = {.name = name};
        hmap *m = hmap_new_opts(&type, 0, &opts);
        for (uint64_t k = 0; k < 20; k++)
            hmap_put(m, &k, &k);
        hmap_free(m);
        if (i == 999)
            first = wall_seconds() - t0;
        if (i == n - 1001)
            t0 = wall_seconds();
    }
    last = wall_seconds() - t0;
    printf("%d distinct named maps at rate 1: %.1f us per map (first 1000), %.1f us (last 1000); "
           "RSS +%ld KiB\n",
           n, first / 1000 * 1e6, last / 1000 * 1e6, rss_kib() - rss0);
    hmap_set_profile_rate(512 * 1024);
}

static void print_hook_costs(void) {
    double free1 = free_cost(1), free2 = free_cost(2);
    printf("profile_note_free of an unsampled block while a sample is live: %.2f ns (1 thread), %.2f ns per "
           "call with 2 threads freeing at once (wall)\n",
           free1, free2);

    const size_t size = 160; /* an overflow bucket of a uint64 -> uint64 map */
    double off = hook_cost(0, size, 20000000), dflt = hook_cost(512 * 1024, size, 20000000);
    double sample = hook_cost(1, size, 200000);
    hmap_memstats before, after;
    hmap_read_memstats(&before);
    hmap_set_profile_rate(0);
    double fill = time_fill(1000000, 0);
    hmap_read_memstats(&after);
    double mallocs = (double)(after.mallocs - before.mallocs);
    double bytes = (double)(after.total_bytes - before.total_bytes);
    double samples = bytes / (512.0 * 1024);
    double extra = mallocs * (dflt - off) + samples * sample; /* ns */
    printf("hook (alloc+free of %zu B): off %.2f ns, default rate %.2f ns, one sample (rate 1) %.0f ns\n",
           size, off, dflt, sample);
    printf(
        "a 1M-insert fill: %.0f allocations, %.1f MB allocated -> ~%.0f samples at 512 KiB, fill %.1f ms\n",
        mallocs, bytes / 1e6, samples, fill * 1e3);
    printf("predicted sampling overhead at the default rate: %.0f us = %.3f%% of the fill; hooks when off: "
           "%.0f us = %.3f%%\n",
           extra / 1e3, 100 * extra / (fill * 1e9), mallocs * off / 1e3, 100 * mallocs * off / (fill * 1e9));
    printf("predicted at rate 1: %.1f ms = %.1f%%\n\n", mallocs * sample / 1e6,
           100 * mallocs * sample / (fill * 1e9));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "free") == 0) { /* only the free path, e.g. under callgrind */
        free_calls = argc > 2 ? (size_t)atol(argv[2]) : free_calls;
        printf("profile_note_free, unsampled block, a sample live: %.2f ns\n", free_cost(1));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "names") == 0) {
        named_maps_churn(argc > 2 ? atoi(argv[2]) : 20000);
        return 0;
    }
    size_t max_millions = argc > 1 ? (size_t)atol(argv[1]) : 10;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (reps < 1 || reps > 64)
        reps = 3;
    static const size_t sizes[] = {1, 2, 5, 10, 20};
    print_hook_costs();
    printf("%-6s %14s %14s %14s %12s %12s\n", "N", "off ns/insert", "512KiB ns/ins", "rate1 ns/ins",
           "512KiB/off", "rate1/off");
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes && sizes[s] <= max_millions; s++) {
        size_t n = sizes[s] * 1000000;
        double t[NRATES][64];
        for (int r = 0; r < reps; r++)
            for (int j = 0; j < NRATES; j++) { /* a different rate goes first in each repetition */
                int k = (j + r) % NRATES;
                t[k][r] = time_fill(n, rates[k]);
            }
        double best[NRATES];
        for (int k = 0; k < NRATES; k++) {
            qsort(t[k], (size_t)reps, sizeof(double), compare_doubles);
            best[k] = t[k][0] / (double)n * 1e9; /* the fastest */
        }
        printf("%-5zuM %14.1f %14.1f %14.1f %12.3f %12.3f\n", sizes[s], best[0], best[1], best[2],
               best[1] / best[0], best[2] / best[0]);
    }
    hmap_set_profile_rate(512 * 1024);
    return 0;
}
