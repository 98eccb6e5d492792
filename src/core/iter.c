/* SPDX-License-Identifier: MIT */
/*
 * core/iter.c — iteration that yields each key exactly once while the map grows, shrinks and is written
 * to, and that the map never has to know about.
 *
 * Go's iterator walks the buckets of the array it started on and, when that array has been evacuated
 * meanwhile, re-reads the keys it finds in the old copies and looks them up again in the new array. In C
 * that is a use-after-free waiting to happen: a key deleted since may have been freed by key_drop. And Go's
 * scheme cannot follow a shrink, where buckets merge. We iterate differently.
 *
 * An order that does not depend on where entries sit. Every entry has a 64-bit hash that never changes.
 * The iteration visits entries in increasing order of g = hash + s (mod 2^64), where s is drawn at random
 * for each iteration (so orders differ between iterations, as Go's do), on a bucket boundary of the array
 * it starts on (hmap_iter_init). Buckets are indexed by the hash's
 * high bits (map.c), so bucket i of a 2^B array holds exactly the hashes of one aligned block, and adding
 * s turns hash space around: in g-order the buckets of any array size are visited in index order, from
 * the one s points into, each as one contiguous interval, and wrapping around once. (So memory is read
 * front to back, as Go's iterator reads it from a random start bucket; an order by hash ^ s, which also
 * maps buckets onto intervals, visits them in a scattered order that costs twice the time once the array
 * outgrows the caches.) In an array of another size (after a resize inside the loop), or in a single
 * bucket, the one bucket that 2^64 cuts in two is taken in two parts, first and last. The
 * iterator's whole state is a cursor in g-space:
 *
 *     done = { entries with g < P }  ∪  { entries with g == P that are "at or before" the last one yielded }
 *
 * Entries with equal g (equal 64-bit hashes: a custom hash that collides, or two byte keys XXH3 maps to one
 * value) are ordered by a tie key taken from the key's own bytes (the bytes themselves up to TIE_INLINE,
 * else their 128-bit XXH3), never by their position in a chain. When the entry yielded had no other pending
 * entry of the same g, everything at P is done (all_at_P): a key deleted and inserted again inside the loop
 * then is not yielded a second time, whatever its bytes.
 *
 * Because the cursor means the same thing in every array, nothing is pinned and nothing needs updating:
 * the map keeps no list of open iterations, never writes into an iterator, and an iteration can be
 * abandoned at any point (hmap_iter_done is optional). Each call finds where hash P - s lives now (the old
 * bucket if it is not evacuated yet, else the cur bucket — locate() in core.h) and takes from that chain the
 * pending entries below the end of the finer of the two buckets covering P (a shrink merges buckets of
 * which some may still be in the old array; a grow splits them).
 *
 * Within one interval the order need not be g-order, as long as the state says exactly what is done. The
 * iterator hashes the live entries of the chain serving the interval into a cache. When they all fit
 * (CACHE_SLOTS) and their hashes are distinct (always, for 8-byte keys: their built-in hash is a
 * bijection), it yields them in slot order, remembering the hash of each one yielded (`yielded_g`): the
 * done part of the interval is then that set, and a key deleted and inserted again has the same hash, so
 * it stays done. Otherwise (a long chain, equal hashes) it sorts the pending entries by (g, tie key), keeps
 * the CACHE_SLOTS smallest, and moves the cursor P through the interval in order, the hashes already
 * yielded still excluded.
 *
 * Direct mode: slot order with no cache at all, for maps whose entries carry a record as good as their
 * hash — 8-byte keys with the built-in hash (the key itself: the hash is a bijection of it) and maps that
 * store hashes (string keys, custom hashes: the stored hash) — on a chain whose hashes differ. The
 * iterator holds a bucket of the chain and the bits of the slots it has not looked at yet (taken from the
 * tophash word when it got there), and records each entry it yields in yielded_g: nothing is hashed, and
 * a string key is not even read; the records become g only if the iteration leaves direct mode. That
 * stays valid while nothing moves — an insert only adds entries the iteration may skip, and a key deleted
 * and inserted again is caught in yielded_g — as long as no two keys can share a hash: where they can, a
 * new key with a pending key's hash would be taken for it, so an insert ends direct mode. Whether they can
 * is known: never for 8-byte keys, and in a map that stores hashes only once an insert has met a key with
 * its own hash (hmap.equal_hashes; until then no chain is checked for repeated hashes either). While
 * nothing is inserted, the next bucket follows the last without the general checks.
 *
 * The window. hmap_iter_next is inline (hmap.h): it takes the next entry from a window the library filled
 * ahead of time — a mask of slots of one bucket, with where that bucket's keys and values lie — for as
 * long as the map's write stamp says that nothing was inserted, deleted or moved. Everything else happens
 * here, in hmap_iter_refill_: what the window yielded joins the state (take_back_window: in direct mode
 * the records, copied when the bucket was handed out, since a key yielded and then deleted may have been
 * overwritten in its slot by the time the library hears of it), the next entry comes the general way, and
 * the rest of its bucket (or of the cache) is handed out. The common case is cheaper still: in steady
 * direct mode the window sweeps along the array chain after chain (refill_sweep) without bringing the
 * state behind it up to date, which happens only when the sweep stops (sweep_settle). Where a bucket is
 * 8 (key, value) items, the sweep hands out a run of up to RUN_BUCKETS consecutive chains of one bucket at
 * once, their slots numbered on from bucket to bucket: hmap_iter_next then comes back here once per run,
 * not once per bucket (at 1Ki 8-byte keys: ~45 instructions an entry instead of ~61, and less than half
 * the mispredicted branches, callgrind). A write inside a run cuts it, when the sweep settles, to the
 * bucket the last entry taken came from; the buckets after it were not reached and are taken afresh.
 *
 * Cost. The cache stays valid while no key is inserted and nothing moves (the map's change and move
 * stamps); a delete leaves it valid: the slot's tophash says the entry is gone. So a plain iteration
 * hashes every key once and sorts nothing; a write that inserts or moves makes the next call hash the
 * current chain again; a long chain of colliding keys is read once per CACHE_SLOTS entries yielded.
 */
#include "core.h"

#include <string.h>

#define CACHE_SLOTS 12
#define TIE_INLINE 40 /* keys up to this size are their own tie key; longer ones use their 128-bit XXH3 */
/* How many chains ahead a sweep fetches an overflow bucket: some 50-100 entries, more than one memory
 * latency of sweeping (overflow buckets are anywhere; the bucket array is read front to back). */
#define OVERFLOW_AHEAD 16
/* A sweep's window holds up to this many consecutive chains of one bucket each, so that hmap_iter_next
 * comes back to the library once per run rather than once per bucket (and mispredicts its loop's end once
 * per run). Their records take the cache's place. */
#define RUN_BUCKETS 6

