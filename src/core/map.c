/* SPDX-License-Identifier: MIT */
/*
 * map.c — the core of hmap: lookup, insert, delete, creation; and the design of the whole, below.
 *
 * Design
 * ------
 * This is Go's runtime map (runtime/map.go, Go 1.19) in C, changed where C or our goals require.
 *
 * A map is an array of 2^B buckets. Each bucket holds 8 entries; a full bucket links to overflow buckets
 * (a chain). Each slot has a one-byte "tophash": the low byte of the key's hash, or one of the small
 * reserved states below MIN_TOPHASH (empty, tombstone, evacuated). The bucket index is taken from the
 * hash's *high* bits (Go takes the low ones): then bucket i of a 2^B array covers the contiguous hash
 * interval [i << (64-B), (i+1) << (64-B)), which is what lets iteration survive shrinking (see iter.c),
 * and growth still splits bucket i into 2i and 2i+1, shrinking merges them back.
 *
 *   table (one allocation; mapped from the OS when large)
 *   +----------------------+----------------------+-------------------------------+-------------------+
 *   | tophash[nbuckets]    | overflow[nbuckets]   | slots[nbuckets]               | spare overflow    |
 *   | one uint64 a bucket  | chain heads          | 8 (key, value) pairs          | buckets (1/16)    |
 *   +----------------------+----------------------+-------------------------------+-------------------+
 *
 * Why this layout. The 8 tophash bytes of all buckets sit in one dense array instead of inside each
 * bucket: a lookup reads that word (one load; the 8 bytes are matched at once with SWAR arithmetic) while
 * it prefetches the bucket's keys in parallel, so a hit costs about one memory latency, and a miss — which
 * usually needs only the tophash word — touches an array 17x smaller than the buckets, which stays in
 * cache far longer (measured when the layout was chosen: ~9 ns vs ~30 ns per miss at 1M entries). Within a
 * bucket, keys and values are stored as (key, value) pairs when they pack without padding (8-byte keys and
 * values: a hit reads one line of slots), else apart (keys[8] then values[8], as Go) so that padding is never
 * needed. Overflow buckets carry their own tophash word and link (core.h); bucket.c manages them.
 *
 * Tophash states (core.h) are Go's: EMPTY_REST marks an empty slot after which the bucket and its
 * overflow chain hold nothing, so lookups stop early; deletes leave EMPTY_ONE tombstones and turn trailing
 * runs of them back into EMPTY_REST. Inserts fill the first empty slot of the chain, so entries never move
 * within a chain; only evacuation (resize.c) moves them, to another array.
 *
 * Growth and shrinking (resize.c) are incremental as in Go: while a resize runs, `old` is evacuated into
 * `cur`, a few buckets per write. Reads look in the old bucket if it is not evacuated yet, else in cur;
 * they never move anything. Writes too go to the old bucket while it is not evacuated (a shrink's first
 * evacuates it), so an entry is always in exactly one place: its old bucket if that is not evacuated, else
 * its cur bucket.
 *
 * Fast paths: the key kind (8-byte keys with the built-in hash, C strings with hmap_hash_cstr, anything
 * else) is chosen once at creation; one lookup routine is written once and inlined three times with the
 * kind as a constant, so each kind gets its own specialised code from the same source. Each get, put and
 * delete first looks only at the key's first bucket (probe_first), inline: with no resize running, that
 * bucket settles nearly every operation, in a few dozen instructions and without a call. Anything else (a
 * resize, an overflow chain, drop callbacks, a growth due) goes the whole way, out of line, which probes
 * again from the start: the same probe loop, not a second copy of the map's logic.
 *
 * What a map holds (core.h): Go's header is small because its type descriptor is shared static data. Here
 * too what every map of one type and set of options shares is one interned record (class.c), and the
 * state only a resizing map needs is a side record made by its first real resize; the handle keeps the
 * rest, and copies of the few layout fields the fast paths read, so that they load nothing through the
 * class pointer. The slots of the arrays of B = 0 and 1 follow their chain heads without padding to a
 * cache line. An empty u64 map holds 128 bytes; one of 1-8 entries 344 (Go: 48 and 192; what remains is
 * the array's 72-byte header and the handle's iteration stamps and resize pointers).
 *
 * Load factor: 6.5 entries per bucket on average before growth, Go's choice. Go's own measurement (its
 * map.go table, 8-slot buckets) gives at 6.5: ~20.9% overflow buckets, ~10.8 bytes of overhead per entry
 * for 8-byte keys and values, 4.25 probes per hit and 6.5 per miss; 6.0 saves ~6% of probes for ~8% more
 * memory, 7.0 the reverse. We keep 6.5 so that our numbers compare with Go's directly.
 */
