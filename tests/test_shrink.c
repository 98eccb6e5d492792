/* SPDX-License-Identifier: MIT */
/*
 * test_shrink.c — the memory follows the live data down, without thrashing.
 *
 *   - After deleting 99% of N entries (N = 1M and 100k uint64 -> uint64, and 100k string keys; and N where
 *     the survivors sit at the line where a shrink starts), the map holds at most 2x the bytes of a fresh
 *     map built with the same survivors, right after the last delete and with no other call; at most 1.1x
 *     after hmap_compact. While a shrink runs, the bytes held stay within 1.1x of the larger of the bytes
 *     before and after it; while a growth runs, within 1.2x. A small array's first overflow bucket costs
 *     one bucket, not a slab of eight.
 *   - With no_shrink the bytes stay at the peak (Go's behaviour, asserted so that the two can be compared).
 *   - Deleting everything brings the bytes back to what an empty new map holds; hmap_clear gives the
 *     arrays back.
 *   - Churn: waves of inserts and deletes around the grow and the shrink thresholds, and N deletes followed
 *     by N inserts; resizes are counted and so are the old buckets moved by each call (the buckets_moved
 *     delta around every call, and stats.max_moved_per_op): bounded per call and small amortized (over
 *     the whole pattern, including the inserts or deletes that led up to the threshold: a resize started
 *     there is paid by them). The worst figures are printed.
 *   - Interleavings compared against the reference model: a shrink interrupted by inserts, a grow
 *     interrupted by deletes, and same-size growth (keys that arrive in colliding groups, then leave).
 *
 * Keys are spread with mix64 so that the built-in hash sees realistic, distinct 64-bit keys.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diff.h"
#include "hmap.h"
#include "model.h"
#include "test_alloc.h"

/* The most old buckets one call may move: the bucket it writes plus at most 1024 more (the pace in
 * src/core/resize.c); a delete that starts the shrink of an array of up to 2048 buckets moves them all at
 * once (its half-size successor, below 256 KiB, comes from the allocator and would count whole beside
 * it). A regression past these is what the churn tests are for. */
#define MAX_MOVED_PER_CALL 1025
#define MAX_MOVED_BY_A_SMALL_SHRINK 2048
/* Amortized evacuation work over a churn pattern, in old buckets per call. */
#define MAX_MOVED_AMORTIZED 2.0

static const hmap_type u64_type = {.key_size = 8, .val_size = 8};

static hmap_stats stats_of(const hmap *m) {
    hmap_stats st;
    hmap_get_stats(m, &st);
    return st;
}

static uint64_t key_at(uint64_t i) { return mix64(i + 1); }

static void put_u64(hmap *m, uint64_t k) {
    uint64_t v = ~k;
    assert_int_equal(hmap_put(m, &k, &v), 1);
}

static void del_u64(hmap *m, uint64_t k) { assert_true(hmap_del(m, &k)); }

static size_t empty_map_bytes(const hmap_type *type) {
    hmap *m = hmap_new(type, 0);
    assert_non_null(m);
    size_t bytes = stats_of(m).bytes;
    hmap_free(m);
    return bytes;
}

/* An emptied map that has resized: a fresh map's bytes and its side record. */
static size_t emptied_map_bytes(const hmap_type *type) {
    return empty_map_bytes(type) + test_side_record_bytes();
}

/* ---- 99% deleted: bytes against a fresh map of the survivors ---- */

static size_t fresh_u64_bytes(size_t n, size_t keep_every) {
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < n; i += keep_every)
        put_u64(m, key_at(i));
    size_t bytes = stats_of(m).bytes;
    hmap_free(m);
    return bytes;
}

