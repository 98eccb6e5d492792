/* SPDX-License-Identifier: MIT */
/*
 * test_iter_safety.c — the loops people really write, checked under ASan (make check runs this file with
 * detect_stack_use_after_return=1):
 *
 *   - writes given pointers into the map's own storage: hmap_del / hmap_take with the key an iteration
 *     just yielded, for sizes that cross every grow and shrink point from 1 to 60k entries and key sizes
 *     1, 8, 16, 40; hmap_put of an owned string key through the iterator's key pointer (the same object:
 *     it must not be dropped) while new keys go in; a value put back from hmap_get of the same key;
 *   - iterations abandoned without hmap_iter_done (their stack frames gone) followed by growth, shrink,
 *     clear and free: the map must never write through them;
 *   - no key yielded twice: across the map becoming empty and refilled inside the loop (its seed is
 *     re-drawn then), and for keys with equal 64-bit hashes deleted and re-inserted around the cursor;
 *   - a resize cut short by hmap_clear or hmap_free still prints its HMAP_TRACE end line (ctest runs this
 *     file with HMAP_TRACE=1 and the test reads its own stderr).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hmap.h"

static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Key i of a map with `ks`-byte keys: distinct for distinct i below 256^ks. */
static void key_of(uint64_t i, size_t ks, unsigned char *out) {
    uint64_t x = ks >= 8 ? splitmix(i) : i;
    memset(out, 0, ks);
    for (size_t b = 0; b < ks; b++)
        out[b] = (unsigned char)((b < 8 ? x >> (8 * b) : splitmix(i + b)) & 0xff);
    if (ks < 8)
        for (size_t b = 0; b < ks; b++)
            out[b] = (unsigned char)(i >> (8 * b));
}

/* ---------------------------------------------------------------- deleting through the iterator */

/* Sizes around every point where a map grows (load limit 6.5 a bucket) or shrinks, up to `max`. */
static size_t resize_points(size_t *out, size_t cap, size_t max) {
    size_t n = 0;
    for (size_t s = 1; s <= 16 && n < cap; s++)
        out[n++] = s;
    for (unsigned B = 1; n + 6 < cap; B++) {
        size_t limit = (size_t)13 << (B - 1);
        if (limit > max)
            break;
        size_t pts[] = {limit - 1, limit, limit + 1, limit / 4, limit / 4 + 1, limit * 2 / 3};
        for (size_t k = 0; k < 6; k++)
            if (pts[k] > 16 && pts[k] <= max)
                out[n++] = pts[k];
    }
    if (n < cap)
        out[n++] = max;
    return n;
}

static void delete_through_iterator(size_t ks, size_t n, bool take) {
    hmap_type type = {.key_size = ks, .val_size = 8};
    hmap *m = hmap_new(&type, 0);
    assert_non_null(m);
    unsigned char k[64];
    for (size_t i = 0; i < n; i++) {
        key_of(i, ks, k);
        uint64_t v = i;
        assert_int_equal(hmap_put(m, k, &v), 1);
    }
    hmap_iter it;
    void *kp, *vp;
    size_t yielded = 0;
    unsigned char *seen = calloc(n, 1);
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &kp, &vp)) {
        uint64_t id = *(uint64_t *)vp;
        assert_true(id < n);
        assert_int_equal(seen[id], 0);
        seen[id] = 1;
        yielded++;
        if (take) {
            unsigned char kout[64];
            uint64_t vout = 0;
            assert_true(hmap_take(m, kp, kout, &vout));
            assert_int_equal(vout, id);
            key_of(id, ks, k);
            assert_memory_equal(kout, k, ks);
        } else {
            assert_true(hmap_del(m, kp)); /* kp points into the map: it must be read before anything moves */
        }
    }
    hmap_iter_done(&it);
    assert_int_equal(yielded, n);
    assert_int_equal(hmap_len(m), 0);
    free(seen);
    hmap_free(m);
}

static void test_delete_every_yielded_key(void **state) {
    (void)state;
    const size_t key_sizes[] = {1, 8, 16, 40};
    size_t sizes[256];
    for (size_t a = 0; a < 4; a++) {
        size_t ks = key_sizes[a];
        size_t max = ks == 1 ? 256 : 60000;
        size_t count = resize_points(sizes, 256, max);
        for (size_t i = 0; i < count; i++) {
            delete_through_iterator(ks, sizes[i], false);
            delete_through_iterator(ks, sizes[i], true);
        }
    }
}

