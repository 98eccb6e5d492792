/* SPDX-License-Identifier: MIT */
/*
 * test_typed.c — the typed layer of include/hmap_typed.h: what each generated function returns and how
 * it treats its arguments, for the three macros.
 *
 * The layer is a thin conversion over the hmap_* calls, so the tests check the conversion: values come
 * back as the types put in, every byte of a wide key counts, a typed map is usable as the hmap it is
 * (the raw calls see the same entries, the same slot addresses), iteration yields each entry once with
 * its own value, and the ownership rules of HMAP_DEFINE_STR: the caller's string is copied on insert and
 * never kept, an existing key is not copied again, the copies are freed (the ASan build's leak check and
 * a failing allocator make a leaked copy visible). That a key of the wrong type does not compile is the
 * ctest test typed_wrong_types (tests/typed_misuse.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"

/* A 16-byte key without padding: the kind of key a 4-byte key was once passed for. */
typedef struct flow {
    uint64_t addr;
    uint32_t port;
    uint32_t proto;
} flow;

typedef struct stats {
    uint64_t packets;
    uint64_t bytes;
} stats;

HMAP_DEFINE(u64map, uint64_t, uint64_t);
HMAP_DEFINE(flows, flow, stats);
HMAP_DEFINE_SET(u32set, uint32_t);
HMAP_DEFINE_STR(words, uint64_t);

enum { N = 5000 };

/* ---- HMAP_DEFINE ---- */

static void test_put_get_del_len(void **state) {
    (void)state;
    u64map *m = u64map_new(0);
    assert_non_null(m);
    for (uint64_t k = 0; k < N; k++)
        assert_int_equal(u64map_put(m, k, k * 3), 1);
    assert_int_equal(u64map_len(m), N);
    assert_int_equal(u64map_put(m, 7, 700), 0); /* replaced */
    assert_int_equal(u64map_len(m), N);
    for (uint64_t k = 0; k < N; k++) {
        uint64_t *v = u64map_get(m, k);
        assert_non_null(v);
        assert_int_equal(*v, k == 7 ? 700 : k * 3);
    }
    assert_null(u64map_get(m, N));
    assert_true(u64map_del(m, 7));
    assert_false(u64map_del(m, 7));
    assert_null(u64map_get(m, 7));
    assert_int_equal(u64map_len(m), N - 1);
    u64map_free(m);
}

static void test_every_key_byte_counts(void **state) {
    (void)state;
    flows *m = flows_new(16);
    assert_non_null(m);
    /* Keys that agree in their first 4 or 8 bytes and differ after them are different keys. */
    for (uint32_t i = 0; i < 100; i++) {
        flow f = {.addr = 0x0a000001, .port = 443, .proto = i};
        assert_int_equal(flows_put(m, f, (stats){.packets = i, .bytes = 100 * i}), 1);
        flow g = {.addr = 0x0a000001, .port = 1000 + i, .proto = 6};
        assert_int_equal(flows_put(m, g, (stats){.packets = 1000 + i}), 1);
    }
    assert_int_equal(flows_len(m), 200);
    stats *s = flows_get(m, (flow){.addr = 0x0a000001, .port = 443, .proto = 42});
    assert_non_null(s);
    assert_int_equal(s->packets, 42);
    assert_int_equal(s->bytes, 4200);
    s = flows_get(m, (flow){.addr = 0x0a000001, .port = 1042, .proto = 6});
    assert_non_null(s);
    assert_int_equal(s->packets, 1042);
    assert_null(flows_get(m, (flow){.addr = 0x0a000002, .port = 443, .proto = 42}));
    flows_free(m);
}

static void test_assign_zeroes_new_slots(void **state) {
    (void)state;
    flows *m = flows_new(0);
    assert_non_null(m);
    flow f = {.addr = 1, .port = 2, .proto = 3};
    bool inserted = false;
    stats *s = flows_assign(m, f, &inserted);
    assert_non_null(s);
    assert_true(inserted);
    assert_int_equal(s->packets, 0);
    assert_int_equal(s->bytes, 0);
    s->packets = 5;
    s = flows_assign(m, f, &inserted);
    assert_false(inserted);
    assert_int_equal(s->packets, 5);
    assert_non_null(flows_assign(m, (flow){.addr = 9}, NULL)); /* inserted may be NULL */
    assert_int_equal(flows_len(m), 2);
    flows_free(m);
}

