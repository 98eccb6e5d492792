/*
 * core/hash.h — the built-in seeded hash, inlined into the lookup paths.
 *
 * The built-in hash is XXH3 (Debian's libxxhash-dev, used header-only so that it inlines): seeded and
 * fast for every length. 8-byte keys, the most common kind, get a dedicated multiply-fold mix instead.
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

/* The 8-byte-key fast path: the "mum" mix that wyhash and abseil use for integers — a 64x64->128-bit
 * multiply by an odd constant, folded by xor of the two halves — applied twice: with one round, keys
 * with many equal low bits (multiples of 4096) clustered into 3x the overflow buckets of random keys;
 * with two they match random keys. ~10 instructions where XXH3's 8-byte path takes ~25 (callgrind). */
static inline uint64_t mum_fold(uint64_t x, uint64_t constant) {
    unsigned __int128 product = (unsigned __int128)x * constant;
    return (uint64_t)product ^ (uint64_t)(product >> 64);
}

static inline uint64_t hash_u64_inline(uint64_t key, uint64_t seed) {
    return mum_fold(mum_fold(key ^ seed, 0x9e3779b97f4a7c15ULL), 0xd6e8feb86659fd93ULL);
}

#endif /* HMAP_CORE_HASH_H */
