/* SPDX-License-Identifier: MIT */
/*
 * test_alloc_fail.c — every allocation made to fail in turn, and failed calls that must leave nothing.
 *
 * The sweep: a scripted scenario of over 50k operations — grow to 8k entries, iterate with writes inside,
 * shrink, reserve, grow again with assign, compact, two iterations open at once with writes inside, take
 * down to a hundred, clear, churn across the grow and shrink thresholds, empty, grow again — runs through
 * the differential harness (support/diff.h) on a map whose allocator (the test allocator) refuses exactly
 * the k-th request. The scenario runs once without failures to count the allocations A, then once for
 * every k in 1..A (HMAP_ALLOC_FAIL_STRIDE=s runs every s-th k instead, for slow builds). In every run the
 * harness checks, call by call:
 *
 *   - a call that reports an error (-ENOMEM, or NULL with errno ENOMEM) had the allocation refused during
 *     it, and changed nothing: the whole map still matches the reference model;
 *   - a call during which the allocation was refused but which reports success (the map may postpone a
 *     grow or a shrink) did its job: the whole map matches the model with the call applied;
 *   - lookups never allocate;
 *   - at the end, after hmap_free, the allocator holds no block and no byte, each key and value was
 *     dropped exactly once (owned string keys and value blocks: none left alive), and memstats' live
 *     bytes are back where they started. Under the ASan build LeakSanitizer checks the same at exit.
 *
 * Two key kinds: uint64 keys and values (drops counted), and owned string keys with owned values (a
 * failed put or assign must leave both with the caller: the harness frees them, so a map that had
 * already dropped one shows as a double free under ASan and as a wrong live count without it).
 *
 * Then the calls that are O(n) and can fail part way: a reserve that cannot be met must fail before it
 * builds anything large and leave the map as it was; a failed compact keeps the reservation.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "diff.h"
#include "hmap.h"
#include "model.h"
#include "test_alloc.h"

/* ---- the scenario ---- */

typedef struct run {
    diff d;
    prng rng;
} run;

/* A key for an insert: fresh from a space of 4n ids. */
static uint64_t fresh_id(run *r, size_t n) { return prng_below(&r->rng, 4 * (uint64_t)n + 16); }

static uint64_t present_id(run *r) { return diff_existing_id(&r->d, prng_next(&r->rng), 0); }

static void grow_to(run *r, size_t n, bool use_assign) {
    while (hmap_len(r->d.m) < n) {
        uint64_t id = fresh_id(r, n);
        if (use_assign)
            diff_assign(&r->d, id);
        else
            diff_put(&r->d, id);
        if (prng_chance(&r->rng, 0.2))
            diff_get(&r->d, present_id(r));
    }
}

static void shrink_to(run *r, size_t n, bool use_take) {
    while (hmap_len(r->d.m) > n) {
        if (use_take)
            diff_take(&r->d, present_id(r), prng_chance(&r->rng, 0.5), prng_chance(&r->rng, 0.5));
        else
            diff_del(&r->d, present_id(r));
    }
}

/* Inserts and deletes in turn around a size, so that the map keeps crossing a resize threshold. */
static void churn(run *r, size_t around, size_t ops) {
    for (size_t i = 0; i < ops; i++) {
        if (hmap_len(r->d.m) < around || prng_chance(&r->rng, 0.45))
            diff_put(&r->d, fresh_id(r, around));
        else
            diff_del(&r->d, present_id(r));
    }
}

static void write_inside(run *r, int slot, size_t space) {
    switch (prng_below(&r->rng, 8)) {
    case 0:
        diff_del(&r->d, r->d.iters[slot].id);
        break;
    case 1:
        diff_put(&r->d, prng_below(&r->rng, space));
        break;
    case 2:
        diff_assign(&r->d, prng_below(&r->rng, space));
        break;
    case 3:
        diff_del(&r->d, present_id(r));
        break;
    default:
        break;
    }
}

/* Iterations run to their end with writes inside; `two` runs a second one interleaved with the first. */
static void iterate_with_writes(run *r, bool two) {
    size_t space = 2 * hmap_len(r->d.m) + 16;
    int a = diff_iter_open(&r->d), b = two ? diff_iter_open(&r->d) : -1;
    while (diff_iter_is_open(&r->d, a) || diff_iter_is_open(&r->d, b)) {
        int slot = diff_iter_is_open(&r->d, a) && (!diff_iter_is_open(&r->d, b) || prng_chance(&r->rng, 0.5))
                       ? a
                       : b;
        if (diff_iter_next(&r->d, slot))
            write_inside(r, slot, space);
    }
}

static void reserve(run *r, size_t n) {
    int rc = diff_reserve(&r->d, n); /* the harness checks an error against a refused allocation */
    (void)rc;
}

