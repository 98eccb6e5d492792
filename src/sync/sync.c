/* SPDX-License-Identifier: MIT */
/*
 * sync/sync.c — hmap_sync: the concurrent map, as 2^s shards of hmap (structures in sync.h).
 *
 * Shards. A key's shard is chosen by bits 8..8+s-1 of its hash (s <= 8). The hmap inside a shard takes
 * the tophash from bits 0..7 and the bucket index from the top B bits, B <= 48 (the core's MAX_B), so
 * bits 8..15 are used by neither: within a shard, tophashes and bucket indexes are as evenly spread as in
 * a map of its own. All shards share one hash seed (fixed for the map's life: an hmap re-seeds when it
 * empties, but here the hash is computed once, before the shard is known), so any shard's hmap computes
 * a key's hash (map_key_hash) and the shard then uses it (the *_hashed entry points).
 *
 * The number of shards: 4 per CPU, or one per ENTRIES_PER_SHARD entries of the size hint, whichever is
 * more, 16..256 (a power of two).
 *
 * Writes lock the shard (a futex word, sync.h: threads may outnumber cores) and run the hmap's own
 * operation, so each shard grows, shrinks and gives memory back as an hmap does. In an optimistic map
 * (keys compared bytewise) a write also makes the shard's sequence counter odd for its duration, and for
 * 8-byte keys and values refreshes the shard's view of its array (core/sync_support.h) before making it
 * even again. hmap_sync_clear and hmap_sync_compact are such writes too, one per shard.
 *
 * Reads of an optimistic map take no lock and write nothing shared: inside an epoch read section they
 * read the counter, look the key up and keep the answer only if the counter did not move; after
 * PEEK_TRIES failures (a writer is busy on the shard) they take the lock. 8-byte keys and values are
 * looked up through the view, from the counter's own line straight to the tophash word, the whole read
 * inline in hmap_sync_load; other sizes with map_peek_hashed, which walks the shard's hmap. What makes
 * this safe is that nothing a racing reader may read is freed under it: the shard's hmap allocates
 * through reclaim.c's hook, whose frees wait for the epoch. Maps with an equal() function (string keys,
 * say) read under the lock: equal() must never see a key half overwritten.
 *
 * Linearization points: a write's is inside its critical section; an optimistic read's is its first
 * counter load (the state it read was that one, unchanged until its last load).
 *
 * Drops (key_drop / val_drop) of what leaves the map are queued per shard (reclaim.c) and run outside the
 * lock once no read section that could have seen the key or value remains: the rule in hmap_sync.h.
 */
#include "sync.h"

#include "../base/random.h"
#include "../core/hashed.h"
#include "../core/sync_support.h"
#include "epoch.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define SHARD_SHIFT 8    /* shard index from hash bits 8.. (see the top of this file) */
#define MIN_SHARD_BITS 4 /* 16 shards */
#define MAX_SHARD_BITS 8 /* 256: SHARD_SHIFT + 8 bits stay clear of any bucket index */
#define SHARDS_PER_CPU 4 /* threads on different cores rarely meet on one shard */
/* A map sized for many entries gets a shard per this many (up to MAX_SHARD_BITS): every write makes its
 * shard's line (counter, view) travel to the other cores, whose next reads of that shard then miss, so
 * the more shards, the fewer reads pay for another core's writes. A shard costs about a kilobyte. */
#define ENTRIES_PER_SHARD 64
#define PEEK_TRIES 4     /* optimistic attempts before a reader takes the lock */
#define PEEK_MAX_VAL 256 /* larger values are copied under the lock (a long copy would be torn often) */

_Static_assert(MAX_SHARD_BITS + SHARD_SHIFT <= 64 - 48, "shard bits must stay below every bucket index");
_Static_assert(sizeof(shard) == (size_t)1 << SHARD_SHIFT,
               "shard_of takes a shard's offset from the hash bits");

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Value copies and comparisons: a set's values are 0 bytes, and may come as NULL. */
static inline void val_copy(void *dst, const void *src, size_t n) {
    if (n == 8)
        __builtin_memcpy(dst, src, 8); /* the common size, inline */
    else if (n)
        memcpy(dst, src, n);
}

static inline bool val_equal(const void *a, const void *b, size_t n) {
    return n == 0 || memcmp(a, b, n) == 0;
}

static size_t shard_count(const hmap_sync *m) { return (size_t)1 << m->shard_bits; }

static inline uint64_t key_hash(const hmap_sync *m, const void *key) {
    if (m->u64_hash) {
        uint64_t k;
        memcpy(&k, key, 8);
        return map_u64_hash(k, m->hash_seed);
    }
    return map_key_hash(m->shards[0].map, key);
}

/* Shard (hash >> SHARD_SHIFT) & (2^s - 1), at that index times 2^SHARD_SHIFT bytes: the hash bits masked in
 * place are the byte offset, one instruction on the way of every read. */
static inline shard *shard_of(hmap_sync *m, uint64_t hash) {
    return (shard *)((unsigned char *)m->shards + (hash & m->shard_offset_mask));
}