typedef struct iter_state {
    hmap *m;
    uint64_t s;     /* the order: increasing g = hash + s (mod 2^64), interval by interval */
    uint64_t P;     /* the cursor (see the top of the file) */
    uint64_t epoch; /* the map's epoch at the start: a clear or a new seed ends the iteration */
    bool done;
    bool at_P;     /* an entry with g == P has been yielded (ordered mode) */
    bool all_at_P; /* ...and no other entry with g == P was pending then: every entry at P is done */
    bool ordered;  /* this interval is taken in g-order from P on (else in slot order) */
    bool started;  /* the interval at P has been started */
    bool direct;   /* slot order straight from the chain, no cache (see the top): direct_b, direct_live */
    bool narrowed; /* the interval was cut short by a resize, or carries hashes of a wider one it came from */
    bool steady;   /* direct mode, the interval one bucket of the only array, set up by next_bucket_steady:
                      while the change stamp holds, the next bucket follows without the general checks */
    uint8_t tie_len;
    uint8_t key_off;     /* the key's place in its slot item: 8 after a stored hash, else 0 */
    uint8_t n_yielded;   /* hashes in yielded_g */
    uint8_t slot_yields; /* hashes yielded in slot order from this interval: n_yielded + the mask's bits
                            (direct mode counts in n_yielded alone, see leave_direct) */
    /* The cache: the pending entries of the chain serving [P, end), in slot order or sorted by g. */
    bool cached;
    bool complete; /* every pending entry of the interval is in the cache */
    bool end_top;  /* the interval ends at 2^64 */
    uint8_t n, next;
    uint16_t yielded_mask; /* slot-order mode: cache entries yielded since the fill */
    uint32_t val_off;      /* the map's slot layout, copied: key s at slots + s * key_step, its value at */
    uint32_t key_step;     /* slots + val_off + s * val_step */
    uint32_t val_step;
    uint64_t end; /* the interval being taken ends here; in slot order it starts at P */
    uint64_t change_stamp, move_stamp;
    bucket_ref direct_b;  /* direct mode: the bucket being taken */
    size_t steady_bucket; /* steady: the index of the interval's bucket in the only array */
    uint64_t direct_live; /* ...and its slots still to look at (live_slots() bits, read on arrival) */
    union {
        struct { /* the cache */
            uint64_t g[CACHE_SLOTS];
            uint8_t *top[CACHE_SLOTS]; /* the slot's tophash byte: still live? */
            unsigned char *key[CACHE_SLOTS], *val[CACHE_SLOTS];
        };
        /* direct mode and the sweep, which leave the cache empty: the record of each slot the window holds,
         * slot s of its bucket b in rec[8 * b + s] (as direct_fast takes it: see copy_records) */
        uint64_t rec[RUN_BUCKETS * SLOTS_PER_BUCKET];
    };
    uint64_t yielded_g[CACHE_SLOTS]; /* g of each entry yielded in slot order from this interval: done (in
                                        direct mode the keys themselves, see leave_direct) */
    unsigned char tie[TIE_INLINE];   /* tie key of the last entry yielded, when !all_at_P */
    /* The window (hmap.h) hands out entries of direct_b (WINDOW_DIRECT) or of the cache (WINDOW_CACHE). */
    uint8_t window_from;
    uint8_t window_index[SLOTS_PER_BUCKET]; /* from the cache: the cache index of each slot handed out */
    uint64_t window_handed; /* the slots handed out (the window's mask bits), each one's record in rec[] */
    /* The sweep (WINDOW_SWEEP): the only array, as it was when the sweep began (it stays so while the
     * change stamp holds), the bucket whose entries are in the window, and how many whole buckets follow
     * it before the end of g-space. P, end, direct_b and steady_bucket are behind until sweep_settle. */
    struct {
        const uint64_t *tophash;
        overflow_bucket *const *overflow;
        unsigned char *slots;
        size_t bucket_bytes, mask, i; /* i: the chain of the window's last bucket */
        uint64_t whole_left;
        unsigned shift;
        unsigned run;         /* the window's buckets: chains i - run + 1 to i, one bucket each (or 1) */
        bool runs;            /* runs longer than 1 (see sweep_begin) */
        overflow_bucket *ovf; /* the bucket of chain i in the window: this one, or (NULL) bucket i */
        uint8_t n_yielded;    /* records of the chain's earlier buckets, in yielded_g */
    } sweep;
} iter_state;

/* Where the window's entries came from. WINDOW_SWEEP: direct_b too, but the state behind the window has
 * been let go, to be brought up to date only when the sweep ends (see refill_sweep). */
enum { WINDOW_NONE, WINDOW_DIRECT, WINDOW_CACHE, WINDOW_SWEEP };

_Static_assert(sizeof(iter_state) <= sizeof(((hmap_iter *)0)->opaque_),
               "hmap_iter is too small for the iterator state");
_Static_assert(_Alignof(iter_state) <= _Alignof(hmap_iter), "hmap_iter is not aligned enough");
_Static_assert(offsetof(overflow_bucket, tophash) == 0, "an overflow bucket is found from its tophash word");
_Static_assert(SLOTS_PER_BUCKET <= CACHE_SLOTS, "a full window of one bucket leaves the done set room");
_Static_assert(RUN_BUCKETS *SLOTS_PER_BUCKET * sizeof(uint64_t) <=
                   offsetof(iter_state, yielded_g) - offsetof(iter_state, g),
               "a run's records fit in the cache's place");
_Static_assert(RUN_BUCKETS *SLOTS_PER_BUCKET <= 64, "a window's mask has a bit per slot");

/* The iterator's two parts: the window, which hmap_iter_next reads inline, and the state behind it. */
static inline iter_state *state_of(hmap_iter *opaque) { return (iter_state *)(void *)opaque->opaque_; }
static inline hmap_iter_window_ *window_of(iter_state *it) {
    return &((hmap_iter *)(void *)((char *)it - offsetof(hmap_iter, opaque_)))->window_;
}
_Static_assert(CACHE_SLOTS <= 16, "yielded_mask has a bit per cache entry");
_Static_assert(TIE_INLINE >= 16 && TIE_INLINE <= 255, "a tie key holds at least a 128-bit hash");

/* The hash an iteration position g stands for (g = hash + s). */
static inline uint64_t hash_of_g(const iter_state *it, uint64_t g) { return g - it->s; }

/* ---------------------------------------------------------------- tie keys */

/* A key's tie key: what tells it apart from keys with the same 64-bit hash, the same for every copy of
 * the key. Its bytes (up to TIE_INLINE, else their 128-bit XXH3) — or, for C-string keys, the 128-bit XXH3
 * of the string, so that a new copy of a string deleted and inserted again is still the same key. */
static unsigned tie_key(const hmap *m, const void *key, unsigned char out[TIE_INLINE]) {
    size_t n = map_type(m)->key_size;
    const void *bytes = key;
    if (map_type(m)->equal == hmap_equal_cstr) {
        bytes = *(const char *const *)key;
        n = strlen(bytes);
    } else if (n <= TIE_INLINE) {
        memcpy(out, key, n);
        return (unsigned)n;
    }
    XXH128_hash_t h = XXH3_128bits(bytes, n);
    memcpy(out, &h.high64, 8);
    memcpy(out + 8, &h.low64, 8);
    return 16;
}

static int tie_compare(const hmap *m, const void *a, const void *b) {
    unsigned char ta[TIE_INLINE], tb[TIE_INLINE];
    unsigned n = tie_key(m, a, ta);
    tie_key(m, b, tb);
    return memcmp(ta, tb, n);
}

/* Is this entry, whose g equals the cursor, still to be yielded? (ordered mode) */
static bool pending_at_P(const iter_state *it, const void *key) {
    if (!it->at_P)
        return true;
    if (it->all_at_P)
        return false;
    unsigned char t[TIE_INLINE];
    tie_key(it->m, key, t);
    return memcmp(t, it->tie, it->tie_len) > 0;
}

static bool yielded_before(const iter_state *it, uint64_t g) {
    for (unsigned k = 0; k < it->n_yielded; k++)
        if (it->yielded_g[k] == g)
            return true;
    return false;
}

/* ---------------------------------------------------------------- the chain cache */

/* The end of the finer of the buckets that cover P in the map's arrays (*top: the end is 2^64). */
static uint64_t finer_bucket_end(const iter_state *it, bool *top) {
    const hmap *m = it->m;
    unsigned B = m->cur->B;
    if (m->old && m->old->B > B)
        B = m->old->B;
    if (B == 0) {
        *top = true; /* one bucket: all of g-space */
        return 0;
    }
    uint64_t width = (uint64_t)1 << (64 - B);
    uint64_t end = ((hash_of_g(it, it->P) | (width - 1)) + 1) + it->s; /* the bucket's end, back in g */
    *top = end <= it->P; /* it wrapped past 2^64: the interval is cut there */
    return *top ? 0 : end;
}