/* Returns the map's phase right after the deletes. */
static hmap_phase delete_99_percent_u64(size_t n) {
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < n; i++)
        put_u64(m, key_at(i));
    size_t full = stats_of(m).bytes;
    for (uint64_t i = 0; i < n; i++)
        if (i % 100)
            del_u64(m, key_at(i));
    hmap_stats after = stats_of(m);
    size_t fresh = fresh_u64_bytes(n, 100);
    assert_int_equal(after.count, n / 100);
    int rc = hmap_compact(m);
    hmap_stats compacted = stats_of(m);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = key_at(i);
        uint64_t *v = hmap_get(m, &k);
        if (i % 100)
            assert_null(v);
        else
            assert_true(v && *v == ~k);
    }
    hmap_free(m); /* before the size checks, so that a failing check reports no leak */
    print_message("  %zu u64: full %zu B, after 99%% deleted %zu B (B=%u, phase %d), compacted %zu B, "
                  "fresh map of the survivors %zu B: ratios %.2f and %.2f\n",
                  n, full, after.bytes, after.B, (int)after.phase, compacted.bytes, fresh,
                  (double)after.bytes / (double)fresh, (double)compacted.bytes / (double)fresh);
    assert_int_equal(rc, 0);
    assert_true(after.bytes <= 2 * fresh);
    assert_true((double)compacted.bytes <= 1.1 * (double)fresh);
    return after.phase;
}

/* ---- a shrink gives the old array's evacuated pages back as it goes, and never spikes ---- */

/* 200k u64 entries: arrays of several MiB, mapped from the OS. Deleting down to a shrink, then on while
 * the shrink runs: the bytes held never exceed 1.1x the larger of the bytes before the shrink and after it
 * (the new array counts only the pages written so far, the old one gives its evacuated pages back), they
 * fall below what they were when the shrink started before it ends, and every survivor is still found. */
static void test_shrink_releases_evacuated_pages(void **state) {
    (void)state;
    enum { N = 200000 };
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < N; i++)
        put_u64(m, key_at(i));
    uint64_t next = 0;
    size_t before = stats_of(m).bytes;
    while (stats_of(m).phase != HMAP_SHRINKING && next < N) {
        before = stats_of(m).bytes;
        del_u64(m, key_at(next++));
    }
    assert_int_equal(stats_of(m).phase, HMAP_SHRINKING);
    size_t at_start = stats_of(m).bytes, lowest = at_start, highest = at_start;
    while (stats_of(m).phase == HMAP_SHRINKING && next < N) {
        del_u64(m, key_at(next++));
        hmap_stats st = stats_of(m);
        if (st.phase == HMAP_SHRINKING && st.bytes < lowest)
            lowest = st.bytes;
        if (st.bytes > highest)
            highest = st.bytes;
    }
    size_t after = stats_of(m).bytes;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t k = key_at(i);
        uint64_t *v = hmap_get(m, &k);
        if (i < next)
            assert_null(v);
        else
            assert_true(v && *v == ~k);
    }
    hmap_free(m);
    print_message(
        "  shrink of 200k u64: %zu B held before it, %zu B when it started, %zu B at the highest and "
        "%zu B at the lowest while it ran, %zu B after it (highest / larger of before and after: "
        "%.3f)\n",
        before, at_start, highest, lowest, after,
        (double)highest / (double)(before > after ? before : after));
    assert_true(lowest < at_start - at_start / 8);
    assert_true((double)highest <= 1.1 * (double)(before > after ? before : after));
}

/* Where the survivors sit just below a quarter of an array's load limit (1.625 x 2^B), a shrink that
 * started only a few deletes before the last one held both arrays: 5x a fresh map. Shrinks now start a
 * little above that line and end before the count reaches it. At 1,352,000 the last delete starts the
 * shrink of a 2^13-bucket array (the survivors are one below its shrink line): the deletes stop while
 * both arrays are held. */
static void test_delete_99_percent_where_a_shrink_starts(void **state) {
    (void)state;
    (void)delete_99_percent_u64(665000);
    (void)delete_99_percent_u64(2661000);
    assert_int_equal(delete_99_percent_u64(1352000), HMAP_SHRINKING);
}

static void test_delete_99_percent_of_1M(void **state) {
    (void)state;
    (void)delete_99_percent_u64(1000000);
}

static void test_delete_99_percent_of_100k(void **state) {
    (void)state;
    (void)delete_99_percent_u64(100000);
}

static void drop_string(void *k) { free(*(char **)k); }

static const hmap_type string_type = {.key_size = sizeof(char *),
                                      .val_size = 8,
                                      .hash = hmap_hash_cstr,
                                      .equal = hmap_equal_cstr,
                                      .key_drop = drop_string};

static void put_string(hmap *m, uint64_t i) {
    char buf[48];
    snprintf(buf, sizeof buf, "user:%016" PRIx64 ":session", key_at(i));
    char *s = strdup(buf);
    assert_non_null(s);
    assert_int_equal(hmap_put(m, &s, &i), 1);
}

