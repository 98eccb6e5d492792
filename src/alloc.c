/*
 * alloc.c — every byte the library takes goes through here.
 *
 * Two kinds of memory:
 *  - small objects (the map itself, its name, overflow buckets allocated one by one) come from the
 *    allocator hook (malloc/free when none is given);
 *  - bucket arrays. With the built-in allocator, arrays of MAP_THRESHOLD bytes or more are mapped straight
 *    from the OS: the pages arrive zeroed and are only backed by memory when first touched, so creating a
 *    new array costs O(1) here and the zeroing is spread over the inserts that touch it (Go allocates and
 *    zeroes the whole array inside the insert that starts a grow: a 170 ms insert at 10M entries). A
 *    background thread (below) pre-faults new arrays and unmaps freed ones, which gives the pages back to
 *    the OS, so RSS follows the map down without the writes paying for either. With a custom allocator,
 * arrays come from the hook and only the part that must start zeroed is cleared here (a table's tophash words
 * and chain heads: 16 bytes a bucket, 1/9 of a uint64 map's array) — O(buckets), the price of not owning the
 *    memory; slots are written before they are read.
 *
 * Accounting: each map keeps `bytes` (what it holds now); the process-wide counters behind
 * hmap_read_memstats are relaxed atomics, exact at any quiescent point. Every allocation and free is also
 * reported to the heap profiler (profile.c), which samples them.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Below this, an array comes from the allocator (and is zeroed here: under ~10 us); at or above it, from
 * mmap, whose page rounding then wastes under 1.6%. (At 64 KiB the rounding cost 4% and made a shrunk map
 * measurably more than twice a fresh one.) */
#define MAP_THRESHOLD ((size_t)256 << 10)

static void populate_in_background(void *p, size_t size);

static _Atomic uint64_t live_bytes, total_bytes, peak_bytes, mallocs, frees;

void memstats_note_alloc(size_t size) {
    uint64_t live = atomic_fetch_add_explicit(&live_bytes, size, memory_order_relaxed) + size;
    atomic_fetch_add_explicit(&total_bytes, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
    uint64_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak_explicit(
                              &peak_bytes, &peak, live, memory_order_relaxed, memory_order_relaxed)) {
    }
}

static void memstats_note_release(size_t size) {
    atomic_fetch_sub_explicit(&live_bytes, size, memory_order_relaxed);
}

static void memstats_note_free_count(void) { atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed); }

void memstats_note_free(size_t size) {
    memstats_note_release(size);
    memstats_note_free_count();
}

void hmap_read_memstats(hmap_memstats *ms) {
    if (!ms)
        return;
    ms->live_bytes = atomic_load_explicit(&live_bytes, memory_order_relaxed);
    ms->total_bytes = atomic_load_explicit(&total_bytes, memory_order_relaxed);
    ms->peak_bytes = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    ms->mallocs = atomic_load_explicit(&mallocs, memory_order_relaxed);
    ms->frees = atomic_load_explicit(&frees, memory_order_relaxed);
}

void *mem_raw_alloc(const hmap_allocator *a, size_t size) {
    void *p = a->alloc(size, a->ctx);
    if (p) {
        memstats_note_alloc(size);
        profile_note_alloc(p, size, NULL);
    }
    return p;
}

void mem_raw_free(const hmap_allocator *a, void *p, size_t size) {
    if (!p)
        return;
    profile_note_free(p, size);
    memstats_note_free(size);
    a->free(p, size, a->ctx);
}

void *mem_alloc(hmap *m, size_t size) {
    void *p = m->alloc.alloc(size, m->alloc.ctx);
    if (!p)
        return NULL;
    m->bytes += size;
    memstats_note_alloc(size);
    profile_note_alloc(p, size, m->name);
    return p;
}

void mem_free(hmap *m, void *p, size_t size) {
    if (!p)
        return;
    m->bytes -= size;
    profile_note_free(p, size);
    memstats_note_free(size);
    m->alloc.free(p, size, m->alloc.ctx);
}

/* Cached on first use; two threads mapping their first arrays at once may both ask sysconf (the same
 * answer), so the cache is a relaxed atomic rather than a plain variable (a data race under TSan). */
