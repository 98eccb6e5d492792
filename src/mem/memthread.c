/* SPDX-License-Identifier: MIT */
/*
 * mem/memthread.c — the memory thread (what it does and how to turn it off: memthread.h).
 *
 * A freed array's own first bytes hold the queue link, so handing one over never allocates and cannot
 * fail; the owner and the memstats count its bytes as released at hand-off, and RSS follows within
 * milliseconds. Pre-faulting is only a hint: arrays are correct without it (the kernel gives zero pages
 * either way), jobs beyond POPULATE_JOBS are skipped, and kernels without MADV_POPULATE_WRITE (before
 * 5.14) just fault on touch. If the thread is turned off or cannot be started, arrays are unmapped on the
 * spot and faulted on touch.
 */
#include "memthread.h"

#include "hmap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
static _Atomic bool memory_thread_disabled; /* HMAP_MEMORY_THREAD=0 or hmap_set_memory_thread(false) */
static unsigned unmaps_pending;             /* handed over, not yet unmapped */
static pthread_cond_t memory_idle = PTHREAD_COND_INITIALIZER;
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
            if (--unmaps_pending == 0)
                pthread_cond_broadcast(&memory_idle);
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
    pthread_cond_init(&memory_idle, NULL);
    memory_thread_running = false;
    unmap_queue = NULL; /* the parent's pending arrays stay mapped in the child: a bounded leak */
    unmaps_pending = 0;
    populate_count = 0;
}

static bool start_memory_thread(void) {
    static bool handlers_set;
    if (memory_thread_stopping || atomic_load_explicit(&memory_thread_disabled, memory_order_relaxed))
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

void populate_in_background(void *p, size_t size) {
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
    unmaps_pending++;
    pthread_cond_signal(&memory_wake);
    pthread_mutex_unlock(&memory_lock);
}

void memthread_drain(void) {
    pthread_mutex_lock(&memory_lock);
    while (memory_thread_running && unmaps_pending > 0)
        pthread_cond_wait(&memory_idle, &memory_lock);
    pthread_mutex_unlock(&memory_lock);
}

/* Arrays already queued are still unmapped by the running thread; turning it off only stops new work. */
void hmap_set_memory_thread(bool enabled) {
    atomic_store_explicit(&memory_thread_disabled, !enabled, memory_order_relaxed);
}

__attribute__((constructor)) static void memthread_read_environment(void) {
    const char *v = getenv("HMAP_MEMORY_THREAD");
    if (v && strcmp(v, "0") == 0)
        atomic_store_explicit(&memory_thread_disabled, true, memory_order_relaxed);
}