#include "core.h"
#include "hashed.h"
#include "sync_support.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- lookup */

/* Placed after a public entry point's call to the function doing its work, where that work may allocate:
 * the call then cannot become a jump, so the entry point's frame stays on the stack while the work runs,
 * and the heap profiler, which cuts each stack at the innermost public frame (diag/pprof.c), finds it. */
static inline void keep_api_frame(void) { __asm__ volatile(""); }

typedef struct found {
    table *t;
    size_t i;     /* chain */
    bucket_ref b; /* bucket of the chain holding the entry */
    unsigned slot;
} found;

/* The slot of bucket b (tophash word w) holding key, if any: the one loop every lookup runs. A write passes
 * saw_equal_hash (else NULL): set when the bucket holds another key with the same 64-bit hash (a map that
 * stores hashes sees it; see hmap.equal_hashes). */
/* (match_byte may report a byte just above a real match falsely, when that byte is the tophash with its
 * low bit flipped: only after a real match with another key (some 1 in 30 to 60 probes of a missing key
 * at the map's loads) and then 1 in 256, so one key comparison more costs less than the exact test's two
 * more operations on every probe. The slot it reports is live: a probed bucket
 * holds no evacuation marks (locate() never probes an evacuated one), and a free byte (0 or 1) is never
 * the flipped tophash of a live entry, which is MIN_TOPHASH - 1 or more. Where hashes are stored, the stored
 * hash is compared first, so that a tophash match with another key costs no read of that key's string, and no
 * call of a custom equal().) */
_Static_assert((MIN_TOPHASH ^ 1) > EMPTY_ONE, "match_byte's false reports are never free slots");
static inline __attribute__((always_inline)) bool match_in_bucket(const hmap *m, const bucket_ref *b,
                                                                  uint64_t w, uint64_t hash, const void *key,
                                                                  key_kind kind, unsigned *slot,
                                                                  bool *saw_equal_hash) {
    bool hashes = stores_hashes(m, kind);
    unsigned s;
    for_each_slot(s, match_byte(w, tophash_of(hash))) {
        if (hashes && slot_hash(m, b, s, kind) != hash)
            continue;
        if (equal_key(m, slot_key_of_kind(m, b, s, kind), key, kind)) {
            *slot = s;
            return true;
        }
        if (hashes && saw_equal_hash)
            *saw_equal_hash = true;
    }
    return false;
}

static inline __attribute__((always_inline)) bool find(const hmap *m, const void *key, uint64_t hash,
                                                       key_kind kind, found *f) {
    locate(m, hash, &f->t, &f->i);
    f->b = table_bucket(m, f->t, f->i);
    __builtin_prefetch(f->b.slots);
    for (;;) {
        uint64_t w = *f->b.tophash;
        if (match_in_bucket(m, &f->b, w, hash, key, kind, &f->slot, NULL))
            return true;
        if (!probe_continues(m, w, &f->b))
            return false;
    }
}

/* What the key's first bucket says, when no resize runs: nearly every probe ends there (a chain has a
 * second bucket for about 1 bucket in 20 at the load right after a growth, 1 in 3 just before one). */
typedef enum { FIRST_HIT, FIRST_MISS, FIRST_UNSURE } first_result;

/* The first bucket of key's chain in cur (which must exist) through *b, and its tophash word through *w.
 * FIRST_UNSURE (a resize runs, or the chain goes on) leaves the answer to find(). Each operation's fast
 * path is this, inline, with find() out of line behind it: the fast path then needs few registers and
 * makes no call of its own (the slow path is one call, or a jump, that probes again from the start). */
static inline __attribute__((always_inline)) first_result probe_first(const hmap *m, const void *key,
                                                                      uint64_t hash, key_kind kind,
                                                                      bucket_ref *b, uint64_t *w,
                                                                      unsigned *slot, bool *saw_equal_hash) {
    if (__builtin_expect(m->old != NULL, 0))
        return FIRST_UNSURE;
    *b = table_bucket(m, m->cur, table_index(m->cur, hash));
    __builtin_prefetch(b->slots);
    *w = *b->tophash;
    if (match_in_bucket(m, b, *w, hash, key, kind, slot, saw_equal_hash))
        return FIRST_HIT;
    return has_empty_rest(*w) ? FIRST_MISS : FIRST_UNSURE;
}

/* probe_first for the writes: a first bucket without EMPTY_REST (full, or holding tombstones after
 * deletes) that has no overflow bucket ends its chain too, and is a miss (a put then fills a tombstone
 * inline). Lookups leave that case to find(): the extra load kept the bucket index live and cost every
 * lookup two more saved registers (callgrind, 1Ki u64 map: 76 -> 81 instructions a hit). */