/* ---------------------------------------------------------------- the shard lock (sync.h) */

#define LOCK_SPINS 100 /* tries before sleeping: a write holds the lock for well under a microsecond */

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
#ifdef __linux__
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0); /* returns at once if changed */
#else
    (void)word;
    (void)expected;
    sched_yield();
#endif
}

static void futex_wake_one(_Atomic uint32_t *word) {
#ifdef __linux__
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#else
    (void)word;
#endif
}

static __attribute__((noinline)) void lock_contended(shard_lock *l) {
    for (int i = 0; i < LOCK_SPINS; i++) {
        cpu_relax();
        uint32_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
        if (w == 0 && atomic_compare_exchange_weak_explicit(&l->word, &w, 1, memory_order_acquire,
                                                            memory_order_relaxed))
            return;
    }
    /* 2: whoever gives the lock back must wake a sleeper; a thread taking it this way cannot know whether
     * others sleep, so it keeps the 2 (at worst one needless wake) */
    while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0)
        futex_wait(&l->word, 2);
}

static inline void lock_take(shard_lock *l) {
    uint32_t free_word = 0;
    if (__builtin_expect(!atomic_compare_exchange_strong_explicit(&l->word, &free_word, 1,
                                                                  memory_order_acquire, memory_order_relaxed),
                         0))
        lock_contended(l);
}

static inline void lock_give(shard_lock *l) {
    if (__builtin_expect(atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2, 0))
        futex_wake_one(&l->word);
}

/* ---------------------------------------------------------------- writing a shard */

static inline void write_begin(const hmap_sync *m, shard *sh) {
    lock_take(&sh->lock);
    if (m->optimistic) {
        uint64_t s = atomic_load_explicit(&sh->seq, memory_order_relaxed);
        atomic_store_explicit(&sh->seq, s + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release); /* odd before any change to the map is seen */
    }
}

/* Ends a write: the view refreshed and the counter even again, the count published, and what is safe in
 * the queues taken out (to run after the unlock, in after_write). */
static inline void write_end(const hmap_sync *m, shard *sh, limbo_batch *b) {
    size_t count = m->fast_reads ? map_view_publish(sh->map, &sh->view) : hmap_len(sh->map);
    if (m->optimistic) {
        uint64_t s = atomic_load_explicit(&sh->seq, memory_order_relaxed);
        atomic_store_explicit(&sh->seq, s + 1, memory_order_release);
    }
    atomic_store_explicit(&sh->count, count, memory_order_relaxed);
    if (sh->drops || sh->frees)
        limbo_collect(sh, b);
    else
        b->chunks = NULL, b->frees = NULL;
    lock_give(&sh->lock);
}

static void run_batch(hmap_sync *m, shard *sh, limbo_batch *b) {
    if (!b->chunks && !b->frees)
        return;
    limbo_run(m, sh, b);
    if (b->chunks) {
        lock_take(&sh->lock);
        limbo_recycle(m, sh, b->chunks);
        lock_give(&sh->lock);
    }
}

/* After the unlock: what write_end collected runs; if this write's removals moved the epoch, what became
 * safe by that (an array a shrink just freed, say) is collected and run too. */
static inline void after_write(hmap_sync *m, shard *sh, limbo_batch *b) {
    if (!b->chunks && !b->frees && !limbo_advance_due)
        return; /* the common case: nothing to reclaim */
    bool advanced = limbo_advance_if_due();
    run_batch(m, sh, b);
    if (advanced) {
        limbo_batch more;
        lock_take(&sh->lock);
        limbo_collect(sh, &more);
        lock_give(&sh->lock);
        run_batch(m, sh, &more);
    }
}

/* The value slot for key, inserting it if absent (*inserted). *drop_passed: the key passed must be dropped
 * after the unlock (it was present, and the stored key is another object). NULL on ENOMEM. */
static void *slot_for(hmap_sync *m, shard *sh, const void *key, uint64_t hash, bool *inserted,
                      bool *drop_passed) {
    *drop_passed = false;
    if (type_drops_key(&m->type)) {
        void *kslot, *vslot;
        if (map_find_entry(sh->map, key, hash, &kslot, &vslot)) {
            *inserted = false;
            *drop_passed = memcmp(kslot, key, m->type.key_size) != 0;
            return vslot;
        }
    }
    return map_assign_hashed(sh->map, key, hash, inserted);
}

/* Queues the value in slot for its drop (when the map drops values): false on ENOMEM. */
static bool retire_value(hmap_sync *m, shard *sh, const void *slot) {
    if (!type_drops_val(&m->type))
        return true;
    unsigned char *e = limbo_reserve(m, sh);
    if (!e)
        return false;
    memcpy(e + m->val_offset, slot, m->type.val_size);
    limbo_commit(m, sh, e, DROP_VAL);
    return true;
}

/* ---------------------------------------------------------------- reading a shard */