static void del_string(hmap *m, uint64_t i) {
    char buf[48], *p = buf;
    snprintf(buf, sizeof buf, "user:%016" PRIx64 ":session", key_at(i));
    assert_true(hmap_del(m, &p));
}

static void test_delete_99_percent_string_keys(void **state) {
    (void)state;
    const size_t n = 100000;
    hmap *m = hmap_new(&string_type, 0);
    hmap *fresh = hmap_new(&string_type, 0);
    assert_true(m && fresh);
    for (uint64_t i = 0; i < n; i++)
        put_string(m, i);
    for (uint64_t i = 0; i < n; i++) {
        if (i % 100)
            del_string(m, i);
        else
            put_string(fresh, i);
    }
    size_t after = stats_of(m).bytes, fresh_bytes = stats_of(fresh).bytes;
    int rc = hmap_compact(m);
    size_t compacted = stats_of(m).bytes, len = hmap_len(m);
    hmap_free(m); /* before the size checks, so that a failing check reports no leak */
    hmap_free(fresh);
    print_message(
        "  %zu strings: after 99%% deleted %zu B, compacted %zu B, fresh %zu B: ratios %.2f and %.2f\n", n,
        after, compacted, fresh_bytes, (double)after / (double)fresh_bytes,
        (double)compacted / (double)fresh_bytes);
    assert_int_equal(rc, 0);
    assert_int_equal(len, n / 100);
    assert_true(after <= 2 * fresh_bytes);
    assert_true((double)compacted <= 1.1 * (double)fresh_bytes);
}

/* ---- no_shrink: Go's behaviour ---- */

static void test_no_shrink_keeps_the_peak(void **state) {
    (void)state;
    const size_t n = 1000000;
    hmap_options opts = {.no_shrink = true};
    hmap *m = hmap_new_opts(&u64_type, 0, &opts);
    assert_non_null(m);
    size_t peak_steady = 0;
    for (uint64_t i = 0; i < n; i++) {
        put_u64(m, key_at(i));
        if ((i & 1023) == 0 || i == n - 1) {
            hmap_stats st = stats_of(m);
            if (st.phase == HMAP_STEADY && st.bytes > peak_steady)
                peak_steady = st.bytes;
        }
    }
    hmap_stats full = stats_of(m);
    for (uint64_t i = 0; i < n; i++)
        if (i % 100)
            del_u64(m, key_at(i));
    hmap_stats after = stats_of(m);
    print_message("  no_shrink: peak %zu B (B=%u), after 99%% deleted %zu B (B=%u), %" PRIu64 " shrinks\n",
                  peak_steady, full.B, after.bytes, after.B, after.shrinks);
    assert_int_equal(after.shrinks, 0);
    assert_int_equal(after.B, full.B);
    assert_true(after.bytes >= peak_steady);
    /* Deleting everything keeps the memory too. */
    for (uint64_t i = 0; i < n; i += 100)
        del_u64(m, key_at(i));
    assert_true(stats_of(m).bytes >= peak_steady);
    hmap_free(m);
}

/* ---- back to empty ---- */

static void test_delete_everything_returns_to_empty_size(void **state) {
    (void)state;
    size_t empty = emptied_map_bytes(&u64_type); /* every n below grows the map */
    for (size_t n = 10; n <= 1000000; n *= 10) {
        hmap *m = hmap_new(&u64_type, 0);
        assert_non_null(m);
        for (uint64_t i = 0; i < n; i++)
            put_u64(m, key_at(i));
        for (uint64_t i = 0; i < n; i++)
            del_u64(m, key_at(i));
        hmap_stats st = stats_of(m);
        if (st.bytes != empty)
            print_message("  %zu inserted then deleted: %zu B held, an empty map holds %zu B\n", n, st.bytes,
                          empty);
        assert_int_equal(st.count, 0);
        assert_int_equal(st.bytes, empty);
        hmap_free(m);
    }
}

