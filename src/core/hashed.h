/* SPDX-License-Identifier: MIT */
/*
 * core/hashed.h — the map's entry points for layers built on top of it (a sharded concurrent map, say)
 * that hash each key once: they compute map_key_hash() themselves (to pick a shard from bits the map does
 * not use for the bucket index or tophash), then pass the hash in. The map stays opaque: these take the
 * same hmap * as the public API, and behave as the public calls do.
 *
 * The hash must be map_key_hash(m, key) for this map (its seed): a different value finds nothing or
 * stores the key where lookups will not find it.
 */
#ifndef HMAP_CORE_HASHED_H
#define HMAP_CORE_HASHED_H

#include "hmap.h"

#include <stdbool.h>
#include <stdint.h>

#define map_key_hash hmap__map_key_hash
#define map_new_arguments hmap__map_new_arguments
#define map_get_hashed hmap__map_get_hashed
#define map_assign_hashed hmap__map_assign_hashed
#define map_remove_hashed hmap__map_remove_hashed

/* Checks the arguments of a map's creation as hmap_new_opts does: the allocator to use, or NULL with errno
 * EINVAL (bad type, callbacks given twice, non-zero reserved options, an allocator without functions). */
const hmap_allocator *map_new_arguments(const hmap_type *type, const hmap_options *opts);

/* The map's 64-bit hash of key (bucket index from its high bits, tophash from its low byte). */
uint64_t map_key_hash(const hmap *m, const void *key);
/* hmap_get with the hash given. */
void *map_get_hashed(const hmap *m, const void *key, uint64_t hash);
/* The value slot for key (zeroed when new), NULL on ENOMEM: hmap_assign without the key drop (the caller
 * decides what happens to the key it passed when *inserted is false). */
void *map_assign_hashed(hmap *m, const void *key, uint64_t hash, bool *inserted);
/* hmap_take with the hash given (NULL outs drop that part). */
bool map_remove_hashed(hmap *m, const void *key, uint64_t hash, void *key_out, void *val_out);

#endif /* HMAP_CORE_HASHED_H */