static inline bool counter_unchanged(const shard *sh, uint64_t s) {
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&sh->seq, memory_order_relaxed) == s;
}

/* The optimistic read, any value size, with retries: 1 found (value copied), 0 absent, -1 not settled
 * (a writer kept the shard busy: take the lock). */
static __attribute__((noinline)) int peek_retrying(hmap_sync *m, shard *sh, const void *key, uint64_t hash,
                                                   void *val_out) {
    _Alignas(16) unsigned char buf[PEEK_MAX_VAL];
    size_t vs = m->type.val_size;
    if (!m->optimistic || vs > PEEK_MAX_VAL || !epoch_pin())
        return -1;
    int result = -1;
    for (int tries = 0; tries < PEEK_TRIES && result < 0; tries++) {
        uint64_t s = atomic_load_explicit(&sh->seq, memory_order_acquire);
        if (s & 1) {
            cpu_relax();
            continue;
        }
        void *out = val_out ? buf : NULL;
        map_peek_result r = m->fast_reads ? map_peek_8_8(sh->map, key, hash, out, &sh->seq, s)
                                          : map_peek_hashed(sh->map, key, hash, out, &sh->seq, s);
        if (r != MAP_PEEK_TORN && counter_unchanged(sh, s))
            result = r == MAP_PEEK_HIT;
    }
    epoch_unpin();
    if (result == 1 && val_out)
        val_copy(val_out, buf, vs);
    return result;
}

static bool locked_load(shard *sh, const void *key, uint64_t hash, void *val_out, size_t vs) {
    lock_take(&sh->lock);
    void *v = map_get_hashed(sh->map, key, hash);
    if (v && val_out && vs)
        memcpy(val_out, v, vs);
    lock_give(&sh->lock);
    return v != NULL;
}

/* One lock-free attempt for 8-byte keys and values, through the shard's view: 1 found (*val set), 0
 * absent, -1 not settled (a writer was busy, a resize runs, the key's chain goes on, or the thread has no
 * epoch record yet). No call on the way: the time of a read is its chain of dependent loads and its cache
 * misses, and a call would add the saving of registers around it. */
static inline __attribute__((always_inline)) int peek_8_8(shard *sh, uint64_t key, uint64_t hash,
                                                          uint64_t *val) {
    epoch_thread *t = epoch_self;
    if (__builtin_expect(t == NULL, 0))
        return -1; /* the slow path registers the thread */
    epoch_enter(t);
    uint64_t s = atomic_load_explicit(&sh->seq, memory_order_acquire);
    map_peek_result r = s & 1 ? MAP_PEEK_TORN : map_view_find_8_8(&sh->view, key, hash, val, &sh->seq, s);
    if (r == MAP_PEEK_FURTHER)
        r = map_view_find_further_8_8(&sh->view, key, hash, val, &sh->seq, s);
    bool settled = r != MAP_PEEK_TORN && counter_unchanged(sh, s);
    epoch_leave(epoch_self);
    return settled ? r == MAP_PEEK_HIT : -1;
}

/* A read of a map with fast_reads: the view first, the rest in peek_retrying. */
static inline __attribute__((always_inline)) int peek(hmap_sync *m, shard *sh, const void *key, uint64_t hash,
                                                      void *val_out) {
    if (m->fast_reads) {
        uint64_t k, v = 0;
        __builtin_memcpy(&k, key, 8);
        int r = peek_8_8(sh, k, hash, &v);
        if (r == 1 && val_out)
            __builtin_memcpy(val_out, &v, 8);
        if (r >= 0)
            return r;
    }
    return peek_retrying(m, sh, key, hash, val_out);
}

/* Every read but the one hmap_sync_load inlines, and its unsettled cases: the argument checks, a hash
 * that is not the built-in one, other sizes, retries (where the inline read found a writer busy, the
 * view is not tried again), maps read under the lock. */
static __attribute__((noinline)) bool load_general(hmap_sync *m, const void *key, void *val_out) {
    if (!m || !key) {
        errno = EINVAL;
        return false;
    }
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    int r = !m->optimistic    ? -1
            : m->inline_reads ? peek_retrying(m, sh, key, hash, val_out)
                              : peek(m, sh, key, hash, val_out);
    return r >= 0 ? r : locked_load(sh, key, hash, val_out, m->type.val_size);
}

/* hmap_sync_load's read when the key's first bucket did not settle it: the rest of the chain, inside the
 * section hmap_sync_load entered (left here), from the same counter value s. A function of its own, so
 * that hmap_sync_load reaches it by a tail call and keeps no registers for it. */
static __attribute__((noinline)) bool load_further(hmap_sync *m, const void *key, void *val_out, uint64_t s) {
    uint64_t k, v = 0;
    __builtin_memcpy(&k, key, 8);
    uint64_t hash = map_u64_hash(k, m->hash_seed); /* again: fewer registers live in hmap_sync_load */
    shard *sh = shard_of(m, hash);
    map_peek_result r = map_view_find_further_8_8(&sh->view, k, hash, &v, &sh->seq, s);
    bool settled = r != MAP_PEEK_TORN && counter_unchanged(sh, s);
    epoch_leave(epoch_self);
    if (!settled)
        return load_general(m, key, val_out);
    if (r == MAP_PEEK_HIT && val_out)
        __builtin_memcpy(val_out, &v, 8);
    return r == MAP_PEEK_HIT;
}