/* ---------------------------------------------------------------- owned string keys */

static long live_strings;

static void free_string(void *k) {
    char *s = *(char **)k;
    memset(s, 0x5a, strlen(s)); /* a stale read sees garbage */
    free(s);
    live_strings--;
}

static char *string_key(uint64_t id) {
    char *s = malloc(32);
    assert_non_null(s);
    snprintf(s, 32, "key-%llu-%llx", (unsigned long long)id, (unsigned long long)splitmix(id));
    live_strings++;
    return s;
}

/* Each yielded key is put again through the iterator's own key pointer (a new value), and a new key is
 * inserted, so the map grows while the loop runs. The stored key is the key passed: never dropped. */
static void test_owned_keys_replaced_through_iterator(void **state) {
    (void)state;
    hmap_type type = {.key_size = sizeof(char *),
                      .val_size = 8,
                      .hash = hmap_hash_cstr,
                      .equal = hmap_equal_cstr,
                      .key_drop = free_string};
    hmap *m = hmap_new(&type, 0);
    assert_non_null(m);
    const uint64_t n = 3000;
    for (uint64_t i = 0; i < n; i++) {
        char *s = string_key(i);
        assert_int_equal(hmap_put(m, &s, &i), 1);
    }
    unsigned char *seen = calloc(3 * n, 1);
    hmap_iter it;
    void *kp, *vp;
    uint64_t fresh = n, yielded_old = 0;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &kp, &vp)) {
        uint64_t id = *(uint64_t *)vp % (3 * n);
        assert_int_equal(seen[id], 0);
        seen[id] = 1;
        yielded_old += id < n;
        uint64_t v = id + 3 * n; /* same id, new value */
        assert_int_equal(hmap_put(m, kp, &v), 0);
        if (fresh < 3 * n) {
            char *s = string_key(fresh);
            assert_int_equal(hmap_put(m, &s, &fresh), 1);
            fresh++;
        }
    }
    hmap_iter_done(&it);
    assert_int_equal(yielded_old, n);
    assert_int_equal((long)hmap_len(m), live_strings);
    for (uint64_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "key-%llu-%llx", (unsigned long long)i, (unsigned long long)splitmix(i));
        char *p = buf;
        uint64_t *v = hmap_get(m, &p);
        assert_non_null(v);
        assert_int_equal(*v, i + 3 * n);
    }
    hmap_free(m);
    assert_int_equal(live_strings, 0);
    free(seen);
}

/* ---------------------------------------------------------------- a value put back from hmap_get */

static long live_values;

static void free_value(void *v) {
    uint64_t *p = *(uint64_t **)v;
    *p = 0xdeadbeef;
    free(p);
    live_values--;
}

static uint64_t *new_value(uint64_t x) {
    uint64_t *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = x;
    live_values++;
    return p;
}

/* hmap_put(m, &k, hmap_get(m, &k)) while the map is growing and shrinking: the value passed is the stored
 * value (read before anything moves, and the same object, so not dropped). */
static void test_value_put_back_from_get(void **state) {
    (void)state;
    hmap_type type = {.key_size = 8, .val_size = sizeof(uint64_t *), .val_drop = free_value};
    hmap *m = hmap_new(&type, 0);
    assert_non_null(m);
    const uint64_t n = 20000;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t *p = new_value(i);
        assert_int_equal(hmap_put(m, &i, &p), 1);
        uint64_t j = i / 2;
        void *cur = hmap_get(m, &j);
        assert_non_null(cur);
        assert_int_equal(hmap_put(m, &j, cur), 0); /* the value passed points into the map */
    }
    for (uint64_t i = 0; i < n; i++) {
        if (i % 10 == 0)
            continue;
        assert_true(hmap_del(m, &i)); /* the map shrinks */
        uint64_t j = i - i % 10;
        void *cur = hmap_get(m, &j);
        assert_non_null(cur);
        assert_int_equal(hmap_put(m, &j, cur), 0);
    }
    for (uint64_t i = 0; i < n; i += 10) {
        uint64_t **v = hmap_get(m, &i);
        assert_non_null(v);
        assert_int_equal(**v, i);
    }
    assert_int_equal(live_values, (long)(n / 10));
    hmap_free(m);
    assert_int_equal(live_values, 0);
}

/* ---------------------------------------------------------------- abandoned iterations */

/* Opens an iteration in this frame, takes a few entries and returns without hmap_iter_done: the frame is
 * gone (ASan's detect_stack_use_after_return turns any later write into it into a report). */
