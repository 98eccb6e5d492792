/* SPDX-License-Identifier: MIT */
/*
 * test_collisions.c — a bad custom hash costs bounded damage: nothing per entry grows with the chain
 * beyond the lookup itself. Counted (calls of the hash and equality functions), never timed.
 *
 * With a constant hash every key lands in one bucket chain and a lookup must compare against the whole
 * chain: that is the price of the hash, and it is the lookup's. What must not happen is work per entry
 * on top of it that grows with the chain: an iteration that hashes the keys of the chain again for every
 * entry it yields is O(chain) per entry, O(n^2) for the whole loop (hashing 4,000 keys sharing one hash
 * 4,000 times each, and a 50k-key map taking seconds to iterate).
 *
 * The checks:
 *   - a full iteration of n keys with one hash calls the hash and equality functions at most a few times
 *     per yielded entry, and no more per entry at 4,000 keys than at 500;
 *   - the same for two distinct hashes (two chains with equal hashes in each);
 *   - an iteration that deletes every key it yields (by a copy) costs, beyond each delete's own lookup
 *     (measured by an hmap_get of the same key just before), at most a few calls per entry;
 *   - a delete costs the callbacks of its lookup, no more.
 *
 * Not observable through callbacks: the chain walks that make no calls (tophash matching, emptying the
 * slots behind a deleted entry); those need a counter inside the library to be tested without a clock.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"

static uint64_t hash_calls, equal_calls;
static uint64_t distinct_hashes = 1;

static uint64_t few_hashes(const void *key, uint64_t seed) {
    (void)seed;
    hash_calls++;
    uint64_t k;
    memcpy(&k, key, 8);
    return 0x5eed + k % distinct_hashes;
}

static bool counting_equal(const void *a, const void *b) {
    equal_calls++;
    return memcmp(a, b, 8) == 0;
}

static uint64_t calls(void) { return hash_calls + equal_calls; }

static hmap *filled(uint64_t n, uint64_t hashes) {
    static const hmap_type t = {.key_size = 8, .val_size = 8, .hash = few_hashes, .equal = counting_equal};
    distinct_hashes = hashes;
    hmap *m = hmap_new(&t, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    assert_int_equal(hmap_compact(m), 0);
    return m;
}

/* Hash and equality calls per yielded entry of one full iteration with nothing written. */
static double iteration_calls_per_entry(uint64_t n, uint64_t hashes) {
    hmap *m = filled(n, hashes);
    uint64_t before = calls(), yielded = 0;
    hmap_iter it;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, NULL, NULL))
        yielded++;
    hmap_iter_done(&it);
    assert_int_equal(yielded, n);
    double per_entry = (double)(calls() - before) / (double)n;
    hmap_free(m);
    print_message("  %5" PRIu64 " keys, %" PRIu64
                  " distinct hash%s: %.1f hash/equality calls per yielded entry\n",
                  n, hashes, hashes == 1 ? "" : "es", per_entry);
    return per_entry;
}

static void assert_bounded_per_entry(uint64_t hashes) {
    double small = iteration_calls_per_entry(500, hashes);
    double large = iteration_calls_per_entry(4000, hashes);
    assert_true(large <= 4.0);
    assert_true(large <= small + 1.0);
}

static void test_iteration_with_one_hash_is_linear(void **state) {
    (void)state;
    assert_bounded_per_entry(1);
}

static void test_iteration_with_two_hashes_is_linear(void **state) {
    (void)state;
    assert_bounded_per_entry(2);
}

/* Delete every key as it is yielded: each delete may pay its own lookup (counted by an hmap_get of the
 * same key first), the iteration itself only a few calls per entry. */
static void test_iteration_deleting_each_key_is_linear(void **state) {
    (void)state;
    const uint64_t n = 4000;
    hmap *m = filled(n, 1);
    uint64_t lookups = 0, total_before = calls(), yielded = 0;
    hmap_iter it;
    void *k;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, NULL)) {
        uint64_t key;
        memcpy(&key, k, 8);
        uint64_t before = calls();
        assert_non_null(hmap_get(m, &key));
        lookups += calls() - before;
        assert_true(hmap_del(m, &key));
        yielded++;
    }
    hmap_iter_done(&it);
    assert_int_equal(yielded, n);
    assert_int_equal(hmap_len(m), 0);
    uint64_t dels_and_iteration =
        calls() - total_before - lookups; /* the deletes pay about `lookups` again */
    double beyond = ((double)dels_and_iteration - (double)lookups) / (double)n;
    print_message("  deleting each yielded key of %" PRIu64 ": %.1f calls per entry beyond the lookups\n", n,
                  beyond);
    assert_true(beyond <= 4.0);
    hmap_free(m);
}

/* A delete calls the callbacks of its lookup and no more, wherever the key sits in the chain. */
static void test_delete_costs_its_lookup(void **state) {
    (void)state;
    const uint64_t n = 4000;
    hmap *m = filled(n, 1);
    for (uint64_t i = n; i-- > 0;) { /* from the end of the chain */
        uint64_t before = calls();
        assert_non_null(hmap_get(m, &i));
        uint64_t lookup = calls() - before;
        before = calls();
        assert_true(hmap_del(m, &i));
        uint64_t del = calls() - before;
        if (del > lookup + 1)
            fail_msg("deleting key %" PRIu64 ": %" PRIu64 " calls, its lookup %" PRIu64, i, del, lookup);
    }
    hmap_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iteration_with_one_hash_is_linear),
        cmocka_unit_test(test_iteration_with_two_hashes_is_linear),
        cmocka_unit_test(test_iteration_deleting_each_key_is_linear),
        cmocka_unit_test(test_delete_costs_its_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