static inline __attribute__((always_inline)) first_result
probe_first_write(const hmap *m, const void *key, uint64_t hash, key_kind kind, bucket_ref *b, uint64_t *w,
                  unsigned *slot, bool *saw_equal_hash) {
    first_result r = probe_first(m, key, hash, kind, b, w, slot, saw_equal_hash);
    if (r == FIRST_UNSURE && !m->old && !*b->next)
        return FIRST_MISS;
    return r;
}

static inline __attribute__((always_inline)) void *get_hashed_kind(const hmap *m, const void *key,
                                                                   uint64_t hash, key_kind kind) {
    found f;
    if (!find(m, key, hash, kind, &f))
        return NULL;
    return slot_val(m, &f.b, f.slot);
}

/* The whole lookup, for any kind: behind each kind's first-bucket fast path. */
static __attribute__((noinline)) void *get_hashed(const hmap *m, const void *key, uint64_t hash) {
    switch (m->kind) {
    case KEYS_U64:
        return get_hashed_kind(m, key, hash, KEYS_U64);
    case KEYS_CSTR:
        return get_hashed_kind(m, key, hash, KEYS_CSTR);
    default:
        return get_hashed_kind(m, key, hash, KEYS_GENERIC);
    }
}

static inline __attribute__((always_inline)) void *get_kind(const hmap *m, const void *key, key_kind kind) {
    if (!m->cur) /* no array: the map is empty (an array with no entries finds nothing either) */
        return NULL;
    uint64_t hash = hash_key(m, key, kind), w;
    bucket_ref b;
    unsigned slot;
    switch (probe_first(m, key, hash, kind, &b, &w, &slot, NULL)) {
    case FIRST_HIT:
        return slot_val(m, &b, slot);
    case FIRST_MISS:
        return NULL;
    default:
        return get_hashed(m, key, hash);
    }
}

/* One specialised copy per key kind, each a separate function so that each gets its own lean register
 * allocation; the public entry points only dispatch (hmap_get holds the 8-byte keys' copy itself: it is
 * small enough, and saves a jump). */
static __attribute__((noinline)) void *get_cstr(const hmap *m, const void *key) {
    return get_kind(m, key, KEYS_CSTR);
}
static __attribute__((noinline)) void *get_generic(const hmap *m, const void *key) {
    return get_kind(m, key, KEYS_GENERIC);
}

/* errno EINVAL, out of line: hmap_get then makes no call of its own and needs no frame. */
static __attribute__((cold, noinline)) void *invalid_get(void) {
    errno = EINVAL;
    return NULL;
}

void *hmap_get(const hmap *m, const void *key) {
    if (!m || !key)
        return invalid_get();
    switch (m->kind) {
    case KEYS_U64:
        return get_kind(m, key, KEYS_U64);
    case KEYS_CSTR:
        return get_cstr(m, key);
    default:
        return get_generic(m, key);
    }
}

size_t hmap_len(const hmap *m) { return m ? m->count : 0; }

uint64_t map_key_hash(const hmap *m, const void *key) { return map_hash(m, key); }

bool map_find_entry(const hmap *m, const void *key, uint64_t hash, void **key_slot, void **val_slot) {
    found f;
    if (m->count == 0 || !find(m, key, hash, m->kind, &f))
        return false;
    *key_slot = slot_key(m, &f.b, f.slot);
    *val_slot = slot_val(m, &f.b, f.slot);
    return true;
}

void *map_get_hashed(const hmap *m, const void *key, uint64_t hash) {
    if (m->count == 0)
        return NULL;
    return get_hashed(m, key, hash);
}

/* ---------------------------------------------------------------- insert */

/* Scans the chain where key lives (locate: during a growth, its old chain until that is evacuated) for
 * key; on a miss, reports the first free slot (if any) through `free_slot`. */
static inline __attribute__((always_inline)) bool find_or_free(hmap *m, const void *key, uint64_t hash,
                                                               key_kind kind, found *f, found *free_slot,
                                                               bool *have_free, bool *saw_equal_hash) {
    locate(m, hash, &f->t, &f->i);
    f->b = table_bucket(m, f->t, f->i);
    __builtin_prefetch(f->b.slots, 1); /* the key is compared or written there: overlap the two misses */
    *have_free = false;
    for (;;) { /* a miss ends on the chain's last bucket, which chain_extend needs */
        uint64_t w = *f->b.tophash;
        if (match_in_bucket(m, &f->b, w, hash, key, kind, &f->slot, saw_equal_hash))
            return true;
        if (!*have_free) {
            /* empty slots are the bytes <= EMPTY_ONE: clear bit 0 and look for zero bytes */
            uint64_t empties = free_slots(w);
            if (empties) {
                *free_slot = *f;
                free_slot->slot = first_slot(empties);
                *have_free = true;
            }
        }
        if (!probe_continues(m, w, &f->b))
            return false;
    }
}