static void scenario(run *r) {
    grow_to(r, 8000, false);
    iterate_with_writes(r, false);
    shrink_to(r, 200, false);
    reserve(r, 12000);
    grow_to(r, 5000, true);
    (void)diff_compact(&r->d);
    iterate_with_writes(r, true);
    shrink_to(r, 100, true);
    (void)diff_compact(&r->d);
    diff_clear(&r->d);
    grow_to(r, 2000, false);
    churn(r, 2000, 6000);
    shrink_to(r, 0, false);
    grow_to(r, 300, true);
    diff_check(&r->d);
}

typedef struct sweep_kind {
    const char *name;
    size_t key_size, val_size; /* key_size 0: owned string keys */
} sweep_kind;

/* Runs the scenario refusing the fail_at-th allocation after creation (0: none). Returns the number of
 * allocation requests made after creation; *ops the number of operations. */
static uint64_t run_once(const sweep_kind *kind, uint64_t fail_at, uint64_t *ops, diff *report) {
    char note[48];
    snprintf(note, sizeof note, "fail_at=%" PRIu64, fail_at);
    run r;
    memset(&r, 0, sizeof r);
    r.rng.s = 0xa110c;
    diff_config cfg = {.name = kind->name,
                       .key_size = kind->key_size,
                       .val_size = kind->val_size,
                       .owned_values = kind->key_size == 0,
                       .count_drops = true,
                       .custom_allocator = true,
                       .fixed_seed = true, /* the same run every time, so that k names the same request */
                       .seed = 42,
                       .rules = diff_rules_from_env()};
    diff_init(&r.d, &cfg);
    r.d.note = note;
    uint64_t calls_at_start = r.d.ta.calls;
    if (fail_at)
        diff_fail_in(&r.d, fail_at);
    scenario(&r);
    uint64_t calls = r.d.ta.calls - calls_at_start;
    if (fail_at && fail_at <= calls)
        check(r.d.ta.failures == 1, "%s the refused allocation was not seen", diff_where(&r.d));
    *ops = r.d.op;
    *report = r.d;
    diff_destroy(&r.d);
    return calls;
}

static void sweep(const sweep_kind *kind) {
    uint64_t ops;
    diff rep;
    uint64_t total = run_once(kind, 0, &ops, &rep);
    uint64_t stride = env_u64("HMAP_ALLOC_FAIL_STRIDE", 1);
    if (stride == 0)
        stride = 1;
    print_message("  %s: %" PRIu64 " operations, %" PRIu64 " allocations; failing %s\n", kind->name, ops,
                  total, stride == 1 ? "each in turn" : "every HMAP_ALLOC_FAIL_STRIDE-th");
    assert_true(ops >= 50000);
    assert_true(total >= 50);
    uint64_t reported = 0, absorbed = 0, runs = 0;
    for (uint64_t k = 1; k <= total; k += stride, runs++) {
        run_once(kind, k, &ops, &rep);
        reported += rep.errors_reported;
        absorbed += rep.failures_absorbed;
    }
    print_message("  %s: %" PRIu64 " runs, %" PRIu64 " failures reported as errors, %" PRIu64
                  " absorbed by a call that succeeded\n",
                  kind->name, runs, reported, absorbed);
    assert_int_equal(reported + absorbed, runs); /* every refusal was seen by one call */
    assert_true(reported > 0);
}

static void test_every_allocation_fails_in_turn_u64(void **state) {
    (void)state;
    static const sweep_kind kind = {"u64", 8, 8};
    sweep(&kind);
}

static void test_every_allocation_fails_in_turn_strings(void **state) {
    (void)state;
    static const sweep_kind kind = {"strings", 0, 16};
    sweep(&kind);
}

/* The map creation itself failing, with and without a hint: NULL, ENOMEM, nothing held. */
static void test_creation_fails_cleanly(void **state) {
    (void)state;
    hmap_type type = {.key_size = 8, .val_size = 8};
    for (size_t hint = 0; hint <= 100000; hint = hint ? hint * 10 : 1) {
        for (uint64_t k = 1; k <= 4; k++) {
            test_alloc ta;
            test_alloc_init(&ta);
            ta.fail_at = k;
            hmap_options opts = {.allocator = &ta.hook};
            errno = 0;
            hmap *m = hmap_new_opts(&type, hint, &opts);
            if (m) {
                hmap_free(m);
            } else {
                assert_int_equal(ta.failures, 1);
                assert_int_equal(errno, ENOMEM);
            }
            test_alloc_check_empty(&ta, "hmap_new_opts");
        }
    }
}

/* ---- a reservation that cannot be met ---- */

/* A 1000-entry map on a machine with `limit` bytes asks for n entries: the reserve must fail before it
 * builds anything large (at most 64 KiB granted during the call) and leave the map exactly as it was. */