static void test_clear_gives_arrays_back(void **state) {
    (void)state;
    size_t empty = emptied_map_bytes(&u64_type);
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 200000; i++)
        put_u64(m, key_at(i));
    hmap_memstats before, after;
    size_t full = stats_of(m).bytes;
    hmap_read_memstats(&before);
    hmap_clear(m);
    hmap_read_memstats(&after);
    assert_int_equal(stats_of(m).bytes, empty);
    assert_int_equal(before.live_bytes - after.live_bytes, full - empty);
    /* And again from the middle of a grow. */
    for (uint64_t i = 0; stats_of(m).phase != HMAP_GROWING || i < 1000; i++)
        put_u64(m, key_at(i));
    hmap_clear(m);
    assert_int_equal(stats_of(m).bytes, empty);
    assert_int_equal(stats_of(m).old_buckets, 0);
    hmap_free(m);
}

/* An open iteration pins no memory: the map shrinks under it, and it still yields every survivor. */
static void test_open_iteration_pins_nothing(void **state) {
    (void)state;
    const size_t n = 100000;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < n; i++)
        put_u64(m, key_at(i));
    hmap_iter it;
    hmap_iter_init(&it, m);
    void *k;
    assert_true(hmap_iter_next(&it, &k, NULL));
    size_t yielded = 1;
    for (uint64_t i = 0; i < n; i++)
        if (i % 100)
            del_u64(m, key_at(i));
    size_t held = stats_of(m).bytes, fresh = fresh_u64_bytes(n, 100);
    while (hmap_iter_next(&it, &k, NULL)) {
        assert_non_null(hmap_get(m, k)); /* never a deleted key */
        yielded++;
    }
    hmap_iter_done(&it);
    size_t survivors = hmap_len(m);
    hmap_free(m);
    print_message("  99%% deleted under an open iteration: %zu B held, fresh map %zu B\n", held, fresh);
    assert_int_equal(survivors, n / 100);
    assert_true(yielded >= survivors && yielded <= survivors + 1); /* + the first key, maybe deleted since */
    assert_true(held <= 2 * fresh);
}

/* ---- churn: resizes and buckets moved per call ---- */

typedef struct churn {
    hmap *m;
    prng rng;
    uint64_t next_key; /* keys key_at(0 .. next_key-1) were inserted; live ones are in `live` */
    uint64_t *live;
    size_t nlive, cap;
    uint64_t calls, moved, worst;
} churn;

static void churn_init(churn *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->m = hmap_new(&u64_type, 0);
    assert_non_null(c->m);
    c->rng.s = seed;
    c->cap = 1 << 20;
    c->live = malloc(c->cap * sizeof *c->live);
    assert_non_null(c->live);
}

static void churn_destroy(churn *c) {
    hmap_free(c->m);
    free(c->live);
}

/* Records the old buckets one call moved. */
static void note_moved(churn *c, const hmap_stats *before, uint64_t bound) {
    hmap_stats after = stats_of(c->m);
    uint64_t moved = after.buckets_moved - before->buckets_moved;
    c->calls++;
    c->moved += moved;
    if (moved > c->worst)
        c->worst = moved;
    if (moved > bound)
        fail_msg("one call moved %" PRIu64 " old buckets (bound %" PRIu64 ")", moved, bound);
}

static void churn_insert(churn *c) {
    assert_true(c->nlive < c->cap);
    hmap_stats before = stats_of(c->m);
    uint64_t k = key_at(c->next_key++);
    put_u64(c->m, k);
    note_moved(c, &before, MAX_MOVED_PER_CALL);
    c->live[c->nlive++] = k;
}

static void churn_delete(churn *c) {
    assert_true(c->nlive > 0);
    size_t i = prng_below(&c->rng, c->nlive);
    uint64_t k = c->live[i];
    c->live[i] = c->live[--c->nlive];
    hmap_stats before = stats_of(c->m);
    del_u64(c->m, k);
    size_t shrinking = before.old_buckets ? before.old_buckets : (size_t)1 << before.B;
    note_moved(c, &before,
               shrinking > MAX_MOVED_BY_A_SMALL_SHRINK ? MAX_MOVED_PER_CALL : MAX_MOVED_BY_A_SMALL_SHRINK);
    /* Lookups never move anything. */
    before = stats_of(c->m);
    assert_null(hmap_get(c->m, &k));
    assert_int_equal(stats_of(c->m).buckets_moved, before.buckets_moved);
}

static uint64_t resizes(const hmap_stats *st) { return st->grows + st->shrinks; }