/* ---------------------------------------------------------------- the API: reads */

bool hmap_sync_load(hmap_sync *m, const void *key, void *val_out) {
    /* peek_8_8, written out so that the unsettled cases leave by tail calls: nothing is kept on the stack */
    epoch_thread *t = epoch_self;
    if (__builtin_expect(m && key && m->inline_reads && t, 1)) {
        uint64_t k, v = 0;
        __builtin_memcpy(&k, key, 8);
        uint64_t hash = map_u64_hash(k, m->hash_seed);
        shard *sh = shard_of(m, hash);
        epoch_enter(t);
        uint64_t s = atomic_load_explicit(&sh->seq, memory_order_acquire);
        if (__builtin_expect(!(s & 1), 1)) {
            map_peek_result r = map_view_find_8_8(&sh->view, k, hash, &v, &sh->seq, s);
            if (__builtin_expect(r == MAP_PEEK_FURTHER, 0))
                return load_further(m, key, val_out, s); /* leaves the section */
            if (__builtin_expect(r != MAP_PEEK_TORN && counter_unchanged(sh, s), 1)) {
                epoch_leave(t);
                if (r == MAP_PEEK_HIT && val_out)
                    __builtin_memcpy(val_out, &v, 8);
                return r == MAP_PEEK_HIT;
            }
        }
        epoch_leave(t);
    }
    return load_general(m, key, val_out); /* the argument checks, the thread's first read, retries */
}

bool hmap_sync_load_with(hmap_sync *m, const void *key, void (*fn)(const void *val, void *ctx), void *ctx) {
    if (!m || !key || !fn) {
        errno = EINVAL;
        return false;
    }
    _Alignas(16) unsigned char small[PEEK_MAX_VAL];
    size_t vs = m->type.val_size;
    void *buf = vs <= sizeof small ? small : malloc(vs);
    if (!buf || !epoch_pin()) {
        if (buf != small)
            free(buf);
        errno = ENOMEM;
        return false;
    }
    bool found = hmap_sync_load(m, key, buf);
    if (found)
        fn(buf, ctx);
    epoch_unpin();
    if (buf != small)
        free(buf);
    return found;
}

size_t hmap_sync_len(hmap_sync *m) {
    if (!m)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < shard_count(m); i++)
        n += atomic_load_explicit(&m->shards[i].count, memory_order_relaxed);
    return n;
}

/* ---------------------------------------------------------------- the API: writes */

/* store and swap: old_out NULL drops the old value (deferred), else hands it over. */
static int put(hmap_sync *m, const void *key, const void *val, void *old_out) {
    if (!m || !key || (!val && m->type.val_size))
        return -EINVAL;
    size_t vs = m->type.val_size;
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    limbo_batch b;
    bool inserted, drop_passed;
    int rc;
    write_begin(m, sh);
    void *slot = slot_for(m, sh, key, hash, &inserted, &drop_passed);
    if (!slot) {
        rc = -ENOMEM;
    } else if (inserted) {
        val_copy(slot, val, vs);
        rc = 1;
    } else if (old_out ? (val_copy(old_out, slot, vs), true) : retire_value(m, sh, slot)) {
        val_copy(slot, val, vs);
        rc = 0;
    } else {
        rc = -ENOMEM; /* the old value's drop could not be queued: nothing changed */
        drop_passed = false;
    }
    write_end(m, sh, &b);
    if (drop_passed)
        drop_key(&m->type, (void *)key);
    after_write(m, sh, &b);
    return rc;
}

/* ---- the plain case: 8-byte keys and values compared bytewise, no drops (plain_writes) ----
 * store and delete written straight, without the limbo's queues of drops and the generic copies: at 1Mi
 * keys a write's time is its cache misses, and the fewer instructions lie between two writes' misses, the
 * more of them overlap. Frees of the map's arrays are deferred all the same (readers walk them). */

static __attribute__((noinline)) void plain_reclaim(hmap_sync *m, shard *sh) {
    limbo_batch b;
    limbo_collect(sh, &b);
    lock_give(&sh->lock);
    after_write(m, sh, &b);
}

/* write_end and after_write of a plain write. */
static inline __attribute__((always_inline)) void plain_end(hmap_sync *m, shard *sh) {
    size_t count = map_view_publish(sh->map, &sh->view);
    atomic_store_explicit(&sh->seq, atomic_load_explicit(&sh->seq, memory_order_relaxed) + 1,
                          memory_order_release);
    atomic_store_explicit(&sh->count, count, memory_order_relaxed);
    if (__builtin_expect(sh->frees != NULL, 0)) {
        plain_reclaim(m, sh); /* gives the lock back */
        return;
    }
    lock_give(&sh->lock);
    if (__builtin_expect(limbo_advance_due, 0)) {
        limbo_batch none = {NULL, NULL};
        after_write(m, sh, &none);
    }
}