static bool over_load(size_t count, unsigned B) { return count > load_limit(B); }

/* Go's same-size-grow rule: about as many overflow buckets as regular ones means the chains are long
 * with tombstones or churn (Go counts approximately above 2^15 buckets; its threshold is ~2^B). */
static bool too_many_overflow(const table *t) { return t->noverflow >= t->nbuckets; }

/* Writes key into a free slot: tophash, stored hash, key bytes (the value is the caller's to write). */
static inline __attribute__((always_inline)) void fill_key(hmap *m, table *t, bucket_ref *b, unsigned slot,
                                                           uint64_t hash, const void *key, key_kind kind) {
    if (slot_top(b, slot) == EMPTY_ONE)
        t->tombstones--;
    set_slot_top(b, slot, tophash_of(hash));
    if (stores_hashes(m, kind))
        memcpy(slot_item(m, b, slot), &hash, 8);
    copy_item(slot_key_of_kind(m, b, slot, kind), key, kind == KEYS_GENERIC ? map_type(m)->key_size : 8);
}

/* fill_key, with the value zeroed. */
static inline __attribute__((always_inline)) void fill_slot(hmap *m, table *t, bucket_ref *b, unsigned slot,
                                                            uint64_t hash, const void *key, key_kind kind) {
    fill_key(m, t, b, slot, hash, key, kind);
    if (m->val_size == 8)
        __builtin_memset(slot_val(m, b, slot), 0, 8);
    else if (m->val_size)
        memset(slot_val(m, b, slot), 0, m->val_size);
}

/* The bookkeeping of a key just stored, for both ways in (assign_kind, put_kind's inline path): the count,
 * whether it met another key with its own hash (hmap.equal_hashes), the stamps, the reservation. */
static inline void count_inserted(hmap *m, bool saw_equal_hash) {
    m->count++;
    m->equal_hashes |= saw_equal_hash;
    note_inserted(m);
    note_count_grew(m);
}

/* The heart of put and assign: finds key's slot, inserting the key if absent. Returns the value slot (and
 * the stored key through *stored_key), or NULL on ENOMEM, the map then unchanged. The caller ends the write
 * (end_write) once it has read the key and value it was given: until then arrays finished with stay
 * allocated (table_retire), so arguments that point into them are still readable. */
static inline __attribute__((always_inline)) void *
assign_kind(hmap *m, const void *key, uint64_t hash, bool *inserted, void **stored_key, key_kind kind) {
    begin_write(m);
    for (;;) {
        if (!m->cur && start_resize(m, 0, HMAP_GROWING) < 0)
            return NULL;
        if (m->old && resize_work(m, hash) < 0)
            return NULL;
        found f, free_slot = {0};
        bool have_free, saw_equal_hash = false;
        if (find_or_free(m, key, hash, kind, &f, &free_slot, &have_free, &saw_equal_hash)) {
            *inserted = false;
            *stored_key = slot_key(m, &f.b, f.slot);
            return slot_val(m, &f.b, f.slot);
        }
        bool grow = !m->old && over_load(m->count + 1, m->cur->B);
        if (grow || (!m->old && too_many_overflow(m->cur))) {
            unsigned B = grow ? m->cur->B + 1 : m->cur->B;
            if (start_resize(m, B, grow ? HMAP_GROWING : HMAP_SAME_SIZE_GROWING) < 0)
                return NULL;
            continue; /* the key's bucket is in the old array now: search again (resize_work first) */
        }
        if (!have_free) {
            if (!chain_extend(m, f.t, &f.b))
                return NULL;
            free_slot = f;
            free_slot.slot = 0;
        }
        fill_slot(m, free_slot.t, &free_slot.b, free_slot.slot, hash, key, kind);
        count_inserted(m, saw_equal_hash);
        *inserted = true;
        *stored_key = slot_key(m, &free_slot.b, free_slot.slot);
        return slot_val(m, &free_slot.b, free_slot.slot);
    }
}

