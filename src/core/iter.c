/*
 * iter.c — iteration that yields each key exactly once while the map grows, shrinks and is written to.
 *
 * Go's iterator walks the buckets of the array it started on and, when that array has been evacuated
 * meanwhile, re-reads the keys it finds in the old copies and looks them up again in the new array. In C
 * that is a use-after-free waiting to happen: a key deleted since may have been freed by key_drop. And Go's
 * scheme cannot follow a shrink, where buckets merge. We iterate differently.
 *
 * Position in hash space. Buckets are indexed by the high bits of the hash (map.c), so every bucket of
 * every array size covers one contiguous interval of hash values, and those intervals are ordered like
 * the bucket indexes. The iterator visits entries in increasing order of their 64-bit hash, starting at a
 * random point and wrapping around once. Its state is just a cursor P:
 *
 *     done = { entries with hash < P }  ∪  { entries with hash == P before position rpos of chain rchain }
 *
 * A hash never changes, so P means the same thing whichever array an entry sits in, however many times
 * entries have moved between two calls: nothing is ever pinned, and nothing read by the iterator can be
 * freed under it. Each call finds where hash P lives now (the old bucket if not evacuated, else the cur
 * bucket — locate() in core.h), and looks in that one chain for the smallest pending hash below the
 * end of the chain's interval (the nearer end of the old and the cur bucket covering P, since a shrink
 * merges intervals of which some may still be in the old array). No candidate: P jumps to that end.
 *
 * Keys with equal 64-bit hashes (only a custom hash produces those in practice) are told apart by chain
 * position: inserts never move entries within a chain, and evacuation keeps their order. The resume
 * position (rchain, rpos) is the only reference into an array the iterator holds, and evacuation updates
 * it (iters_note_moved), so the map keeps a list of open iterations.
 *
 * Cost. Each yielded entry needs the hashes of the entries of its chain. They are cached (sorted by hash,
 * up to CACHE_SLOTS entries) until a key is inserted or entries move; a delete leaves the cache valid (the
 * slot's tophash says it is gone). A plain iteration thus hashes every key once.
 */
#include "core.h"

#include <string.h>

#define CACHE_SLOTS 12
#define CACHE_NONE 0xff

struct iter_state {
    hmap *m;
    iter_state *next, *prev; /* the map's list of open iterations */
    uint64_t start; /* random starting hash; the first lap covers [start, 2^64), the second [0, start) */
    uint64_t P;
    uint64_t clear_stamp;
    const table *rt; /* resume reference for entries whose hash is P; NULL: all of them are pending */
    size_t rchain, rpos;
    bool p_done; /* every entry whose hash is P is done (no other key shared P when it was yielded) */
    uint8_t lap;
    bool done;
    /* sorted (hash, position) of the live entries of one chain, the interval end it was used with, and
     * where the next scan resumes (everything before it is done) */
    uint8_t cache_n, cache_cursor;
    bool cache_end_top; /* the end is 2^64 */
    uint64_t cache_end;
    const table *cache_t;
    size_t cache_chain;
    uint64_t cache_insert_stamp, cache_move_stamp;
    uint64_t cache_hash[CACHE_SLOTS];
    uint16_t cache_pos[CACHE_SLOTS];
};

_Static_assert(sizeof(iter_state) <= sizeof(hmap_iter), "hmap_iter is too small for the iterator state");
_Static_assert(_Alignof(iter_state) <= _Alignof(hmap_iter), "hmap_iter is not aligned enough");

typedef unsigned __int128 u128; /* interval ends reach 2^64 */

static u128 interval_end(uint64_t hash, unsigned B) {
    if (B == 0)
        return (u128)1 << 64;
    return ((u128)(hash >> (64 - B)) + 1) << (64 - B);
}

static bool pending(const iter_state *it, const table *t, size_t chain, uint64_t h, size_t pos) {
    if (h != it->P)
        return h > it->P;
    if (it->p_done)
        return false;
    if (!it->rt)
        return true;
    return it->rt == t && it->rchain == chain && pos >= it->rpos;
}

/* Is (h, pos) before (best_h, best_pos)? */
static bool earlier(uint64_t h, size_t pos, uint64_t best_h, size_t best_pos) {
    return h < best_h || (h == best_h && pos < best_pos);
}

static bool cache_valid(const iter_state *it, const table *t, size_t chain) {
    const hmap *m = it->m;
    return it->cache_t == t && it->cache_chain == chain && it->cache_insert_stamp == m->insert_stamp &&
           it->cache_move_stamp == m->move_stamp;
}

