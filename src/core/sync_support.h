/* SPDX-License-Identifier: MIT */
/*
 * core/sync_support.h — what the concurrent map (src/sync) needs of the core beyond the hashed entry
 * points (hashed.h): lookups, a view of the current array for lock-free readers, a clear that drops
 * nothing; implemented in sync_support.c against the core's structures (the view's walk inline here),
 * except map_find_entry and map_clear_undropped, which are map.c's own lookup and clear.
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
 *
 * map_view: the same lookup with two pointer hops less. A lock-free read's time is its chain of dependent
 * loads (the shard, its hmap, the hmap's current array, that array's fields, the tophash word, the key);
 * the caller keeps a map_view beside its sequence counter, and every writer refreshes it
 * (map_view_publish) before making the counter even again, so a reader goes from the counter's line
 * straight to the tophash word. The view holds the current array's fields when no resize is running and
 * the slots are 16-byte (8-byte key, 8-byte value) pairs; otherwise its tophash is NULL and readers use
 * map_peek_8_8 / map_peek_hashed. map_view_find_8_8 follows the same contract as map_peek_hashed (seq,
 * start, epoch section, bytewise keys): it reads the view's fields once, checks *seq before following
 * them, and the caller checks *seq again after the answer. map_view_prefetch: a writer's hint, before
 * it takes its lock, of the lines its core operation will read first.
 *
 * map_clear_undropped: hmap_clear without calling the type's drop functions, for a caller that has
 * taken the entries' ownership already (the concurrent map queues their drops until readers are gone).
 */
#ifndef HMAP_CORE_SYNC_SUPPORT_H
#define HMAP_CORE_SYNC_SUPPORT_H

#include "encoding.h"
#include "hash.h"
#include "hmap.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define map_find_entry hmap__map_find_entry
#define map_peek_hashed hmap__map_peek_hashed
#define map_u64_seed hmap__map_u64_seed
#define map_peek_8_8 hmap__map_peek_8_8
#define map_view_publish hmap__map_view_publish
#define map_view_supported hmap__map_view_supported
#define map_view_find_8_8 hmap__map_view_find_8_8
#define map_view_find_further_8_8 hmap__map_view_find_further_8_8
#define map_clear_undropped hmap__map_clear_undropped

/* The stored key and value slots of key (hash = map_key_hash), or false. For a set *val_slot is the key
 * slot. Under the writer's lock: the pointers are valid until the next write. */
bool map_find_entry(const hmap *m, const void *key, uint64_t hash, void **key_slot, void **val_slot);

/* true, with *seed, when map_key_hash(m, key) == map_u64_hash(the key's 8 bytes, *seed) for every key. */
bool map_u64_seed(const hmap *m, uint64_t *seed);
static inline uint64_t map_u64_hash(uint64_t key, uint64_t seed) { return hash_u64_inline(key, seed); }

/* FURTHER only from map_view_find_8_8: settled by map_view_find_further_8_8. */
typedef enum { MAP_PEEK_MISS, MAP_PEEK_HIT, MAP_PEEK_TORN, MAP_PEEK_FURTHER } map_peek_result;

/* See above. val_out (val_size bytes; may be NULL) is written only on HIT. */
map_peek_result map_peek_hashed(const hmap *m, const void *key, uint64_t hash, void *val_out,
                                const _Atomic uint64_t *seq, uint64_t start);
/* The same for a map of 8-byte keys and 8-byte values only (the common case, compiled for it). */
map_peek_result map_peek_8_8(const hmap *m, const void *key, uint64_t hash, void *val_out,
                             const _Atomic uint64_t *seq, uint64_t start);

typedef struct map_view {
    const void *tophash; /* the current array's tophash words; NULL: no view (read with map_peek_*) */
    const void *slots;   /* its buckets */
    const void *chains;  /* its overflow chain heads */
    uint64_t shift;      /* bucket index = (hash >> 1) >> shift */
} map_view;

/* Does m's layout allow a view (8-byte keys and values stored as pairs)? Fixed for the map's life. */
bool map_view_supported(const hmap *m);
/* For such a map: fills *v for m as it is now (plain stores: under the writer's lock, while *seq is odd)
 * and returns m's count. */
size_t map_view_publish(const hmap *m, map_view *v);

/* The walk is inline in the caller (a call would add its register saves to every read): it reads buckets
 * with the core's own encoding (encoding.h); sync_support.c checks the layout it assumes. */