int hmap_sync_store(hmap_sync *m, const void *key, const void *val) {
    if (__builtin_expect(!m || !key || !val || !m->plain_writes, 0))
        return put(m, key, val, NULL);
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    bool inserted;
    map_view_prefetch(&sh->view, hash);
    write_begin(m, sh);
    void *slot = map_assign_hashed(sh->map, key, hash, &inserted);
    if (slot)
        __builtin_memcpy(slot, val, 8);
    plain_end(m, sh);
    return slot ? inserted : -ENOMEM;
}

int hmap_sync_swap(hmap_sync *m, const void *key, const void *val, void *old_out) {
    return put(m, key, val, old_out);
}

int hmap_sync_load_or_store(hmap_sync *m, const void *key, const void *val, void *actual_out) {
    if (!m || !key || (!val && m->type.val_size))
        return -EINVAL;
    size_t vs = m->type.val_size;
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    if (m->optimistic && peek(m, sh, key, hash, actual_out) == 1)
        return 0; /* present: a read settles it, no lock */
    limbo_batch b;
    bool inserted;
    int rc;
    write_begin(m, sh);
    void *slot = map_assign_hashed(sh->map, key, hash, &inserted);
    if (!slot) {
        rc = -ENOMEM;
    } else if (inserted) {
        val_copy(slot, val, vs);
        rc = 1;
    } else {
        if (actual_out)
            val_copy(actual_out, slot, vs);
        rc = 0;
    }
    write_end(m, sh, &b);
    after_write(m, sh, &b);
    return rc;
}

/* The removals: expect (compare_and_delete) must equal the value; val_out, when hand_over, receives the
 * value (load_and_delete). 1 removed, 0 not, -ENOMEM. Under the lock. */
static int remove_locked(hmap_sync *m, shard *sh, const void *key, uint64_t hash, const void *expect,
                         void *val_out) {
    size_t vs = m->type.val_size;
    if (expect) {
        const void *v = map_get_hashed(sh->map, key, hash);
        if (!v || !val_equal(v, expect, vs))
            return 0;
    }
    if (!m->drops)
        return map_remove_hashed(sh->map, key, hash, NULL, val_out);
    unsigned char *e = limbo_reserve(m, sh);
    if (!e)
        return -ENOMEM;
    void *kout = type_drops_key(&m->type) ? e + m->key_offset : NULL;
    void *vout = val_out ? val_out : (type_drops_val(&m->type) ? e + m->val_offset : NULL);
    if (!map_remove_hashed(sh->map, key, hash, kout, vout))
        return 0;
    unsigned parts = (kout ? DROP_KEY : 0) | (!val_out && vout ? DROP_VAL : 0);
    if (parts)
        limbo_commit(m, sh, e, parts);
    return 1;
}

static bool remove_entry(hmap_sync *m, const void *key, const void *expect, void *val_out) {
    if (!m || !key) {
        errno = EINVAL;
        return false;
    }
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    limbo_batch b;
    write_begin(m, sh);
    int rc = remove_locked(m, sh, key, hash, expect, val_out);
    write_end(m, sh, &b);
    after_write(m, sh, &b);
    if (rc < 0)
        errno = ENOMEM;
    return rc > 0;
}

bool hmap_sync_delete(hmap_sync *m, const void *key) {
    if (__builtin_expect(!m || !key || !m->plain_writes, 0))
        return remove_entry(m, key, NULL, NULL);
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    map_view_prefetch(&sh->view, hash);
    write_begin(m, sh);
    bool removed = map_remove_hashed(sh->map, key, hash, NULL, NULL);
    plain_end(m, sh);
    return removed;
}

bool hmap_sync_load_and_delete(hmap_sync *m, const void *key, void *val_out) {
    return remove_entry(m, key, NULL, m && m->type.val_size ? val_out : NULL);
}

bool hmap_sync_compare_and_delete(hmap_sync *m, const void *key, const void *old_val) {
    if (m && m->type.val_size && !old_val) {
        errno = EINVAL;
        return false;
    }
    static const unsigned char nothing[1]; /* a set's old value: any non-NULL pointer asks to compare */
    return remove_entry(m, key, old_val ? old_val : nothing, NULL);
}

bool hmap_sync_compare_and_swap(hmap_sync *m, const void *key, const void *old_val, const void *new_val) {
    if (!m || !key || (m->type.val_size && (!old_val || !new_val))) {
        errno = EINVAL;
        return false;
    }
    size_t vs = m->type.val_size;
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    limbo_batch b;
    int rc = 0;
    write_begin(m, sh);
    void *v = map_get_hashed(sh->map, key, hash);
    if (v && val_equal(v, old_val, vs)) {
        rc = retire_value(m, sh, v) ? 1 : -ENOMEM;
        if (rc > 0)
            val_copy(v, new_val, vs);
    }
    write_end(m, sh, &b);
    after_write(m, sh, &b);
    if (rc < 0)
        errno = ENOMEM;
    return rc > 0;
}