static void test_typed_map_is_the_raw_map(void **state) {
    (void)state;
    u64map *m = u64map_new(0);
    assert_non_null(m);
    hmap *raw = u64map_hmap(m);
    assert_ptr_equal((void *)raw, (void *)m);
    assert_int_equal(u64map_put(m, 11, 121), 1);
    uint64_t k = 12, v = 144;
    assert_int_equal(hmap_put(raw, &k, &v), 1);
    assert_int_equal(*u64map_get(m, 12), 144); /* a raw put is seen by the typed get */
    k = 11;
    assert_ptr_equal(hmap_get(raw, &k), u64map_get(m, 11)); /* the same slot */
    hmap_stats st;
    hmap_get_stats(raw, &st);
    assert_int_equal(st.count, 2);
    assert_int_equal(u64map_len(m), hmap_len(raw));
    u64map_free(m);
}

static void test_new_opts_passes_options(void **state) {
    (void)state;
    hmap_options opts = {.name = "typed-flows", .no_shrink = true};
    flows *m = flows_new_opts(100, &opts);
    assert_non_null(m);
    hmap_stats st;
    hmap_get_stats(flows_hmap(m), &st);
    assert_string_equal(st.name, "typed-flows");
    assert_true(st.buckets >= 16); /* room for 100 at 6.5 a bucket */
    flows_free(m);
}

static void test_null_map(void **state) {
    (void)state;
    errno = 0;
    assert_int_equal(u64map_put(NULL, 1, 1), -EINVAL);
    assert_null(u64map_get(NULL, 1));
    assert_int_equal(errno, EINVAL);
    assert_false(u64map_del(NULL, 1));
    assert_int_equal(u64map_len(NULL), 0);
    u64map_free(NULL);
}

/* Each key yielded once, with its own value; NULL may be passed for either pointer. */
static void test_iteration(void **state) {
    (void)state;
    u64map *m = u64map_new(0);
    assert_non_null(m);
    for (uint64_t k = 0; k < N; k++)
        assert_int_equal(u64map_put(m, k, k + 1), 1);
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    uint64_t *kp, *vp;
    u64map_iter it;
    size_t n = 0;
    for (u64map_iter_init(&it, m); u64map_next(&it, &kp, &vp); n++) {
        assert_true(*kp < N);
        assert_int_equal(*vp, *kp + 1);
        assert_int_equal(seen[*kp]++, 0);
    }
    u64map_iter_done(&it);
    assert_int_equal(n, N);

    n = 0;
    for (u64map_iter_init(&it, m); u64map_next(&it, NULL, &vp); n++)
        *vp = 0; /* values are written in place */
    u64map_iter_done(&it);
    assert_int_equal(n, N);
    assert_int_equal(*u64map_get(m, 17), 0);

    /* Deleting while iterating, as the raw iteration allows: every key is visited and deleted. */
    n = 0;
    for (u64map_iter_init(&it, m); u64map_next(&it, &kp, NULL); n++)
        assert_true(u64map_del(m, *kp));
    u64map_iter_done(&it);
    assert_int_equal(n, N);
    assert_int_equal(u64map_len(m), 0);
    u64map_free(m);
}

/* ---- HMAP_DEFINE_SET ---- */

static void test_set(void **state) {
    (void)state;
    u32set *s = u32set_new(0);
    assert_non_null(s);
    for (uint32_t k = 0; k < N; k += 2)
        assert_int_equal(u32set_put(s, k), 1);
    assert_int_equal(u32set_put(s, 4), 0); /* already present */
    assert_int_equal(u32set_len(s), N / 2);
    assert_true(u32set_has(s, 4));
    assert_false(u32set_has(s, 5));
    assert_true(u32set_del(s, 4));
    assert_false(u32set_has(s, 4));
    assert_false(u32set_del(s, 4));

    uint32_t *kp;
    u32set_iter it;
    size_t n = 0;
    uint64_t sum = 0;
    for (u32set_iter_init(&it, s); u32set_next(&it, &kp); n++) {
        assert_int_equal(*kp % 2, 0);
        sum += *kp;
    }
    u32set_iter_done(&it);
    assert_int_equal(n, N / 2 - 1);
    assert_int_equal(sum, (uint64_t)(N / 2) * (N - 2) / 2 - 4); /* 0 + 2 + ... + (N - 2), less 4 */
    u32set_free(s);
}

/* ---- HMAP_DEFINE_STR ---- */

/* The map's own copy of a key, found by iteration (NULL if absent). */
static const char *stored_key(words *m, const char *key) {
    words_iter it;
    const char *k, *found = NULL;
    for (words_iter_init(&it, m); words_next(&it, &k, NULL);)
        if (strcmp(k, key) == 0)
            found = k;
    words_iter_done(&it);
    return found;
}