static __attribute__((noinline)) void *assign_u64(hmap *m, const void *key, uint64_t hash, bool *inserted,
                                                  void **sk) {
    return assign_kind(m, key, hash, inserted, sk, KEYS_U64);
}
static __attribute__((noinline)) void *assign_cstr(hmap *m, const void *key, uint64_t hash, bool *inserted,
                                                   void **sk) {
    return assign_kind(m, key, hash, inserted, sk, KEYS_CSTR);
}
static __attribute__((noinline)) void *assign_generic(hmap *m, const void *key, uint64_t hash, bool *inserted,
                                                      void **sk) {
    return assign_kind(m, key, hash, inserted, sk, KEYS_GENERIC);
}

static void *assign_hashed(hmap *m, const void *key, uint64_t hash, bool *inserted, void **stored_key) {
    switch (m->kind) {
    case KEYS_U64:
        return assign_u64(m, key, hash, inserted, stored_key);
    case KEYS_CSTR:
        return assign_cstr(m, key, hash, inserted, stored_key);
    default:
        return assign_generic(m, key, hash, inserted, stored_key);
    }
}

static void *assign(hmap *m, const void *key, bool *inserted, void **stored_key) {
    switch (m->kind) {
    case KEYS_U64:
        return assign_u64(m, key, hash_key(m, key, KEYS_U64), inserted, stored_key);
    case KEYS_CSTR:
        return assign_cstr(m, key, hash_key(m, key, KEYS_CSTR), inserted, stored_key);
    default:
        return assign_generic(m, key, hash_key(m, key, KEYS_GENERIC), inserted, stored_key);
    }
}

/* When a write finds its key present, the key passed is dropped (the map keeps its own) — unless it is
 * bitwise the stored key: then it is the same object (say, the key an iteration just yielded), and
 * dropping it would free the map's own key. */
static void drop_passed_key(hmap *m, const void *key, const void *stored_key) {
    if (has_key_drop(m) && memcmp(key, stored_key, map_type(m)->key_size) != 0)
        call_key_drop(m, (void *)key);
}

void *map_assign_hashed(hmap *m, const void *key, uint64_t hash, bool *inserted) {
    void *stored_key;
    void *val = assign_hashed(m, key, hash, inserted, &stored_key);
    end_write(m);
    return val;
}

void *hmap_assign(hmap *m, const void *key, bool *inserted) {
    if (!m || !key) {
        errno = EINVAL;
        return NULL;
    }
    bool ins;
    void *stored_key;
    void *val = assign(m, key, &ins, &stored_key);
    if (val && !ins)
        drop_passed_key(m, key, stored_key);
    end_write(m);
    if (!val) {
        errno = ENOMEM;
        return NULL;
    }
    if (inserted)
        *inserted = ins;
    return val;
}

/* memmove with the common 8-byte case inlined (a value given to put may be the stored one). */
static inline void move_item(void *dst, const void *src, size_t n) {
    if (n == 8)
        __builtin_memmove(dst, src, 8);
    else
        memmove(dst, src, n);
}

/* Any put, the whole way: hmap_put's slow path (a resize to run or start, a chain, drop callbacks). */
static __attribute__((noinline)) int put_hashed(hmap *m, const void *key, const void *val, uint64_t hash) {
    bool ins;
    void *stored_key;
    void *slot = assign_hashed(m, key, hash, &ins, &stored_key);
    if (!slot) {
        end_write(m);
        return -ENOMEM;
    }
    size_t vs = m->val_size;
    if (ins) {
        copy_item(slot, val, vs);
    } else {
        drop_passed_key(m, key, stored_key);
        /* A value bitwise equal to the stored one is the same object (say, hmap_get's result put back). */
        if (vs && memcmp(slot, val, vs) != 0) {
            call_val_drop(m, slot);
            memmove(slot, val, vs);
        }
    }
    end_write(m);
    return ins ? 1 : 0;
}

/* A put that its key's first bucket settles, inline: no resize runs and none is due, and the bucket holds
 * the key (and the type drops nothing, so the new value just replaces the old) or ends the chain with room
 * for it. Everything else goes the whole way (put_hashed), which probes again. Nothing here moves or frees
 * an array, so the arguments may point anywhere into the map. */