/* Hashes the chain's live entries into the cache, sorted; CACHE_NONE if there are too many. */
static void cache_fill(iter_state *it, const table *t, size_t chain) {
    const hmap *m = it->m;
    it->cache_t = t;
    it->cache_chain = chain;
    it->cache_insert_stamp = m->insert_stamp;
    it->cache_move_stamp = m->move_stamp;
    it->cache_cursor = 0;
    uint8_t n = 0;
    size_t pos = 0;
    bucket_ref b = table_bucket(m, t, chain);
    do {
        for (unsigned s = 0; s < SLOTS_PER_BUCKET; s++, pos++) {
            if (slot_top(&b, s) < MIN_TOPHASH)
                continue;
            if (n == CACHE_SLOTS || pos > UINT16_MAX) {
                it->cache_n = CACHE_NONE;
                return;
            }
            uint64_t h = map_hash(m, slot_key(m, &b, s));
            uint8_t j = n++;
            for (; j > 0 && earlier(h, pos, it->cache_hash[j - 1], it->cache_pos[j - 1]); j--) {
                it->cache_hash[j] = it->cache_hash[j - 1];
                it->cache_pos[j] = it->cache_pos[j - 1];
            }
            it->cache_hash[j] = h;
            it->cache_pos[j] = (uint16_t)pos;
        }
    } while (bucket_ref_next(m, &b));
    it->cache_n = n;
}

static bool slot_live(const hmap *m, const table *t, size_t chain, size_t pos) {
    bucket_ref b = chain_at(m, t, chain, pos);
    return slot_top(&b, (unsigned)(pos % SLOTS_PER_BUCKET)) >= MIN_TOPHASH;
}

/* The pending entry of chain (t, chain) with the smallest (hash, position) and hash < end; *tie tells
 * whether another pending entry has the same hash. */
static bool next_in_chain(iter_state *it, const table *t, size_t chain, u128 end, uint64_t *h_out,
                          size_t *pos_out, bucket_ref *b_out, bool *tie) {
    const hmap *m = it->m;
    *tie = false;
    if (!cache_valid(it, t, chain))
        cache_fill(it, t, chain);
    if (it->cache_n != CACHE_NONE) {
        /* P only grows, so entries before the cursor stay done: each entry is looked at about once. */
        it->cache_end = (uint64_t)end;
        it->cache_end_top = end == (u128)1 << 64;
        for (uint8_t j = it->cache_cursor; j < it->cache_n; j++) {
            uint64_t h = it->cache_hash[j];
            size_t pos = it->cache_pos[j];
            if ((u128)h >= end) {
                it->cache_cursor = j;
                return false;
            }
            if (!pending(it, t, chain, h, pos))
                continue;
            bucket_ref b = chain_at(m, t, chain, pos);
            if (slot_top(&b, (unsigned)(pos % SLOTS_PER_BUCKET)) < MIN_TOPHASH)
                continue; /* deleted since the cache was filled */
            *b_out = b;
            *h_out = h;
            *pos_out = pos;
            it->cache_cursor = j + 1;
            for (uint8_t k = j + 1; k < it->cache_n && it->cache_hash[k] == h && !*tie; k++)
                *tie = slot_live(m, t, chain, it->cache_pos[k]);
            return true;
        }
        it->cache_cursor = it->cache_n;
        return false;
    }
    /* A long chain (colliding keys): scan it whole. (This loop and cache_fill's walk the chain alike; a
     * shared walking helper measured ~43 more instructions per yielded entry, so they stay apart.) */
    bool found = false;
    size_t pos = 0;
    *h_out = 0;
    *pos_out = 0;
    bucket_ref b = table_bucket(m, t, chain);
    do {
        for (unsigned s = 0; s < SLOTS_PER_BUCKET; s++, pos++) {
            if (slot_top(&b, s) < MIN_TOPHASH)
                continue;
            uint64_t h = map_hash(m, slot_key(m, &b, s));
            if ((u128)h >= end || !pending(it, t, chain, h, pos))
                continue;
            if (found && h == *h_out)
                *tie = true; /* positions rise during the scan: the first one found stays the best */
            else if (!found || h < *h_out) {
                *h_out = h;
                *pos_out = pos;
                *tie = false;
                found = true;
                *b_out = b;
            }
        }
    } while (bucket_ref_next(m, &b));
    return found;
}

static void iter_finish(iter_state *it) { it->done = true; }

