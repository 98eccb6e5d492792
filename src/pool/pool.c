/* SPDX-License-Identifier: MIT */
/*
 * pool/pool.c — hmap_pool: per-thread object caches with a two-generation victim release (API and
 * contract: include/hmap_pool.h). The pool layer sits above mem/ and base/ and knows nothing of the map.
 *
 * Where an idle object can be, from the cheapest to reach to the dearest:
 *
 *   thread cache (one per thread per pool)            pool
 *   +-------------------------------------------+     +------------------------------------+
 *   | private slot | stack[STACK_SLOTS]          |     | spill: idle objects with no cache  |
 *   |   owner only: plain loads and stores       |     |   (ring full, thread exited)       |
 *   | ring[RING_SLOTS]: owner pushes at the head |     | victims: last cycle's idle objects |
 *   |   any thread pops at the tail (one CAS)    |     |   both arrays under the pool lock  |
 *   +-------------------------------------------+     +------------------------------------+
 *
 * put: private slot, else stack, else the thread's ring, else spill. get: private slot, stack, the
 * thread's own ring, the other threads' rings (stealing), spill, victims, make(). The private slot and the
 * stack are owned by their thread: a get+put pair on them is a handful of loads and stores and no atomic
 * read-modify-write. The ring is Go's poolDequeue idea made simpler: single producer, many consumers,
 * head and tail in separate words so that the producer only stores; a consumer claims the tail with a
 * CAS, reads the slot, then clears it, and the producer treats a slot not yet cleared as full.
 *
 * Finding the cache. A pool has a serial number, unique in the process. Each thread remembers, in
 * thread-local variables (initial-exec), the (serial, cache) of the pool it used last, which is all the
 * fast paths look at (two thread-local loads and a compare), and a direct-mapped table of TLS_WAYS more;
 * a serial never repeats, so an entry left by a freed pool can never match another pool, even one at the
 * same address. A miss in both looks in the thread's list of caches and attaches a cache (a retired one
 * of the pool, or a new one) under the registry lock.
 *
 * The fast paths are the private slot only: get takes it, put fills it, with no call and no saved
 * register (the slow paths are out of line); the stack is one step further, in the slow path but still
 * owner-only and lock-free. Measured with callgrind, 1M get+put pairs on one thread: 115 instructions a
 * pair when the slot, the stack and an 8-way table lookup were all inline, 58 now (get 28, put 30, under
 * valgrind, which has no membarrier: fence mode); glibc's malloc+free of 64 B is 130.
 *
 * Cycles (hmap_pool_cycle) must reach the owner-only parts of every cache, also of threads that sleep or
 * never call again. Go stops the world for it; here each cache has a `busy` word the owner sets around
 * its few loads and stores, and the pool a `cycling` word, in a Dekker handshake: the owner stores busy,
 * then reads cycling; the cycler stores cycling, then reads busy. The two barriers that make it correct
 * are asymmetric: the owner's is a compiler barrier only, the cycler's is membarrier(PRIVATE_EXPEDITED),
 * which makes every thread of the process execute a full memory barrier. (Where membarrier is missing,
 * both sides use a seq_cst fence: correct, a few ns slower.) So an owner either sees `cycling` and takes
 * the slow path (the pool lock, which the cycler holds), or the cycler sees it busy and waits the few
 * instructions until it is done; then the cycler owns the cache. Release/acquire on busy and cycling
 * carry the objects' contents across (what the owner wrote before put happens before destroy).
 *
 * A cycle: under the pool lock, set the victims aside and move every idle object (caches, rings, spill)
 * into the victims; then, outside the lock (so that destroy may use the pool), destroy the ones set
 * aside. A get that finds nothing fresher takes a victim, so an object in use keeps living and an idle
 * one dies at the second cycle.
 *
 * max_idle is kept with credits: the pool holds one credit per object it may keep. Free credits sit in an
 * atomic counter; a thread takes a small batch when its put needs one, an idle object carries its credit
 * wherever it goes, and an object got from the thread's own slot or stack leaves its credit with that
 * thread (`spare`) for its next put, so that the capped fast path is as atomic-free as the uncapped one.
 *
 * Threads that exit: a pthread key destructor moves the thread's private slot and stack into its ring
 * (else the spill) and marks the cache retired. A retired cache stays on the pool's list, its ring still
 * stealable, until another thread attaches it: caches are freed only by hmap_pool_free, so that stealers
 * can walk the list without locks. hmap_pool_free unlinks its caches from the lists of threads still
 * alive, under the registry lock, which also serializes it with threads exiting.
 *
 * Timed cycles run on one pool timer thread for the whole process, not on the memory thread: destroy is
 * the caller's code and may be slow, and the memory thread's unmaps should never wait behind it.
 *
 * Locks, in the order they are taken: registry (thread lists; cache attach, thread exit, pool free) ->
 * pool (spill, victims, cycles, the pool's memory owner) ; timer (timed pool list) alone. No lock is
 * held while a callback runs, except that destroy during hmap_pool_free runs with nothing else going on.
 */