static inline __attribute__((always_inline)) int put_kind(hmap *m, const void *key, const void *val,
                                                          key_kind kind) {
    table *t = m->cur;
    if (__builtin_expect(!t, 0))
        return put_hashed(m, key, val, hash_key(m, key, kind));
    uint64_t hash = hash_key(m, key, kind), w;
    bucket_ref b;
    unsigned slot;
    bool saw_equal_hash = false;
    first_result r = probe_first_write(m, key, hash, kind, &b, &w, &slot, &saw_equal_hash);
    size_t vs = m->val_size;
    uint64_t room = free_slots(w); /* (none: a full bucket ends the chain, which must grow) */
    if (r == FIRST_MISS && room && !over_load(m->count + 1, t->B) && !too_many_overflow(t)) {
        begin_slot_write(m);
        slot = first_slot(room);
        fill_key(m, t, &b, slot, hash, key, kind);
        copy_item(slot_val(m, &b, slot), val, vs);
        count_inserted(m, saw_equal_hash);
        end_slot_write(m);
        return 1;
    }
    if (r == FIRST_HIT && !m->drops) {
        begin_slot_write(m);
        if (vs)
            move_item(slot_val(m, &b, slot), val, vs);
        end_slot_write(m);
        return 0;
    }
    return put_hashed(m, key, val, hash);
}

static __attribute__((noinline)) int put_u64(hmap *m, const void *key, const void *val) {
    return put_kind(m, key, val, KEYS_U64);
}
static __attribute__((noinline)) int put_cstr(hmap *m, const void *key, const void *val) {
    return put_kind(m, key, val, KEYS_CSTR);
}
static __attribute__((noinline)) int put_generic(hmap *m, const void *key, const void *val) {
    return put_kind(m, key, val, KEYS_GENERIC);
}

int hmap_put(hmap *m, const void *key, const void *val) {
    if (!m || !key || (!val && m->val_size))
        return -EINVAL;
    int r;
    switch (m->kind) {
    case KEYS_U64:
        r = put_u64(m, key, val);
        break;
    case KEYS_CSTR:
        r = put_cstr(m, key, val);
        break;
    default:
        r = put_generic(m, key, val);
        break;
    }
    keep_api_frame();
    return r;
}

/* ---------------------------------------------------------------- delete */

/* A removed entry's key and value go to the caller's buffers, or to the drop callbacks (NULL buffer). Out of
 * line: hmap_del's path then makes no call of its own. */
static __attribute__((noinline)) void hand_over_entry(const hmap *m, void *k, void *v, void *key_out,
                                                      void *val_out) {
    if (key_out)
        memmove(key_out, k, map_type(m)->key_size); /* key_out may even be the key argument */
    else
        call_key_drop(m, k);
    if (val_out && m->val_size)
        memmove(val_out, v, m->val_size);
    else
        call_val_drop(m, v);
}

/* Empties the slot f found, handing its key and value to the caller's buffers (NULL: dropped). True when
 * the map became empty or may have to shrink: then remove_resize ends the write. */
static inline __attribute__((always_inline)) bool
remove_found(hmap *m, found *f, void *key_out, void *val_out, key_kind kind, bool first_bucket) {
    if (key_out || val_out || m->drops)
        hand_over_entry(m, slot_key_of_kind(m, &f->b, f->slot, kind), slot_val(m, &f->b, f->slot), key_out,
                        val_out);
    set_slot_empty(m, f->t, f->i, &f->b, f->slot, first_bucket);
    note_deleted(m);
    m->count--;
    return m->count == 0 || shrink_may_be_due(m);
}

/* The end of a delete that emptied the map or left it at a quarter of its load or less; true (the delete's
 * answer), so that the fast path ends in a jump here. */
static __attribute__((noinline)) bool remove_resize(hmap *m) {
    if (m->count == 0)
        map_became_empty(m);
    else
        maybe_start_shrink(m);
    end_write(m);
    return true;
}

/* The whole delete (a resize running, or a chain to walk), for any kind: the slow path behind remove_kind. */
static __attribute__((noinline)) bool remove_hashed(hmap *m, const void *key, uint64_t hash, void *key_out,
                                                    void *val_out) {
    begin_write(m);
    if (m->old)
        (void)resize_work(m, hash); /* best effort: on ENOMEM the entry is removed where it is */
    found f;
    bool hit;
    switch (m->kind) {
    case KEYS_U64:
        hit = find(m, key, hash, KEYS_U64, &f);
        break;
    case KEYS_CSTR:
        hit = find(m, key, hash, KEYS_CSTR, &f);
        break;
    default:
        hit = find(m, key, hash, KEYS_GENERIC, &f);
        break;
    }
    if (!hit) {
        end_write(m);
        return false;
    }
    if (remove_found(m, &f, key_out, val_out, KEYS_GENERIC, f.b.tophash == &f.t->tophash[f.i]))
        return remove_resize(m);
    end_write(m);
    return true;
}

/* Removes key: settled in its first bucket inline when no resize runs (a miss there writes nothing), else
 * the whole way (remove_hashed). */
