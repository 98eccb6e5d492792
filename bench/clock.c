/* SPDX-License-Identifier: MIT */
/*
 * clock.c — the clocks of hmap-bench.
 *
 * Throughput figures use CLOCK_MONOTONIC (tools/common's tc_now_ns) around whole loops. Per-operation latency
 * needs a clock that costs little next to one insert: on x86 that is the TSC (rdtsc between two lfences, ~10
 * ns), which this machine declares constant and nonstop (constant_tsc, nonstop_tsc in /proc/cpuinfo). Its
 * rate is calibrated against CLOCK_MONOTONIC over 100 ms at start. Elsewhere ticks() falls back to
 * CLOCK_MONOTONIC itself (1 tick = 1 ns). Either way the cost of one timed empty region is measured and
 * reported beside the latencies, not subtracted from them.
 */
#include "bench.h"

#include <stdlib.h>

static double g_ticks_per_ns = 1.0;
static double g_timer_cost_ns;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double measure_timer_cost(void) {
    enum { N = 100001 };
    static uint64_t d[N];
    for (size_t i = 0; i < N; i++) {
        uint64_t t0 = ticks();
        uint64_t t1 = ticks();
        d[i] = t1 - t0;
    }
    qsort(d, N, sizeof d[0], cmp_u64);
    return (double)d[N / 2] / g_ticks_per_ns;
}

void clock_init(void) {
#if defined(__x86_64__) || defined(__i386__)
    uint64_t n0 = tc_now_ns(), t0 = ticks(), n1, t1;
    do {
        n1 = tc_now_ns();
        t1 = ticks();
    } while (n1 - n0 < 100000000u);
    g_ticks_per_ns = (double)(t1 - t0) / (double)(n1 - n0);
#endif
    g_timer_cost_ns = measure_timer_cost();
}

double ticks_per_ns(void) { return g_ticks_per_ns; }
double timer_cost_ns(void) { return g_timer_cost_ns; }

const char *clock_name(void) {
#if defined(__x86_64__) || defined(__i386__)
    return "TSC (lfence; rdtsc; lfence), calibrated against CLOCK_MONOTONIC";
#else
    return "CLOCK_MONOTONIC";
#endif
}