static void churn_report(churn *c, const char *what, uint64_t resizes_during) {
    hmap_stats st = stats_of(c->m);
    double amortized = (double)c->moved / (double)c->calls;
    print_message("  %-44s %8" PRIu64 " calls, %3" PRIu64 " resizes (+%" PRIu64
                  " same-size), moved/call: worst %" PRIu64 ", amortized %.3f\n",
                  what, c->calls, resizes_during, st.same_size_grows, c->worst, amortized);
    assert_true(st.max_moved_per_op <= MAX_MOVED_BY_A_SMALL_SHRINK);
    assert_true(amortized <= MAX_MOVED_AMORTIZED);
}

/* Fills until the next insert would start a grow (the count at the grow threshold), returns it. */
static size_t fill_to_grow_threshold(churn *c, unsigned min_B) {
    for (;;) {
        hmap_stats before = stats_of(c->m);
        churn_insert(c);
        hmap_stats after = stats_of(c->m);
        if (after.grows > before.grows && after.B > min_B) {
            /* One past the threshold: step back, let the grow finish with a few more writes. */
            churn_delete(c);
            return c->nlive;
        }
    }
}

/* Runs 400 waves of n inserts then n deletes, reports them, and returns the resizes they caused. */
static uint64_t run_waves(churn *c, unsigned n, const char *around, size_t threshold) {
    hmap_stats start = stats_of(c->m);
    for (int wave = 0; wave < 400; wave++) {
        for (unsigned i = 0; i < n; i++)
            churn_insert(c);
        for (unsigned i = 0; i < n; i++)
            churn_delete(c);
    }
    hmap_stats end = stats_of(c->m);
    char what[80];
    snprintf(what, sizeof what, "waves of %u around the %s threshold %zu", n, around, threshold);
    churn_report(c, what, resizes(&end) - resizes(&start));
    return resizes(&end) - resizes(&start);
}

static void test_churn_around_grow_threshold(void **state) {
    (void)state;
    static const unsigned waves[] = {1, 16, 256};
    for (size_t w = 0; w < 3; w++) {
        churn c;
        churn_init(&c, 0xc0de + w);
        size_t threshold = fill_to_grow_threshold(&c, 10);
        assert_true(run_waves(&c, waves[w], "grow", threshold) <= 2); /* hysteresis: no thrashing */
        churn_destroy(&c);
    }
}

static void test_churn_around_shrink_threshold(void **state) {
    (void)state;
    static const unsigned waves[] = {1, 16, 256};
    for (size_t w = 0; w < 3; w++) {
        churn c;
        churn_init(&c, 0x5a1d + w);
        for (int i = 0; i < 200000; i++)
            churn_insert(&c);
        /* The work is amortized over the deletes that cause the shrink as well: count from here. */
        c.calls = c.moved = 0;
        uint64_t shrinks = stats_of(c.m).shrinks;
        while (stats_of(c.m).shrinks == shrinks)
            churn_delete(&c);
        size_t threshold = c.nlive;
        assert_true(run_waves(&c, waves[w], "shrink", threshold) <= 2);
        churn_destroy(&c);
    }
}

static void test_n_deletes_then_n_inserts(void **state) {
    (void)state;
    static const size_t sizes[] = {1000, 100000};
    for (size_t s = 0; s < 2; s++) {
        churn c;
        churn_init(&c, 0x7e57 + s);
        for (size_t i = 0; i < sizes[s]; i++)
            churn_insert(&c);
        hmap_stats start = stats_of(c.m);
        c.calls = c.moved = c.worst = 0;
        for (int cycle = 0; cycle < 5; cycle++) {
            /* Delete all but a few, then refill (the "clear and refill" pattern) */
            while (c.nlive > (cycle % 2 ? 0 : 10))
                churn_delete(&c);
            while (c.nlive < sizes[s])
                churn_insert(&c);
        }
        /* And the half-way version: N/2 deletes, N/2 inserts, many times. */
        for (int cycle = 0; cycle < 10; cycle++) {
            for (size_t i = 0; i < sizes[s] / 2; i++)
                churn_delete(&c);
            for (size_t i = 0; i < sizes[s] / 2; i++)
                churn_insert(&c);
        }
        hmap_stats end = stats_of(c.m);
        char what[80];
        snprintf(what, sizeof what, "N deletes then N inserts, N = %zu", sizes[s]);
        churn_report(&c, what, resizes(&end) - resizes(&start));
        churn_destroy(&c);
    }
}