enum {
    MAP_VIEW_PAIR = 16,                      /* an 8-byte key and its 8-byte value */
    MAP_VIEW_BUCKET = SLOTS_PER_BUCKET * 16, /* 8 slots */
};

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MAP_VIEW_TSAN 1
#endif
#endif
#ifdef MAP_VIEW_TSAN /* the walk must stay a function of its own there: see RACY_READS in sync_support.c */
#define MAP_VIEW_WALK static inline __attribute__((no_sanitize("thread"), noinline))
#else
#define MAP_VIEW_WALK static inline __attribute__((always_inline))
#endif
#define MAP_VIEW_PEEK(lvalue) (*(const volatile __typeof__(lvalue) *)&(lvalue))

/* map_peek_8_8 through the view (see above), for the key's first bucket only, so that it stays short:
 * HIT (*val_out set) or MISS; TORN when a writer was busy or there is no view; FURTHER when the answer
 * may lie further (another slot whose tophash matches too, or an overflow bucket): then the caller, still
 * inside its section and with the same start, asks map_view_find_further_8_8. */
MAP_VIEW_WALK map_peek_result map_view_find_8_8(const map_view *v, uint64_t key, uint64_t hash,
                                                uint64_t *val_out, const _Atomic uint64_t *seq,
                                                uint64_t start) {
    const uint64_t *tophash = MAP_VIEW_PEEK(v->tophash);
    const unsigned char *slots = MAP_VIEW_PEEK(v->slots);
    uint64_t shift = MAP_VIEW_PEEK(v->shift);
    atomic_thread_fence(memory_order_acquire); /* the fields are read before the counter is */
    if (!tophash || atomic_load_explicit(seq, memory_order_relaxed) != start)
        return MAP_PEEK_TORN; /* no view, or it may be torn: its pointers are not followed */
    size_t i = (size_t)((hash >> 1) >> shift);
    slots += i * MAP_VIEW_BUCKET;
    __builtin_prefetch(slots); /* the pairs' line loads while the tophash word does */
    uint64_t w = MAP_VIEW_PEEK(tophash[i]);
    uint64_t hits = match_byte(w, tophash_of(hash));
    if (hits) {
        /* the lowest byte reported is a real match (false positives lie only above one); its bit is 8s + 7
         * for slot s, so the pair's offset 16s is twice that less 14: one address computation */
        const unsigned char *pair = slots + 2 * (size_t)__builtin_ctzll(hits) - 14;
        if (*(const volatile uint64_t *)pair == key) {
            *val_out = *(const volatile uint64_t *)(pair + 8);
            return MAP_PEEK_HIT;
        }
        if (hits & (hits - 1))
            return MAP_PEEK_FURTHER; /* another candidate in this bucket */
    }
    return has_empty_rest(w) ? MAP_PEEK_MISS : MAP_PEEK_FURTHER;
}

/* Starts loading the lines a write of the key will touch first (its tophash word and its first bucket's
 * pairs) before the writer takes its lock, whose locked instruction would otherwise hold the loads back:
 * a hint, read without the counter (a torn view prefetches a wrong line, and a prefetch never faults). */
MAP_VIEW_WALK void map_view_prefetch(const map_view *v, uint64_t hash) {
    const uint64_t *tophash = MAP_VIEW_PEEK(v->tophash);
    const unsigned char *slots = MAP_VIEW_PEEK(v->slots);
    uint64_t shift = MAP_VIEW_PEEK(v->shift) & 63;
    if (!tophash)
        return;
    uintptr_t i = (uintptr_t)((hash >> 1) >> shift);
    __builtin_prefetch((const void *)((uintptr_t)tophash + i * 8), 1);
    __builtin_prefetch((const void *)((uintptr_t)slots + i * MAP_VIEW_BUCKET), 1);
}

/* The whole walk through the view, the key's chain to its end (not inline: about one read in ten
 * needs it, where a bucket is full or holds tombstones). HIT, MISS or TORN, as map_peek_8_8. */
map_peek_result map_view_find_further_8_8(const map_view *v, uint64_t key, uint64_t hash, uint64_t *val_out,
                                          const _Atomic uint64_t *seq, uint64_t start);

/* Empties m as hmap_clear does (arrays given back), dropping nothing: the caller owns the entries. */
void map_clear_undropped(hmap *m);

#endif /* HMAP_CORE_SYNC_SUPPORT_H */