/* Narrows the interval to the finer bucket covering P: a resize since the interval started may have split
 * the bucket whose chain served it, and a chain only holds its own bucket's hashes. */
static void narrow_interval(iter_state *it) {
    bool top;
    uint64_t end = finer_bucket_end(it, &top);
    if (!top && (it->end_top || end < it->end)) {
        it->end = end;
        it->end_top = false;
        it->narrowed = true;
    }
}

/* Starts the interval at P: nothing of it is done, except hashes yielded in slot order from a wider
 * interval it was split from (those at or above P stay in yielded_g). */
static void start_interval(iter_state *it) {
    it->end = finer_bucket_end(it, &it->end_top);
    it->at_P = false;
    it->ordered = false;
    it->started = true;
    it->yielded_mask = 0;
    unsigned kept = 0;
    for (unsigned k = 0; k < it->n_yielded; k++)
        if (it->yielded_g[k] >= it->P)
            it->yielded_g[kept++] = it->yielded_g[k];
    it->n_yielded = it->slot_yields = (uint8_t)kept;
    it->narrowed = kept > 0;
}

static void cache_move(iter_state *it, unsigned to, unsigned from) {
    it->g[to] = it->g[from];
    it->top[to] = it->top[from];
    it->key[to] = it->key[from];
    it->val[to] = it->val[from];
}

/* Ordered mode: entry j goes to its place among the sorted ones before it; the CACHE_SLOTS smallest stay. */
static void cache_sort_in(iter_state *it, unsigned j) {
    const hmap *m = it->m;
    uint64_t g = it->g[j];
    uint8_t *top = it->top[j];
    unsigned char *key = it->key[j], *val = it->val[j];
    unsigned i = j;
    for (; i > 0 && (it->g[i - 1] > g || (it->g[i - 1] == g && tie_compare(m, key, it->key[i - 1]) < 0)); i--)
        cache_move(it, i, i - 1);
    it->g[i] = g;
    it->top[i] = top;
    it->key[i] = key;
    it->val[i] = val;
}

/* Is entry (g, key) still to be yielded from this interval? (In slot order P stays at the interval's
 * start; the done ones are the hashes in yielded_g.) */
static bool pending(const iter_state *it, uint64_t g, const void *key) {
    if (g < it->P || (!it->end_top && g >= it->end) || yielded_before(it, g))
        return false;
    if (!it->ordered)
        return true;
    return g > it->P || (g == it->P && pending_at_P(it, key));
}

/* May two entries of the map share a 64-bit hash? Never for 8-byte keys with the built-in hash (a bijection);
 * in a map that stores hashes, only once an insert has met one (hmap.equal_hashes); else perhaps. */
static inline bool hashes_may_repeat(const hmap *m) {
    return m->kind != KEYS_U64 && (!m->hash_off || m->equal_hashes);
}

/* True when two cached entries share a hash. */
static bool cache_has_equal_hashes(const iter_state *it) {
    if (!hashes_may_repeat(it->m))
        return false;
    for (unsigned i = 1; i < it->n; i++)
        for (unsigned k = 0; k < i; k++)
            if (it->g[i] == it->g[k])
                return true;
    return false;
}

/* The cache fill, with the key kind a constant so that each kind's hash is inlined. `filter`: some live
 * entries of the chain may be outside the interval or done; without it (the common case: a fresh interval
 * that is exactly the chain's bucket) every live entry is pending. */
static inline __attribute__((always_inline)) void fill_kind(iter_state *it, bucket_ref b, key_kind kind,
                                                            bool filter) {
    const hmap *m = it->m;
    /* Locals: the stores into the cache below could otherwise alias the map's fields for the compiler. */
    const size_t key_stride = m->key_stride, val_stride = m->val_stride;
    const size_t vals_offset = m->val_size ? m->vals_offset : m->hash_off; /* a set: its key */
    const size_t val_step = m->val_size ? val_stride : key_stride;         /* a set's value is its key */
    const uint64_t seed = m->seed, order = it->s;
    const size_t hash_off = m->hash_off;
    unsigned n = 0, s;
    for_each_chain_bucket(m, b) {
        for_each_slot(s, live_slots(*b.tophash)) {
            unsigned char *key = b.slots + s * key_stride + hash_off;
            uint64_t g;
            if (kind == KEYS_U64) {
                uint64_t k;
                memcpy(&k, key, 8);
                g = hash_u64_inline(k, seed) + order;
            } else {
                g = slot_hash(m, &b, s, kind) + order;
            }
            if (filter && !pending(it, g, key))
                continue;
            if (n == CACHE_SLOTS) {
                it->complete = false;
                if (!it->ordered)
                    continue; /* too many for slot order: the caller switches to ordered mode */
                if (it->g[n - 1] < g || (it->g[n - 1] == g && tie_compare(m, key, it->key[n - 1]) > 0))
                    continue;
                n--; /* the largest falls out */
            }
            it->g[n] = g;
            it->top[n] = (uint8_t *)b.tophash + s;
            it->key[n] = key;
            it->val[n] = b.slots + vals_offset + s * val_step;
            if (filter && it->ordered)
                cache_sort_in(it, n);
            n++;
        }
    }
    it->n = (uint8_t)n;
}

static void fill_once(iter_state *it, bucket_ref b, bool filter) {
    it->n = it->next = 0;
    it->yielded_mask = 0;
    it->complete = true;
    switch (it->m->kind) {
    case KEYS_U64:
        if (filter)
            fill_kind(it, b, KEYS_U64, true);
        else
            fill_kind(it, b, KEYS_U64, false);
        break;
    case KEYS_CSTR:
        fill_kind(it, b, KEYS_CSTR, true);
        break;
    default:
        fill_kind(it, b, KEYS_GENERIC, true);
    }
}

/* Before a refill in slot-order mode: what the cache yielded joins the done set (there is always room: a
 * slot-order yield that would fill it turns the interval to ordered mode first, see hmap_iter_next). */
static void remember_yielded(iter_state *it) {
    for (unsigned j = 0; j < it->n; j++)
        if (it->yielded_mask & (1u << j))
            it->yielded_g[it->n_yielded++] = it->g[j];
    it->yielded_mask = 0;
    it->slot_yields = it->n_yielded;
}

/* Is the interval [P, end) exactly the bucket of t that starts at P? (An interval ending at 2^64 has end 0,
 * so the width still comes out of end - P.) */
static inline bool chain_is_interval(const iter_state *it, const table *t) {
    if (t->B == 0)
        return it->P == 0 && it->end_top;
    uint64_t width = (uint64_t)1 << (64 - t->B);
    return (hash_of_g(it, it->P) & (width - 1)) == 0 && it->end - it->P == width;
}

/* The next interval's bucket, in the same array (a guess: the common case), so that its tophash word and
 * first slots are on their way while this one's entries are yielded. */
static void prefetch_next_interval(const iter_state *it, const table *t) {
    if (it->end_top || t->B == 0)
        return;
    size_t i = bucket_index(hash_of_g(it, it->end), t->B);
    __builtin_prefetch(&t->tophash[i]);
    __builtin_prefetch(t->slots + i * it->m->bucket_bytes);
}

/* Fills the cache from chain `head` of t, in slot order when its entries fit and their hashes differ,
 * else in g-order. */
static void fill_interval(iter_state *it, const table *t, bucket_ref head, bool filter) {
    fill_once(it, head, filter);
    if (!it->ordered && (!it->complete || cache_has_equal_hashes(it))) {
        it->ordered = true; /* from the interval's start (P), the hashes yielded so far excluded */
        fill_once(it, head, true);
    }
    it->cached = true;
    it->change_stamp = it->m->change_stamp;
    it->move_stamp = it->m->move_stamp;
    prefetch_next_interval(it, t);
}