static __attribute__((noinline)) size_t abandon_an_iteration(hmap *m, size_t take) {
    hmap_iter it;
    hmap_iter_init(&it, m);
    size_t got = 0;
    void *k, *v;
    while (got < take && hmap_iter_next(&it, &k, &v))
        got++;
    return got; /* a `return` out of the loop, as people write it */
}

static void test_abandoned_iterations(void **state) {
    (void)state;
    hmap_type type = {.key_size = 8, .val_size = 8};
    hmap *m = hmap_new(&type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    for (size_t k = 0; k < 8; k++)
        assert_int_equal(abandon_an_iteration(m, 1 + k * 7), 1 + k * 7);
    for (uint64_t i = 1000; i < 200000; i++) /* growth */
        assert_int_equal(hmap_put(m, &i, &i), 1);
    for (size_t k = 0; k < 8; k++)
        abandon_an_iteration(m, 100);
    for (uint64_t i = 0; i < 199000; i++) /* shrink */
        assert_true(hmap_del(m, &i));
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_true(st.shrinks > 0);
    for (size_t k = 0; k < 8; k++)
        abandon_an_iteration(m, 3);
    hmap_clear(m);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    for (size_t k = 0; k < 8; k++)
        abandon_an_iteration(m, 3);
    hmap_free(m);
}

/* ---------------------------------------------------------------- never twice */

/* Insert 200 keys, take 100, delete all 200 inside the loop (the map is empty: a new seed), re-insert
 * them, go on: nothing may be yielded twice. */
static void empty_and_refill(const hmap_options *opts, size_t hint) {
    hmap_type type = {.key_size = 8, .val_size = 8};
    for (int trial = 0; trial < 50; trial++) {
        hmap *m = hmap_new_opts(&type, hint, opts);
        assert_non_null(m);
        for (uint64_t i = 0; i < 200; i++)
            assert_int_equal(hmap_put(m, &i, &i), 1);
        unsigned char seen[200] = {0};
        hmap_iter it;
        void *kp, *vp;
        size_t yielded = 0;
        hmap_iter_init(&it, m);
        while (hmap_iter_next(&it, &kp, &vp)) {
            uint64_t id = *(uint64_t *)kp;
            assert_true(id < 200);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            if (++yielded == 100) {
                for (uint64_t i = 0; i < 200; i++)
                    assert_true(hmap_del(m, &i));
                assert_int_equal(hmap_len(m), 0);
                for (uint64_t i = 0; i < 200; i++)
                    assert_int_equal(hmap_put(m, &i, &i), 1);
            }
        }
        hmap_iter_done(&it);
        assert_true(yielded >= 100);
        hmap_free(m);
    }
}

static void test_map_emptied_and_refilled_inside_loop(void **state) {
    (void)state;
    hmap_options plain = {0}, no_shrink = {.no_shrink = true};
    empty_and_refill(&plain, 0);
    empty_and_refill(&no_shrink, 0);
    empty_and_refill(&plain, 1000); /* a reserved map keeps its arrays when emptied */
}

/* A custom hash that gives groups of keys one 64-bit hash: the low 3 bits of the key are ignored. */
static uint64_t grouped_hash(const void *key, uint64_t seed) {
    uint64_t k;
    memcpy(&k, key, 8);
    return splitmix((k >> 3) ^ seed);
}

/* At every yield, the yielded key and another key of its hash group are deleted and inserted again
 * (they may land anywhere in the chain): no key is yielded twice, and every key not deleted before it was
 * reached is yielded exactly once. Keys are 8 or 48 bytes (the latter past the iterator's inline tie
 * keys). */
static void equal_hashes_around_cursor(size_t ks) {
    hmap_type type = {.key_size = ks, .val_size = 8, .hash = grouped_hash};
    hmap_options opts = {.fixed_seed = true, .seed = 7};
    for (int trial = 0; trial < 4; trial++) {
        opts.seed = 7 + (uint64_t)trial;
        hmap *m = hmap_new_opts(&type, 0, &opts);
        assert_non_null(m);
        const uint64_t n = 4000;
        unsigned char k[64] = {0};
        for (uint64_t i = 0; i < n; i++) {
            memcpy(k, &i, 8);
            assert_int_equal(hmap_put(m, k, &i), 1);
        }
        unsigned char *seen = calloc(n, 1), *deleted_early = calloc(n, 1);
        hmap_iter it;
        void *kp, *vp;
        hmap_iter_init(&it, m);
        size_t yielded = 0;
        while (hmap_iter_next(&it, &kp, &vp)) {
            uint64_t id;
            memcpy(&id, kp, 8);
            assert_true(id < n);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            yielded++;
            uint64_t partner = id ^ (1 + (uint64_t)(yielded % 7)); /* same group: same hash */
            uint64_t both[2] = {id, partner};
            for (int j = 0; j < 2; j++) {
                if (both[j] >= n)
                    continue;
                memset(k, 0, sizeof k);
                memcpy(k, &both[j], 8);
                bool had = hmap_del(m, k);
                if (had)
                    assert_int_equal(hmap_put(m, k, &both[j]), 1);
                if (!seen[both[j]])
                    deleted_early[both[j]] = 1;
            }
        }
        hmap_iter_done(&it);
        for (uint64_t i = 0; i < n; i++)
            if (!deleted_early[i])
                assert_int_equal(seen[i], 1);
        free(seen);
        free(deleted_early);
        hmap_free(m);
    }
}

static void test_equal_hashes_deleted_and_reinserted(void **state) {
    (void)state;
    equal_hashes_around_cursor(8);
    equal_hashes_around_cursor(48);
}

/* The built-in 8-byte hash is a bijection: yield, delete, insert another key, re-insert the yielded one;
 * never twice, for many keys (with a colliding hash the re-inserted key could be taken for a new one). */
static void test_reinserted_key_not_yielded_again(void **state) {
    (void)state;
    hmap_type type = {.key_size = 8, .val_size = 8};
    hmap *m = hmap_new(&type, 0);
    assert_non_null(m);
    const uint64_t n = 50000;
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    unsigned char *seen = calloc(2 * n, 1);
    hmap_iter it;
    void *kp, *vp;
    uint64_t other = n;
    size_t yielded = 0;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &kp, &vp)) {
        uint64_t id = *(uint64_t *)kp;
        assert_int_equal(seen[id], 0);
        seen[id] = 1;
        yielded++;
        if (id >= n)
            continue;
        assert_true(hmap_del(m, &id));
        if (other < 2 * n) {
            assert_int_equal(hmap_put(m, &other, &other), 1);
            other++;
        }
        assert_int_equal(hmap_put(m, &id, &id), 1);
    }
    hmap_iter_done(&it);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
    hmap_free(m);
}