#include "../mem/mem.h"
#include "hmap.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Private slot + 7 stack slots: 8 objects per thread without atomics, 64 bytes of pointers. */
#define STACK_SLOTS 7
/* Ring slots per cache (a power of two): how much a thread can hand to stealers before the spill. */
#define RING_SLOTS 64
/* Entries of the thread-local (serial, cache) table: the pools a thread uses at once without a miss. */
#define TLS_WAYS 8
#define CACHE_LINE 64
/* Largest batch of credits a thread takes at once (capped pools). */
#define CREDIT_BATCH_MAX 8

#define relaxed memory_order_relaxed
#define acquire memory_order_acquire
#define release memory_order_release

typedef struct pool_thread pool_thread;

/* One thread's cache in one pool (~830 bytes). The first two lines are the owner's; the ring's head
 * (stored by the owner) and tail (CAS by stealers) have a line each. */
typedef struct pool_cache {
    _Atomic(void *) private_obj;
    _Atomic unsigned stack_n;
    _Atomic unsigned busy; /* 1 while the owner is between its loads and stores (see the top) */
    _Atomic size_t spare;  /* credits held and not carried by an object (capped pools) */
    _Atomic uint64_t gets, misses, puts, destroyed; /* written by the owner only: load + store */
    _Atomic(void *) stack[STACK_SLOTS];

    alignas(CACHE_LINE) _Atomic uint32_t head; /* next ring slot the owner fills */
    alignas(CACHE_LINE) _Atomic uint32_t tail; /* oldest filled slot, claimed by CAS */
    _Atomic(void *) ring[RING_SLOTS];

    /* Bookkeeping: set under the registry lock (and the pool lock for attach). */
    hmap_pool *pool;
    pool_thread *thread;                          /* owner, NULL when retired */
    struct pool_cache *thread_prev, *thread_next; /* in the owner's list */
    _Atomic(struct pool_cache *) next;            /* in the pool's list: prepended, never removed */
    void *raw;                                    /* the allocation this cache was aligned in */
} pool_cache;

/* A growable array of objects, in the pool's memory; under the pool lock. */
typedef struct bag {
    void **items;
    size_t n, cap;
} bag;

struct hmap_pool {
    /* read by every get and put */
    uint64_t serial;
    _Atomic unsigned cycling;
    bool capped;
    void *(*make)(void *ctx);
    void (*reset)(void *obj, void *ctx);
    void (*destroy)(void *obj, void *ctx);
    void *ctx;

    alignas(CACHE_LINE) _Atomic size_t free_credits; /* capped pools: credits nobody holds */
    size_t max_idle, credit_batch;
    _Atomic(pool_cache *) caches;

    alignas(CACHE_LINE) pthread_mutex_t lock;
    bag spill, victims;
    _Atomic size_t spill_n, victim_n;               /* mirror the bags' n, for looking without the lock */
    _Atomic uint64_t gets, misses, puts, destroyed; /* calls that had no cache (out of memory), cycles */
    mem_source src; /* the built-in allocator, labelled with the pool's name */
    mem_owner mem;
    size_t name_bytes;
    void *raw;

    /* timed cycles, under timer_lock */
    unsigned cycle_ms;
    struct hmap_pool *timer_next;
    uint64_t next_cycle_ns;
    bool timer_busy;
};

/* ------------------------------------------------------------------------------------------------------ */
/* Barriers of the handshake between owners and cyclers                                                   */

static bool use_fences; /* membarrier unavailable: both sides fence. Set once, before the first pool. */

static inline void owner_barrier(void) {
    if (use_fences)
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst); /* compiler only: membarrier does the rest */
}

static void cycler_barrier(void) {
    atomic_thread_fence(memory_order_seq_cst);
    if (!use_fences && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        abort(); /* registered at start: cannot fail afterwards */
}

/* HMAP_POOL_FENCES=1 in the environment chooses the fences (the tests run both kinds). */
static void barriers_init(void) {
    const char *env = getenv("HMAP_POOL_FENCES");
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    use_fences = (env && strcmp(env, "1") == 0) || cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
                 syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0;
}

/* The owner's section: true when it may touch its private slot, stack and spare without the lock. */
static inline bool owner_enter(const hmap_pool *p, pool_cache *c) {
    atomic_store_explicit(&c->busy, 1, relaxed);
    owner_barrier();
    if (__builtin_expect(atomic_load_explicit(&p->cycling, acquire) != 0, 0)) {
        atomic_store_explicit(&c->busy, 0, release);
        return false;
    }
    return true;
}

static inline void owner_leave(pool_cache *c) { atomic_store_explicit(&c->busy, 0, release); }

/* Owner-only counters: one writer, so a load and a store (no locked instruction). */
static inline void bump(_Atomic uint64_t *counter) {
    atomic_store_explicit(counter, atomic_load_explicit(counter, relaxed) + 1, relaxed);
}

/* ------------------------------------------------------------------------------------------------------ */
/* The ring: one producer (the owner), any number of consumers                                           */

static bool ring_push(pool_cache *c, void *obj) {
    uint32_t h = atomic_load_explicit(&c->head, relaxed);
    uint32_t t = atomic_load_explicit(&c->tail, acquire);
    if (h - t >= RING_SLOTS)
        return false;
    _Atomic(void *) *slot = &c->ring[h & (RING_SLOTS - 1)];
    if (atomic_load_explicit(slot, acquire) != NULL) /* claimed by a consumer that has not read it yet */
        return false;
    atomic_store_explicit(slot, obj, relaxed);
    atomic_store_explicit(&c->head, h + 1, release); /* publishes the slot */
    return true;
}

static void *ring_pop(pool_cache *c) {
    uint32_t t = atomic_load_explicit(&c->tail, relaxed);
    for (;;) {
        uint32_t h = atomic_load_explicit(&c->head, acquire);
        if (t == h)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&c->tail, &t, t + 1, acquire, relaxed)) {
            _Atomic(void *) *slot = &c->ring[t & (RING_SLOTS - 1)];
            void *obj = atomic_load_explicit(slot, relaxed);
            atomic_store_explicit(slot, NULL, release); /* hands the slot back to the producer */
            return obj;
        }
    }
}