static void test_str_copies_new_keys_only(void **state) {
    (void)state;
    words *m = words_new(0);
    assert_non_null(m);
    char buf[16] = "apple";
    assert_int_equal(words_put(m, buf, 1), 1);
    const char *copy = stored_key(m, "apple");
    assert_non_null(copy);
    assert_ptr_not_equal(copy, buf); /* the caller's buffer is not kept */

    strcpy(buf, "pear"); /* the caller reuses its buffer */
    assert_int_equal(*words_get(m, "apple"), 1);
    assert_null(words_get(m, "pear"));

    strcpy(buf, "apple");
    assert_int_equal(words_put(m, buf, 2), 0); /* replaced: the stored key stays, no new copy */
    assert_ptr_equal(stored_key(m, "apple"), copy);
    assert_int_equal(*words_get(m, "apple"), 2);
    bool inserted = true;
    uint64_t *count = words_assign(m, "apple", &inserted);
    assert_false(inserted);
    assert_int_equal(*count, 2);
    assert_ptr_equal(stored_key(m, "apple"), copy);
    words_free(m); /* frees the copy: a leak would fail the ASan build */
}

/* wordcount's pattern: assign the word, increment its count. */
static void test_str_counting(void **state) {
    (void)state;
    static const char *const text[] = {"the", "map", "the", "array", "the", "map"};
    words *m = words_new(0);
    assert_non_null(m);
    int inserts = 0;
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        char word[16];
        strcpy(word, text[i]); /* a fresh buffer each time, as a reader's would be */
        bool inserted;
        uint64_t *count = words_assign(m, word, &inserted);
        assert_non_null(count);
        inserts += inserted;
        ++*count;
    }
    assert_int_equal(inserts, 3);
    assert_int_equal(words_len(m), 3);
    assert_int_equal(*words_get(m, "the"), 3);
    assert_int_equal(*words_get(m, "map"), 2);
    assert_int_equal(*words_get(m, "array"), 1);

    assert_true(words_del(m, "map")); /* frees the map's "map" */
    assert_false(words_del(m, "map"));
    assert_null(words_get(m, "map"));
    assert_int_equal(words_len(m), 2);

    size_t n = 0;
    uint64_t total = 0, *vp;
    const char *k;
    words_iter it;
    for (words_iter_init(&it, m); words_next(&it, &k, &vp); n++) {
        assert_true(strcmp(k, "the") == 0 || strcmp(k, "array") == 0);
        total += *vp;
    }
    words_iter_done(&it);
    assert_int_equal(n, 2);
    assert_int_equal(total, 4);
    words_free(m);
}

static void test_str_null_arguments(void **state) {
    (void)state;
    words *m = words_new(0);
    assert_non_null(m);
    assert_int_equal(words_put(m, NULL, 1), -EINVAL);
    assert_int_equal(words_put(NULL, "a", 1), -EINVAL);
    errno = 0;
    assert_null(words_get(m, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(words_assign(m, NULL, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(words_assign(NULL, "a", NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_false(words_del(m, NULL));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(words_len(m), 0);
    words_free(m);
}

/* An allocator that refuses every allocation once `failing` is set. */
static bool failing;
static void *flaky_alloc(size_t size, void *ctx) {
    (void)ctx;
    return failing ? NULL : malloc(size);
}
static void flaky_free(void *ptr, size_t size, void *ctx) {
    (void)size, (void)ctx;
    free(ptr);
}

/* When the map cannot take a new key, put and assign report ENOMEM, the key is absent, and the copy made
 * for it is freed (else the leak check of the ASan build fails). */
static void test_str_failed_insert_frees_the_copy(void **state) {
    (void)state;
    hmap_allocator flaky = {.alloc = flaky_alloc, .free = flaky_free};
    hmap_options opts = {.allocator = &flaky};
    failing = false;
    words *m = words_new_opts(0, &opts);
    assert_non_null(m);
    failing = true;
    int rc = 0;
    char key[32];
    size_t stored = 0;
    for (int i = 0; i < 1000 && rc >= 0; i++) { /* until the map must grow and cannot */
        snprintf(key, sizeof key, "key-%d", i);
        rc = words_put(m, key, (uint64_t)i);
        stored += rc == 1;
    }
    assert_int_equal(rc, -ENOMEM);
    assert_null(words_get(m, key));
    assert_int_equal(words_len(m), stored);
    errno = 0;
    assert_null(words_assign(m, key, NULL));
    assert_int_equal(errno, ENOMEM);
    assert_null(words_get(m, key));
    failing = false;
    assert_int_equal(words_put(m, key, 1), 1); /* and it works again once memory is there */
    assert_int_equal(words_len(m), stored + 1);
    words_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del_len),
        cmocka_unit_test(test_every_key_byte_counts),
        cmocka_unit_test(test_assign_zeroes_new_slots),
        cmocka_unit_test(test_typed_map_is_the_raw_map),
        cmocka_unit_test(test_new_opts_passes_options),
        cmocka_unit_test(test_null_map),
        cmocka_unit_test(test_iteration),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_str_copies_new_keys_only),
        cmocka_unit_test(test_str_counting),
        cmocka_unit_test(test_str_null_arguments),
        cmocka_unit_test(test_str_failed_insert_frees_the_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
