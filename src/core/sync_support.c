/* SPDX-License-Identifier: MIT */
/*
 * core/sync_support.c — the concurrent map's lookups, its view's publication and full walk, and its clear
 * without drops (contracts in sync_support.h).
 *
 * map_find_entry is map.c's lookup returning the key slot too; it runs under the writer's lock, so it
 * uses the core's helpers as they are.
 *
 * map_peek_hashed runs while a writer may be changing the map. What a writer can do under it, and why
 * each is harmless here:
 *  - m->cur / m->old change (a resize starts or ends; the map empties and cur becomes NULL): both are read
 *    once, then *seq is checked before either is followed, so they are a pair from one finished state;
 *    their tables' B, tophash, overflow and slots fields never change after creation;
 *  - a table is freed: the frees are deferred by the sync layer's allocator until this read section ends;
 *    (and as its arrays come from that allocator, none is mapped: no part of one is given back early, so
 *    an old array's tophash words say which buckets are evacuated, as table_bucket_evacuated reads them);
 *  - tophash words, keys and values are overwritten: read once each (volatile), possibly torn; a torn
 *    key or value only makes a wrong answer, which the caller's final check of *seq discards;
 *  - an overflow bucket is linked: the link is read once and *seq checked before it is followed, so a
 *    bucket whose header the writer has not finished is never read, and a chain never loops.
 * map_view_find_further_8_8 (and the first bucket's walk, inline in sync_support.h) is the same walk from
 * the view, whose fields a writer refreshes under the same counter: they are read once, and *seq is
 * checked before they are followed, so the tophash, slots and chain heads used together come from one
 * finished write.
 *
 * map_clear_undropped empties the map with hmap_clear while the type's drop functions are set aside (the
 * map's own copy of the type, restored after): the entries' drops are the caller's, already queued.
 *
 * The volatile loads keep the compiler from reading a changing word twice (and getting two values);
 * the function is left out of ThreadSanitizer's instrumentation, because its reads race with writers by
 * design and are validated instead (AddressSanitizer still checks every one of them).
 */
#include "sync_support.h"

#include "core.h"

#define PEEK(lvalue) (*(const volatile __typeof__(lvalue) *)&(lvalue))

/* On every function whose loads race with writers by design (inlined or not: the attribute of the
 * function the code was written in is what counts). */
#define RACY_READS __attribute__((no_sanitize("thread")))

bool map_u64_seed(const hmap *m, uint64_t *seed) {
    *seed = m->seed;
    return m->kind == KEYS_U64 &&
           map_class_of(m)->fixed_seed; /* a seed that never changes (see map_became_empty) */
}

/* ---------------------------------------------------------------- the lock-free lookup */

static inline bool unchanged(const _Atomic uint64_t *seq, uint64_t start) {
    atomic_thread_fence(memory_order_acquire); /* the reads above are done before the counter is read */
    return atomic_load_explicit(seq, memory_order_relaxed) == start;
}

static inline bool word_aligned(const void *a, const void *b, size_t n) {
    return (((uintptr_t)a | (uintptr_t)b | n) & 7) == 0;
}

/* Stored key == key, each stored byte read once. */
RACY_READS static inline bool racy_equal(const unsigned char *slot, const unsigned char *key, size_t n) {
    if (word_aligned(slot, key, n)) {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t k;
            __builtin_memcpy(&k, key + i, 8);
            if (*(const volatile uint64_t *)(slot + i) != k)
                return false;
        }
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (((const volatile unsigned char *)slot)[i] != key[i])
            return false;
    return true;
}