static size_t page_size(void) {
    static _Atomic size_t cached;
    size_t size = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!size) {
        size = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&cached, size, memory_order_relaxed);
    }
    return size;
}

void *mem_alloc_array(hmap *m, size_t *size_io, size_t zero_prefix, bool *mapped) {
    *mapped = false;
    size_t size = *size_io;
    if (!m->custom_alloc && size >= MAP_THRESHOLD) {
        size = (size + page_size() - 1) & ~(page_size() - 1);
        *size_io = size;
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        *mapped = true;
        populate_in_background(p, size);
        m->bytes += size;
        memstats_note_alloc(size);
        profile_note_alloc(p, size, m->name);
        return p;
    }
    void *p = mem_alloc(m, size);
    if (p)
        memset(p, 0, zero_prefix);
    return p;
}

void mem_free_array(hmap *m, void *p, size_t size, bool mapped) {
    if (!mapped) {
        mem_free(m, p, size);
        return;
    }
    m->bytes -= size;
    profile_note_free(p, size);
    memstats_note_free(size);
    unmap_in_background(p, size);
}

/* ---------------------------------------------------------------- the memory thread
 *
 * Two kernel costs would otherwise land on the writes of the map, one small pause at a time:
 *  - page faults: a fresh mapped array is faulted in page by page as the inserts first touch it; on this
 *    project's 2-core VMs a fault costs a few microseconds, and they were most of the inserts above the
 *    99th latency percentile (growing to 3M entries: p99 3.4 us, p99.9 9.8 us; with the pages
 *    pre-faulted 1.3 us and 2.0 us);
 *  - unmapping: munmap of a touched array measured 12 us for 16 KiB and 160 us for 1 MiB, and 300 MB at
 *    once is tens of milliseconds — the very pause hmap exists to avoid.
 * So one background thread, started at the first need, does both: it pre-faults new arrays with
 * madvise(MADV_POPULATE_WRITE) 2 MiB at a time, and unmaps freed ones 1 MiB at a time, unmapping first.
 * A freed array's own first bytes hold the queue link, so freeing never allocates and cannot fail; the map
 * and the memstats count its bytes as released at hand-off, and RSS follows within milliseconds. Pre-faulting
 * is only a hint: arrays are correct without it (the kernel gives zero pages either way), jobs beyond
 * POPULATE_JOBS are skipped, and kernels without MADV_POPULATE_WRITE (before 5.14) just fault on touch. If
 * the thread cannot be started, arrays are unmapped on the spot and faulted on touch. */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

typedef struct unmap_job {
    struct unmap_job *next;
    size_t bytes;
} unmap_job;

typedef struct populate_job {
    unsigned char *base;
    size_t bytes, done;
} populate_job;

#define UNMAP_STEP ((size_t)1 << 20)
#define POPULATE_STEP ((size_t)2 << 20)
#define POPULATE_JOBS 8

static pthread_mutex_t memory_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t memory_wake = PTHREAD_COND_INITIALIZER;
static unmap_job *unmap_queue;
static populate_job populate_queue[POPULATE_JOBS];
static unsigned populate_count;
static bool populate_unsupported;
static bool memory_thread_running;

static void unmap_whole(unmap_job *job) {
    unsigned char *base = (unsigned char *)job;
    size_t bytes = job->bytes;
    for (size_t done = 0; done < bytes; done += UNMAP_STEP) /* from the tail: the link stays mapped */
        munmap(base + (bytes - done > UNMAP_STEP ? bytes - done - UNMAP_STEP : 0),
               bytes - done > UNMAP_STEP ? UNMAP_STEP : bytes - done);
}

static void drop_populate_job(unsigned i) {
    memmove(&populate_queue[i], &populate_queue[i + 1], (populate_count - i - 1) * sizeof *populate_queue);
    populate_count--;
}

/* Called with the lock held; returns with it held. */
static void populate_one_step(void) {
    populate_job *job = &populate_queue[0];
    unsigned char *at = job->base + job->done;
    size_t step = job->bytes - job->done < POPULATE_STEP ? job->bytes - job->done : POPULATE_STEP;
    job->done += step;
    if (job->done == job->bytes)
        drop_populate_job(0);
    pthread_mutex_unlock(&memory_lock);
    /* a range unmapped meanwhile fails with ENOMEM: harmless */
    bool unsupported = madvise(at, step, MADV_POPULATE_WRITE) != 0 && errno == EINVAL;
    pthread_mutex_lock(&memory_lock);
    if (unsupported) {
        populate_unsupported = true;
        populate_count = 0;
    }
}

