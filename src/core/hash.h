/*
 * core/hash.h — the built-in seeded hash, inlined into the lookup paths.
 *
 * The built-in hash is XXH3 (Debian's libxxhash-dev, used header-only so that it inlines): seeded and
 * fast for every length. 8-byte keys, the most common kind, get a dedicated bijective mix instead.
 * User-supplied hashes go through mix64() (base/mix.h), a bijective finalizer: the map takes bucket indexes from the
 * hash's high bits and tophash from its low byte, so a user hash that only varies in its low bits (the
 * identity on small integers, say) must be spread first. Being a bijection, the mix changes no equalities
 * between hashes.
 */
#ifndef HMAP_CORE_HASH_H
#define HMAP_CORE_HASH_H

#include "../base/mix.h"

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t hash_bytes_inline(const void *data, size_t n, uint64_t seed) {
    return XXH3_64bits_withSeed(data, n, seed);
}

/* The 8-byte-key fast path: a bijection of the key for each seed, so that two different keys never share a
 * 64-bit hash (iteration orders by the hash and would otherwise need a tie-break for them). The key is
 * xored with the seed and passed through xor-shift / odd-multiply rounds, each invertible (the constants
 * are splitmix64's public finalizer constants); every output bit depends on every input bit, so keys
 * that differ only in high bits (multiples of 4096, say) still spread over buckets (high bits) and
 * tophash (low byte). ~10 instructions. */
static inline uint64_t hash_u64_inline(uint64_t key, uint64_t seed) {
    uint64_t x = key ^ seed;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

#endif /* HMAP_CORE_HASH_H */
