/* SPDX-License-Identifier: MIT */
/*
 * base/random.h — randomness for seeds and sampling (bottom layer).
 *
 * random_seed: 64 unpredictable bits from getrandom() (a clock-and-address mix before the kernel has
 * entropy), for per-map hash seeds. fast_random: a per-thread splitmix64 stream seeded from random_seed,
 * cheap enough for every iteration start and every profiler countdown.
 */
#ifndef HMAP_BASE_RANDOM_H
#define HMAP_BASE_RANDOM_H

#include <stdint.h>

/* Internal functions shared between files are global symbols of the library; the hmap__ prefix keeps them
 * from clashing with a program's own names when the library is linked statically. */
#define random_seed hmap__random_seed
#define fast_random hmap__fast_random

uint64_t random_seed(void);
uint64_t fast_random(void);

#endif /* HMAP_BASE_RANDOM_H */