/* ---- interleavings against the model ---- */

typedef struct mixed {
    hmap *m;
    model ref;
    prng rng;
    uint64_t next_key;
} mixed;

static void mixed_init(mixed *x, const hmap_type *type, uint64_t seed) {
    memset(x, 0, sizeof *x);
    x->m = hmap_new(type, 0);
    assert_non_null(x->m);
    model_init(&x->ref, 8, 8);
    x->rng.s = seed;
}

static void mixed_destroy(mixed *x) {
    model_assert_matches(&x->ref, x->m, "final");
    hmap_free(x->m);
    model_destroy(&x->ref);
}

static void mixed_insert_key(mixed *x, uint64_t k) {
    uint64_t v = prng_next(&x->rng);
    int rc = hmap_put(x->m, &k, &v);
    assert_int_equal(rc, model_put(&x->ref, &k, 8, &v));
}

static void mixed_insert(mixed *x) { mixed_insert_key(x, key_at(x->next_key++)); }

static void mixed_delete(mixed *x) {
    size_t n = model_len(&x->ref);
    assert_true(n > 0);
    uint64_t k;
    memcpy(&k, model_at(&x->ref, prng_below(&x->rng, n))->key, 8);
    bool take = prng_chance(&x->rng, 0.3);
    bool got = take ? hmap_take(x->m, &k, NULL, NULL) : hmap_del(x->m, &k);
    assert_true(got);
    model_del(&x->ref, &k, 8);
}

static void test_shrink_interrupted_by_inserts(void **state) {
    (void)state;
    mixed x;
    mixed_init(&x, &u64_type, 0x1111);
    for (int i = 0; i < 50000; i++)
        mixed_insert(&x);
    while (stats_of(x.m).phase != HMAP_SHRINKING)
        mixed_delete(&x);
    hmap_stats st = stats_of(x.m);
    assert_true(st.evacuated < st.old_buckets);
    /* Inserts while the shrink runs: more than enough to need a bigger array again. */
    for (int i = 0; i < 80000; i++) {
        mixed_insert(&x);
        if (i % 10000 == 0)
            model_assert_matches(&x.ref, x.m, "shrink interrupted by inserts");
    }
    assert_true(stats_of(x.m).grows > st.grows);
    mixed_destroy(&x);
}

static void test_grow_interrupted_by_deletes(void **state) {
    (void)state;
    mixed x;
    mixed_init(&x, &u64_type, 0x2222);
    for (int i = 0; i < 20000; i++)
        mixed_insert(&x);
    while (stats_of(x.m).phase != HMAP_GROWING)
        mixed_insert(&x);
    hmap_stats st = stats_of(x.m);
    assert_true(st.evacuated < st.old_buckets);
    while (model_len(&x.ref) > 200) {
        mixed_delete(&x);
        if (model_len(&x.ref) % 5000 == 0)
            model_assert_matches(&x.ref, x.m, "grow interrupted by deletes");
    }
    assert_true(stats_of(x.m).shrinks > st.shrinks);
    mixed_destroy(&x);
}

/* Keys arrive in groups of 64 that share a hash (so each group piles into one bucket chain) and leave
 * group by group: chains full of tombstones and overflow buckets, the case for same-size growth. */
static uint64_t grouped_hash(const void *key, uint64_t seed) {
    uint64_t k;
    memcpy(&k, key, 8);
    return mix64((k >> 6) ^ seed);
}

static void test_same_size_growth(void **state) {
    (void)state;
    hmap_type type = {.key_size = 8, .val_size = 8, .hash = grouped_hash};
    mixed x;
    mixed_init(&x, &type, 0x3333);
    uint64_t oldest_group = 0, next_group = 0;
    for (int round = 0; round < 3000; round++) {
        for (uint64_t j = 0; j < 64; j++)
            mixed_insert_key(&x, (next_group << 6) | j);
        next_group++;
        if (next_group - oldest_group > 40) { /* keep ~40 groups live: a constant size */
            for (uint64_t j = 0; j < 64; j++) {
                uint64_t k = (oldest_group << 6) | j;
                assert_true(hmap_del(x.m, &k));
                model_del(&x.ref, &k, 8);
            }
            oldest_group++;
        }
        if (round % 500 == 0)
            model_assert_matches(&x.ref, x.m, "same-size growth");
    }
    hmap_stats st = stats_of(x.m);
    print_message("  grouped churn: %" PRIu64 " same-size grows, %" PRIu64 " grows, %" PRIu64
                  " shrinks, %zu overflow buckets at the end\n",
                  st.same_size_grows, st.grows, st.shrinks, st.overflow_buckets);
    assert_true(st.same_size_grows > 0);
    mixed_destroy(&x);
}