int hmap_sync_update(hmap_sync *m, const void *key, void (*fn)(void *val, bool inserted, void *ctx),
                     void *ctx) {
    if (!m || !key || !fn)
        return -EINVAL;
    uint64_t hash = key_hash(m, key);
    shard *sh = shard_of(m, hash);
    limbo_batch b;
    bool inserted, drop_passed;
    write_begin(m, sh);
    void *slot = slot_for(m, sh, key, hash, &inserted, &drop_passed);
    if (slot)
        fn(slot, inserted, ctx);
    write_end(m, sh, &b);
    if (drop_passed)
        drop_key(&m->type, (void *)key);
    after_write(m, sh, &b);
    return !slot ? -ENOMEM : inserted ? 1 : 0;
}

/* ---------------------------------------------------------------- clear and compact */

/* Moves every entry of the shard's map into the limbo (their drops deferred as a delete's are), then
 * empties the map without dropping: -ENOMEM, the shard unchanged, when the queue's room could not be
 * allocated. Under the lock. */
static int clear_deferring(hmap_sync *m, shard *sh) {
    size_t n = hmap_len(sh->map);
    if (n == 0) {
        hmap_clear(sh->map); /* nothing to drop; whatever arrays it kept go back */
        return 0;
    }
    if (!limbo_make_room(m, sh, n))
        return -ENOMEM;
    bool keys = type_drops_key(&m->type), vals = type_drops_val(&m->type);
    unsigned parts = (keys ? DROP_KEY : 0) | (vals ? DROP_VAL : 0);
    limbo_chunk *from = sh->drops_tail;
    hmap_iter it;
    void *k, *v;
    hmap_iter_init(&it, sh->map);
    while (hmap_iter_next(&it, &k, &v)) {
        unsigned char *e = limbo_reserve(m, sh); /* the room is there: never NULL */
        if (keys)
            memcpy(e + m->key_offset, k, m->type.key_size);
        if (vals)
            memcpy(e + m->val_offset, v, m->type.val_size);
        limbo_fill(m, sh, e, parts);
    }
    map_clear_undropped(sh->map);
    limbo_stamp_since(sh, from); /* stamped once they are out of the map */
    return 0;
}

/* Runs op on every shard in turn, each time as one write (the shard locked, what it frees handed to the
 * reclamation after the unlock), then gives back what no reader can see any more. The first error is
 * returned; the other shards are still done. */
static int every_shard_written(hmap_sync *m, int (*op)(hmap_sync *m, shard *sh)) {
    if (!m)
        return -EINVAL;
    int rc = 0;
    for (size_t i = 0; i < shard_count(m); i++) {
        shard *sh = &m->shards[i];
        limbo_batch b;
        write_begin(m, sh);
        int r = op(m, sh);
        write_end(m, sh, &b);
        after_write(m, sh, &b);
        if (r < 0 && rc == 0)
            rc = r;
    }
    hmap_sync_reclaim(m); /* O(n) already: the old arrays go back now, unless a reader is inside a section */
    return rc;
}

static int clear_shard(hmap_sync *m, shard *sh) {
    if (m->drops)
        return clear_deferring(m, sh);
    hmap_clear(sh->map);
    return 0;
}

/* The arrays hmap_compact frees wait for the readers (reclaim.c's hook). */
static int compact_shard(hmap_sync *m, shard *sh) {
    (void)m;
    return hmap_compact(sh->map);
}

int hmap_sync_clear(hmap_sync *m) { return every_shard_written(m, clear_shard); }

int hmap_sync_compact(hmap_sync *m) { return every_shard_written(m, compact_shard); }

/* ---------------------------------------------------------------- range */

#define RANGE_BUFFER 4096 /* bytes of entries copied per lock hold */
#define RANGE_BATCH 64    /* entries at most per lock hold */

typedef struct range_buf {
    unsigned char *bytes;
    size_t key_bytes, pair, batch;
} range_buf;

/* Copies up to buf->batch entries of the open iteration; *more false when it ended (and is done). */
static size_t range_fill(const hmap_sync *m, hmap_iter *it, const range_buf *buf, bool *more) {
    size_t n = 0;
    void *k, *v;
    while (n < buf->batch) {
        if (!hmap_iter_next(it, &k, &v)) {
            hmap_iter_done(it);
            *more = false;
            return n;
        }
        unsigned char *e = buf->bytes + n * buf->pair;
        memcpy(e, k, m->type.key_size);
        if (m->type.val_size)
            memcpy(e + buf->key_bytes, v, m->type.val_size);
        n++;
    }
    *more = true;
    return n;
}