static inline __attribute__((always_inline)) bool remove_kind(hmap *m, const void *key, uint64_t hash,
                                                              void *key_out, void *val_out, key_kind kind) {
    found f;
    uint64_t w;
    switch (probe_first_write(m, key, hash, kind, &f.b, &w, &f.slot, NULL)) {
    case FIRST_MISS:
        return false;
    case FIRST_HIT:
        /* An entry to hand over (buffers to fill, drop callbacks to call) takes the whole way: the fast
         * path then calls nothing but jumps, and needs few saved registers. */
        if (key_out || val_out || m->drops)
            return remove_hashed(m, key, hash, key_out, val_out);
        begin_slot_write(m); /* a write in place, unless it ends in remove_resize */
        f.t = m->cur;
        f.i = table_index(f.t, hash);
        if (remove_found(m, &f, NULL, NULL, kind, true)) {
            if (m->cold)
                m->cold->moved_this_op = 0; /* begin_write's part, before anything can move */
            return remove_resize(m);
        }
        end_slot_write(m);
        return true;
    default:
        return remove_hashed(m, key, hash, key_out, val_out);
    }
}

static __attribute__((noinline)) bool remove_u64(hmap *m, const void *key, void *key_out, void *val_out) {
    return m->count != 0 && remove_kind(m, key, hash_key(m, key, KEYS_U64), key_out, val_out, KEYS_U64);
}
static __attribute__((noinline)) bool remove_cstr(hmap *m, const void *key, void *key_out, void *val_out) {
    return m->count != 0 && remove_kind(m, key, hash_key(m, key, KEYS_CSTR), key_out, val_out, KEYS_CSTR);
}
static __attribute__((noinline)) bool remove_generic(hmap *m, const void *key, void *key_out, void *val_out) {
    return m->count != 0 &&
           remove_kind(m, key, hash_key(m, key, KEYS_GENERIC), key_out, val_out, KEYS_GENERIC);
}

/* hmap_del's own copies: with no buffers to fill, each is the kind's delete alone. */
static __attribute__((noinline)) bool del_u64(hmap *m, const void *key) {
    return m->count != 0 && remove_kind(m, key, hash_key(m, key, KEYS_U64), NULL, NULL, KEYS_U64);
}
static __attribute__((noinline)) bool del_cstr(hmap *m, const void *key) {
    return m->count != 0 && remove_kind(m, key, hash_key(m, key, KEYS_CSTR), NULL, NULL, KEYS_CSTR);
}

static bool remove_key(hmap *m, const void *key, void *key_out, void *val_out) {
    switch (m->kind) {
    case KEYS_U64:
        return remove_u64(m, key, key_out, val_out);
    case KEYS_CSTR:
        return remove_cstr(m, key, key_out, val_out);
    default:
        return remove_generic(m, key, key_out, val_out);
    }
}

bool map_remove_hashed(hmap *m, const void *key, uint64_t hash, void *key_out, void *val_out) {
    return m->count != 0 && remove_kind(m, key, hash, key_out, val_out, m->kind);
}

bool hmap_del(hmap *m, const void *key) {
    if (!m || !key) {
        errno = EINVAL;
        return false;
    }
    bool r;
    switch (m->kind) {
    case KEYS_U64:
        r = del_u64(m, key);
        break;
    case KEYS_CSTR:
        r = del_cstr(m, key);
        break;
    default:
        r = remove_generic(m, key, NULL, NULL);
        break;
    }
    keep_api_frame(); /* a delete may start a shrink */
    return r;
}

bool hmap_take(hmap *m, const void *key, void *key_out, void *val_out) {
    if (!m || !key) {
        errno = EINVAL;
        return false;
    }
    bool r = remove_key(m, key, key_out, val_out);
    keep_api_frame();
    return r;
}

/* ---------------------------------------------------------------- creation and destruction */

/* Key and value sizes beyond this are refused: a bucket of 8 must stay far from size_t overflow. */
#define MAX_ITEM_SIZE ((size_t)1 << 24)

const hmap_allocator *map_new_arguments(const hmap_type *type, const hmap_options *opts) {
    if (!type || type->key_size == 0 || type->key_size > MAX_ITEM_SIZE || type->val_size > MAX_ITEM_SIZE ||
        (type->hash && type->hash_ctx) || (type->equal && type->equal_ctx) ||
        (type->key_drop && type->key_drop_ctx) || (type->val_drop && type->val_drop_ctx)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; opts && i < sizeof opts->reserved_ / sizeof opts->reserved_[0]; i++)
        if (opts->reserved_[i]) { /* options this version does not know */
            errno = EINVAL;
            return NULL;
        }
    const hmap_allocator *a = opts && opts->allocator ? opts->allocator : &default_allocator;
    if (!a->alloc || !a->free) {
        errno = EINVAL;
        return NULL;
    }
    return a;
}