/* 250k u64 entries from empty, through growths into arrays of several MiB (mapped from the OS): while a
 * growth runs, the bytes held stay within 1.15x the larger of the bytes before and after it. The new array
 * is written only behind the evacuation front and counted page by page, while the old one gives back the
 * pages of its evacuated buckets: slots, tophash words and chain heads (pre-faulting and counting the new
 * array whole, they reached 1.59x; giving back only the slots, 1.16x). Every key is still found. */
static void test_growth_holds_little_beside_the_new_array(void **state) {
    (void)state;
    enum { N = 250000 };
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    size_t before = 0, highest = 0;
    double worst = 0;
    unsigned growths = 0;
    for (uint64_t i = 0; i < N; i++) {
        hmap_stats was = stats_of(m);
        put_u64(m, key_at(i));
        hmap_stats now = stats_of(m);
        if (was.phase != HMAP_GROWING && now.phase == HMAP_GROWING)
            before = was.bytes, highest = now.bytes;
        if (now.phase == HMAP_GROWING && now.bytes > highest)
            highest = now.bytes;
        if (was.phase == HMAP_GROWING && now.phase != HMAP_GROWING && now.bytes >= ((size_t)2 << 20)) {
            double ratio = (double)highest / (double)(before > now.bytes ? before : now.bytes);
            print_message("  growth to B=%u: %zu B before, %zu B after, %zu B at the highest: %.3fx\n", now.B,
                          before, now.bytes, highest, ratio);
            worst = ratio > worst ? ratio : worst;
            growths++;
        }
    }
    for (uint64_t i = 0; i < N; i++) {
        uint64_t k = key_at(i), *v = hmap_get(m, &k);
        assert_true(v && *v == ~k);
    }
    hmap_free(m);
    assert_true(growths >= 2);
    assert_true(worst <= 1.15);
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The n keys put so far are all found with their values, and an iteration yields each exactly once: n
 * keys, all present, no two alike (`yielded` has room for n). */
static void check_all_keys(hmap *m, uint64_t n, uint64_t *yielded) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = key_at(i), *v = hmap_get(m, &k);
        assert_non_null(v);
        assert_true(*v == ~k);
    }
    hmap_iter it;
    hmap_iter_init(&it, m);
    void *kp, *vp;
    uint64_t count = 0;
    while (hmap_iter_next(&it, &kp, &vp)) {
        assert_true(count < n);
        memcpy(&yielded[count], kp, 8);
        assert_true(*(uint64_t *)vp == ~yielded[count]);
        count++;
    }
    assert_true(count == n);
    qsort(yielded, n, sizeof *yielded, compare_u64);
    for (uint64_t i = 1; i < n; i++)
        assert_true(yielded[i - 1] < yielded[i]);
    diff_check_consistent(m);
}

/* While a growth runs in mapped arrays, the old array has given back the tophash words and chain heads of
 * its evacuated buckets (they read as zeros): lookups, iteration, deletes and inserts of keys whose old
 * bucket is among them must all know those buckets by their index, not by their marks. Checked after
 * every insert of every growth past 2 MiB (the consistency walker too), every other insert followed by a
 * delete and re-insert of one of the first keys (some of their old buckets are behind the front). Each
 * write moves 1024 old buckets or more, so the growths to B = 15 and 16 span 11 of these steps. */
