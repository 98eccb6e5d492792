/* SPDX-License-Identifier: MIT */
/*
 * core/sync_support.h — two lookups for the concurrent map (src/sync) that the hashed entry points
 * (hashed.h) cannot give, implemented in sync_support.c against the core's structures.
 *
 * map_find_entry: under the writer's lock, the stored key's address besides the value's. A store that
 * replaces a value drops the key passed to it, unless that key is bitwise the stored one (the same
 * object, e.g. a key handed out by a range): telling the two apart needs the stored key.
 *
 * map_u64_seed: whether the map hashes its keys with the built-in 8-byte hash, and with which seed, so that
 * the caller computes map_key_hash inline (map_u64_hash, the same function): the hash of every lock-free
 * read is on its critical path.
 *
 * map_peek_hashed: a lookup made WITHOUT the lock while one writer may be changing the map, for readers
 * that validate with a sequence counter (a seqlock). The contract with its caller:
 *  - every writer of the map makes *seq odd before its first store to the map and even again after its
 *    last one (a release store), and `start` is an even value of *seq the caller loaded (acquire);
 *  - the caller is inside an epoch read section and the map's allocator defers every free until no such
 *    section that began before the free remains (sync/reclaim.c), so nothing read here is unmapped;
 *  - the map's keys compare bytewise (type.equal == NULL): stored keys are compared here with plain
 *    loads, which may see a key half overwritten, so no user function is ever given one.
 * The function reads every word that a writer may change exactly once (volatile loads), and before it
 * follows a pointer it read (the arrays, an overflow link) it checks that *seq is still `start`: a pointer
 * is only followed when a finished write published it, so a torn state can give a wrong answer, never a
 * wild read or an endless chain. The answer (HIT with the value copied to val_out, or MISS) is only true
 * if *seq is still `start` afterwards, which the caller checks; TORN means a change was seen midway.
 */
#ifndef HMAP_CORE_SYNC_SUPPORT_H
#define HMAP_CORE_SYNC_SUPPORT_H

#include "hash.h"
#include "hmap.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define map_find_entry hmap__map_find_entry
#define map_peek_hashed hmap__map_peek_hashed
#define map_u64_seed hmap__map_u64_seed
#define map_peek_8_8 hmap__map_peek_8_8

/* The stored key and value slots of key (hash = map_key_hash), or false. For a set *val_slot is the key
 * slot. Under the writer's lock: the pointers are valid until the next write. */
bool map_find_entry(const hmap *m, const void *key, uint64_t hash, void **key_slot, void **val_slot);

/* true, with *seed, when map_key_hash(m, key) == map_u64_hash(the key's 8 bytes, *seed) for every key. */
bool map_u64_seed(const hmap *m, uint64_t *seed);
static inline uint64_t map_u64_hash(uint64_t key, uint64_t seed) { return hash_u64_inline(key, seed); }

typedef enum { MAP_PEEK_MISS, MAP_PEEK_HIT, MAP_PEEK_TORN } map_peek_result;

/* See above. val_out (val_size bytes; may be NULL) is written only on HIT. */
map_peek_result map_peek_hashed(const hmap *m, const void *key, uint64_t hash, void *val_out,
                                const _Atomic uint64_t *seq, uint64_t start);
/* The same for a map of 8-byte keys and 8-byte values only (the common case, compiled for it). */
map_peek_result map_peek_8_8(const hmap *m, const void *key, uint64_t hash, void *val_out,
                             const _Atomic uint64_t *seq, uint64_t start);

#endif /* HMAP_CORE_SYNC_SUPPORT_H */