/* Live entries of the chain at b, at most limit + 1 counted. */
static unsigned chain_live(const hmap *m, bucket_ref b, unsigned limit) {
    unsigned n = 0;
    for_each_chain_bucket(m, b) {
        n += count_bytes(live_slots(*b.tophash));
        if (n > limit)
            break;
    }
    return n;
}

/* Maps whose entries carry a record that is as good as their hash, without hashing: 8-byte keys with the
 * built-in hash (the key itself), and maps that store hashes (the stored hash). */
static inline bool direct_kind(const hmap *m) { return m->kind == KEYS_U64 || m->hash_off; }

/* Direct mode takes a chain in slot order, so its entries' hashes must differ (equal ones need the order
 * by tie key). Always so for 8-byte keys; for stored hashes, looked at (a chain has at most CACHE_SLOTS
 * entries here). */
static __attribute__((noinline)) bool stored_hashes_distinct(const hmap *m, bucket_ref b) {
    uint64_t h[CACHE_SLOTS];
    unsigned n = 0, s;
    for_each_chain_bucket(m, b) {
        for_each_slot(s, live_slots(*b.tophash)) {
            uint64_t hash;
            memcpy(&hash, slot_item(m, &b, s), 8); /* the stored hash leads the slot's item */
            for (unsigned k = 0; k < n; k++)
                if (h[k] == hash)
                    return false;
            if (n < CACHE_SLOTS)
                h[n++] = hash;
        }
    }
    return true;
}

/* Are the live tophash bytes of word w all different? Then so are their hashes (a tophash is a function of
 * the hash). Each byte is compared with the bytes 1 to 4 places on, cyclically, which pairs every two of
 * the 8 bytes: four exact zero-byte tests, no loop. */
static inline __attribute__((always_inline)) bool tophashes_distinct(uint64_t w) {
    const uint64_t live = live_slots(w);
    uint64_t clash = 0;
#pragma GCC unroll 4
    for (unsigned r = 8; r <= 32; r += 8) {
        uint64_t w_r = (w >> r) | (w << (64 - r)), live_r = (live >> r) | (live << (64 - r));
        clash |= zero_bytes(w ^ w_r) & live & live_r;
    }
    return !clash;
}

static inline bool chain_hashes_distinct(const hmap *m, bucket_ref b) {
    return !hashes_may_repeat(m) || (!*b.next && tophashes_distinct(*b.tophash)) ||
           stored_hashes_distinct(m, b);
}

/* Takes the interval [P, end), served by the chain at head of t, in direct mode if it can. */
static bool try_direct(iter_state *it, const table *t, bucket_ref head) {
    const hmap *m = it->m;
    if (!direct_kind(m) || it->ordered || chain_live(m, head, CACHE_SLOTS) > CACHE_SLOTS ||
        !chain_hashes_distinct(m, head))
        return false;
    it->direct = true;
    it->steady = false;
    it->direct_b = head;
    it->direct_live = live_slots(*head.tophash);
    it->cached = false;
    it->complete = true;
    it->n = it->next = 0;
    it->yielded_mask = 0;
    it->change_stamp = m->change_stamp;
    it->move_stamp = m->move_stamp;
    prefetch_next_interval(it, t);
    return true;
}

/* Hashes the live entries of the chain holding P and caches the pending ones of the interval. */
static void cache_fill(iter_state *it) {
    hmap *m = it->m;
    if (!it->started)
        start_interval(it);
    narrow_interval(it);
    table *t;
    size_t chain;
    locate(m, hash_of_g(it, it->P), &t, &chain);
    bucket_ref head = table_bucket(m, t, chain);
    if (!it->ordered)
        remember_yielded(it);
    /* Every live entry is pending when the interval is fresh and is the chain's whole bucket. */
    bool fresh = !it->ordered && !it->n_yielded && chain_is_interval(it, t);
    if (fresh && try_direct(it, t, head))
        return;
    fill_interval(it, t, head, !fresh);
}

static bool cache_valid(const iter_state *it, const hmap *m) {
    return it->cached && it->change_stamp == m->change_stamp; /* nothing inserted, nothing moved */
}

/* ---------------------------------------------------------------- stepping */

/* Ordered mode: could an entry after cache[j] share its g? Another live cached one, or an uncached one. */
static bool tie_after(const iter_state *it, unsigned j) {
    uint64_t g = it->g[j];
    for (unsigned k = j + 1; k < it->n && it->g[k] == g; k++)
        if (*it->top[k] >= MIN_TOPHASH)
            return true;
    return !it->complete && it->g[it->n - 1] == g;
}

/* Ordered mode: the cursor moves to cache entry j, just yielded. */
static void advance_to(iter_state *it, unsigned j) {
    bool tie = tie_after(it, j);
    it->P = it->g[j];
    it->at_P = true;
    it->all_at_P = !tie;
    if (tie)
        it->tie_len = (uint8_t)tie_key(it->m, it->key[j], it->tie);
}

/* The interval is done: the cursor moves to its end; false when that is the end of g-space. */
static bool next_interval(iter_state *it) {
    it->cached = false;
    if (it->end_top)
        return false;
    it->P = it->end;
    start_interval(it);
    return true;
}

/* Takes the next live cache entry, if any (the cache is valid). */
static inline __attribute__((always_inline)) bool yield_cached(iter_state *it, void **key, void **val) {
    while (it->next < it->n) {
        unsigned j = it->next++;
        if (*it->top[j] < MIN_TOPHASH)
            continue; /* deleted since the cache was filled */
        if (it->ordered) {
            advance_to(it, j);
        } else if (it->slot_yields == CACHE_SLOTS) {
            /* The done set is full: the rest of the interval goes in g-order (which adds nothing to it),
             * refilled from the interval's start with everything yielded so far excluded. */
            remember_yielded(it);
            it->ordered = true;
            it->cached = false;
            return false;
        } else {
            it->yielded_mask |= (uint16_t)(1u << j);
            it->slot_yields++;
        }
        if (key)
            *key = it->key[j];
        if (val)
            *val = it->val[j];
        return true;
    }
    return false;
}

/* Direct mode, within the current bucket: 1 an entry yielded, 0 the bucket is done, -1 the rest of the
 * interval needs the general path (the done set is full). */
static inline __attribute__((always_inline)) int direct_step(iter_state *it, const hmap *m, void **key,
                                                             void **val) {
    while (it->direct_live) {
        unsigned s = (unsigned)__builtin_ctzll(it->direct_live) / 8;
        it->direct_live &= it->direct_live - 1;
        if (slot_top(&it->direct_b, s) < MIN_TOPHASH)
            continue; /* deleted since */
        unsigned char *item = it->direct_b.slots + s * it->key_step;
        uint64_t word; /* the entry's record: its 8-byte key, or its stored hash */
        memcpy(&word, item, 8);
        if (it->change_stamp != m->change_stamp && yielded_before(it, word))
            continue; /* already yielded, deleted and inserted again */
        if (it->n_yielded == CACHE_SLOTS) {
            it->direct_live |= (uint64_t)0x80 << (8 * s); /* not taken: the general path will see it */
            return -1;
        }
        it->yielded_g[it->n_yielded++] = word; /* until leave_direct */
        if (key)
            *key = item + it->key_off;
        if (val)
            *val = it->direct_b.slots + it->val_off + s * it->val_step;
        return 1;
    }
    return 0;
}

/* Direct mode ends: the records of the entries it yielded become their g, as the general path keeps them
 * (a record is the 8-byte key itself, which the built-in hash maps one to one onto hashes, or the stored
 * hash). */
static void leave_direct(iter_state *it) {
    const hmap *m = it->m;
    for (unsigned k = 0; k < it->n_yielded; k++)
        it->yielded_g[k] =
            (m->kind == KEYS_U64 ? hash_u64_inline(it->yielded_g[k], m->seed) : it->yielded_g[k]) + it->s;
    it->slot_yields = it->n_yielded;
    it->direct = false;
}

