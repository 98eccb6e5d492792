/* SPDX-License-Identifier: MIT */
/*
 * sync/epoch.h — epoch-based reclamation: when may memory that a reader could still be looking at go?
 *
 * The rule. Each thread has a record with a state: 0 when outside a read section, else the global epoch
 * it saw on entering, (epoch << 1) | 1. Something removed from shared view is stamped with the global
 * epoch at that moment (epoch_stamp) and may be freed once the global epoch has moved two steps past the
 * stamp (epoch_safe). The global epoch only moves from e to e + 1 when every thread inside a read
 * section announced e (epoch_try_advance); so reaching stamp + 2 means every reader that was inside a
 * section when the thing was removed has left it since, and every reader that entered later entered after
 * the removal and cannot find it.
 *
 * Costs. epoch_pin/unpin touch only the calling thread's own cache line; nesting is a thread-private
 * counter. The announcement must be visible before the section's first shared read (a store-load
 * barrier). Where Linux offers membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) on x86-64, the barrier is moved
 * to the rare side: epoch_try_advance first makes every running thread of the process execute a full
 * barrier, so a pin is a plain store and an unpin a release store (as liburcu's membarrier flavour).
 * Elsewhere the pin is an exchange (one locked instruction on x86) or a store and a fence.
 * epoch_try_advance reads every thread's record; the reclaiming side calls it, rarely (sync/reclaim.c
 * paces it).
 *
 * Threads: a thread's record is made at its first pin and returned (for reuse by a later thread) when it
 * exits; a forked child keeps only its own. Records are never freed: a few cache lines per thread.
 */
#ifndef HMAP_SYNC_EPOCH_H
#define HMAP_SYNC_EPOCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define epoch_global hmap__epoch_global
#define epoch_asymmetric hmap__epoch_asymmetric
#define epoch_self hmap__epoch_self
#define epoch_register hmap__epoch_register
#define epoch_try_advance hmap__epoch_try_advance
#define epoch_synchronize hmap__epoch_synchronize

typedef struct epoch_thread {
    _Alignas(64) _Atomic uint64_t state; /* 0, or (epoch << 1) | 1 inside a read section */
    unsigned nest;                       /* read sections open (thread-private) */
    unsigned retired;                    /* removals since this thread last tried to advance */
    struct epoch_thread *next;           /* all records, a list that only grows */
    _Atomic bool in_use;
} epoch_thread;

extern _Atomic uint64_t epoch_global;
extern bool epoch_asymmetric; /* membarrier on the advancing side; set before any thread's first pin */
extern _Thread_local epoch_thread *epoch_self __attribute__((tls_model("initial-exec")));

/* The calling thread's record, made on first use; NULL on ENOMEM. */
epoch_thread *epoch_register(void);

/* The thread announces the current epoch: its section has begun once this returns. */
static inline void epoch_announce(epoch_thread *t) {
    uint64_t v = (atomic_load_explicit(&epoch_global, memory_order_relaxed) << 1) | 1;
    if (__builtin_expect(epoch_asymmetric, 1)) {
        atomic_store_explicit(&t->state, v, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the advancer's membarrier is our fence */
    } else {
        /* a full barrier: on x86 the exchange is one (a locked instruction); elsewhere add the fence */
        atomic_exchange_explicit(&t->state, v, memory_order_seq_cst);
#if !defined(__x86_64__) && !defined(__i386__)
        atomic_thread_fence(memory_order_seq_cst);
#endif
    }
}

/* Enters a read section: false (and no section) only when the thread's record cannot be allocated. */
static inline bool epoch_pin(void) {
    epoch_thread *t = epoch_self;
    if (__builtin_expect(t == NULL, 0) && (t = epoch_register()) == NULL)
        return false;
    if (t->nest++ == 0)
        epoch_announce(t);
    return true;
}

/* A section for code that pins nothing else inside it (a single lock-free read): t is epoch_self, not
 * NULL. Enters unless the thread is inside a section already; epoch_leave then leaves it, and only it.
 * The nesting count is left alone, so each side tells from it (0) whether the section is this one: the
 * caller keeps no flag in a register. */
static inline void epoch_enter(epoch_thread *t) {
    if (__builtin_expect(t->nest == 0, 1))
        epoch_announce(t);
}

static inline void epoch_leave(epoch_thread *t) {
    if (__builtin_expect(t->nest == 0, 1))
        atomic_store_explicit(&t->state, 0, memory_order_release); /* the section's reads come before */
}

/* Leaves a read section (the matching one of a successful epoch_pin). */
static inline void epoch_unpin(void) {
    epoch_thread *t = epoch_self;
    if (--t->nest == 0)
        atomic_store_explicit(&t->state, 0, memory_order_release); /* the section's reads come before */
}

static inline bool epoch_pinned(void) { return epoch_self && epoch_self->nest > 0; }

/* The stamp of something just removed from shared view (called after the removal's stores). */
static inline uint64_t epoch_stamp(void) {
    atomic_thread_fence(memory_order_seq_cst); /* the removal is visible before the epoch is read */
    return atomic_load_explicit(&epoch_global, memory_order_relaxed);
}

/* May what was stamped `stamp` be freed now? */
static inline bool epoch_safe(uint64_t stamp) {
    return atomic_load_explicit(&epoch_global, memory_order_acquire) >= stamp + 2;
}

/* Moves the global epoch forward as far as the threads inside read sections allow, at most two steps
 * (enough to make everything stamped until now safe). Returns the epoch reached. */
uint64_t epoch_try_advance(void);

/* Waits until everything stamped before the call is safe. -EDEADLK when the caller is pinned. */
int epoch_synchronize(void);

#endif /* HMAP_SYNC_EPOCH_H */
