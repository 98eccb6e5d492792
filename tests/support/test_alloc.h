/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.h — an allocator hook for tests: it counts, checks, refuses on demand, and scribbles.
 *
 * Every block carries a 16-byte header (so the caller's block stays 16-byte aligned) holding its size
 * and a tag; a free must name the block's size and a live block, or the check fails. Freed blocks are
 * overwritten before they go back to malloc, so that a read of freed memory is likely to show up as a
 * wrong answer even without ASan (with ASan it is reported directly).
 *
 * Ways to refuse, combinable:
 *   - fail_at: refuse exactly the k-th request (1-based, counted since creation);
 *   - test_alloc_fail_in(a, k): refuse the k-th request from now (the fuzzer's way);
 *   - limit: refuse any request that would take the live bytes above it (a small machine).
 * `failures` counts refusals, so a caller can tell whether one happened during a call.
 *
 * Single-threaded: one map (or several on one thread) per instance.
 */
#ifndef HMAP_TEST_ALLOC_H
#define HMAP_TEST_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

typedef struct test_alloc {
    hmap_allocator hook; /* give &a->hook to hmap_options.allocator */
    uint64_t calls;      /* allocation requests seen */
    uint64_t fail_at;    /* the request to refuse (1-based); 0: none */
    size_t limit;        /* live bytes never exceed this; 0: no limit */
    uint64_t failures;   /* requests refused */
    size_t live_bytes, live_blocks, peak_bytes;
    uint64_t granted_bytes; /* sum over all granted requests */
} test_alloc;

void test_alloc_init(test_alloc *a);
/* Refuses the k-th request from now (k >= 1). */
void test_alloc_fail_in(test_alloc *a, uint64_t k);
/* Checks that nothing is held (after the maps using it are freed); `context` goes into the message. */
void test_alloc_check_empty(const test_alloc *a, const char *context);

/* What a map that has grown holds once emptied beyond a fresh map's: its side record (resize bookkeeping,
 * reservation, lifetime counters), made by its first resize that moves entries and kept until it is freed.
 * The same for every type; checked to be under 256 bytes. */
size_t test_side_record_bytes(void);

#endif /* HMAP_TEST_ALLOC_H */