/* Takes the chain at head of t for the interval just set up (every live entry pending): direct mode if it
 * can, else the cache. */
static __attribute__((noinline)) void take_fresh_chain(iter_state *it, const table *t, bucket_ref head) {
    leave_direct(it);
    if (!try_direct(it, t, head))
        fill_interval(it, t, head, false);
}

/* The next interval when nothing is moving: the map has one array and the interval just done was exactly
 * one of its buckets, with nothing carried from a wider interval, so the next is the following
 * bucket-wide block of g-space and every live entry of its chain is pending. A single-bucket chain in
 * direct mode is taken at once (at most 8 entries: the done set has room). False when this does not
 * apply: the general path decides. */
static inline __attribute__((always_inline)) bool next_bucket_steady(iter_state *it, const hmap *m) {
    const table *t = m->cur;
    if (m->old || it->ordered || !it->complete || it->end_top || t->B == 0 || it->narrowed ||
        !chain_is_interval(it, t))
        return false;
    uint64_t next_end = it->end + ((uint64_t)1 << (64 - t->B));
    if (next_end != 0 && next_end < it->end)
        return false; /* the next bucket is the one 2^64 cuts in two (its first part began the iteration) */
    it->P = it->end;
    it->end = next_end;
    it->end_top = next_end == 0;
    it->n_yielded = it->slot_yields = 0;
    it->yielded_mask = 0;
    it->at_P = false;
    it->steady_bucket = bucket_index(hash_of_g(it, it->P), t->B);
    bucket_ref head = table_bucket(m, t, it->steady_bucket);
    if (it->direct && !*head.next && chain_hashes_distinct(m, head)) {
        it->direct_b = head;
        it->direct_live = live_slots(*head.tophash);
        it->change_stamp = m->change_stamp; /* nothing yielded from this interval yet */
        prefetch_next_interval(it, t);
    } else {
        take_fresh_chain(it, t, head);
    }
    it->steady = it->direct;
    return true;
}

/* Direct mode, steady: the next bucket-wide interval, if its chain is a single bucket (else false, with
 * nothing changed: the general path counts the chain). What next_bucket_steady checks still holds: nothing
 * has moved since it did. */
static inline __attribute__((always_inline)) bool steady_next_bucket(iter_state *it, const hmap *m) {
    const table *t = m->cur;
    uint64_t width = (uint64_t)1 << (64 - t->B), next_end = it->end + width;
    if (it->end_top || (next_end != 0 && next_end < it->end))
        return false; /* the end of g-space, or the bucket it cuts in two */
    /* Consecutive blocks of g-space are consecutive buckets (wrapping around the array). */
    size_t i = (it->steady_bucket + 1) & (t->nbuckets - 1);
    bucket_ref head = table_bucket(m, t, i);
    if (*head.next || !chain_hashes_distinct(m, head))
        return false;
    it->steady_bucket = i;
    it->P = it->end;
    it->end = next_end;
    it->end_top = next_end == 0;
    it->n_yielded = it->slot_yields = 0;
    it->change_stamp = m->change_stamp; /* nothing yielded from this interval yet */
    it->direct_b = head;
    it->direct_live = live_slots(*head.tophash);
    __builtin_prefetch(t->slots + ((i + 2) & (t->nbuckets - 1)) * m->bucket_bytes);
    return true;
}

/* Direct mode, the bucket done: on to the next one that has entries, while nothing moves; false when the
 * slow path must decide. Out of line, so that hmap_iter_next's own path stays free of calls. */
static __attribute__((noinline)) bool direct_refill(iter_state *it) {
    const hmap *m = it->m;
    if (it->change_stamp != m->change_stamp)
        return false; /* an insert or a move: the slow path looks */
    for (;;) {
        if (bucket_ref_next(m, &it->direct_b))
            it->direct_live = live_slots(*it->direct_b.tophash);
        else if (!it->steady || !steady_next_bucket(it, m))
            return false;
        if (it->direct_live)
            return true;
    }
}

/* Direct mode, the bucket done: the next bucket of the chain, or of the next interval when nothing is
 * moving. False when the general path must decide, or when the next interval went to the cache (then
 * `direct` is off). */
static inline __attribute__((always_inline)) bool direct_next_bucket(iter_state *it, const hmap *m) {
    if (bucket_ref_next(m, &it->direct_b)) {
        it->direct_live = live_slots(*it->direct_b.tophash);
        return true;
    }
    return next_bucket_steady(it, m) && it->direct;
}

/* Direct mode: the next entry of the interval, or false when the interval is done (or must continue on
 * the general path: then `direct` is off and the cache invalid, so the caller refills). */
static bool direct_next(iter_state *it, hmap *m, void **key, void **val) {
    for (;;) {
        int r = direct_step(it, m, key, val);
        if (r > 0)
            return true;
        if (r < 0) {
            leave_direct(it);
            it->ordered = true; /* the done set is full: the rest in g-order, from the interval's start */
            return false;
        }
        if (direct_next_bucket(it, m))
            continue;
        if (!it->direct)
            return false; /* the next interval is in the cache */
        leave_direct(it);
        it->complete = true;
        return false;
    }
}

/* The iteration is over: later calls return false at once (the empty cache keeps them off the fast path). */
static void finish(iter_state *it) {
    it->done = true;
    it->cached = false;
    it->direct = false;
    it->n = it->next = 0;
    window_of(it)->slots = 0;
    it->window_handed = 0;
    it->window_from = WINDOW_NONE;
}

/* Direct mode, the next slot of the bucket (direct_live is not empty) when it is live and nothing moved
 * or was inserted (a clear or a new seed bumps the change stamp too): no loop and no call. The rest
 * (deleted slots, inserts, the next bucket) is direct_next's, on the slow path. */
static inline __attribute__((always_inline)) bool direct_fast(iter_state *it, void **key, void **val) {
    const hmap *m = it->m;
    unsigned s = first_slot(it->direct_live);
    const bucket_ref *b = &it->direct_b;
    /* Nothing inserted or moved since the interval began, so its chain holds at most the CACHE_SLOTS live
     * entries try_direct counted (or one bucket's 8): the done set has room. */
    if (it->change_stamp != m->change_stamp || slot_top(b, s) < MIN_TOPHASH)
        return false;
    it->direct_live &= it->direct_live - 1;
    unsigned char *item = b->slots + s * it->key_step;
    memcpy(&it->yielded_g[it->n_yielded++], item, 8); /* its record, until leave_direct */
    if (key)
        *key = item + it->key_off;
    if (val)
        *val = b->slots + it->val_off + s * it->val_step;
    return true;
}

/* May direct mode go on with the interval it is taking? Not once entries have moved. Nor, where two keys
 * may share a hash, once a key has been inserted: the new key may have the hash of a pending one, and
 * records alone cannot tell it from that key, nor from a yielded key inserted again — the general path
 * orders equal hashes by tie key. (8-byte keys are their own records; in a map that stores hashes, an
 * insert that meets its own hash in the chain sets hmap.equal_hashes.) */
static bool direct_still_exact(const iter_state *it, const hmap *m) {
    return it->move_stamp == m->move_stamp && (!hashes_may_repeat(m) || it->change_stamp == m->change_stamp);
}

static __attribute__((noinline)) bool iter_next_slow(iter_state *it, void **key, void **val) {
    hmap *m = it->m;
    if (it->epoch != m->epoch || m->count == 0) {
        finish(it); /* everything present at the start has been deleted since */
        return false;
    }
    if (it->direct && !it->direct_live && direct_refill(it) && direct_fast(it, key, val))
        return true; /* the next bucket's first entry */
    for (;;) {
        if (it->direct) {
            if (direct_still_exact(it, m)) {
                if (direct_next(it, m, key, val))
                    return true;
                if (it->ordered || it->cached)
                    continue; /* the cache: refilled (ordered mode), or filled for the next interval */
                goto interval_done;
            }
            leave_direct(it); /* the general path, with the hashes yielded so far */
        }
        if (!cache_valid(it, m))
            cache_fill(it);
        if (it->direct)
            continue;
        if (yield_cached(it, key, val))
            return true;
        if (!it->cached)
            continue; /* switched to ordered mode */
        if (!it->complete) {
            it->cached = false; /* more entries of this interval: take the next CACHE_SLOTS of them */
            continue;
        }
    interval_done:
        if (next_bucket_steady(it, m))
            continue;
        if (!next_interval(it)) {
            finish(it);
            return false;
        }
    }
}