/* ---------------------------------------------------------------- trace lines */

/* Counts "resize start" and "resize end" lines in a file. */
static void count_trace_lines(FILE *f, int *starts, int *ends) {
    char line[512];
    *starts = *ends = 0;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        *starts += strstr(line, "hmap: resize start") != NULL;
        *ends += strstr(line, "hmap: resize end") != NULL;
    }
}

/* hmap_clear and hmap_free in the middle of a resize end it the one way every resize ends: its end line is
 * printed. Runs only when ctest set HMAP_TRACE=1. */
static void test_trace_lines_pair_up(void **state) {
    (void)state;
    const char *v = getenv("HMAP_TRACE");
    if (!v || strcmp(v, "1") != 0)
        skip();
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(capture), 2) >= 0);
    hmap_type type = {.key_size = 8, .val_size = 8};
    for (int variant = 0; variant < 2; variant++) {
        hmap *m = hmap_new(&type, 0);
        assert_non_null(m);
        hmap_stats st;
        uint64_t i = 0;
        do { /* stop as soon as a grow is under way */
            assert_int_equal(hmap_put(m, &i, &i), 1);
            i++;
            hmap_get_stats(m, &st);
        } while (i < 100 || st.old_buckets == 0);
        if (variant == 0)
            hmap_clear(m);
        hmap_free(m);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    int starts, ends;
    count_trace_lines(capture, &starts, &ends);
    fclose(capture);
    assert_true(starts > 0);
    assert_int_equal(starts, ends);
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test by name, e.g. to see it fail alone */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delete_every_yielded_key),
        cmocka_unit_test(test_owned_keys_replaced_through_iterator),
        cmocka_unit_test(test_value_put_back_from_get),
        cmocka_unit_test(test_abandoned_iterations),
        cmocka_unit_test(test_map_emptied_and_refilled_inside_loop),
        cmocka_unit_test(test_equal_hashes_deleted_and_reinserted),
        cmocka_unit_test(test_reinserted_key_not_yielded_again),
        cmocka_unit_test(test_trace_lines_pair_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
