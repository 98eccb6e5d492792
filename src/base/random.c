/* SPDX-License-Identifier: MIT */
/*
 * base/random.c — seeds from the kernel, and a cheap per-thread stream (see random.h).
 */
#include "random.h"

#include "mix.h"

#include <stdatomic.h>
#include <sys/random.h>
#include <time.h>

uint64_t random_seed(void) {
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    /* No entropy yet (very early boot): mix the clock and an address, which is still per-process. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    static _Atomic uint64_t counter;
    uint64_t c = atomic_fetch_add(&counter, 1);
    return mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&seed ^ c);
}

/* splitmix64: a Weyl sequence passed through a bijective mix. */
uint64_t fast_random(void) {
    static _Thread_local uint64_t state;
    if (state == 0)
        state = random_seed() | 1;
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