/* One entry the general way: direct mode, or the next cache entry when it is live, the cache is valid
 * (nothing inserted or moved since the last call) and in slot order with room to remember it, else the
 * slow path. (An ended iteration has an empty cache and is not in direct mode; hmap_clear and a new seed
 * bump the change stamp, so a valid cache also means the iteration has not been ended by them.) */
static inline __attribute__((always_inline)) bool iter_yield(iter_state *it, void **key, void **val) {
    if (it->direct && it->direct_live && direct_fast(it, key, val))
        return true;
    if (it->next < it->n) {
        const hmap *m = it->m;
        unsigned j = it->next;
        if (it->change_stamp == m->change_stamp && !it->ordered && it->slot_yields < CACHE_SLOTS &&
            *it->top[j] >= MIN_TOPHASH) {
            it->next = (uint8_t)(j + 1);
            it->yielded_mask |= (uint16_t)(1u << j);
            it->slot_yields++;
            if (key)
                *key = it->key[j];
            if (val)
                *val = it->val[j];
            return true;
        }
    }
    if (!it->m || it->done)
        return false;
    return iter_next_slow(it, key, val);
}

/* ---------------------------------------------------------------- the window */

/* Bucket i of the array the sweep is on, as the head of its chain. */
static inline bucket_ref sweep_bucket(const iter_state *it, size_t i) {
    bucket_ref b = {(uint64_t *)&it->sweep.tophash[i], it->sweep.slots + i * it->sweep.bucket_bytes,
                    (overflow_bucket **)&it->sweep.overflow[i]};
    return b;
}

/* The sweep: in steady direct mode, once the window holds the rest of an interval (nothing left in
 * direct_live, no further bucket in its chain), the interval is done when the window is, and its records
 * are not needed (the next interval starts with an empty done set). The window then goes on straight along
 * the array, chain after chain, while nothing is inserted or moved (deletes are fine: what was taken was
 * yielded): each chain is an interval if it lies before the end of g-space (or the bucket it cuts in two),
 * its entries fit the done set and their hashes differ; within a chain, what the window yielded from one
 * bucket joins the done set before the next bucket's entries go out. The state behind the window is left
 * as it was and brought up to date (sweep_settle) only when the sweep stops. */
static void sweep_begin(iter_state *it) {
    const hmap *m = it->m;
    const table *t = m->cur;
    if (!it->steady || it->direct_live || *it->direct_b.next || it->end_top)
        return;
    it->sweep.tophash = t->tophash;
    it->sweep.overflow = t->overflow;
    it->sweep.slots = t->slots;
    it->sweep.bucket_bytes = m->bucket_bytes;
    it->sweep.mask = t->nbuckets - 1;
    it->sweep.i = it->steady_bucket;
    it->sweep.shift = 64 - t->B; /* steady mode has B > 0 */
    it->sweep.whole_left = (0 - it->end) >> it->sweep.shift;
    /* The bucket it begins at: bucket i itself, or the last overflow bucket of chain i (whose tophash word
     * leads it). */
    it->sweep.ovf = it->direct_b.tophash == &t->tophash[it->steady_bucket]
                        ? NULL
                        : (overflow_bucket *)(void *)it->direct_b.tophash;
    it->sweep.n_yielded = it->n_yielded;
    it->sweep.run = 1;
    /* A run's slots are numbered on from bucket to bucket (hmap.h), which is their place in memory when a
     * bucket is 8 (key, value) items, each as long as the steps: not so when keys and values lie apart. */
    it->sweep.runs = m->bucket_bytes == SLOTS_PER_BUCKET * it->key_step &&
                     m->bucket_bytes == SLOTS_PER_BUCKET * it->val_step;
    it->window_from = WINDOW_SWEEP;
}

/* Visits the bits set in a window mask (bit 8 * b + s: slot s of the window's bucket b), lowest first. */
#define for_each_window_bit(bit, mask)                                                                       \
    for (uint64_t bits_left_ = (mask); bits_left_ && ((bit) = (unsigned)__builtin_ctzll(bits_left_), true);  \
         bits_left_ &= bits_left_ - 1)

/* A bucket's live_slots() mask (the high bit of byte s) as the window's bits for bucket 0 (bit s). */
static inline uint64_t window_bits(uint64_t live) { return ((live >> 7) * 0x0102040810204080ULL) >> 56; }

/* ...and back. */
static inline uint64_t live_of_window_bits(uint64_t bits) {
    uint64_t live = 0;
    unsigned s;
    for_each_window_bit(s, bits) live |= (uint64_t)0x80 << (8 * s);
    return live;
}

/* The sweep stops: the state says that the interval of the chain whose bucket the last entry taken from
 * the window lies in is being taken, with that bucket's entries in the window (WINDOW_DIRECT), as if the
 * general path had got there. The run's later buckets, not reached, leave the window: the general path
 * takes them as the intervals after it. */
static void sweep_settle(iter_state *it) {
    hmap_iter_window_ *w = window_of(it);
    uint64_t taken = it->window_handed & ~w->slots;
    /* the window's bucket b; nothing taken (0): refill_sweep stopped on its way, the window empty */
    unsigned b = taken ? (63u - (unsigned)__builtin_clzll(taken)) / 8 : 0;
    if (b > 0) {
        memmove(it->rec, it->rec + SLOTS_PER_BUCKET * b, SLOTS_PER_BUCKET * sizeof it->rec[0]);
        w->keys += (size_t)b * it->sweep.bucket_bytes;
        w->vals += (size_t)b * it->sweep.bucket_bytes;
    }
    w->slots = (w->slots >> (8 * b)) & 0xff;
    it->window_handed = (it->window_handed >> (8 * b)) & 0xff;
    size_t i = it->sweep.i - (it->sweep.run - 1) + b;
    it->window_from = WINDOW_DIRECT;
    if (i == it->steady_bucket)
        return; /* the sweep has not moved on from where the state is */
    it->steady_bucket = i;
    it->P = ((uint64_t)i << it->sweep.shift) + it->s;
    it->end = it->P + ((uint64_t)1 << it->sweep.shift);
    it->end_top = it->end == 0;
    overflow_bucket *o = it->sweep.ovf; /* (only a window of one bucket is an overflow bucket) */
    if (o) {
        bucket_ref ob = {&o->tophash, o->slots, &o->next};
        it->direct_b = ob;
    } else {
        it->direct_b = sweep_bucket(it, i);
    }
    it->n_yielded = it->slot_yields = it->sweep.n_yielded;
    it->direct_live = 0;
}

/* A mask of the live slots `live`, keeping only its first `room` slots. */
static inline uint64_t first_slots(uint64_t live, unsigned room) {
    while (count_bytes(live) > room)
        live &= ~((uint64_t)1 << (63 - __builtin_clzll(live))); /* the last one waits for room */
    return live;
}

/* Each slot's record (its first 8 bytes: the 8-byte key, or the stored hash before the key) into rec[]:
 * every slot, dead ones too (they are never read back), so that with a constant step it is 8 plain moves. */
static inline __attribute__((always_inline)) void copy_records(uint64_t *rec, const unsigned char *slots,
                                                               size_t step) {
#pragma GCC unroll 8
    for (unsigned s = 0; s < SLOTS_PER_BUCKET; s++)
        memcpy(&rec[s], slots + s * step, 8);
}