static void failed_reserve_leaves_the_map(size_t limit, size_t n) {
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    test_alloc ta;
    test_alloc_init(&ta);
    ta.limit = limit;
    hmap_options opts = {.allocator = &ta.hook};
    hmap *m = hmap_new_opts(&t, 0, &opts);
    assert_non_null(m);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    assert_int_equal(hmap_compact(m), 0);
    hmap_stats before, after;
    hmap_get_stats(m, &before);
    uint64_t granted = ta.granted_bytes;
    size_t peak_before = ta.peak_bytes;
    assert_int_equal(hmap_reserve(m, n), -ENOMEM);
    hmap_get_stats(m, &after);
    print_message("  reserve(%zu) under a %zu MiB limit: %" PRIu64 " bytes granted during the failed call, "
                  "peak %zu -> %zu bytes, B %u -> %u, held %zu -> %zu bytes\n",
                  n, limit >> 20, ta.granted_bytes - granted, peak_before, ta.peak_bytes, before.B, after.B,
                  before.bytes, after.bytes);
    assert_true(ta.granted_bytes - granted <= (64u << 10));
    assert_int_equal(after.B, before.B);
    assert_int_equal(after.bytes, before.bytes);
    assert_int_equal(after.old_buckets, 0);
    assert_int_equal(hmap_len(m), 1000);
    for (uint64_t i = 0; i < 1000; i++)
        assert_non_null(hmap_get(m, &i));
    hmap_free(m);
    test_alloc_check_empty(&ta, "after hmap_free");
}

static void test_failed_reserve_2_pow_50_leaves_the_map_as_it_was(void **state) {
    (void)state;
    failed_reserve_leaves_the_map((size_t)256 << 20, (size_t)1 << 50);
}

static void test_failed_reserve_over_the_limit_leaves_the_map_as_it_was(void **state) {
    (void)state;
    failed_reserve_leaves_the_map((size_t)64 << 20, (size_t)10 << 20);
}

/* ---- failed O(n) calls leave nothing behind (found by review) ---- */

/* An allocator that refuses every request above a size. */
static size_t refuse_above;
static void *small_only_alloc(size_t size, void *ctx) {
    (void)ctx;
    return size > refuse_above ? NULL : malloc(size);
}
static void small_only_free(void *ptr, size_t size, void *ctx) {
    (void)ctx;
    (void)size;
    free(ptr);
}

static void test_failed_reserve_keeps_no_reservation(void **state) {
    (void)state;
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_allocator a = {small_only_alloc, small_only_free, NULL};
    hmap_options opts = {.allocator = &a};
    refuse_above = (size_t)1 << 20;
    hmap *m = hmap_new_opts(&t, 0, &opts);
    assert_non_null(m);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    assert_int_equal(hmap_reserve(m, 10000000), -ENOMEM);
    assert_int_equal(hmap_len(m), 1000);
    for (uint64_t i = 10; i < 1000; i++) /* the map may shrink again: the failed reservation is gone */
        assert_true(hmap_del(m, &i));
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_true(st.B <= 2);
    for (uint64_t i = 0; i < 10; i++)
        assert_true(hmap_del(m, &i));
    hmap_get_stats(m, &st);
    assert_int_equal(st.buckets, 0); /* emptied: arrays given back */
    hmap_free(m);
}

static void test_failed_compact_keeps_the_reservation(void **state) {
    (void)state;
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_allocator a = {small_only_alloc, small_only_free, NULL};
    hmap_options opts = {.allocator = &a};
    refuse_above = SIZE_MAX;
    hmap *m = hmap_new_opts(&t, 0, &opts);
    assert_non_null(m);
    assert_int_equal(hmap_reserve(m, 100000), 0);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    hmap_stats before;
    hmap_get_stats(m, &before);
    refuse_above = 0; /* compact's new array cannot be had */
    assert_int_equal(hmap_compact(m), -ENOMEM);
    refuse_above = SIZE_MAX;
    uint64_t k = 7;
    assert_true(hmap_del(m, &k)); /* would start a shrink if the reservation had been dropped */
    hmap_stats after;
    hmap_get_stats(m, &after);
    assert_int_equal(after.B, before.B);
    assert_int_equal(after.shrinks, before.shrinks);
    hmap_free(m);
}

static void test_compact_empties_a_no_shrink_map(void **state) {
    (void)state;
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_options opts = {.no_shrink = true};
    hmap *m = hmap_new_opts(&t, 0, &opts);
    assert_non_null(m);
    for (uint64_t i = 0; i < 100000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    for (uint64_t i = 0; i < 100000; i++)
        assert_true(hmap_del(m, &i));
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_true(st.buckets > 0); /* no_shrink keeps the arrays after deletes, as Go */
    assert_int_equal(hmap_compact(m), 0);
    hmap_get_stats(m, &st);
    assert_int_equal(st.buckets, 0); /* an explicit compact gives them back */
    hmap_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_creation_fails_cleanly),
        cmocka_unit_test(test_every_allocation_fails_in_turn_u64),
        cmocka_unit_test(test_every_allocation_fails_in_turn_strings),
        cmocka_unit_test(test_failed_reserve_2_pow_50_leaves_the_map_as_it_was),
        cmocka_unit_test(test_failed_reserve_over_the_limit_leaves_the_map_as_it_was),
        cmocka_unit_test(test_failed_reserve_keeps_no_reservation),
        cmocka_unit_test(test_failed_compact_keeps_the_reservation),
        cmocka_unit_test(test_compact_empties_a_no_shrink_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