static size_t ring_count(pool_cache *c) {
    uint32_t t = atomic_load_explicit(&c->tail, relaxed);
    uint32_t n = atomic_load_explicit(&c->head, relaxed) - t;
    return n > RING_SLOTS ? 0 : n; /* a torn pair of reads while it moves */
}

/* ------------------------------------------------------------------------------------------------------ */
/* Bags and credits                                                                                       */

/* Under the pool lock. false when out of memory. */
static bool bag_push(hmap_pool *p, bag *b, void *obj) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        void **items = mem_alloc(&p->mem, cap * sizeof *items);
        if (!items)
            return false;
        if (b->n)
            memcpy(items, b->items, b->n * sizeof *items);
        mem_free(&p->mem, b->items, b->cap * sizeof *items);
        b->items = items;
        b->cap = cap;
    }
    b->items[b->n++] = obj;
    return true;
}

static void bag_release(hmap_pool *p, bag *b) {
    mem_free(&p->mem, b->items, b->cap * sizeof *b->items);
    *b = (bag){0};
}

/* Pops from spill or victims when they look non-empty. NULL when empty. */
static void *bag_take(hmap_pool *p, bag *b, _Atomic size_t *mirror) {
    if (atomic_load_explicit(mirror, relaxed) == 0)
        return NULL;
    void *obj = NULL;
    pthread_mutex_lock(&p->lock);
    if (b->n) {
        obj = b->items[--b->n];
        atomic_store_explicit(mirror, b->n, relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    return obj;
}

static bool spill_put(hmap_pool *p, void *obj) {
    pthread_mutex_lock(&p->lock);
    bool ok = bag_push(p, &p->spill, obj);
    atomic_store_explicit(&p->spill_n, p->spill.n, relaxed);
    pthread_mutex_unlock(&p->lock);
    return ok;
}

/* Up to `want` credits from the free ones; how many were taken. */
static size_t take_credits(hmap_pool *p, size_t want) {
    size_t avail = atomic_load_explicit(&p->free_credits, relaxed);
    while (avail > 0) {
        size_t take = avail < want ? avail : want;
        if (atomic_compare_exchange_weak_explicit(&p->free_credits, &avail, avail - take, relaxed, relaxed))
            return take;
    }
    return 0;
}

static void give_credits(hmap_pool *p, size_t n) {
    if (p->capped && n)
        atomic_fetch_add_explicit(&p->free_credits, n, relaxed);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Finding this thread's cache                                                                            */

struct pool_thread {
    pool_cache *caches; /* this thread's caches in every pool, under the registry lock */
    bool registered;    /* the exit destructor is armed */
};

typedef struct tls_entry {
    uint64_t serial;
    pool_cache *cache;
} tls_entry;

#define TLS_MODEL __attribute__((tls_model("initial-exec")))
static _Thread_local TLS_MODEL tls_entry tls_last; /* the pool this thread used last: the fast paths */
static _Thread_local TLS_MODEL tls_entry tls_caches[TLS_WAYS];
static _Thread_local TLS_MODEL pool_thread tls_thread;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool exit_key_ok;
static _Atomic uint64_t next_serial = 1; /* 0 marks an empty thread-local entry */

/* The fast paths look only at the last pool used; the others look in the table, then cache_lookup. */
static inline pool_cache *cache_last(const hmap_pool *p) {
    return __builtin_expect(tls_last.serial == p->serial, 1) ? tls_last.cache : NULL;
}

static pool_cache *cache_lookup(hmap_pool *p);

static pool_cache *cache_find(hmap_pool *p) {
    tls_entry *e = &tls_caches[p->serial & (TLS_WAYS - 1)];
    pool_cache *c = e->serial == p->serial ? e->cache : cache_lookup(p);
    if (c)
        tls_last = (tls_entry){p->serial, c};
    return c;
}

static void thread_exit(void *arg);

static void registry_init(void) {
    barriers_init();
    exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

static void thread_link(pool_thread *t, pool_cache *c) {
    c->thread = t;
    c->thread_prev = NULL;
    c->thread_next = t->caches;
    if (t->caches)
        t->caches->thread_prev = c;
    t->caches = c;
}

static void thread_unlink(pool_cache *c) {
    if (c->thread_prev)
        c->thread_prev->thread_next = c->thread_next;
    else
        c->thread->caches = c->thread_next;
    if (c->thread_next)
        c->thread_next->thread_prev = c->thread_prev;
    c->thread = NULL;
    c->thread_prev = c->thread_next = NULL;
}

/* A fresh cache, aligned to a cache line, in the pool's memory. Under the pool lock. */
static pool_cache *cache_new(hmap_pool *p) {
    size_t bytes = sizeof(pool_cache) + CACHE_LINE - 1;
    void *raw = mem_alloc(&p->mem, bytes);
    if (!raw)
        return NULL;
    pool_cache *c = (pool_cache *)(((uintptr_t)raw + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1));
    memset(c, 0, sizeof *c);
    c->raw = raw;
    c->pool = p;
    atomic_store_explicit(&c->next, atomic_load_explicit(&p->caches, relaxed), relaxed);
    atomic_store_explicit(&p->caches, c, release); /* stealers see it initialized */
    return c;
}

/* A retired cache of the pool, or a new one; NULL when out of memory. Under the registry lock. */
static pool_cache *cache_attach(hmap_pool *p) {
    pthread_mutex_lock(&p->lock);
    pool_cache *c = atomic_load_explicit(&p->caches, relaxed);
    while (c && c->thread)
        c = atomic_load_explicit(&c->next, relaxed);
    if (!c)
        c = cache_new(p);
    if (c)
        thread_link(&tls_thread, c);
    pthread_mutex_unlock(&p->lock);
    return c;
}

/* The slow half of the lookup: this thread's list, else attach. */
static pool_cache *cache_lookup(hmap_pool *p) {
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_lock);
    if (!tls_thread.registered && exit_key_ok)
        tls_thread.registered = pthread_setspecific(exit_key, &tls_thread) == 0;
    pool_cache *c = tls_thread.caches;
    while (c && c->pool != p)
        c = c->thread_next;
    if (!c)
        c = cache_attach(p);
    pthread_mutex_unlock(&registry_lock);
    if (c)
        tls_caches[p->serial & (TLS_WAYS - 1)] = (tls_entry){p->serial, c};
    return c;
}

/* At thread exit (pthread key destructor): every cache of this thread goes back to its pool. Objects in
 * the private slot and stack move to the ring, which other threads can steal from, or the spill; if both
 * are full and memory is short they stay in the retired cache, which the next cycle still reaches. */
static void cache_retire(pool_cache *c) {
    hmap_pool *p = c->pool;
    pthread_mutex_lock(&p->lock);
    unsigned n = atomic_load_explicit(&c->stack_n, relaxed);
    void *obj = atomic_load_explicit(&c->private_obj, relaxed);
    if (obj && (ring_push(c, obj) || bag_push(p, &p->spill, obj)))
        atomic_store_explicit(&c->private_obj, NULL, relaxed);
    while (n > 0) {
        obj = atomic_load_explicit(&c->stack[n - 1], relaxed);
        if (!ring_push(c, obj) && !bag_push(p, &p->spill, obj))
            break;
        n--;
    }
    atomic_store_explicit(&c->stack_n, n, relaxed);
    atomic_store_explicit(&p->spill_n, p->spill.n, relaxed);
    give_credits(p, atomic_exchange_explicit(&c->spare, 0, relaxed));
    thread_unlink(c);
    pthread_mutex_unlock(&p->lock);
}

static void thread_exit(void *arg) {
    pool_thread *t = arg;
    pthread_mutex_lock(&registry_lock);
    while (t->caches)
        cache_retire(t->caches);
    t->registered = false;
    pthread_mutex_unlock(&registry_lock);
    memset(tls_caches, 0, sizeof tls_caches);
    tls_last = (tls_entry){0};
}

/* ------------------------------------------------------------------------------------------------------ */
/* get and put                                                                                            */

/* Takes from the private slot or the stack. In the owner's section (or under the pool lock). */
static inline void *local_take(const hmap_pool *p, pool_cache *c) {
    void *obj = atomic_load_explicit(&c->private_obj, relaxed);
    if (obj) {
        atomic_store_explicit(&c->private_obj, NULL, relaxed);
    } else {
        unsigned n = atomic_load_explicit(&c->stack_n, relaxed);
        if (n == 0)
            return NULL;
        obj = atomic_load_explicit(&c->stack[n - 1], relaxed);
        atomic_store_explicit(&c->stack_n, n - 1, relaxed);
    }
    if (p->capped) /* the object's credit stays with this thread */
        atomic_store_explicit(&c->spare, atomic_load_explicit(&c->spare, relaxed) + 1, relaxed);
    return obj;
}

/* Stores in the private slot or the stack when there is room (and a credit). Same context as above. */
static inline bool local_store(const hmap_pool *p, pool_cache *c, void *obj) {
    size_t spare = 0;
    if (p->capped && (spare = atomic_load_explicit(&c->spare, relaxed)) == 0)
        return false;
    if (atomic_load_explicit(&c->private_obj, relaxed) == NULL) {
        atomic_store_explicit(&c->private_obj, obj, relaxed);
    } else {
        unsigned n = atomic_load_explicit(&c->stack_n, relaxed);
        if (n == STACK_SLOTS)
            return false;
        atomic_store_explicit(&c->stack[n], obj, relaxed);
        atomic_store_explicit(&c->stack_n, n + 1, relaxed);
    }
    if (p->capped)
        atomic_store_explicit(&c->spare, spare - 1, relaxed);
    return true;
}

/* Counts into the owner's counters, or the pool's when the thread has no cache (out of memory). */
#define COUNT(p, c, field)                                                                                   \
    ((c) ? bump(&(c)->field) : (void)atomic_fetch_add_explicit(&(p)->field, 1, relaxed))

/* Enters the owner's section, or, while a cycle runs, waits for it and takes the pool lock instead. */
static bool section_begin(hmap_pool *p, pool_cache *c) {
    if (owner_enter(p, c))
        return false;
    pthread_mutex_lock(&p->lock);
    return true;
}

static void section_end(hmap_pool *p, pool_cache *c, bool locked) {
    if (locked)
        pthread_mutex_unlock(&p->lock);
    else
        owner_leave(c);
}

/* The other threads' rings, starting after our own cache so that stealers spread out. */
static void *steal(hmap_pool *p, pool_cache *own) {
    pool_cache *first = atomic_load_explicit(&p->caches, acquire);
    if (!first)
        return NULL;
    pool_cache *start = own ? atomic_load_explicit(&own->next, acquire) : NULL;
    if (!start)
        start = first;
    pool_cache *c = start;
    do {
        if (c != own) {
            void *obj = ring_pop(c);
            if (obj)
                return obj;
        }
        c = atomic_load_explicit(&c->next, acquire);
        if (!c)
            c = first;
    } while (c != start);
    return NULL;
}

/* Everything but the thread's own slot and stack; the object's credit goes back to the free ones, since
 * the thread's own slot and stack are empty and its next put takes a credit as it needs one. */
static void *take_shared(hmap_pool *p, pool_cache *c) {
    void *obj = c ? ring_pop(c) : NULL;
    if (!obj)
        obj = steal(p, c);
    if (!obj)
        obj = bag_take(p, &p->spill, &p->spill_n);
    if (!obj)
        obj = bag_take(p, &p->victims, &p->victim_n);
    if (obj)
        give_credits(p, 1);
    return obj;
}

/* Everything after the private slot of the last pool's cache: the stack, then take_shared, then make.
 * Out of line, so that the fast paths need no saved registers. */
__attribute__((noinline)) static void *get_slow(hmap_pool *p) {
    if (!p) {
        errno = EINVAL;
        return NULL;
    }
    pool_cache *c = cache_find(p);
    void *obj = NULL;
    if (c) {
        bool locked = section_begin(p, c);
        obj = local_take(p, c);
        section_end(p, c, locked);
    }
    if (!obj)
        obj = take_shared(p, c);
    COUNT(p, c, gets);
    if (obj)
        return obj;
    COUNT(p, c, misses);
    return p->make ? p->make(p->ctx) : NULL;
}

void *hmap_pool_get(hmap_pool *p) {
    pool_cache *c;
    if (__builtin_expect(p != NULL, 1) && (c = cache_last(p)) != NULL && owner_enter(p, c)) {
        void *obj = atomic_load_explicit(&c->private_obj, relaxed);
        if (__builtin_expect(obj != NULL, 1)) {
            atomic_store_explicit(&c->private_obj, NULL, relaxed);
            if (p->capped) /* the object's credit stays with this thread */
                atomic_store_explicit(&c->spare, atomic_load_explicit(&c->spare, relaxed) + 1, relaxed);
            bump(&c->gets);
            owner_leave(c);
            return obj;
        }
        owner_leave(c);
    }
    return get_slow(p);
}

/* The slot and stack were full (or out of credits, or a cycle ran): credits first, then the slot and
 * stack again, the ring, the spill; destroy when there is no credit or no memory. */
__attribute__((noinline)) static void put_slow(hmap_pool *p, void *obj) {
    pool_cache *c = cache_find(p);
    COUNT(p, c, puts);
    bool credit = !p->capped;
    if (c) {
        bool locked = section_begin(p, c);
        size_t spare = atomic_load_explicit(&c->spare, relaxed);
        if (p->capped && spare == 0)
            atomic_store_explicit(&c->spare, spare = take_credits(p, p->credit_batch), relaxed);
        bool kept = local_store(p, c, obj);
        if (!kept && p->capped && spare > 0) { /* the credit travels with the object */
            atomic_store_explicit(&c->spare, spare - 1, relaxed);
            credit = true;
        }
        section_end(p, c, locked);
        if (kept)
            return;
    } else if (p->capped) {
        credit = take_credits(p, 1) == 1;
    }
    if (credit && ((c && ring_push(c, obj)) || spill_put(p, obj)))
        return;
    if (credit && p->capped)
        give_credits(p, 1);
    COUNT(p, c, destroyed);
    p->destroy(obj, p->ctx);
}

/* Into the private slot of the last pool's cache, when it is empty (and, capped, a credit is at hand). */
static inline bool put_fast(hmap_pool *p, void *obj) {
    pool_cache *c = cache_last(p);
    if (__builtin_expect(c == NULL, 0) || !owner_enter(p, c))
        return false;
    bool kept = false;
    if (__builtin_expect(atomic_load_explicit(&c->private_obj, relaxed) != NULL, 0))
        goto out;
    if (p->capped) {
        size_t spare = atomic_load_explicit(&c->spare, relaxed);
        if (spare == 0)
            goto out;
        atomic_store_explicit(&c->spare, spare - 1, relaxed);
    }
    atomic_store_explicit(&c->private_obj, obj, relaxed);
    bump(&c->puts);
    kept = true;
out:
    owner_leave(c);
    return kept;
}

__attribute__((noinline)) static void put_reset(hmap_pool *p, void *obj) {
    p->reset(obj, p->ctx);
    if (!put_fast(p, obj))
        put_slow(p, obj);
}

__attribute__((noinline)) static void put_odd(hmap_pool *p, void *obj) {
    if (!p)
        errno = EINVAL; /* obj stays the caller's: there is no destroy to give it to */
    else if (obj)
        put_slow(p, obj);
}

void hmap_pool_put(hmap_pool *p, void *obj) {
    if (__builtin_expect(p == NULL || obj == NULL, 0))
        put_odd(p, obj);
    else if (p->reset)
        put_reset(p, obj);
    else if (!put_fast(p, obj))
        put_slow(p, obj);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Cycles                                                                                                 */

/* Room for one more object in b; false when out of memory. Under the pool lock. */
static bool bag_room(hmap_pool *p, bag *b) {
    if (b->n < b->cap)
        return true;
    if (!bag_push(p, b, NULL))
        return false;
    b->n--;
    return true;
}

/* Moves a cache's idle objects into the victims; returns its spare credits. Under the pool lock, with
 * the owner out of its section and kept out by `cycling`. Objects that find no memory stay put. */
static size_t cache_to_victims(hmap_pool *p, pool_cache *c) {
    while (atomic_load_explicit(&c->busy, acquire))
        sched_yield(); /* the owner is a few instructions from leaving */
    size_t spare = atomic_load_explicit(&c->spare, relaxed);
    atomic_store_explicit(&c->spare, 0, relaxed);
    void *obj = atomic_load_explicit(&c->private_obj, relaxed);
    if (obj && bag_push(p, &p->victims, obj))
        atomic_store_explicit(&c->private_obj, NULL, relaxed);
    unsigned n = atomic_load_explicit(&c->stack_n, relaxed);
    while (n > 0 && bag_push(p, &p->victims, atomic_load_explicit(&c->stack[n - 1], relaxed)))
        n--;
    atomic_store_explicit(&c->stack_n, n, relaxed);
    /* The owner may push meanwhile (it is a producer, outside its section): take what was there. */
    for (unsigned i = 0; i < RING_SLOTS && bag_room(p, &p->victims); i++) {
        obj = ring_pop(c);
        if (!obj)
            break;
        p->victims.items[p->victims.n++] = obj;
    }
    return spare;
}

static void timer_restart_after_fork(void);

void hmap_pool_cycle(hmap_pool *p) {
    if (!p)
        return;
    timer_restart_after_fork();
    pthread_mutex_lock(&p->lock);
    atomic_store_explicit(&p->cycling, 1, memory_order_seq_cst);
    cycler_barrier();
    bag dying = p->victims; /* the previous generation */
    p->victims = p->spill;  /* spilled objects are idle too */
    p->spill = (bag){0};
    size_t spare = 0;
    for (pool_cache *c = atomic_load_explicit(&p->caches, acquire); c;
         c = atomic_load_explicit(&c->next, acquire))
        spare += cache_to_victims(p, c);
    atomic_store_explicit(&p->spill_n, 0, relaxed);
    atomic_store_explicit(&p->victim_n, p->victims.n, relaxed);
    atomic_store_explicit(&p->cycling, 0, release);
    pthread_mutex_unlock(&p->lock);

    give_credits(p, spare);
    for (size_t i = 0; i < dying.n; i++) /* outside the lock: destroy may use the pool */
        p->destroy(dying.items[i], p->ctx);
    atomic_fetch_add_explicit(&p->destroyed, dying.n, relaxed);
    give_credits(p, dying.n);
    pthread_mutex_lock(&p->lock);
    bag_release(p, &dying);
    pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Stats                                                                                                  */

void hmap_pool_get_stats(hmap_pool *p, hmap_pool_stats *st) {
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!p)
        return;
    st->gets = atomic_load_explicit(&p->gets, relaxed);
    st->misses = atomic_load_explicit(&p->misses, relaxed);
    st->puts = atomic_load_explicit(&p->puts, relaxed);
    st->destroyed = atomic_load_explicit(&p->destroyed, relaxed);
    st->idle = atomic_load_explicit(&p->spill_n, relaxed);
    st->victims = atomic_load_explicit(&p->victim_n, relaxed);
    for (pool_cache *c = atomic_load_explicit(&p->caches, acquire); c;
         c = atomic_load_explicit(&c->next, acquire)) {
        st->misses += atomic_load_explicit(&c->misses, relaxed); /* before gets: each miss is a get */
        st->gets += atomic_load_explicit(&c->gets, relaxed);
        st->puts += atomic_load_explicit(&c->puts, relaxed);
        st->destroyed += atomic_load_explicit(&c->destroyed, relaxed);
        st->idle += (atomic_load_explicit(&c->private_obj, relaxed) != NULL) +
                    atomic_load_explicit(&c->stack_n, relaxed) + ring_count(c);
    }
    st->hits = st->gets > st->misses ? st->gets - st->misses : 0;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The timer thread of timed pools                                                                        */

static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_wake; /* CLOCK_MONOTONIC, set up by timer_init */
static pthread_cond_t timer_done = PTHREAD_COND_INITIALIZER;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;
static hmap_pool *timed_pools;
static bool timer_running, timer_stopping, timer_handlers_set;
static _Atomic bool timer_forked; /* a forked child whose timer is not started yet */
static pthread_t timer_id;

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void timer_init(void) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&timer_wake, &attr);
    pthread_condattr_destroy(&attr);
}

/* The first timed pool that is due, or NULL and the earliest deadline. Under timer_lock. */
static hmap_pool *timer_due(uint64_t now, uint64_t *earliest) {
    *earliest = UINT64_MAX;
    for (hmap_pool *q = timed_pools; q; q = q->timer_next) {
        if (q->next_cycle_ns <= now)
            return q;
        if (q->next_cycle_ns < *earliest)
            *earliest = q->next_cycle_ns;
    }
    return NULL;
}

static void *timer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&timer_lock);
    while (!timer_stopping) {
        uint64_t now = monotonic_ns(), earliest;
        hmap_pool *due = timer_due(now, &earliest);
        if (due) { /* cycled without timer_lock, so that hmap_pool_free can wait for it */
            due->timer_busy = true;
            due->next_cycle_ns = now + (uint64_t)due->cycle_ms * 1000000u;
            pthread_mutex_unlock(&timer_lock);
            hmap_pool_cycle(due);
            pthread_mutex_lock(&timer_lock);
            due->timer_busy = false;
            pthread_cond_broadcast(&timer_done);
        } else if (earliest == UINT64_MAX) {
            pthread_cond_wait(&timer_wake, &timer_lock);
        } else {
            struct timespec ts = {(time_t)(earliest / 1000000000u), (long)(earliest % 1000000000u)};
            pthread_cond_timedwait(&timer_wake, &timer_lock, &ts);
        }
    }
    pthread_mutex_unlock(&timer_lock);
    return NULL;
}

/* At exit the timer is stopped and joined (after any cycle it is running), so that no destroy runs
 * while the program tears itself down. Timed pools are not cycled after that. */
static void timer_stop(void) {
    pthread_mutex_lock(&timer_lock);
    bool running = timer_running;
    timer_stopping = true;
    pthread_cond_signal(&timer_wake);
    pthread_mutex_unlock(&timer_lock);
    if (running)
        pthread_join(timer_id, NULL);
}

/* After fork() only the forking thread exists: the child starts its own timer when next asked. */
static void timer_after_fork_in_child(void) {
    pthread_mutex_init(&timer_lock, NULL);
    timer_init();
    pthread_cond_init(&timer_done, NULL);
    timer_running = false;
    atomic_store_explicit(&timer_forked, true, relaxed);
    for (hmap_pool *q = timed_pools; q; q = q->timer_next)
        q->timer_busy = false;
}

/* Under timer_lock: 0, or the error of pthread_create. */
static int timer_start(void) {
    if (timer_running || timer_stopping || !timed_pools)
        return 0;
    if (!timer_handlers_set) {
        atexit(timer_stop);
        pthread_atfork(NULL, NULL, timer_after_fork_in_child);
        timer_handlers_set = true;
    }
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err)
        return err;
    pthread_attr_setstacksize(&attr, 256 << 10); /* destroy callbacks run on it */
    sigset_t all, old;                           /* the thread must not take the process's signals */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&timer_id, &attr, timer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    timer_running = err == 0;
    return err;
}