/* One shard: false when fn asked to stop (or a read section could not be opened: errno ENOMEM). */
static bool range_shard(hmap_sync *m, shard *sh, const range_buf *buf,
                        bool (*fn)(const void *key, const void *val, void *ctx), void *ctx) {
    hmap_iter it;
    bool open = false, more = true;
    for (;;) {
        /* The section covers the copies from the moment they are made until fn is done with them;
         * between batches the thread is outside, so the epoch can move during a long range. */
        bool pinned = epoch_pin();
        lock_take(&sh->lock);
        if (!open) {
            hmap_iter_init(&it, sh->map);
            open = true;
        }
        size_t n = 0;
        if (pinned)
            n = range_fill(m, &it, buf, &more);
        else
            hmap_iter_done(&it);
        lock_give(&sh->lock);
        if (!pinned) {
            errno = ENOMEM;
            return false;
        }
        bool go_on = true;
        for (size_t j = 0; j < n && go_on; j++) {
            const unsigned char *e = buf->bytes + j * buf->pair;
            go_on = fn(e, e + buf->key_bytes, ctx);
        }
        epoch_unpin();
        if (!more)
            return go_on;
        if (!go_on) {
            lock_take(&sh->lock);
            hmap_iter_done(&it);
            lock_give(&sh->lock);
            return false;
        }
    }
}

void hmap_sync_range(hmap_sync *m, bool (*fn)(const void *key, const void *val, void *ctx), void *ctx) {
    if (!m || !fn)
        return;
    _Alignas(16) unsigned char small[RANGE_BUFFER];
    range_buf buf = {.key_bytes = round_up(m->type.key_size, 16)};
    buf.pair = buf.key_bytes + round_up(m->type.val_size, 16);
    buf.batch = RANGE_BUFFER / buf.pair;
    if (buf.batch > RANGE_BATCH)
        buf.batch = RANGE_BATCH;
    if (buf.batch == 0) {
        buf.batch = 1;
        buf.bytes = malloc(buf.pair);
        if (!buf.bytes) {
            errno = ENOMEM;
            return;
        }
    } else {
        buf.bytes = small;
    }
    for (size_t i = 0; i < shard_count(m); i++)
        if (!range_shard(m, &m->shards[i], &buf, fn, ctx))
            break;
    if (buf.bytes != small)
        free(buf.bytes);
}

/* ---------------------------------------------------------------- stats, reclamation, read sections */

static void add_stats(hmap_stats *total, const hmap_stats *s) {
    total->count += s->count;
    if (s->B > total->B)
        total->B = s->B;
    total->buckets += s->buckets;
    total->overflow_buckets += s->overflow_buckets;
    total->old_buckets += s->old_buckets;
    total->evacuated += s->evacuated;
    if (total->phase == HMAP_STEADY)
        total->phase = s->phase;
    total->tombstones += s->tombstones;
    total->bytes += s->bytes;
    total->grows += s->grows;
    total->same_size_grows += s->same_size_grows;
    total->shrinks += s->shrinks;
    total->buckets_moved += s->buckets_moved;
    if (s->max_moved_per_op > total->max_moved_per_op)
        total->max_moved_per_op = s->max_moved_per_op;
}

void hmap_sync_get_stats(hmap_sync *m, hmap_stats *st) {
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!m)
        return;
    st->bytes = m->mem.bytes;
    st->name = m->src.name;
    for (size_t i = 0; i < shard_count(m); i++) {
        shard *sh = &m->shards[i];
        hmap_stats s;
        lock_take(&sh->lock);
        hmap_get_stats(sh->map, &s);
        s.bytes += sh->mem.bytes + atomic_load_explicit(&sh->deferred_bytes, memory_order_relaxed);
        lock_give(&sh->lock);
        add_stats(st, &s);
    }
}

size_t hmap_sync_reclaim(hmap_sync *m) {
    if (!m)
        return 0;
    epoch_try_advance();
    size_t left = 0;
    for (size_t i = 0; i < shard_count(m); i++) {
        shard *sh = &m->shards[i];
        limbo_batch b;
        lock_take(&sh->lock);
        limbo_collect(sh, &b);
        left += limbo_pending(sh);
        lock_give(&sh->lock);
        run_batch(m, sh, &b);
    }
    return left;
}

int hmap_sync_pin(void) { return epoch_pin() ? 0 : -ENOMEM; }

void hmap_sync_unpin(void) {
    if (epoch_pinned())
        epoch_unpin();
}

int hmap_sync_synchronize(void) { return epoch_synchronize(); }

size_t hmap_sync_shards(const hmap_sync *m) { return m ? shard_count(m) : 0; }

/* ---------------------------------------------------------------- creation and destruction */

static unsigned choose_shard_bits(size_t hint) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want = (size_t)(cpus > 0 ? cpus : 1) * SHARDS_PER_CPU;
    if (hint / ENTRIES_PER_SHARD > want)
        want = hint / ENTRIES_PER_SHARD;
    unsigned bits = MIN_SHARD_BITS;
    while (bits < MAX_SHARD_BITS && ((size_t)1 << bits) < want)
        bits++;
    return bits;
}

