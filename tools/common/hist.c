/* SPDX-License-Identifier: MIT */
/*
 * hist.c — a latency histogram that never allocates, so that measuring does not disturb the RSS it sits
 * beside.
 *
 * Values 0..3 have a bin each; above, each power of two is split into 4 bins by the two bits after the top
 * one, so a bin is at most 25% wide (±12% around its middle) from 4 ns to 2^63 ns in 256 bins.
 */
#include "tools_common.h"

static unsigned bin_of(uint64_t v) {
    if (v < 4)
        return (unsigned)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v);
    return top * 4 + (unsigned)((v >> (top - 2)) & 3);
}

uint64_t tc_hist_bin_low(unsigned b) {
    if (b < 4)
        return b;
    unsigned top = b / 4, frac = b % 4;
    return (uint64_t)(4 + frac) << (top - 2);
}

uint64_t tc_hist_bin_high(unsigned b) {
    if (b < 4)
        return b;
    unsigned top = b / 4, frac = b % 4;
    return ((uint64_t)(4 + frac + 1) << (top - 2)) - 1;
}

void tc_hist_add(tc_hist *h, uint64_t v) {
    h->bins[bin_of(v)]++;
    h->total++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

uint64_t tc_hist_quantile(const tc_hist *h, double q) {
    uint64_t rank = (uint64_t)(q * (double)h->total), seen = 0;
    for (unsigned b = 0; b < TC_HIST_BINS; b++) {
        seen += h->bins[b];
        if (seen > rank)
            return tc_hist_bin_high(b) < h->max ? tc_hist_bin_high(b) : h->max;
    }
    return h->max;
}

void tc_hist_merge(tc_hist *into, const tc_hist *from) {
    for (unsigned b = 0; b < TC_HIST_BINS; b++)
        into->bins[b] += from->bins[b];
    into->total += from->total;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}
