/*
 * hash.h — the built-in seeded hash, inlined into the lookup paths.
 *
 * The built-in hash is XXH3 (Debian's libxxhash-dev, used header-only so that it inlines): seeded, fast
 * for every length, and with a dedicated 4–8 byte path that the 8-byte-key fast path gets for free when
 * the length is a compile-time constant. User-supplied hashes go through hash_mix(), a bijective
 * finalizer: the map takes bucket indexes from the hash's high bits and tophash from its low byte, so a
 * user hash that only varies in its low bits (the identity on small integers, say) must be spread first.
 * Being a bijection, the mix changes no equalities between hashes.
 */
#ifndef HMAP_HASH_H
#define HMAP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t hash_bytes_inline(const void *data, size_t n, uint64_t seed) {
    return XXH3_64bits_withSeed(data, n, seed);
}

static inline uint64_t hash_u64_inline(uint64_t key, uint64_t seed) {
    return XXH3_64bits_withSeed(&key, sizeof key, seed);
}

/* The 64-bit finalizer of MurmurHash3 (public constants): every output bit depends on every input bit. */
static inline uint64_t hash_mix_inline(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

#endif /* HMAP_HASH_H */