static void test_keys_found_while_a_growth_gives_back_the_old_index(void **state) {
    (void)state;
    enum { N = 120000 };
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    uint64_t *yielded = malloc(N * sizeof *yielded);
    assert_non_null(yielded);
    uint64_t start = 0, checks = 0;
    for (uint64_t i = 0; i < N; i++) {
        hmap_stats was = stats_of(m);
        put_u64(m, key_at(i));
        hmap_stats now = stats_of(m);
        if (now.phase != HMAP_GROWING || now.bytes < ((size_t)2 << 20))
            continue;
        if (was.phase != HMAP_GROWING)
            start = i;
        if ((i - start) % 2 == 0) { /* every other step: each write moves 1024 old buckets */
            uint64_t early = key_at((i - start) % 64); /* keys of old buckets across the array */
            del_u64(m, early);
            put_u64(m, early);
        }
        check_all_keys(m, i + 1, yielded);
        checks++;
    }
    hmap_free(m);
    free(yielded);
    print_message("  %" PRIu64 " checks while growing\n", checks);
    assert_true(checks >= 8);
}

/* A small array's first overflow bucket costs about one bucket. Two maps of 12 keys at B = 1, with a
 * hash that puts keys in groups: all in one group (one chain of two buckets), and in two groups that fall
 * in different buckets (no overflow). The first holds one overflow bucket more, with its slab's header and
 * the array's side record: under two buckets' worth (a bucket's bytes measured as the difference between
 * arrays of 4 and 2 buckets). An eight-bucket first slab made such maps hold 3x a fresh map after
 * deletes. */
static uint64_t hash_of_group(const void *key, uint64_t seed) {
    (void)seed;
    uint64_t k;
    memcpy(&k, key, 8);
    return k >> 32; /* a key's group is its high half */
}

static hmap_stats twelve_keys(const hmap_type *type, uint64_t odd_group) {
    hmap *m = hmap_new(type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 12; i++) {
        uint64_t k = (i % 2 ? odd_group << 32 : 0) | i, v = i;
        assert_int_equal(hmap_put(m, &k, &v), 1);
    }
    hmap_stats st = stats_of(m);
    hmap_free(m);
    assert_int_equal(st.B, 1);
    return st;
}

static void test_first_overflow_bucket_of_a_small_array(void **state) {
    (void)state;
    hmap_type type = {.key_size = 8, .val_size = 8, .hash = hash_of_group};
    hmap *two = hmap_new(&type, 13), *four = hmap_new(&type, 26);
    assert_non_null(two);
    assert_non_null(four);
    assert_int_equal(stats_of(two).B, 1);
    assert_int_equal(stats_of(four).B, 2);
    size_t bucket = (stats_of(four).bytes - stats_of(two).bytes) / 2;
    hmap_free(two);
    hmap_free(four);
    hmap_stats chained = twelve_keys(&type, 0), spread;
    assert_int_equal(chained.overflow_buckets, 1);
    uint64_t group = 1;
    while ((spread = twelve_keys(&type, group)).overflow_buckets != 0) /* the groups shared a bucket */
        assert_true(++group < 64);
    print_message("  12 keys at B=1: %zu B in two buckets, %zu B in one chain (a bucket: %zu B)\n",
                  spread.bytes, chained.bytes, bucket);
    assert_true(chained.bytes > spread.bytes);
    assert_true(chained.bytes - spread.bytes < 2 * bucket);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delete_99_percent_of_1M),
        cmocka_unit_test(test_delete_99_percent_of_100k),
        cmocka_unit_test(test_delete_99_percent_where_a_shrink_starts),
        cmocka_unit_test(test_delete_99_percent_string_keys),
        cmocka_unit_test(test_no_shrink_keeps_the_peak),
        cmocka_unit_test(test_delete_everything_returns_to_empty_size),
        cmocka_unit_test(test_clear_gives_arrays_back),
        cmocka_unit_test(test_open_iteration_pins_nothing),
        cmocka_unit_test(test_churn_around_grow_threshold),
        cmocka_unit_test(test_churn_around_shrink_threshold),
        cmocka_unit_test(test_n_deletes_then_n_inserts),
        cmocka_unit_test(test_shrink_interrupted_by_inserts),
        cmocka_unit_test(test_grow_interrupted_by_deletes),
        cmocka_unit_test(test_same_size_growth),
        cmocka_unit_test(test_shrink_releases_evacuated_pages),
        cmocka_unit_test(test_first_overflow_bucket_of_a_small_array),
        cmocka_unit_test(test_growth_holds_little_beside_the_new_array),
        cmocka_unit_test(test_keys_found_while_a_growth_gives_back_the_old_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
