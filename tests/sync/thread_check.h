/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/thread_check.h — checks made inside worker threads. cmocka's asserts longjmp and must stay on
 * the main thread, so a worker counts its failures (the first ten printed) and the main thread asserts
 * the count is zero after joining.
 */
#ifndef HMAP_TESTS_SYNC_THREAD_CHECK_H
#define HMAP_TESTS_SYNC_THREAD_CHECK_H

#include <stdatomic.h>
#include <stdio.h>

static _Atomic unsigned long failures;
#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            if (atomic_fetch_add(&failures, 1) < 10)                                                         \
                fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
        }                                                                                                    \
    } while (0)

#endif
