/* SPDX-License-Identifier: MIT */
/*
 * test_memstats.c — hmap_read_memstats is exact.
 *
 * Every allocation the library makes goes through the allocator hook when one is given, so a counting
 * allocator knows the truth: the memstats deltas (live, total, peak, mallocs, frees) over a scripted
 * sequence of maps and operations must equal what the allocator saw, at every checkpoint, and live must
 * return to where it started once every map is freed. Then the same from several threads at once, each
 * with its own maps, to check that the process-wide counters lose nothing.
 */
#include <hmap.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct counting {
    _Atomic uint64_t live, total, mallocs, frees;
} counting;

static void *count_alloc(size_t size, void *ctx) {
    counting *c = ctx;
    void *p = malloc(size);
    if (p) {
        atomic_fetch_add(&c->live, size);
        atomic_fetch_add(&c->total, size);
        atomic_fetch_add(&c->mallocs, 1);
    }
    return p;
}

static void count_free(void *p, size_t size, void *ctx) {
    counting *c = ctx;
    atomic_fetch_sub(&c->live, size);
    atomic_fetch_add(&c->frees, 1);
    free(p);
}

static const hmap_type u64_type = {.key_size = 8, .val_size = 8};

/* The memstats deltas since `start` equal the allocator's counts. */
static void assert_memstats_match(const hmap_memstats *start, const counting *c) {
    hmap_memstats now;
    hmap_read_memstats(&now);
    assert_int_equal(now.live_bytes - start->live_bytes, atomic_load(&c->live));
    assert_int_equal(now.total_bytes - start->total_bytes, atomic_load(&c->total));
    assert_int_equal(now.mallocs - start->mallocs, atomic_load(&c->mallocs));
    assert_int_equal(now.frees - start->frees, atomic_load(&c->frees));
    assert_true(now.peak_bytes >= now.live_bytes);
}

static void test_scripted_sequence_is_exact(void **state) {
    (void)state;
    counting c = {0};
    hmap_allocator a = {count_alloc, count_free, &c};
    hmap_options opts = {.allocator = &a, .name = "scripted"};
    hmap_memstats start;
    hmap_read_memstats(&start);

    hmap *big = hmap_new_opts(&u64_type, 0, &opts);
    hmap *small = hmap_new_opts(&u64_type, 100, &opts);
    assert_non_null(big);
    assert_non_null(small);
    assert_memstats_match(&start, &c);

    for (uint64_t i = 0; i < 200000; i++) /* grows, with evacuations in flight */
        assert_int_equal(hmap_put(big, &i, &i), 1);
    for (uint64_t i = 0; i < 50; i++)
        assert_int_equal(hmap_put(small, &i, &i), 1);
    assert_memstats_match(&start, &c);

    hmap_memstats mid;
    hmap_read_memstats(&mid);
    assert_true(mid.peak_bytes - start.live_bytes >= atomic_load(&c.live));

    for (uint64_t i = 0; i < 200000; i++) /* shrinks */
        if (i % 50)
            assert_true(hmap_del(big, &i));
    assert_memstats_match(&start, &c);
    assert_int_equal(hmap_compact(big), 0);
    assert_memstats_match(&start, &c);
    assert_int_equal(hmap_reserve(small, 10000), 0);
    hmap_clear(small);
    assert_memstats_match(&start, &c);

    hmap_free(big);
    hmap_free(small);
    assert_memstats_match(&start, &c);
    assert_int_equal(atomic_load(&c.live), 0);
    assert_int_equal(atomic_load(&c.mallocs), atomic_load(&c.frees));

    hmap_memstats end;
    hmap_read_memstats(&end);
    assert_int_equal(end.live_bytes, start.live_bytes);
}

static uint64_t one_hash(const void *key, uint64_t seed) {
    (void)key;
    (void)seed;
    return 7;
}

/* The map's bytes are what the allocator holds for it (one map with its own hook: its class too). */
static void assert_map_holds(const hmap *m, const counting *c) {
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.bytes, atomic_load(&c->live));
}