/* Where a deferred drop keeps the key and the value: each at 16-byte alignment, as in a bucket. */
static void set_limbo_layout(hmap_sync *m) {
    m->key_offset = 16;
    m->val_offset = m->key_offset + round_up(m->type.key_size, 16);
    m->entry_size = round_up(m->val_offset + m->type.val_size, 16);
    m->chunk_entries = 2048 / m->entry_size;
    if (m->chunk_entries > 64)
        m->chunk_entries = 64;
    if (m->chunk_entries == 0)
        m->chunk_entries = 1;
}

static void free_shards(hmap_sync *m, size_t made) {
    for (size_t i = 0; i < made; i++) {
        shard *sh = &m->shards[i];
        sh->defer_frees = false; /* no reader is left: frees from here on are immediate */
        hmap_free(sh->map);      /* drops what is still in the map */
        limbo_drain(m, sh);      /* then what was waiting */
    }
    mem_free(&m->mem, m->shards_mem, m->shards_bytes);
}

static void free_struct(hmap_sync *m) {
    hmap_allocator a = m->user;
    if (m->src.name)
        mem_free(&m->mem, (char *)m->src.name, m->name_bytes);
    mem_raw_free(&a, m, sizeof *m);
}

static bool make_shards(hmap_sync *m, size_t hint, const hmap_options *opts) {
    size_t n = shard_count(m);
    m->shards_bytes = n * sizeof(shard) + 127;
    m->shards_mem = mem_alloc(&m->mem, m->shards_bytes);
    if (!m->shards_mem)
        return false;
    m->shards = (shard *)round_up((uintptr_t)m->shards_mem, 128);
    memset(m->shards, 0, n * sizeof(shard));
    size_t per_shard = hint ? hint / n + hint / (8 * n) + 1 : 0; /* shards fill unevenly: ~1/8 spare */
    hmap_options so = {
        .no_shrink = opts && opts->no_shrink,
        .fixed_seed = true, /* one hash for all shards, computed before the shard is known */
        .seed = opts && opts->fixed_seed ? opts->seed : random_seed(),
        .name = m->src.name,
    };
    for (size_t i = 0; i < n; i++) {
        shard *sh = &m->shards[i];
        shard_hook_init(m, sh);
        mem_source_init(&sh->src, m->custom_alloc ? &m->user : NULL, m->src.name);
        mem_owner_init(&sh->mem, &sh->src);
        so.allocator = m->optimistic ? &sh->hook : (m->custom_alloc ? &m->user : NULL);
        sh->map = hmap_new_opts(&m->type, per_shard, &so);
        if (!sh->map) {
            int err = errno;
            free_shards(m, i);
            errno = err;
            return false;
        }
        atomic_init(&sh->lock.word, 0);
        sh->defer_frees = m->optimistic; /* from now on readers may walk the shard without its lock */
    }
    m->u64_hash = map_u64_seed(m->shards[0].map, &m->hash_seed);
    m->fast_reads = m->optimistic && map_view_supported(m->shards[0].map); /* the shards' views */
    m->inline_reads = m->fast_reads && m->u64_hash;
    m->plain_writes = m->fast_reads && !m->drops;
    for (size_t i = 0; i < n; i++) {
        shard *sh = &m->shards[i];
        atomic_init(&sh->count, m->fast_reads ? map_view_publish(sh->map, &sh->view) : 0);
    }
    return true;
}

hmap_sync *hmap_sync_new_opts(const hmap_type *type, size_t hint, const hmap_options *opts) {
    const hmap_allocator *a = map_new_arguments(type, opts); /* the map's own rules */
    if (!a)
        return NULL;
    hmap_sync *m = mem_raw_alloc(a, sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    memset(m, 0, sizeof *m);
    m->type = *type;
    m->user = *a;
    m->custom_alloc = mem_allocator_is_custom(a);
    mem_source_init(&m->src, a, NULL);
    mem_owner_init(&m->mem, &m->src);
    m->mem.bytes = sizeof *m;
    m->optimistic = !type->equal && !type->equal_ctx;
    m->drops = type_drops_key(type) || type_drops_val(type);
    m->shard_bits = choose_shard_bits(hint);
    m->shard_offset_mask = (((uint64_t)1 << m->shard_bits) - 1) << SHARD_SHIFT;
    set_limbo_layout(m);
    if (opts && opts->name) {
        size_t len = strlen(opts->name) + 1;
        char *name = mem_alloc(&m->mem, len);
        if (!name) {
            free_struct(m);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(name, opts->name, len);
        m->src.name = name;
        m->name_bytes = len;
    }
    if (!make_shards(m, hint, opts)) {
        int err = errno;
        free_struct(m);
        errno = err;
        return NULL;
    }
    return m;
}

hmap_sync *hmap_sync_new(const hmap_type *type, size_t hint) { return hmap_sync_new_opts(type, hint, NULL); }

void hmap_sync_free(hmap_sync *m) {
    if (!m)
        return;
    free_shards(m, shard_count(m));
    free_struct(m);
}