RACY_READS static inline void racy_copy(unsigned char *dst, const unsigned char *src, size_t n) {
    if (word_aligned(dst, src, n)) {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t w = *(const volatile uint64_t *)(src + i);
            __builtin_memcpy(dst + i, &w, 8);
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = ((const volatile unsigned char *)src)[i];
}

/* The walk, written once; ks and vs are constants in the 8-byte instance (keys and values of 8 bytes
 * sit at 8-byte aligned offsets in every layout, so one load reads each). */
RACY_READS static inline __attribute__((always_inline)) map_peek_result
peek_sized(const hmap *m, const void *key, uint64_t hash, void *val_out, const _Atomic uint64_t *seq,
           uint64_t start, size_t ks, size_t vs) {
    table *cur = PEEK(m->cur), *old = PEEK(m->old);
    if (!unchanged(seq, start))
        return MAP_PEEK_TORN;
    if (!cur)
        return MAP_PEEK_MISS; /* the map gave its arrays back */
    const table *t = cur;
    size_t i = bucket_index(hash, cur->B);
    if (old) {
        size_t oi = bucket_index(hash, old->B);
        uint8_t first = (uint8_t)PEEK(old->tophash[oi]);
        if (first < EVACUATED_X || first > EVACUATED_EMPTY) { /* table_bucket_evacuated, read once */
            t = old;
            i = oi;
        }
    }
    bucket_ref b = table_bucket(m, t, i);
    __builtin_prefetch(b.slots); /* as map.c's lookup: the key's line loads while the tophash word does */
    uint8_t top = tophash_of(hash);
    uint64_t key8 = 0;
    if (ks == 8)
        __builtin_memcpy(&key8, key, 8);
    for (;;) {
        uint64_t w = PEEK(*b.tophash);
        unsigned s;
        for_each_slot(s, match_byte(w, top)) {
            if ((uint8_t)(w >> (8 * s)) != top)
                continue;
            const unsigned char *k = slot_key(m, &b, s);
            if (ks == 8 ? *(const volatile uint64_t *)k != key8 : !racy_equal(k, key, ks))
                continue;
            if (val_out && vs == 8) {
                uint64_t v = *(const volatile uint64_t *)slot_val(m, &b, s);
                __builtin_memcpy(val_out, &v, 8);
            } else if (val_out && vs) {
                racy_copy(val_out, slot_val(m, &b, s), vs);
            }
            return MAP_PEEK_HIT;
        }
        if (has_empty_rest(w))
            return MAP_PEEK_MISS;
        overflow_bucket *o = PEEK(*b.next);
        if (!o)
            return MAP_PEEK_MISS;
        if (!unchanged(seq, start))
            return MAP_PEEK_TORN;
        b.tophash = &o->tophash;
        b.slots = o->slots;
        b.next = &o->next;
    }
}

/* Two instances, each its own function, so that the 8-byte one keeps few registers live. */
RACY_READS map_peek_result map_peek_8_8(const hmap *m, const void *key, uint64_t hash, void *val_out,
                                        const _Atomic uint64_t *seq, uint64_t start) {
    return peek_sized(m, key, hash, val_out, seq, start, 8, 8);
}

RACY_READS map_peek_result map_peek_hashed(const hmap *m, const void *key, uint64_t hash, void *val_out,
                                           const _Atomic uint64_t *seq, uint64_t start) {
    return peek_sized(m, key, hash, val_out, seq, start, map_type(m)->key_size, m->val_size);
}

/* ---------------------------------------------------------------- the view */

_Static_assert(MAP_VIEW_BUCKET == SLOTS_PER_BUCKET * MAP_VIEW_PAIR, "the view's bucket is 8 pairs");

/* The layout the walk hard-codes: 8-byte keys with 8-byte values, stored as pairs (set_layout). */
bool map_view_supported(const hmap *m) {
    return map_type(m)->key_size == 8 && m->val_size == 8 && m->hash_off == 0 &&
           m->key_stride == MAP_VIEW_PAIR && m->val_stride == MAP_VIEW_PAIR && m->vals_offset == 8 &&
           m->bucket_bytes == MAP_VIEW_BUCKET;
}

size_t map_view_publish(const hmap *m, map_view *v) {
    const table *t = m->cur;
    if (t && !m->old) {
        v->tophash = t->tophash;
        v->slots = t->slots;
        v->chains = t->overflow;
        v->shift = 63 - t->B; /* bucket_index: (hash >> 1) >> (63 - B) */
    } else {
        v->tophash = NULL; /* a resize runs, or the map has no array */
        v->slots = v->chains = NULL;
        v->shift = 63;
    }
    return m->count;
}

RACY_READS map_peek_result map_view_find_further_8_8(const map_view *v, uint64_t key, uint64_t hash,
                                                     uint64_t *val_out, const _Atomic uint64_t *seq,
                                                     uint64_t start) {
    const uint64_t *tophash = PEEK(v->tophash);
    const unsigned char *slots = PEEK(v->slots);
    overflow_bucket *const *chains = PEEK(v->chains);
    uint64_t shift = PEEK(v->shift);
    if (!tophash || !unchanged(seq, start))
        return MAP_PEEK_TORN;
    size_t i = (size_t)((hash >> 1) >> shift);
    uint64_t w = PEEK(tophash[i]);
    slots += i * MAP_VIEW_BUCKET;
    overflow_bucket *const *next = &chains[i];
    uint8_t top = tophash_of(hash);
    for (;;) {
        unsigned s;
        for_each_slot(s, match_byte(w, top)) {
            const unsigned char *pair = slots + (size_t)s * MAP_VIEW_PAIR;
            if ((uint8_t)(w >> (8 * s)) == top && *(const volatile uint64_t *)pair == key) {
                *val_out = *(const volatile uint64_t *)(pair + 8);
                return MAP_PEEK_HIT;
            }
        }
        if (has_empty_rest(w))
            return MAP_PEEK_MISS;
        overflow_bucket *o = PEEK(*next);
        if (!o)
            return MAP_PEEK_MISS;
        if (!unchanged(seq, start))
            return MAP_PEEK_TORN; /* the link may be one a writer has not finished */
        w = PEEK(o->tophash);
        slots = o->slots;
        next = &o->next;
    }
}
