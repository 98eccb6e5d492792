/* SPDX-License-Identifier: MIT */
/*
 * hmap_pool — a per-thread object pool that lets idle objects go (Go's sync.Pool, for C).
 *
 * A pool keeps objects that are expensive to make (buffers, whole maps) for reuse: hmap_pool_get returns
 * one that an earlier hmap_pool_put gave back, or a new one from the config's make(). Idle objects do not
 * stay forever: each hmap_pool_cycle (by hand, or every cycle_ms by the pool's timer) turns the idle
 * objects into "victims" and destroys the victims of the cycle before. An object that nobody took back
 * within two cycles is destroyed; one taken meanwhile is simply reused. A get prefers fresh idle objects
 * to victims, so that victims age out.
 *
 *     hmap_pool_config cfg = {.make = make_buf, .destroy = free_buf, .cycle_ms = 1000, .name = "bufs"};
 *     hmap_pool *p = hmap_pool_new(&cfg);
 *     char *buf = hmap_pool_get(p);   // reused or made
 *     ...
 *     hmap_pool_put(p, buf);          // kept for the next get, destroyed after two idle cycles
 *     hmap_pool_free(p);              // destroys every idle object
 *
 * Threads: get, put, cycle and get_stats may be called from any number of threads at once. Each thread
 * has its own cache in each pool it uses, so that a get and a put on the same thread touch no shared
 * cache line and take no lock (a get+put pair costs a few ns); a thread whose cache is empty takes idle
 * objects from the other threads' caches. When a thread exits, its cache goes back to the pool for the
 * other threads. hmap_pool_new and hmap_pool_free are the exceptions, see below.
 *
 * Memory: the pool's own memory (the pool, its name, a cache of about 1 KiB per thread that used it, the
 * arrays of the shared idle and victim lists) is counted in hmap_read_memstats and named after the pool
 * in heap profiles. The objects themselves are the caller's: made by make(), the pool does not know their
 * size, so it reports how many it holds (hmap_pool_stats.idle, .victims), not their bytes. Objects that
 * are hmaps are counted by their own maps' accounting, in hmap_read_memstats, whether in use or idle.
 */
#ifndef HMAP_POOL_H
#define HMAP_POOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmap_pool hmap_pool;

/* What the pool holds and how to make, reset and destroy it. The pool keeps a copy of this struct and of
 * the name. The callbacks run on the thread that calls the pool, except destroy during timed cycles,
 * which runs on the pool timer thread; none of them may free its own pool. */
typedef struct hmap_pool_config {
    void *(*make)(void *ctx);            /* NULL: get may return NULL when the pool is empty */
    void (*reset)(void *obj, void *ctx); /* on put, e.g. hmap_clear; may be NULL */
    void (*destroy)(void *obj, void *ctx);
    void *ctx;
    size_t max_idle;   /* 0: no cap; beyond it put destroys */
    unsigned cycle_ms; /* 0: cycles only when hmap_pool_cycle is called */
    const char *name;  /* label in stats and heap profiles; may be NULL */
} hmap_pool_config;

/* Counters since creation, and what the pool holds now. Exact when no thread is inside the pool; while
 * threads use it, each field is a recent value. hits = gets that returned a pooled object, misses = gets
 * that found the pool empty (make() was called, or NULL returned). destroyed = objects the pool destroyed:
 * beyond max_idle, by cycles, by hmap_pool_free. idle = objects ready for the next get; victims = objects
 * that the next cycle destroys unless a get takes them first. */
typedef struct hmap_pool_stats {
    uint64_t gets, hits, misses, puts, destroyed;
    size_t idle, victims;
} hmap_pool_stats;

/*
 * Creates a pool: NULL with errno EINVAL (cfg NULL, destroy NULL: the pool must be able to destroy what it
 * holds), ENOMEM, or the error of starting the timer thread (EAGAIN) when cycle_ms > 0 needs it first.
 *
 * max_idle caps what the pool holds, idle and victims together; a put that would exceed it destroys the
 * object instead. Each thread keeps a small allowance taken from the cap in advance (at most max_idle/16,
 * 1 to 8 objects, and the room freed by its own gets), so a put may destroy while the pool holds a little
 * less than max_idle; it never holds more. A cycle gives every thread's unused allowance back.
 *
 * cycle_ms > 0 cycles the pool every cycle_ms milliseconds on one timer thread shared by all timed pools
 * of the process (started with the first, signals blocked, stopped and joined at exit; after fork() the
 * child starts its own at its next hmap_pool_new or hmap_pool_cycle).
 */
hmap_pool *hmap_pool_new(const hmap_pool_config *cfg); /* NULL + errno */

/* An idle object (this thread's own first), else a new one from make(), else NULL. A NULL
 * pool returns NULL with errno EINVAL. O(1) on the thread's own cache; an empty cache looks at the other
 * threads' caches, then the victims. */
void *hmap_pool_get(hmap_pool *p);

/* Gives obj back: reset(obj) is called, then the pool keeps it (or destroys it beyond max_idle). A NULL
 * obj is ignored; a NULL pool sets errno EINVAL and leaves obj to the caller. The object must not be used
 * after the put; puts of one object from two threads, or twice, are the caller's bug (as a double free). */
void hmap_pool_put(hmap_pool *p, void *obj);

/* The "GC moment": idle objects become victims, previous victims are destroyed (on the calling thread).
 * Reaches every thread's cache, also of threads that are blocked or no longer use the pool: it waits (a
 * few microseconds) for each thread that is inside a get or put to leave it. O(idle + victims + threads). */
void hmap_pool_cycle(hmap_pool *p);

/* Fills *st (zeroes for a NULL pool). Any thread, any time. O(threads that used the pool). */
void hmap_pool_get_stats(hmap_pool *p, hmap_pool_stats *st);

/* Destroys every idle object and victim and frees the pool. NULL is fine. No thread may use p any more:
 * every other thread's last call on p must happen before this call (the thread was joined, or told it
 * through a mutex, a condition variable or an atomic release/acquire), and objects still out (got, not
 * put back) stay the caller's. Threads that used p may still be alive, or exit later: their caches in p
 * are freed here, and their caches in other pools are not touched. */
void hmap_pool_free(hmap_pool *p);

#ifdef __cplusplus
}
#endif
#endif /* HMAP_POOL_H */
