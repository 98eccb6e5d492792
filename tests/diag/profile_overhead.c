/*
 * profile_overhead.c — what heap-profile sampling costs on inserts. Not a test (timings on a shared
 * machine are too noisy to assert); run it by hand:
 *
 *   build/tests/diag/profile_overhead [max_millions] [repetitions]      (defaults: 10, 3)
 *
 * For N = 1M, 2M, 5M, 10M (up to max_millions) it fills a fresh uint64 -> uint64 map with N inserts from
 * empty, at profile rate 0 (off), the default 512 KiB, and 1 (every allocation), the three interleaved in
 * each repetition so that machine drift hits them alike, and prints the median ns per insert of each and
 * the ratios to rate 0.
 */
#include "hmap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NRATES 3
static const size_t rates[NRATES] = {0, 512 * 1024, 1};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds to insert n keys into a new map at the given profile rate. */
static double time_fill(size_t n, size_t rate)
{
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

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t max_millions = argc > 1 ? (size_t)atol(argv[1]) : 10;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (reps < 1 || reps > 64)
        reps = 3;
    static const size_t sizes[] = {1, 2, 5, 10, 20};
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
        double med[NRATES];
        for (int k = 0; k < NRATES; k++) {
            qsort(t[k], (size_t)reps, sizeof(double), compare_doubles);
            med[k] = t[k][reps / 2] / (double)n * 1e9;
        }
        printf("%-6zuM %14.1f %14.1f %14.1f %12.3f %12.3f\n", sizes[s], med[0], med[1], med[2],
               med[1] / med[0], med[2] / med[0]);
    }
    hmap_set_profile_rate(512 * 1024);
    return 0;
}