/* Yields the next pending entry of chain (t, chain) below end, if any, and moves the cursor past it. */
static bool yield_next(iter_state *it, table *t, size_t chain, u128 end, void **key, void **val) {
    uint64_t h = 0;
    size_t pos = 0;
    bool tie;
    bucket_ref b;
    if (!next_in_chain(it, t, chain, end, &h, &pos, &b, &tie))
        return false;
    /* With no other key of the same hash, everything at P is done: a key deleted and inserted again
     * right away (it may land further down the chain) is then not yielded a second time. */
    it->P = h;
    it->p_done = !tie;
    it->rt = tie ? t : NULL;
    it->rchain = chain;
    it->rpos = pos + 1;
    const hmap *m = it->m;
    unsigned s = (unsigned)(pos % SLOTS_PER_BUCKET);
    if (key)
        *key = slot_key(m, &b, s);
    if (val)
        *val = slot_val(m, &b, s);
    return true;
}

/* The interval [P, end) is done: moves P to end, or to the second lap, or finishes. */
static bool advance_past(iter_state *it, u128 end) {
    u128 lap_end = it->lap == 0 ? (u128)1 << 64 : (u128)it->start;
    it->rt = NULL;
    it->p_done = false;
    if (end < lap_end) {
        it->P = (uint64_t)end;
    } else if (it->lap == 0 && it->start != 0) {
        it->lap = 1;
        it->P = 0;
        it->cache_t = NULL; /* P went back: the cached interval and cursor no longer apply */
    } else {
        iter_finish(it);
        return false;
    }
    return true;
}

/* The end of the interval to take from the chain holding P: the nearer end of P's buckets in the two
 * arrays, and of the lap. */
static u128 interval_for(const iter_state *it) {
    const hmap *m = it->m;
    u128 end = interval_end(it->P, m->cur->B);
    if (m->old) {
        u128 old_end = interval_end(it->P, m->old->B);
        end = old_end < end ? old_end : end;
    }
    u128 lap_end = it->lap == 0 ? (u128)1 << 64 : (u128)it->start;
    return lap_end < end ? lap_end : end;
}

bool hmap_iter_next(hmap_iter *opaque, void **key, void **val) {
    iter_state *it = (iter_state *)opaque;
    if (!it || !it->m || it->done)
        return false;
    hmap *m = it->m;
    if (it->clear_stamp != m->clear_stamp || m->count == 0 || !m->cur) {
        iter_finish(it);
        return false;
    }
    for (;;) {
        table *t;
        size_t chain;
        u128 end;
        if (it->cache_t && it->cache_n != CACHE_NONE && cache_valid(it, it->cache_t, it->cache_chain) &&
            (it->cache_end_top || it->P < it->cache_end)) {
            /* Nothing moved or was inserted since the last call: same chain, same interval. */
            t = (table *)it->cache_t;
            chain = it->cache_chain;
            end = it->cache_end_top ? (u128)1 << 64 : it->cache_end;
        } else {
            locate(m, it->P, &t, &chain);
            end = interval_for(it);
        }
        if (yield_next(it, t, chain, end, key, val))
            return true;
        if (!advance_past(it, end))
            return false;
    }
}

void hmap_iter_init(hmap_iter *opaque, hmap *m) {
    iter_state *it = (iter_state *)opaque;
    if (!it)
        return;
    memset(it, 0, sizeof *it);
    it->m = m;
    if (!m) {
        it->done = true;
        return;
    }
    /* A fixed seed (tests) makes the order reproducible: the start then derives from the seed too. */
    it->start = it->P = m->fixed_seed ? mix64(m->seed ^ 0x5bd1e995u) : fast_random();
    it->clear_stamp = m->clear_stamp;
    it->next = m->iters;
    if (m->iters)
        m->iters->prev = it;
    m->iters = it;
}

void hmap_iter_done(hmap_iter *opaque) {
    iter_state *it = (iter_state *)opaque;
    if (!it || !it->m)
        return;
    hmap *m = it->m;
    if (it->prev)
        it->prev->next = it->next;
    else
        m->iters = it->next;
    if (it->next)
        it->next->prev = it->prev;
    it->m = NULL;
    it->done = true;
}

void iters_note_moved(hmap *m, const table *from, size_t i, size_t pos_lo, size_t pos_hi, const table *to,
                      size_t d_first, const size_t *dest_fill) {
    for (iter_state *it = m->iters; it; it = it->next) {
        if (it->rt != from || it->rchain != i || it->rpos < pos_lo || it->rpos > pos_hi)
            continue;
        size_t d = bucket_index(it->P, to->B);
        it->rt = to;
        it->rchain = d;
        it->rpos = dest_fill[d - d_first];
    }
}

void iters_forget_tables(hmap *m) {
    for (iter_state *it = m->iters; it; it = it->next) {
        it->rt = NULL;
        it->cache_t = NULL;
    }
}

void iters_note_cleared(hmap *m) {
    m->clear_stamp++;
    iters_forget_tables(m);
}
