/*
 * alloc.c — every byte the library takes goes through here.
 *
 * Two kinds of memory:
 *  - small objects (the map itself, its name, overflow buckets allocated one by one) come from the
 *    allocator hook (malloc/free when none is given);
 *  - bucket arrays. With the built-in allocator, arrays of MAP_THRESHOLD bytes or more are mapped straight
 *    from the OS: the pages arrive zeroed and are only backed by memory when first touched, so creating a
 *    new array costs O(1) here and the zeroing is spread over the inserts that touch it (Go allocates and
 *    zeroes the whole array inside the insert that starts a grow: a 170 ms insert at 10M entries). A freed
 *    array is unmapped by a background thread (below), which gives the pages back to the OS, so RSS
 *    follows the map down without the freeing write paying for it. With a custom allocator, arrays come from
 *    the hook and only the part that must start zeroed is cleared here (a table's tophash words and chain
 *    heads: 16 bytes a bucket, 1/9 of a uint64 map's array) — O(buckets), the price of not owning the
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

static size_t page_size(void) {
    static size_t cached;
    if (!cached)
        cached = (size_t)sysconf(_SC_PAGESIZE);
    return cached;
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

/* ---------------------------------------------------------------- the unmapper thread
 *
 * munmap of a large, touched array is not cheap: on this project's 2-core VMs we measured 12 us for
 * 16 KiB and 160 us for 1 MiB, and 300 MB at once is tens of milliseconds. Done inside the write that
 * finishes a resize it would be the very pause hmap exists to avoid, and done a little per write it
 * would still put that cost on every write for a while. So mapped arrays are handed to one background
 * thread (started at the first hand-off) which unmaps them in 1 MiB steps. The array's own first bytes
 * hold the queue link, so handing off never allocates and cannot fail. The map and the memstats count
 * the bytes as released at hand-off; RSS follows within milliseconds. If the thread cannot be started,
 * arrays are unmapped on the spot. */

typedef struct unmap_job {
    struct unmap_job *next;
    size_t bytes;
} unmap_job;

#define UNMAP_STEP ((size_t)1 << 20)

static pthread_mutex_t unmap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t unmap_wake = PTHREAD_COND_INITIALIZER;
static unmap_job *unmap_queue;
static bool unmapper_running;

static void *unmapper(void *arg) {
    (void)arg;
    pthread_mutex_lock(&unmap_lock);
    for (;;) {
        while (!unmap_queue)
            pthread_cond_wait(&unmap_wake, &unmap_lock);
        unmap_job *job = unmap_queue;
        unmap_queue = job->next;
        pthread_mutex_unlock(&unmap_lock);
        unsigned char *base = (unsigned char *)job;
        size_t bytes = job->bytes;
        for (size_t done = 0; done < bytes; done += UNMAP_STEP) /* from the tail: the link stays mapped */
            munmap(base + (bytes - done > UNMAP_STEP ? bytes - done - UNMAP_STEP : 0),
                   bytes - done > UNMAP_STEP ? UNMAP_STEP : bytes - done);
        pthread_mutex_lock(&unmap_lock);
    }
    return NULL;
}

/* After fork() only the calling thread exists: the child starts its own unmapper when it needs one. */
static void unmapper_after_fork_in_child(void) {
    pthread_mutex_init(&unmap_lock, NULL);
    unmapper_running = false;
    unmap_queue = NULL; /* the parent's pending arrays stay mapped in the child: a bounded leak */
}

static bool start_unmapper(void) {
    static bool fork_handler_set;
    if (!fork_handler_set) {
        pthread_atfork(NULL, NULL, unmapper_after_fork_in_child);
        fork_handler_set = true;
    }
    pthread_t thread;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return false;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 << 10);
    /* the unmapper must not take the process's signals */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    bool ok = pthread_create(&thread, &attr, unmapper, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return ok;
}

void unmap_in_background(void *p, size_t size) {
    pthread_mutex_lock(&unmap_lock);
    if (!unmapper_running)
        unmapper_running = start_unmapper();
    if (!unmapper_running) {
        pthread_mutex_unlock(&unmap_lock);
        munmap(p, size);
        return;
    }
    unmap_job *job = p;
    job->bytes = size;
    job->next = unmap_queue;
    unmap_queue = job;
    pthread_cond_signal(&unmap_wake);
    pthread_mutex_unlock(&unmap_lock);
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