static bool memory_thread_stopping;
static pthread_t memory_thread_id;

static void *memory_thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&memory_lock);
    for (;;) {
        while (!unmap_queue && populate_count == 0 && !memory_thread_stopping)
            pthread_cond_wait(&memory_wake, &memory_lock);
        if (memory_thread_stopping) /* the process is exiting: it gives all its memory back anyway */
            break;
        if (unmap_queue) {
            unmap_job *job = unmap_queue;
            unmap_queue = job->next;
            pthread_mutex_unlock(&memory_lock);
            unmap_whole(job);
            pthread_mutex_lock(&memory_lock);
        } else {
            populate_one_step();
        }
    }
    pthread_mutex_unlock(&memory_lock);
    return NULL;
}

/* At exit the thread is stopped and joined (within one step of its work), so that nothing the library
 * started outlives the program's own teardown (and leak checkers see a clean exit). */
static void stop_memory_thread(void) {
    pthread_mutex_lock(&memory_lock);
    bool running = memory_thread_running;
    memory_thread_stopping = true;
    pthread_cond_signal(&memory_wake);
    pthread_mutex_unlock(&memory_lock);
    if (running)
        pthread_join(memory_thread_id, NULL);
    pthread_mutex_lock(&memory_lock);
    memory_thread_running = false; /* from now on arrays are unmapped on the spot */
    pthread_mutex_unlock(&memory_lock);
}

/* After fork() only the calling thread exists: the child starts its own thread when it needs one. */
static void memory_thread_after_fork_in_child(void) {
    pthread_mutex_init(&memory_lock, NULL);
    pthread_cond_init(&memory_wake, NULL);
    memory_thread_running = false;
    unmap_queue = NULL; /* the parent's pending arrays stay mapped in the child: a bounded leak */
    populate_count = 0;
}

static bool start_memory_thread(void) {
    static bool handlers_set;
    if (memory_thread_stopping)
        return false; /* exiting: work is done on the spot */
    if (!handlers_set) {
        pthread_atfork(NULL, NULL, memory_thread_after_fork_in_child);
        atexit(stop_memory_thread);
        handlers_set = true;
    }
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return false;
    pthread_attr_setstacksize(&attr, 64 << 10);
    sigset_t all, old; /* the thread must not take the process's signals */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    bool ok = pthread_create(&memory_thread_id, &attr, memory_thread, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return ok;
}

/* Takes the lock and makes sure the thread runs; false (lock released) if it cannot. */
static bool lock_memory_thread(void) {
    pthread_mutex_lock(&memory_lock);
    if (!memory_thread_running)
        memory_thread_running = start_memory_thread();
    if (memory_thread_running)
        return true;
    pthread_mutex_unlock(&memory_lock);
    return false;
}

static void populate_in_background(void *p, size_t size) {
    if (!lock_memory_thread())
        return;
    if (!populate_unsupported && populate_count < POPULATE_JOBS) {
        populate_queue[populate_count++] = (populate_job){p, size, 0};
        pthread_cond_signal(&memory_wake);
    }
    pthread_mutex_unlock(&memory_lock);
}

void unmap_in_background(void *p, size_t size) {
    if (!lock_memory_thread()) {
        munmap(p, size);
        return;
    }
    for (unsigned i = populate_count; i-- > 0;) /* no point faulting in what is going away */
        if (populate_queue[i].base == p)
            drop_populate_job(i);
    unmap_job *job = p;
    job->bytes = size;
    job->next = unmap_queue;
    unmap_queue = job;
    pthread_cond_signal(&memory_wake);
    pthread_mutex_unlock(&memory_lock);
}

/* The built-in allocator hook. */
static void *default_alloc(size_t size, void *ctx) {
    (void)ctx;
    return malloc(size);
}

static void default_free(void *p, size_t size, void *ctx) {
    (void)ctx;
    (void)size;
    free(p);
}

const hmap_allocator default_allocator = {default_alloc, default_free, NULL};
