/* SPDX-License-Identifier: MIT */
/*
 * test_sync_view.c — the view through which hmap_sync reads a shard's array (src/core/sync_support.h).
 *
 * The view's inline walk mirrors three helpers of the core's bucket encoding (the tophash of a hash, the
 * SWAR byte match, the end-of-chain test); sync_support.c checks the constants at compile time, and this
 * test checks the helpers themselves against the core's, on words built to hit their edge cases (zero
 * bytes, state bytes, bytes equal to the tophash next to each other, borrows). Then the walk against real
 * maps: every present key is found with its value (in its first bucket, or further down its chain by
 * map_view_find_further_8_8), no absent key is ever found, a counter value that moved gives TORN, and
 * while a resize runs, or for another layout, there is no view at all. Single-threaded: the races are
 * test_sync_stress's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/core/core.h"
#include "../../src/core/hashed.h"
#include "../../src/core/sync_support.h"

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

/* A tophash word whose bytes are drawn from {0, 1, the states, top, top +- 1, anything}. */
static uint64_t edge_word(uint64_t *rng, uint8_t top) {
    uint64_t w = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t r = rng_next(rng);
        uint8_t byte;
        switch (r % 6) {
        case 0:
            byte = 0;
            break;
        case 1:
            byte = (uint8_t)(1 + (r >> 8) % 4); /* EMPTY_ONE and the evacuation marks */
            break;
        case 2:
        case 3:
            byte = top;
            break;
        case 4:
            byte = (uint8_t)(top + ((r >> 8) & 1 ? 1 : -1));
            break;
        default:
            byte = (uint8_t)(r >> 16);
            break;
        }
        w |= (uint64_t)byte << (8 * i);
    }
    return w;
}

/* What the walk relies on of match_byte: the lowest byte it reports is a real match, and it leaves none
 * out. */
static void test_match_byte_reports_every_match(void **state) {
    (void)state;
    uint64_t rng = 0x7777;
    for (int i = 0; i < 1000000; i++) {
        uint64_t hash = rng_next(&rng);
        if (i % 4 == 0)
            hash &= ~(uint64_t)0xff; /* low bytes below MIN_TOPHASH too */
        uint8_t top = tophash_of(hash);
        assert_true(top >= MIN_TOPHASH);
        uint64_t w = edge_word(&rng, top);
        uint64_t hits = match_byte(w, top);
        if (hits) /* the walk takes the lowest reported byte as a real match */
            assert_int_equal((uint8_t)(w >> (__builtin_ctzll(hits) & ~7)), top);
        for (int s = 0; s < 8; s++) /* and no real match is left out */
            if ((uint8_t)(w >> (8 * s)) == top)
                assert_true(hits & (0x80ULL << (8 * s)));
    }
}

static const hmap_type u64_type = {.key_size = 8, .val_size = 8};

/* The view's answer for k (FURTHER settled by the whole walk), with *seq at 0. */
static map_peek_result view_find(const map_view *v, const hmap *m, uint64_t k, uint64_t *val) {
    static const _Atomic uint64_t seq = 0;
    uint64_t hash = map_key_hash(m, &k);
    map_peek_result r = map_view_find_8_8(v, k, hash, val, &seq, 0);
    if (r == MAP_PEEK_FURTHER)
        r = map_view_find_further_8_8(v, k, hash, val, &seq, 0);
    return r;
}

static uint64_t value_of(uint64_t k) { return k * 0x9e3779b97f4a7c15ULL + 1; }

/* Key i: scattered (consecutive integers spread perfectly under the 8-byte hash, and no chain would
 * ever reach an overflow bucket). */
static uint64_t key_of(uint64_t i) {
    uint64_t x = i + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void check_view(const hmap *m, uint64_t n, uint64_t step, size_t *further) {
    map_view v;
    assert_int_equal(map_view_publish(m, &v), hmap_len(m));
    assert_non_null(v.tophash);
    static const _Atomic uint64_t seq = 2;
    for (uint64_t i = 0; i < 2 * n; i++) {
        uint64_t k = key_of(i), val = 0, hash = map_key_hash(m, &k);
        bool present = i < n && i % step == 0;
        map_peek_result first = map_view_find_8_8(&v, k, hash, &val, &seq, 0);
        assert_int_equal(first, MAP_PEEK_TORN); /* the counter moved: nothing followed */
        map_peek_result r = view_find(&v, m, k, &val);
        static const _Atomic uint64_t zero = 0;
        if (map_view_find_8_8(&v, k, hash, &val, &zero, 0) == MAP_PEEK_FURTHER)
            (*further)++;
        if (present) {
            assert_int_equal(r, MAP_PEEK_HIT);
            assert_int_equal(val, value_of(k));
        } else {
            assert_int_equal(r, MAP_PEEK_MISS);
        }
    }
}

static void test_walk_agrees_with_the_map(void **state) {
    (void)state;
    enum { N = 60000 };
    hmap_options opts = {.fixed_seed = true, .seed = 12345};
    hmap *m = hmap_new_opts(&u64_type, 0, &opts);
    assert_true(map_view_supported(m));
    map_view v;
    map_view_publish(m, &v);
    assert_null(v.tophash); /* no array yet */
    size_t resizing = 0, further = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t k = key_of(i), val = value_of(k);
        assert_int_equal(hmap_put(m, &k, &val), 1);
        hmap_stats st;
        hmap_get_stats(m, &st);
        map_view_publish(m, &v);
        if (st.phase != HMAP_STEADY) {
            assert_null(v.tophash); /* two arrays: readers take map_peek_8_8's walk */
            resizing++;
        } else {
            assert_non_null(v.tophash);
        }
    }
    assert_true(resizing > 0);
    assert_int_equal(hmap_compact(m), 0); /* steady */
    check_view(m, N, 1, &further);
    for (uint64_t i = 1; i < N; i += 2) { /* tombstones in the chains, which go on past them; too few */
        uint64_t k = key_of(i);           /* deletes for a shrink */
        assert_true(hmap_del(m, &k));
    }
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.phase, HMAP_STEADY);
    assert_true(st.tombstones > 0);
    check_view(m, N, 2, &further);
    assert_true(further > 0); /* some chains were walked to their overflow buckets */
    hmap_free(m);
}

static uint64_t my_hash(const void *key, uint64_t seed) { return *(const uint64_t *)key ^ seed; }

static void test_other_layouts_have_no_view(void **state) {
    (void)state;
    hmap_type small_val = {.key_size = 8, .val_size = 4};
    hmap_type hashed = {.key_size = 8, .val_size = 8, .hash = my_hash}; /* keeps each hash in its slot */
    hmap_type wide = {.key_size = 16, .val_size = 8};
    const hmap_type *types[] = {&small_val, &hashed, &wide};
    for (int i = 0; i < 3; i++) {
        hmap *m = hmap_new(types[i], 0);
        assert_false(map_view_supported(m));
        hmap_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_byte_reports_every_match),
        cmocka_unit_test(test_walk_agrees_with_the_map),
        cmocka_unit_test(test_other_layouts_have_no_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