/* The records of the bucket whose slots start at `slots`, as the window's bucket b. */
static inline __attribute__((always_inline)) void take_records(iter_state *it, unsigned b,
                                                               const unsigned char *slots) {
    uint64_t *rec = it->rec + SLOTS_PER_BUCKET * b;
    switch (it->key_step) { /* the common slot layouts (see set_layout in bucket.c): a constant step */
    case 16:
        copy_records(rec, slots, 16);
        break;
    case 24:
        copy_records(rec, slots, 24);
        break;
    case 8:
        copy_records(rec, slots, 8);
        break;
    default:
        copy_records(rec, slots, it->key_step);
    }
}

/* The window holds the slots `bits` (window bits) of the buckets whose slots start at `slots` (key and
 * value places from the layout copied at hmap_iter_init). */
static inline void window_hold(iter_state *it, hmap_iter_window_ *w, unsigned char *slots, uint64_t bits) {
    w->slots = bits;
    w->keys = slots + it->key_off;
    w->vals = slots + it->val_off;
    it->window_handed = bits;
}

/* Direct mode: the entries `live` of direct_b (live slots still to look at), as many as the done set has
 * room for (all of them when the interval has just begun). Their records are copied now: a key yielded
 * and then deleted and inserted again must still be known as yielded, and its slot may hold another key
 * by then. */
static inline __attribute__((always_inline)) void hand_out_direct(iter_state *it, hmap_iter_window_ *w,
                                                                  uint64_t live) {
    const bucket_ref b = it->direct_b;
    if (it->n_yielded > CACHE_SLOTS - SLOTS_PER_BUCKET)
        live = first_slots(live, CACHE_SLOTS - it->n_yielded);
    take_records(it, 0, b.slots);
    window_hold(it, w, b.slots, window_bits(live));
    it->direct_live &= ~live;
    it->window_from = WINDOW_DIRECT;
}

/* Slot order with the cache: the pending cache entries from `next` on that lie in the bucket of the first
 * one (all of them, for a chain of one bucket), as many as the done set has room for. */
static void hand_out_cached(iter_state *it, hmap_iter_window_ *w) {
    unsigned room = CACHE_SLOTS - it->slot_yields;
    uint64_t handed = 0;
    const uint8_t *bucket_tops = NULL; /* the bucket's tophash word, as bytes */
    unsigned char *slots = NULL;       /* ...and its slots */
    for (unsigned j = it->next; j < it->n && room; j++) {
        if (*it->top[j] < MIN_TOPHASH)
            continue;                                                      /* deleted since the fill */
        unsigned s = (unsigned)((uintptr_t)it->top[j] % sizeof(uint64_t)); /* tophash words are aligned */
        if (!bucket_tops) {
            bucket_tops = it->top[j] - s;
            slots = it->key[j] - it->key_off - (size_t)s * it->key_step;
        } else if (it->top[j] - s != bucket_tops) {
            break; /* the next bucket of the chain */
        }
        it->window_index[s] = (uint8_t)j;
        handed |= (uint64_t)1 << s;
        room--;
    }
    if (slots)
        window_hold(it, w, slots, handed);
    it->window_from = WINDOW_CACHE;
}

/* Hands out, after an entry was yielded the general way, the entries that follow it in the same bucket
 * (direct mode) or cache (slot order), as many as the done set has room for. They count as yielded only
 * once hmap_iter_next has returned them: take_back_window settles that. Nothing is handed out while an
 * insert since the interval began asks every entry to be checked against the done set. */
static void hand_out_window(iter_state *it) {
    const hmap *m = it->m;
    hmap_iter_window_ *w = window_of(it);
    if (it->change_stamp != m->change_stamp)
        return;
    if (it->direct) {
        hand_out_direct(it, w, it->direct_live & live_slots(*it->direct_b.tophash));
        sweep_begin(it);
    } else if (it->cached && !it->ordered)
        hand_out_cached(it, w);
    w->stamp = &m->write_stamp;
    w->stamp_seen = m->write_stamp;
}

/* What hmap_iter_next took from the window (the slots no longer in its mask) joins the state as if the
 * general path had yielded it; what it did not take goes back: to direct_live (still to look at), or
 * stays in the cache at `next` (it takes slots in order, so what it took are the first ones). The window
 * holds one bucket here (sweep_settle has cut a run down to the bucket it stopped in). */
static void take_back_window(iter_state *it) {
    hmap_iter_window_ *w = window_of(it);
    uint64_t taken = it->window_handed & ~w->slots;
    unsigned s;
    if (it->window_from == WINDOW_DIRECT) {
        for_each_window_bit(s, taken) it->yielded_g[it->n_yielded++] = it->rec[s];
        it->direct_live |= live_of_window_bits(w->slots);
    } else if (it->window_from == WINDOW_CACHE) {
        for_each_window_bit(s, taken) {
            unsigned j = it->window_index[s];
            it->yielded_mask |= (uint16_t)(1u << j);
            it->slot_yields++;
            it->next = (uint8_t)(j + 1);
        }
    }
    w->slots = 0;
    it->window_handed = 0;
    it->window_from = WINDOW_NONE;
}

/* May the sweep take its next step? It is on (WINDOW_SWEEP), the window is empty, and nothing was inserted
 * or moved since it began (deletes are fine: what was taken was yielded). */
static inline bool sweep_may_step(const iter_state *it, const hmap_iter_window_ *w) {
    return it->window_from == WINDOW_SWEEP && !w->slots && it->change_stamp == it->m->change_stamp;
}

/* What a sweep fetches on arriving at chain i: bucket i + 2's slots (the array is read front to back), and
 * the overflow bucket of the chain OVERFLOW_AHEAD ahead, if it has one (overflow buckets are anywhere). */
static inline void sweep_prefetch(const iter_state *it, size_t i, const unsigned char *slots) {
    __builtin_prefetch(slots + 2 * it->sweep.bucket_bytes);
    const overflow_bucket *ahead = it->sweep.overflow[(i + OVERFLOW_AHEAD) & it->sweep.mask];
    if (ahead) {
        __builtin_prefetch(ahead);
        __builtin_prefetch((const unsigned char *)ahead + 64);
        __builtin_prefetch((const unsigned char *)ahead + 128);
    }
}

/* Can chain i + 1 join a run that ends at chain i? It follows in the array (a window's buckets are
 * consecutive in memory), lies before the end of g-space (`left` whole buckets remain), is a single
 * bucket, and its hashes differ (always, unless check_tophashes: hashes_may_repeat; then its tophash
 * bytes say so). */
static inline __attribute__((always_inline)) bool sweep_may_join(const iter_state *it, size_t i,
                                                                 uint64_t left, bool check_tophashes) {
    return left && i < it->sweep.mask && !it->sweep.overflow[i + 1] &&
           (!check_tophashes || tophashes_distinct(it->sweep.tophash[i + 1]));
}

/* The chains that join a run whose first bucket (chain *i, slots at `slots`, window bits *bits) is taken:
 * while sweep_may_join says so, up to RUN_BUCKETS buckets in all. Written once, inlined with the common
 * item sizes as constants (`step`: a bucket is 8 items of it) and with the tophash check on or off, so
 * that each bucket that joins costs a few loads, 8 record moves and no branch on the layout. */
static inline __attribute__((always_inline)) unsigned sweep_join(iter_state *it, size_t *i, uint64_t *left,
                                                                 const unsigned char *slots, uint64_t *bits,
                                                                 size_t step, bool check_tophashes) {
    unsigned run = 1;
    for (; run < RUN_BUCKETS && sweep_may_join(it, *i, *left, check_tophashes); run++) {
        uint64_t top = it->sweep.tophash[*i + 1];
        ++*i;
        --*left;
        const unsigned char *next = slots + (size_t)run * SLOTS_PER_BUCKET * step;
        copy_records(it->rec + SLOTS_PER_BUCKET * run, next, step);
        sweep_prefetch(it, *i, next);
        *bits |= window_bits(live_slots(top)) << (8 * run);
    }
    return run;
}

