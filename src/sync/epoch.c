/* SPDX-License-Identifier: MIT */
/*
 * sync/epoch.c — the global epoch and the threads' records (the rule is in epoch.h).
 *
 * Records live in one list that only grows (a lock-free push), so a reclaimer can walk it while threads
 * come and go; a thread that exits marks its record free (a pthread key destructor) and a later thread
 * takes it over. After fork() only the calling thread exists in the child: every other record is marked
 * free there, or the child's epoch could never move past their stale announcements.
 *
 * The global epoch sits alone on its cache line: every pin reads it, and only an advance writes it.
 *
 * The asymmetric barrier (epoch.h): membarrier is registered once, before the first record exists, and
 * again in a forked child; if the kernel refuses, pins keep their own barrier. Should a membarrier call
 * ever fail afterwards, the epoch just does not advance (what waits stays queued: safe, not lost).
 */
#include "epoch.h"

#include "../mem/mem.h"

#include <errno.h>
#include <pthread.h>
#if defined(__linux__) && defined(__x86_64__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define HAVE_MEMBARRIER 1
#endif
#include <sched.h>
#include <stdlib.h>
#include <string.h>

_Alignas(64) _Atomic uint64_t epoch_global = 1;
static _Alignas(64) epoch_thread *_Atomic threads; /* every record ever made */
_Thread_local epoch_thread *epoch_self __attribute__((tls_model("initial-exec")));
bool epoch_asymmetric;

#ifdef HAVE_MEMBARRIER
static bool register_membarrier(void) {
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
           syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* Every running thread of the process executes a full barrier before this returns. */
static bool barrier_everywhere(void) {
    return !epoch_asymmetric || syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}
#else
static bool register_membarrier(void) { return false; }
static bool barrier_everywhere(void) { return true; }
#endif

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool have_exit_key;

/* At thread exit: the record goes back to the pool (a thread cannot exit inside a read section it
 * opened through the library; one opened with hmap_sync_pin and never closed is closed here). */
static void thread_exit(void *p) {
    epoch_thread *t = p;
    t->nest = 0;
    t->retired = 0;
    atomic_store_explicit(&t->state, 0, memory_order_release);
    atomic_store_explicit(&t->in_use, false, memory_order_release);
    epoch_self = NULL;
}

/* In a forked child only the forking thread runs: the other records are free. */
static void after_fork_child(void) {
    if (epoch_asymmetric)
        epoch_asymmetric = register_membarrier(); /* only this thread runs: it may switch modes */
    for (epoch_thread *t = atomic_load_explicit(&threads, memory_order_acquire); t; t = t->next) {
        if (t == epoch_self)
            continue;
        t->nest = 0;
        atomic_store_explicit(&t->state, 0, memory_order_relaxed);
        atomic_store_explicit(&t->in_use, false, memory_order_relaxed);
    }
}

static void make_key(void) {
    epoch_asymmetric = register_membarrier();
    have_exit_key = pthread_key_create(&exit_key, thread_exit) == 0;
    pthread_atfork(NULL, NULL, after_fork_child);
}

/* A free record from the list, or NULL. */
static epoch_thread *reuse_record(void) {
    for (epoch_thread *t = atomic_load_explicit(&threads, memory_order_acquire); t; t = t->next) {
        bool expected = false;
        if (!atomic_load_explicit(&t->in_use, memory_order_relaxed) &&
            atomic_compare_exchange_strong_explicit(&t->in_use, &expected, true, memory_order_seq_cst,
                                                    memory_order_relaxed))
            return t;
    }
    return NULL;
}

static epoch_thread *new_record(void) {
    epoch_thread *t = aligned_alloc(64, sizeof *t);
    if (!t)
        return NULL;
    memstats_note_alloc(sizeof *t); /* kept for the life of the process, reused by later threads */
    memset(t, 0, sizeof *t);
    atomic_init(&t->in_use, true);
    t->next = atomic_load_explicit(&threads, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&threads, &t->next, t, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
    }
    return t;
}

epoch_thread *epoch_register(void) {
    pthread_once(&key_once, make_key);
    if (!have_exit_key)
        return NULL;
    epoch_thread *t = reuse_record();
    if (!t && (t = new_record()) == NULL)
        return NULL;
    if (pthread_setspecific(exit_key, t) != 0) {
        atomic_store_explicit(&t->in_use, false, memory_order_release);
        return NULL;
    }
    epoch_self = t;
    return t;
}

/* One step from e, if every thread inside a read section announced e. */
/* Does any thread but the caller hold a record? A thread that takes one later does so by a seq_cst
 * read-modify-write (a full barrier), after which it sees every removal stamped before this scan. */
static bool others_registered(void) {
    for (epoch_thread *t = atomic_load_explicit(&threads, memory_order_seq_cst); t; t = t->next)
        if (t != epoch_self && atomic_load_explicit(&t->in_use, memory_order_seq_cst))
            return true;
    return false;
}

static bool advance_from(uint64_t e) {
    /* The barrier is only needed for other threads' pins; a program with one thread skips the call. */
    if (others_registered() && !barrier_everywhere())
        return false;
    for (epoch_thread *t = atomic_load_explicit(&threads, memory_order_acquire); t; t = t->next) {
        uint64_t s = atomic_load_explicit(&t->state, memory_order_seq_cst);
        if ((s & 1) && (s >> 1) != e)
            return false;
    }
    atomic_compare_exchange_strong_explicit(&epoch_global, &e, e + 1, memory_order_seq_cst,
                                            memory_order_relaxed);
    return true; /* advanced, by us or by a racing thread */
}

uint64_t epoch_try_advance(void) {
    pthread_once(&key_once, make_key); /* the barrier mode is settled before any pin, seen by us too */
    uint64_t e = atomic_load_explicit(&epoch_global, memory_order_seq_cst);
    for (int step = 0; step < 2 && advance_from(e); step++)
        e = atomic_load_explicit(&epoch_global, memory_order_seq_cst);
    return e;
}

int epoch_synchronize(void) {
    if (epoch_pinned())
        return -EDEADLK; /* our own section would never end */
    uint64_t target = epoch_stamp() + 2;
    while (epoch_try_advance() < target)
        sched_yield(); /* a reader is inside a section: let it run */
    return 0;
}
