/* SPDX-License-Identifier: MIT */
/*
 * test_first_arrays.c — two threads making the process's first OS-mapped arrays at the same moment.
 *
 * The first large array a process maps reads the page size and caches it, and starts the memory thread;
 * two maps on two threads can get there together. This program does nothing before that moment (it must
 * be the process's first mapped array for the race to be there at all), so it is a test of its own. It
 * asserts that both maps work; the race itself is found by the ThreadSanitizer build (`make check-tsan`),
 * which fails the test on any report.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hmap.h"

#define ENTRIES 200000u /* a 2^15-bucket array: far above the size from which arrays are mapped */

static pthread_barrier_t start;

static void *fill_a_big_map(void *arg) {
    (void)arg;
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    hmap *m = hmap_new(&t, 0);
    if (!m)
        return "hmap_new failed";
    pthread_barrier_wait(&start);
    if (hmap_reserve(m, ENTRIES) != 0) /* the first mapped array, on both threads at once */
        return "hmap_reserve failed";
    for (uint64_t i = 0; i < ENTRIES; i++)
        if (hmap_put(m, &i, &i) != 1)
            return "hmap_put failed";
    for (uint64_t i = 0; i < ENTRIES; i++) {
        uint64_t *v = hmap_get(m, &i);
        if (!v || *v != i)
            return "hmap_get failed";
    }
    hmap_free(m);
    return NULL;
}

static void test_two_threads_map_their_first_arrays_at_once(void **state) {
    (void)state;
    pthread_t t[2];
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fill_a_big_map, NULL), 0);
    for (int i = 0; i < 2; i++) {
        void *err;
        assert_int_equal(pthread_join(t[i], &err), 0);
        if (err)
            fail_msg("%s", (const char *)err);
    }
    pthread_barrier_destroy(&start);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads_map_their_first_arrays_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