/* The sweep's window: the bucket whose slots start at `slots` (live slots `live`, not empty: chain i's
 * head, or an overflow bucket of it), and when `join` the single-bucket chains that follow it, up to
 * RUN_BUCKETS; the first entry is yielded now, as hmap_iter_next would. */
static inline __attribute__((always_inline)) void sweep_take(iter_state *it, hmap_iter_window_ *w, size_t i,
                                                             uint64_t left, unsigned char *slots,
                                                             uint64_t live, bool join, void **key,
                                                             void **val) {
    uint64_t bits = window_bits(live);
    unsigned run = 1;
    take_records(it, 0, slots);
    sweep_prefetch(it, i, slots);
    if (join && it->sweep.runs) { /* (runs: a bucket is 8 items of key_step bytes) */
        bool check = hashes_may_repeat(it->m);
        if (it->key_step == 16 && !check) /* 8-byte keys and values */
            run = sweep_join(it, &i, &left, slots, &bits, 16, false);
        else if (it->key_step == 24 && !check) /* string keys with 8-byte values */
            run = sweep_join(it, &i, &left, slots, &bits, 24, false);
        else
            run = sweep_join(it, &i, &left, slots, &bits, it->key_step, check);
    }
    it->sweep.i = i;
    it->sweep.whole_left = left;
    it->sweep.run = run;
    window_hold(it, w, slots, bits & (bits - 1));
    it->window_handed = bits;
    w->stamp_seen = *w->stamp;
    unsigned s = first_slot(live);
    if (key)
        *key = w->keys + s * w->key_step;
    if (val)
        *val = w->vals + s * w->val_step;
}

/* The sweep's common step, inline in hmap_iter_refill_: the chain it was on ends with the window's last
 * bucket, and the next chain with entries is a single bucket that sweep_may_join would take. False, with
 * nothing changed, for everything else: refill_sweep then takes the step the long way from the same
 * place. */
static inline __attribute__((always_inline)) bool sweep_plain_step(iter_state *it, hmap_iter_window_ *w,
                                                                   void **key, void **val) {
    size_t i = it->sweep.i;
    uint64_t left = it->sweep.whole_left, live;
    const bool check = hashes_may_repeat(it->m);
    if (it->sweep.ovf || it->sweep.overflow[i])
        return false; /* the chain goes on */
    do {
        if (!sweep_may_join(it, i, left, check))
            return false;
        i++;
        left--;
        live = live_slots(it->sweep.tophash[i]);
    } while (!live);
    it->sweep.n_yielded = 0;
    sweep_take(it, w, i, left, it->sweep.slots + i * it->sweep.bucket_bytes, live, true, key, val);
    return true;
}

/* The sweep's step the long way (sweep_may_step holds): on to the next bucket with entries, in the chain
 * the window was on or the chains after it, whose first is yielded. False when the sweep must stop there
 * (where it got to is in its own fields, which sweep_settle reads). */
static __attribute__((noinline)) bool refill_sweep(iter_state *it, void **key, void **val) {
    const hmap *m = it->m;
    hmap_iter_window_ *w = window_of(it);
    size_t i = it->sweep.i;
    uint64_t left = it->sweep.whole_left, word;
    unsigned char *slots;
    bool join;
    do {
        overflow_bucket *o = it->sweep.ovf ? it->sweep.ovf->next : it->sweep.overflow[i];
        if (o) { /* the chain goes on: its interval too, with what the window yielded done (a run of
                    one bucket: its chain goes on) */
            unsigned s;
            for_each_window_bit(s, it->window_handed) it->yielded_g[it->sweep.n_yielded++] = it->rec[s];
            it->window_handed = 0;
            it->sweep.ovf = o;
            word = o->tophash;
            slots = o->slots;
            join = false;
        } else { /* the interval is done: the next chain */
            if (!left--)
                return false;
            i = (i + 1) & it->sweep.mask;
            word = it->sweep.tophash[i];
            join = !it->sweep.overflow[i];
            if (!join || hashes_may_repeat(m)) {
                bucket_ref head = sweep_bucket(it, i);
                if ((*head.next && chain_live(m, head, CACHE_SLOTS) > CACHE_SLOTS) ||
                    !chain_hashes_distinct(m, head))
                    return false; /* too many for the done set, or perhaps equal hashes: the general path */
            }
            it->sweep.i = i;
            it->sweep.run = 1;
            it->sweep.ovf = NULL;
            it->sweep.n_yielded = 0;
            it->window_handed = 0; /* (an empty bucket i may lead its chain: nothing to record then) */
            slots = it->sweep.slots + i * it->sweep.bucket_bytes;
        }
    } while (!(word = live_slots(word)));
    sweep_take(it, w, i, left, slots, word, join, key, val);
    return true;
}

/* Everything but the steady sweep: what the window yielded joins the state, the next entry comes the
 * general way, and the window is filled again. */
static __attribute__((noinline)) bool refill_general(iter_state *it, void **key, void **val) {
    if (it->window_from == WINDOW_SWEEP)
        sweep_settle(it);
    take_back_window(it);
    if (!iter_yield(it, key, val))
        return false;
    hand_out_window(it);
    return true;
}

bool hmap_iter_refill_(hmap_iter *opaque, void **key, void **val) {
    if (!opaque)
        return false;
    iter_state *it = state_of(opaque);
    if (it->m && sweep_may_step(it, &opaque->window_) &&
        (sweep_plain_step(it, &opaque->window_, key, val) || refill_sweep(it, key, val)))
        return true;
    return refill_general(it, key, val);
}

/* For compilers without __builtin_ctzll, which hmap.h's HMAP_ITER_LOWEST_BIT_ then calls. */
unsigned hmap_iter_lowest_bit_(uint64_t slots) { return (unsigned)__builtin_ctzll(slots); }

/* The exported copy of the inline hmap_iter_next (C's inline: this declaration makes the definition). */
extern inline bool hmap_iter_next(hmap_iter *it, void **key, void **val);

void hmap_iter_init(hmap_iter *opaque, hmap *m) {
    if (!opaque)
        return;
    memset(opaque, 0, sizeof *opaque);
    iter_state *it = state_of(opaque);
    it->m = m;
    if (!m) {
        it->done = true;
        return;
    }
    /* A fixed seed (tests) makes the order reproducible: s then derives from the seed too. */
    it->s = map_class_of(m)->fixed_seed ? mix64(m->seed ^ 0x5bd1e995u) : fast_random();
    /* The order starts at a bucket boundary of the current array, so that no bucket of it is cut in two
     * by the end of g-space: every chain is then one interval, taken in slot order (a bucket cut in two is
     * taken in g-order, sorted, in two parts: some 9,000 instructions an iteration at 1Ki 8-byte keys,
     * callgrind). 2^B starting points still make orders differ between iterations; only a map of one
     * bucket starts anywhere in it. An array of another size later (a resize inside the loop) may cut
     * one of its buckets: the general path takes it as it takes any. */
    if (m->cur && m->cur->B > 0)
        it->s &= ~(uint64_t)0 << (64 - m->cur->B);
    it->epoch = m->epoch;
    it->key_step = (uint32_t)m->key_stride;
    it->key_off = (uint8_t)m->hash_off;
    it->val_off = (uint32_t)(m->val_size ? m->vals_offset : m->hash_off); /* a set's value is its key */
    it->val_step = (uint32_t)(m->val_size ? m->val_stride : m->key_stride);
    opaque->window_.key_step = it->key_step;
    opaque->window_.val_step = it->val_step;
}

void hmap_iter_done(hmap_iter *opaque) {
    if (!opaque)
        return;
    iter_state *it = state_of(opaque);
    finish(it);
    it->m = NULL;
}