static void timer_unlink(hmap_pool *p) {
    for (hmap_pool **q = &timed_pools; *q; q = &(*q)->timer_next)
        if (*q == p) {
            *q = p->timer_next;
            break;
        }
}

static int timer_add(hmap_pool *p) {
    pthread_once(&timer_once, timer_init);
    pthread_mutex_lock(&timer_lock);
    p->next_cycle_ns = monotonic_ns() + (uint64_t)p->cycle_ms * 1000000u;
    p->timer_next = timed_pools;
    timed_pools = p;
    int err = timer_start();
    if (err)
        timer_unlink(p);
    pthread_cond_signal(&timer_wake);
    pthread_mutex_unlock(&timer_lock);
    return err;
}

/* In a forked child: starts its timer for the timed pools it inherited. */
static void timer_restart_after_fork(void) {
    if (!atomic_load_explicit(&timer_forked, relaxed))
        return;
    pthread_mutex_lock(&timer_lock);
    atomic_store_explicit(&timer_forked, false, relaxed);
    timer_start();
    pthread_mutex_unlock(&timer_lock);
}

/* Unlinks p, waiting for a cycle of p that the timer is running. */
static void timer_remove(hmap_pool *p) {
    pthread_mutex_lock(&timer_lock);
    timer_unlink(p);
    while (p->timer_busy)
        pthread_cond_wait(&timer_done, &timer_lock);
    pthread_mutex_unlock(&timer_lock);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Creation and destruction                                                                               */

static hmap_pool *pool_alloc(const hmap_pool_config *cfg) {
    mem_source src;
    mem_source_init(&src, NULL, cfg->name); /* the user's string labels these two; the copy all later ones */
    mem_owner o;
    mem_owner_init(&o, &src);
    size_t bytes = sizeof(hmap_pool) + CACHE_LINE - 1;
    void *raw = mem_alloc(&o, bytes);
    if (!raw)
        return NULL;
    hmap_pool *p = (hmap_pool *)(((uintptr_t)raw + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1));
    memset(p, 0, sizeof *p);
    p->raw = raw;
    if (cfg->name) {
        p->name_bytes = strlen(cfg->name) + 1;
        char *name = mem_alloc(&o, p->name_bytes);
        if (!name) {
            mem_free(&o, raw, bytes);
            return NULL;
        }
        memcpy(name, cfg->name, p->name_bytes);
        src.name = name;
    }
    p->src = src;
    p->mem = o;
    p->mem.src = &p->src;
    return p;
}

/* The name and p itself, through copies of p's owner and source: p goes last. */
static void free_pool_struct(hmap_pool *p) {
    mem_source src = p->src;
    mem_owner o = {&src, p->mem.bytes};
    if (src.name)
        mem_free(&o, (char *)src.name, p->name_bytes);
    mem_free(&o, p->raw, sizeof(hmap_pool) + CACHE_LINE - 1);
}

static void pool_release(hmap_pool *p) {
    bag_release(p, &p->spill);
    bag_release(p, &p->victims);
    pool_cache *c = atomic_load_explicit(&p->caches, relaxed);
    while (c) {
        pool_cache *next = atomic_load_explicit(&c->next, relaxed);
        mem_free(&p->mem, c->raw, sizeof(pool_cache) + CACHE_LINE - 1);
        c = next;
    }
    pthread_mutex_destroy(&p->lock);
    free_pool_struct(p);
}

hmap_pool *hmap_pool_new(const hmap_pool_config *cfg) {
    if (!cfg || !cfg->destroy) {
        errno = EINVAL;
        return NULL;
    }
    pthread_once(&registry_once, registry_init); /* the barrier kind is fixed before any pool exists */
    timer_restart_after_fork();
    hmap_pool *p = pool_alloc(cfg);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    p->serial = atomic_fetch_add_explicit(&next_serial, 1, relaxed);
    p->make = cfg->make;
    p->reset = cfg->reset;
    p->destroy = cfg->destroy;
    p->ctx = cfg->ctx;
    p->max_idle = cfg->max_idle;
    p->capped = cfg->max_idle > 0;
    p->credit_batch = cfg->max_idle / 16 < 1                  ? 1
                      : cfg->max_idle / 16 > CREDIT_BATCH_MAX ? CREDIT_BATCH_MAX
                                                              : cfg->max_idle / 16;
    atomic_store_explicit(&p->free_credits, cfg->max_idle, relaxed);
    p->cycle_ms = cfg->cycle_ms;
    int err = pthread_mutex_init(&p->lock, NULL);
    if (!err && p->cycle_ms)
        if ((err = timer_add(p)) != 0)
            pthread_mutex_destroy(&p->lock);
    if (err) {
        p->cycle_ms = 0;
        free_pool_struct(p);
        errno = err;
        return NULL;
    }
    return p;
}

/* Every idle object and victim of p, destroyed. */
static void destroy_all(hmap_pool *p) {
    for (pool_cache *c = atomic_load_explicit(&p->caches, relaxed); c;
         c = atomic_load_explicit(&c->next, relaxed)) {
        void *obj = atomic_load_explicit(&c->private_obj, relaxed);
        if (obj)
            p->destroy(obj, p->ctx);
        for (unsigned i = atomic_load_explicit(&c->stack_n, relaxed); i-- > 0;)
            p->destroy(atomic_load_explicit(&c->stack[i], relaxed), p->ctx);
        while ((obj = ring_pop(c)) != NULL)
            p->destroy(obj, p->ctx);
    }
    for (size_t i = 0; i < p->spill.n; i++)
        p->destroy(p->spill.items[i], p->ctx);
    for (size_t i = 0; i < p->victims.n; i++)
        p->destroy(p->victims.items[i], p->ctx);
}

void hmap_pool_free(hmap_pool *p) {
    if (!p)
        return;
    if (p->cycle_ms)
        timer_remove(p);
    /* Threads still alive keep p's caches on their lists: unlink them, so that neither their exit nor
     * their lookups (which also check the serial) meet p again. */
    pthread_mutex_lock(&registry_lock);
    for (pool_cache *c = atomic_load_explicit(&p->caches, relaxed); c;
         c = atomic_load_explicit(&c->next, relaxed))
        if (c->thread)
            thread_unlink(c);
    pthread_mutex_unlock(&registry_lock);
    destroy_all(p);
    pool_release(p);
}