/* Keys that share one hash fill one chain of overflow buckets at every size: every array then has its side
 * record and overflow slabs, through growth, same-size growth, reset, shrinking and compaction, and every
 * byte of them is counted. */
static void test_overflow_side_records_are_exact(void **state) {
    (void)state;
    counting c = {0};
    hmap_allocator a = {count_alloc, count_free, &c};
    hmap_options opts = {.allocator = &a, .name = "one chain"};
    hmap_type one_chain = {.key_size = 8, .val_size = 8, .hash = one_hash};
    hmap_memstats start;
    hmap_read_memstats(&start);
    hmap *m = hmap_new_opts(&one_chain, 0, &opts);
    assert_non_null(m);
    for (uint64_t i = 0; i < 300; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_true(st.overflow_buckets > 8); /* beyond one slab */
    assert_map_holds(m, &c);
    assert_memstats_match(&start, &c);

    hmap_reset(m); /* the slabs go, the array stays */
    assert_map_holds(m, &c);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    assert_map_holds(m, &c);
    for (uint64_t i = 0; i < 95; i++) /* shrinks */
        assert_true(hmap_del(m, &i));
    assert_map_holds(m, &c);
    assert_int_equal(hmap_compact(m), 0);
    assert_map_holds(m, &c);
    assert_memstats_match(&start, &c);

    hmap_free(m);
    assert_memstats_match(&start, &c);
    assert_int_equal(atomic_load(&c.live), 0);
    assert_int_equal(atomic_load(&c.mallocs), atomic_load(&c.frees));
}

/* With the built-in allocator (large arrays mapped from the OS) live bytes also return to the start. */
static void test_builtin_allocator_returns_to_start(void **state) {
    (void)state;
    hmap_memstats start, full, end;
    hmap_read_memstats(&start);
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 300000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    hmap_read_memstats(&full);
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(full.live_bytes - start.live_bytes, st.bytes); /* one map: its bytes are the live ones */
    hmap_free(m);
    hmap_read_memstats(&end);
    assert_int_equal(end.live_bytes, start.live_bytes);
    assert_int_equal(end.mallocs - start.mallocs, end.frees - start.frees);
    assert_true(end.total_bytes - start.total_bytes >= st.bytes);
}

enum { THREADS = 4, MAPS_PER_THREAD = 20 };

typedef struct worker {
    counting *c;
    unsigned id;
} worker;

static void *churn_maps(void *arg) {
    worker *w = arg;
    hmap_allocator a = {count_alloc, count_free, w->c};
    hmap_options opts = {.allocator = &a};
    for (unsigned k = 0; k < MAPS_PER_THREAD; k++) {
        hmap *m = hmap_new_opts(&u64_type, 0, &opts);
        if (!m)
            return (void *)1;
        uint64_t n = 1000 + 997 * (w->id + k);
        for (uint64_t i = 0; i < n; i++)
            if (hmap_put(m, &i, &i) != 1)
                return (void *)1;
        for (uint64_t i = 0; i < n; i += 2)
            hmap_del(m, &i);
        hmap_free(m);
    }
    return NULL;
}

static void test_threads_lose_nothing(void **state) {
    (void)state;
    counting c = {0};
    hmap_memstats start;
    hmap_read_memstats(&start);
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        workers[t] = (worker){&c, t};
        assert_int_equal(pthread_create(&threads[t], NULL, churn_maps, &workers[t]), 0);
    }
    for (unsigned t = 0; t < THREADS; t++) {
        void *rc;
        assert_int_equal(pthread_join(threads[t], &rc), 0);
        assert_null(rc);
    }
    assert_memstats_match(&start, &c);
    assert_int_equal(atomic_load(&c.live), 0);
    assert_true(atomic_load(&c.mallocs) >= THREADS * MAPS_PER_THREAD);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripted_sequence_is_exact),
        cmocka_unit_test(test_overflow_side_records_are_exact),
        cmocka_unit_test(test_builtin_allocator_returns_to_start),
        cmocka_unit_test(test_threads_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