/* The handle's copies of what the fast paths read of its class. */
static void copy_class_layout(hmap *m, const map_class *c) {
    m->key_stride = (uint32_t)c->key_stride;
    m->val_stride = (uint32_t)c->val_stride;
    m->vals_offset = (uint32_t)c->vals_offset;
    m->bucket_bytes = (uint32_t)c->bucket_bytes;
    m->val_size = (uint32_t)c->type.val_size;
    m->kind = (uint8_t)c->kind;
    m->hash_off = (uint8_t)c->hash_off;
    m->drops = c->drops;
    m->no_shrink = c->no_shrink;
}

_Static_assert((uint64_t)SLOTS_PER_BUCKET *(2 * MAX_ITEM_SIZE + 8) + 64 < UINT32_MAX,
               "a bucket of the largest items fits the handle's 32-bit layout fields");

hmap *hmap_new_opts(const hmap_type *type, size_t hint, const hmap_options *opts) {
    const hmap_allocator *a = map_new_arguments(type, opts);
    if (!a)
        return NULL;
    hmap *m = mem_raw_alloc(a, sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    memset(m, 0, sizeof *m);
    m->mem.bytes = sizeof *m;
    const map_class *c = class_acquire(type, a, opts, &m->mem);
    if (!c) {
        mem_raw_free(a, m, sizeof *m);
        errno = ENOMEM;
        return NULL;
    }
    m->mem.src = &c->src;
    copy_class_layout(m, c);
    m->seed = c->fixed_seed ? opts->seed : random_seed();
    if (hint > 0 && start_resize(m, B_for_count(hint), HMAP_GROWING) < 0) {
        hmap_free(m);
        errno = ENOMEM;
        return NULL;
    }
    return m;
}

hmap *hmap_new(const hmap_type *type, size_t hint) { return hmap_new_opts(type, hint, NULL); }

/* Drops every live entry and releases both arrays at once. */
/* Frees both arrays, dropping their entries first unless the caller has taken them over. */
static void free_all(hmap *m, bool drop_entries) {
    if (m->old)
        end_resize(m, drop_entries);
    if (m->cur) {
        table_free(m, m->cur, drop_entries);
        m->cur = NULL;
    }
    free_retired_tables(m);
    m->count = 0;
}

void hmap_free(hmap *m) {
    if (!m)
        return;
    free_all(m, true);
    if (m->cold)
        mem_free(&m->mem, m->cold, sizeof *m->cold);
    hmap_allocator a = m->mem.src->alloc; /* the class may go with the map */
    class_release(map_class_of(m), &m->mem);
    mem_raw_free(&a, m, sizeof *m);
}

static void clear_map(hmap *m, bool drop_entries) {
    set_reserved(m, 0);
    free_all(m, drop_entries);
    m->equal_hashes = false;
    end_iterations(m);
    if (!map_class_of(m)->fixed_seed)
        m->seed = random_seed();
}

void hmap_clear(hmap *m) {
    if (m)
        clear_map(m, true);
}

void map_clear_undropped(hmap *m) { clear_map(m, false); }

void hmap_reset(hmap *m) {
    if (!m)
        return;
    set_reserved(m, 0);
    if (m->old)
        end_resize(m, true); /* its entries not yet evacuated are dropped with it */
    if (m->cur)
        table_reset(m, m->cur);
    free_retired_tables(m);
    m->count = 0;
    m->equal_hashes = false;
    end_iterations(m);
    if (!map_class_of(m)->fixed_seed)
        m->seed = random_seed();
}

/* ---------------------------------------------------------------- stats */

void hmap_get_stats(const hmap *m, hmap_stats *st) {
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!m)
        return;
    st->count = m->count;
    st->name = m->mem.src->name;
    if (m->cur) {
        st->B = m->cur->B;
        st->buckets = m->cur->nbuckets;
        st->overflow_buckets = m->cur->noverflow;
        st->tombstones = m->cur->tombstones;
    }
    if (m->old) {
        st->old_buckets = m->old->nbuckets;
        st->evacuated = m->cold->old_evacuated;
        st->overflow_buckets += m->old->noverflow;
        st->tombstones += m->old->tombstones;
    }
    st->phase = map_phase(m);
    st->bytes = m->mem.bytes;
    if (m->cold) {
        st->grows = m->cold->grows;
        st->same_size_grows = m->cold->same_size_grows;
        st->shrinks = m->cold->shrinks;
        st->buckets_moved = m->cold->buckets_moved;
        st->max_moved_per_op = m->cold->max_moved_per_op;
    }
}
