/* SPDX-License-Identifier: MIT */
/*
 * base/mix.h — the bottom layer: 64-bit mixing that every other layer may use (no dependencies).
 *
 * mix64 is a bijection on 64-bit integers in which every output bit depends on every input bit
 * (xor-shift and odd-multiply steps, each invertible; the constants are MurmurHash3's public finalizer
 * constants). The core spreads user hashes with it; the profiler uses it to place pointers in its tables.
 */
#ifndef HMAP_BASE_MIX_H
#define HMAP_BASE_MIX_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

#endif /* HMAP_BASE_MIX_H */
