/* SPDX-License-Identifier: MIT */
/*
 * test_api.c — every public map function of include/hmap.h, one concern per test.
 *
 * Bad input (NULL map or key, key_size 0, a SIZE_MAX hint, a NULL type) must give the documented error and
 * never crash. Ownership is checked by counting: the test key type carries an id (what hash and equality
 * look at) and an instance number (which copy of the key it is), and the drop callbacks count per id, so
 * that "the map dropped the key passed, kept its own" is observable. Values carry an id of their own,
 * unique per put, so each value's drop is counted exactly.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"
#include "model.h"
#include "test_alloc.h"

/* ---- counted keys and values ---- */

#define MAX_IDS 4096

typedef struct tkey {
    uint32_t id;       /* identity: hashed and compared */
    uint32_t instance; /* which copy of the key: ignored by hash and equality */
} tkey;

typedef struct tval {
    uint64_t id; /* unique per value put into the map */
    uint64_t payload;
} tval;

static unsigned key_drops[MAX_IDS];
static uint32_t last_dropped_instance[MAX_IDS];
static unsigned val_drops[MAX_IDS];

static uint64_t tkey_hash(const void *k, uint64_t seed) {
    const tkey *t = k;
    return hmap_hash_bytes(&t->id, sizeof t->id, seed);
}

static bool tkey_equal(const void *a, const void *b) {
    return ((const tkey *)a)->id == ((const tkey *)b)->id;
}

static void tkey_drop(void *k) {
    const tkey *t = k;
    assert_true(t->id < MAX_IDS);
    key_drops[t->id]++;
    last_dropped_instance[t->id] = t->instance;
}

static void tval_drop(void *v) {
    const tval *t = v;
    assert_true(t->id < MAX_IDS);
    val_drops[t->id]++;
}

static const hmap_type counted_type = {
    .key_size = sizeof(tkey),
    .val_size = sizeof(tval),
    .hash = tkey_hash,
    .equal = tkey_equal,
    .key_drop = tkey_drop,
    .val_drop = tval_drop,
};

static const hmap_type u64_type = {.key_size = 8, .val_size = 8};

static int reset_counters(void **state) {
    (void)state;
    memset(key_drops, 0, sizeof key_drops);
    memset(last_dropped_instance, 0, sizeof last_dropped_instance);
    memset(val_drops, 0, sizeof val_drops);
    return 0;
}

static unsigned total(const unsigned *counts) {
    unsigned sum = 0;
    for (size_t i = 0; i < MAX_IDS; i++)
        sum += counts[i];
    return sum;
}

static size_t empty_map_bytes(const hmap_type *type) {
    hmap *m = hmap_new(type, 0);
    assert_non_null(m);
    hmap_stats st;
    hmap_get_stats(m, &st);
    hmap_free(m);
    return st.bytes;
}

/* ---- creation ---- */

static void test_new_rejects_bad_types(void **state) {
    (void)state;
    errno = 0;
    assert_null(hmap_new(NULL, 0));
    assert_int_equal(errno, EINVAL);

    hmap_type zero_key = {.key_size = 0, .val_size = 8};
    errno = 0;
    assert_null(hmap_new(&zero_key, 0));
    assert_int_equal(errno, EINVAL);

    hmap_type huge_key = {.key_size = SIZE_MAX, .val_size = 8};
    errno = 0;
    assert_null(hmap_new(&huge_key, 0));
    assert_int_equal(errno, EINVAL);

    hmap_type huge_val = {.key_size = 8, .val_size = SIZE_MAX / 2};
    errno = 0;
    assert_null(hmap_new(&huge_val, 0));
    assert_int_equal(errno, EINVAL);

    errno = 0;
    assert_null(hmap_new_opts(NULL, 0, NULL));
    assert_int_equal(errno, EINVAL);
}

static void test_new_rejects_huge_hint(void **state) {
    (void)state;
    hmap_memstats before, after;
    hmap_read_memstats(&before);
    errno = 0;
    assert_null(hmap_new(&u64_type, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(hmap_new(&u64_type, SIZE_MAX / 2));
    assert_int_equal(errno, ENOMEM);
    hmap_read_memstats(&after);
    assert_int_equal(after.live_bytes, before.live_bytes);
}

static void test_new_with_hint_needs_no_growth(void **state) {
    (void)state;
    hmap *m = hmap_new_opts(&u64_type, 10000, NULL); /* NULL options: the defaults */
    assert_non_null(m);
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.buckets, (size_t)1 << st.B);
    assert_true(st.buckets * 6.5 >= 10000);
    for (uint64_t k = 0; k < 10000; k++)
        assert_int_equal(hmap_put(m, &k, &k), 1);
    hmap_stats after;
    hmap_get_stats(m, &after);
    assert_int_equal(after.grows, 0);
    assert_int_equal(after.B, st.B);
    hmap_free(m);
}

/* A map of 1-8 u64 entries holds its handle and one array of B = 0: the array's header (at most 72 bytes)
 * and its one bucket (a tophash word, a chain head, 8 keys and 8 values), nothing else (no side record for
 * an array that needs no overflow bucket). */
static void test_small_map_holds_one_header_and_one_bucket(void **state) {
    (void)state;
    size_t empty = empty_map_bytes(&u64_type), most = 72 + 2 * sizeof(uint64_t) + 8 * (8 + 8);
    for (uint64_t n = 1; n <= 8; n++) {
        hmap *m = hmap_new(&u64_type, 0);
        assert_non_null(m);
        for (uint64_t k = 0; k < n; k++)
            assert_int_equal(hmap_put(m, &k, &k), 1);
        hmap_stats st;
        hmap_get_stats(m, &st);
        assert_int_equal(st.B, 0);
        assert_int_equal(st.overflow_buckets, 0);
        if (st.bytes - empty > most)
            fail_msg("%" PRIu64 " entries: %zu B beyond an empty map's %zu, more than %zu", n,
                     st.bytes - empty, empty, most);
        hmap_free(m);
    }
}

/* ---- NULL map and NULL key ---- */

static void test_null_map_is_einval(void **state) {
    (void)state;
    uint64_t k = 1, v = 2;
    bool inserted = true;
    assert_int_equal(hmap_len(NULL), 0);
    errno = 0;
    assert_null(hmap_get(NULL, &k));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(hmap_put(NULL, &k, &v), -EINVAL);
    errno = 0;
    assert_null(hmap_assign(NULL, &k, &inserted));
    assert_int_equal(errno, EINVAL);
    assert_false(hmap_del(NULL, &k));
    assert_false(hmap_take(NULL, &k, &k, &v));
    assert_int_equal(hmap_reserve(NULL, 10), -EINVAL);
    assert_int_equal(hmap_compact(NULL), -EINVAL);
    hmap_clear(NULL);
    hmap_free(NULL);

    hmap_iter it;
    void *ik, *iv;
    hmap_iter_init(&it, NULL);
    assert_false(hmap_iter_next(&it, &ik, &iv));
    hmap_iter_done(&it);

    hmap_stats st;
    memset(&st, 0xff, sizeof st);
    hmap_get_stats(NULL, &st);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.bytes, 0);
}

static void test_null_key_is_einval_and_changes_nothing(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    uint64_t k = 7, v = 8, out = 0;
    assert_int_equal(hmap_put(m, &k, &v), 1);

    errno = 0;
    assert_null(hmap_get(m, NULL));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(hmap_put(m, NULL, &v), -EINVAL);
    assert_int_equal(hmap_put(m, &k, NULL), -EINVAL); /* val_size 8: a value is required */
    errno = 0;
    assert_null(hmap_assign(m, NULL, NULL));
    assert_int_equal(errno, EINVAL);
    assert_false(hmap_del(m, NULL));
    assert_false(hmap_take(m, NULL, &out, &out));

    assert_int_equal(hmap_len(m), 1);
    uint64_t *got = hmap_get(m, &k);
    assert_non_null(got);
    assert_int_equal(*got, 8);
    hmap_free(m);
}

/* ---- put, get, len ---- */

static void test_put_get_len(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    assert_int_equal(hmap_len(m), 0);
    uint64_t k = 3;
    assert_null(hmap_get(m, &k));
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t v = i * 10;
        assert_int_equal(hmap_put(m, &i, &v), 1);
        assert_int_equal(hmap_len(m), i + 1);
    }
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t *v = hmap_get(m, &i);
        assert_non_null(v);
        assert_int_equal(*v, i * 10);
    }
    for (uint64_t i = 5000; i < 10000; i++)
        assert_null(hmap_get(m, &i));
    for (uint64_t i = 0; i < 5000; i += 2) {
        uint64_t v = i + 1;
        assert_int_equal(hmap_put(m, &i, &v), 0); /* replace */
    }
    assert_int_equal(hmap_len(m), 5000);
    for (uint64_t i = 0; i < 5000; i++)
        assert_int_equal(*(uint64_t *)hmap_get(m, &i), i % 2 ? i * 10 : i + 1);
    hmap_free(m);
}

static void test_odd_key_and_value_sizes(void **state) {
    (void)state;
    static const size_t key_sizes[] = {1, 3, 7, 13, 200, 333};
    static const size_t val_sizes[] = {1, 5, 100, 2000};
    unsigned char key[333], val[2000];
    for (size_t a = 0; a < sizeof key_sizes / sizeof *key_sizes; a++) {
        for (size_t b = 0; b < sizeof val_sizes / sizeof *val_sizes; b++) {
            hmap_type type = {.key_size = key_sizes[a], .val_size = val_sizes[b]};
            hmap *m = hmap_new(&type, 0);
            assert_non_null(m);
            size_t n = key_sizes[a] == 1 ? 256 : 600;
            for (size_t i = 0; i < n; i++) {
                memset(key, 0, sizeof key);
                memcpy(key + type.key_size - (type.key_size < 2 ? 1 : 2), &i, type.key_size < 2 ? 1 : 2);
                memset(val, (int)(i * 7), type.val_size);
                assert_int_equal(hmap_put(m, key, val), 1);
            }
            assert_int_equal(hmap_len(m), n);
            for (size_t i = 0; i < n; i++) {
                memset(key, 0, sizeof key);
                memcpy(key + type.key_size - (type.key_size < 2 ? 1 : 2), &i, type.key_size < 2 ? 1 : 2);
                memset(val, (int)(i * 7), type.val_size);
                unsigned char *got = hmap_get(m, key);
                assert_non_null(got);
                assert_memory_equal(got, val, type.val_size);
            }
            hmap_free(m);
        }
    }
}

/* ---- ownership ---- */

static tkey key_of(uint32_t id, uint32_t instance) { return (tkey){id, instance}; }
static tval val_of(uint64_t id) { return (tval){id, id * 3}; }

/* The instance number of the key the map stores for id (by iterating), or UINT32_MAX if absent. */
static uint32_t stored_instance(hmap *m, uint32_t id) {
    uint32_t found = UINT32_MAX;
    hmap_iter it;
    void *k;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, NULL))
        if (((tkey *)k)->id == id)
            found = ((tkey *)k)->instance;
    hmap_iter_done(&it);
    return found;
}

static void test_put_replace_drops_old_value_and_passed_key(void **state) {
    (void)state;
    hmap *m = hmap_new(&counted_type, 0);
    assert_non_null(m);
    tkey k1 = key_of(5, 1), k2 = key_of(5, 2);
    tval v1 = val_of(100), v2 = val_of(200);
    assert_int_equal(hmap_put(m, &k1, &v1), 1);
    assert_int_equal(total(key_drops) + total(val_drops), 0);
    assert_int_equal(hmap_put(m, &k2, &v2), 0);
    assert_int_equal(val_drops[100], 1); /* the old value */
    assert_int_equal(val_drops[200], 0);
    assert_int_equal(key_drops[5], 1);             /* one of the two keys ... */
    assert_int_equal(last_dropped_instance[5], 2); /* ... the one passed */
    assert_int_equal(stored_instance(m, 5), 1);
    tval *got = hmap_get(m, &k1);
    assert_non_null(got);
    assert_int_equal(got->id, 200);
    hmap_free(m);
    assert_int_equal(key_drops[5], 2);
    assert_int_equal(val_drops[200], 1);
    assert_int_equal(total(key_drops), 2);
    assert_int_equal(total(val_drops), 2);
}

static void test_assign(void **state) {
    (void)state;
    hmap *m = hmap_new(&counted_type, 0);
    assert_non_null(m);
    tkey k1 = key_of(9, 1), k2 = key_of(9, 2);
    bool inserted = false;
    tval *slot = hmap_assign(m, &k1, &inserted);
    assert_non_null(slot);
    assert_true(inserted);
    assert_int_equal(slot->id, 0); /* zeroed when new */
    assert_int_equal(slot->payload, 0);
    *slot = val_of(300);
    assert_int_equal(hmap_len(m), 1);

    slot = hmap_assign(m, &k2, &inserted);
    assert_non_null(slot);
    assert_false(inserted);
    assert_int_equal(slot->id, 300); /* the existing value, not dropped */
    assert_int_equal(val_drops[300], 0);
    assert_int_equal(key_drops[9], 1); /* the key passed was dropped */
    assert_int_equal(last_dropped_instance[9], 2);
    assert_int_equal(stored_instance(m, 9), 1);

    tkey k3 = key_of(10, 1);
    slot = hmap_assign(m, &k3, NULL); /* `inserted` may be NULL */
    assert_non_null(slot);
    *slot = val_of(301);
    assert_int_equal(hmap_len(m), 2);
    assert_int_equal(((tval *)hmap_get(m, &k3))->id, 301);
    hmap_free(m);
    assert_int_equal(val_drops[300], 1);
    assert_int_equal(val_drops[301], 1);
    assert_int_equal(total(key_drops), 3);
}

static void test_del_drops_key_and_value_once(void **state) {
    (void)state;
    hmap *m = hmap_new(&counted_type, 0);
    assert_non_null(m);
    for (uint32_t i = 0; i < 1000; i++) {
        tkey k = key_of(i, 1);
        tval v = val_of(i);
        assert_int_equal(hmap_put(m, &k, &v), 1);
    }
    for (uint32_t i = 0; i < 1000; i += 3) {
        tkey k = key_of(i, 7);
        assert_true(hmap_del(m, &k));
        assert_int_equal(key_drops[i], 1);
        assert_int_equal(last_dropped_instance[i], 1); /* the stored key, not the lookup key */
        assert_int_equal(val_drops[i], 1);
        assert_false(hmap_del(m, &k));
        assert_int_equal(key_drops[i], 1);
        assert_null(hmap_get(m, &k));
    }
    assert_int_equal(hmap_len(m), 1000 - 334);
    assert_int_equal(total(key_drops), 334);
    assert_int_equal(total(val_drops), 334);
    hmap_free(m);
    for (uint32_t i = 0; i < 1000; i++) {
        assert_int_equal(key_drops[i], 1);
        assert_int_equal(val_drops[i], 1);
    }
}

static void test_take(void **state) {
    (void)state;
    hmap *m = hmap_new(&counted_type, 0);
    assert_non_null(m);
    for (uint32_t i = 0; i < 10; i++) {
        tkey k = key_of(i, 1);
        tval v = val_of(i);
        assert_int_equal(hmap_put(m, &k, &v), 1);
    }
    /* Both outs: ownership moves to the caller, nothing dropped. */
    tkey probe = key_of(1, 9), kout = {0, 0};
    tval vout = {0, 0};
    assert_true(hmap_take(m, &probe, &kout, &vout));
    assert_int_equal(kout.id, 1);
    assert_int_equal(kout.instance, 1); /* the stored key */
    assert_int_equal(vout.id, 1);
    assert_int_equal(vout.payload, 3);
    assert_int_equal(total(key_drops) + total(val_drops), 0);
    assert_null(hmap_get(m, &probe));

    /* NULL key out: the key is dropped, the value handed over. */
    probe = key_of(2, 9);
    assert_true(hmap_take(m, &probe, NULL, &vout));
    assert_int_equal(vout.id, 2);
    assert_int_equal(key_drops[2], 1);
    assert_int_equal(last_dropped_instance[2], 1);
    assert_int_equal(val_drops[2], 0);

    /* NULL value out. */
    probe = key_of(3, 9);
    assert_true(hmap_take(m, &probe, &kout, NULL));
    assert_int_equal(kout.id, 3);
    assert_int_equal(key_drops[3], 0);
    assert_int_equal(val_drops[3], 1);

    /* Both NULL: like hmap_del. */
    probe = key_of(4, 9);
    assert_true(hmap_take(m, &probe, NULL, NULL));
    assert_int_equal(key_drops[4], 1);
    assert_int_equal(val_drops[4], 1);

    /* Absent: false, outs untouched, nothing dropped. */
    kout = key_of(77, 77);
    vout = val_of(77);
    assert_false(hmap_take(m, &probe, &kout, &vout));
    assert_int_equal(kout.id, 77);
    assert_int_equal(vout.id, 77);
    assert_int_equal(total(key_drops), 2);
    assert_int_equal(total(val_drops), 2);
    assert_int_equal(hmap_len(m), 6);
    hmap_free(m);
    assert_int_equal(total(key_drops), 8);
    assert_int_equal(total(val_drops), 8);
}

static void test_clear_drops_all_and_gives_arrays_back(void **state) {
    (void)state;
    size_t empty_bytes = empty_map_bytes(&counted_type);
    hmap *m = hmap_new(&counted_type, 0);
    assert_non_null(m);
    for (uint32_t i = 0; i < 3000; i++) {
        tkey k = key_of(i, 1);
        tval v = val_of(i);
        assert_int_equal(hmap_put(m, &k, &v), 1);
    }
    hmap_stats full;
    hmap_get_stats(m, &full);
    assert_true(full.bytes > empty_bytes);
    hmap_clear(m);
    assert_int_equal(hmap_len(m), 0);
    for (uint32_t i = 0; i < 3000; i++) {
        assert_int_equal(key_drops[i], 1);
        assert_int_equal(val_drops[i], 1);
    }
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.bytes, empty_bytes + test_side_record_bytes()); /* it grew: its side record stays */
    tkey k = key_of(5, 2);
    assert_null(hmap_get(m, &k));

    /* Still usable. */
    tval v = val_of(3001);
    assert_int_equal(hmap_put(m, &k, &v), 1);
    assert_int_equal(((tval *)hmap_get(m, &k))->id, 3001);
    hmap_free(m);
    assert_int_equal(key_drops[5], 2);
    assert_int_equal(val_drops[3001], 1);
}

static void test_clear_ends_open_iterations(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    hmap_iter it;
    void *k, *v;
    hmap_iter_init(&it, m);
    assert_true(hmap_iter_next(&it, &k, &v));
    hmap_clear(m);
    uint64_t fresh = 1000;
    assert_int_equal(hmap_put(m, &fresh, &fresh), 1);
    assert_false(hmap_iter_next(&it, &k, &v));
    hmap_iter_done(&it);
    hmap_free(m);
}

static void test_free_drops_everything_once(void **state) {
    (void)state;
    hmap *m = hmap_new(&counted_type, 0);
    assert_non_null(m);
    for (uint32_t i = 0; i < MAX_IDS; i++) {
        tkey k = key_of(i, 1);
        tval v = val_of(i);
        assert_int_equal(hmap_put(m, &k, &v), 1);
    }
    hmap_free(m);
    for (uint32_t i = 0; i < MAX_IDS; i++) {
        assert_int_equal(key_drops[i], 1);
        assert_int_equal(val_drops[i], 1);
    }
}

/* ---- reserve, compact ---- */

static void test_reserve(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    assert_int_equal(hmap_reserve(m, 50000), 0);
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.phase, HMAP_STEADY); /* reserve finishes any resize */
    assert_int_equal(st.old_buckets, 0);
    for (uint64_t i = 100; i < 50000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    hmap_stats after;
    hmap_get_stats(m, &after);
    assert_int_equal(after.grows, st.grows);
    assert_int_equal(after.B, st.B);
    for (uint64_t i = 0; i < 50000; i++)
        assert_int_equal(*(uint64_t *)hmap_get(m, &i), i);

    /* Impossible reservations fail and change nothing. */
    int rc = hmap_reserve(m, SIZE_MAX);
    assert_true(rc == -ENOMEM || rc == -EINVAL);
    rc = hmap_reserve(m, SIZE_MAX / 16);
    assert_true(rc == -ENOMEM || rc == -EINVAL);
    assert_int_equal(hmap_len(m), 50000);
    hmap_get_stats(m, &st);
    assert_int_equal(st.B, after.B);
    assert_int_equal(st.bytes, after.bytes);
    /* Reserving less than present is a no-op. */
    assert_int_equal(hmap_reserve(m, 10), 0);
    assert_int_equal(hmap_len(m), 50000);
    hmap_free(m);
}

/* A reservation holds while the map fills up to it, also when some entries are deleted on the way: the
 * count never exceeds n, so no growth may be needed. */
static void test_reserve_survives_deletes_while_filling(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    assert_int_equal(hmap_reserve(m, 100000), 0);
    hmap_stats reserved;
    hmap_get_stats(m, &reserved);
    for (uint64_t i = 0; hmap_len(m) < 100000; i++) {
        assert_int_equal(hmap_put(m, &i, &i), 1);
        if (i % 10 == 9) { /* one delete per ten inserts */
            uint64_t old = i - 5;
            assert_true(hmap_del(m, &old));
        }
    }
    hmap_stats st;
    hmap_get_stats(m, &st);
    hmap_free(m);
    if (st.grows != reserved.grows)
        print_message("  reserve(100000) then filling with 10%% deletes: %" PRIu64 " shrinks, %" PRIu64
                      " grows after the reservation\n",
                      st.shrinks - reserved.shrinks, st.grows - reserved.grows);
    assert_int_equal(st.grows, reserved.grows);
}

static void test_compact(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 100000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    for (uint64_t i = 0; i < 100000; i++)
        if (i % 50)
            assert_true(hmap_del(m, &i));
    assert_int_equal(hmap_compact(m), 0);
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.phase, HMAP_STEADY);
    assert_int_equal(st.old_buckets, 0);
    assert_int_equal(st.count, 2000);
    assert_int_equal(st.tombstones, 0);
    /* Fit: the smallest B whose load-factor limit (6.5 per bucket) holds 2000 entries is 9. */
    assert_int_equal(st.B, 9);
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t *v = hmap_get(m, &i);
        if (i % 50)
            assert_null(v);
        else
            assert_int_equal(*v, i);
    }
    /* Compacting an empty and a fresh map works too. */
    hmap_clear(m);
    assert_int_equal(hmap_compact(m), 0);
    assert_int_equal(hmap_len(m), 0);
    hmap_free(m);
}

/* ---- iteration ---- */

/* An entry the iteration over keys [0, n) with values ~key yielded: a key not seen before, its value. */
static void yielded_once(const void *k, const void *v, unsigned char *seen, uint64_t n) {
    uint64_t key = *(const uint64_t *)k;
    assert_true(key < n);
    assert_int_equal(seen[key], 0);
    seen[key] = 1;
    assert_int_equal(*(const uint64_t *)v, ~key);
}

static void test_iterator_yields_each_entry_once(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    hmap_iter it;
    void *k, *v;
    hmap_iter_init(&it, m);
    assert_false(hmap_iter_next(&it, &k, &v)); /* empty map */
    hmap_iter_done(&it);

    enum { N = 20000 };
    static unsigned char seen[N];
    for (uint64_t i = 0; i < N; i++) {
        uint64_t val = ~i;
        assert_int_equal(hmap_put(m, &i, &val), 1);
    }
    memset(seen, 0, sizeof seen);
    size_t n = 0;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, &v)) {
        yielded_once(k, v, seen, N);
        n++;
    }
    hmap_iter_done(&it);
    assert_int_equal(n, N);

    /* key and val may be NULL. */
    n = 0;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, NULL, NULL))
        n++;
    hmap_iter_done(&it);
    assert_int_equal(n, N);

    /* The library's exported hmap_iter_next (what a binding calls: the address of an inline function is
     * its external definition), taking turns with the inline one on the same iteration. */
    bool (*next)(hmap_iter *, void **, void **) = hmap_iter_next;
    memset(seen, 0, sizeof seen);
    n = 0;
    hmap_iter_init(&it, m);
    while (n % 3 ? hmap_iter_next(&it, &k, &v) : next(&it, &k, &v)) {
        yielded_once(k, v, seen, N);
        n++;
    }
    assert_int_equal(n, N);
    assert_false(next(&it, &k, &v)); /* finished, either way */
    assert_false(hmap_iter_next(&it, &k, &v));
    hmap_iter_done(&it);
    assert_false(next(&it, &k, &v));

    /* A copy of an iterator is an iteration of its own, from the same place: after yielding half, the
     * original and the copy each yield exactly the other half. */
    static unsigned char first_half[N];
    memset(first_half, 0, sizeof first_half);
    hmap_iter_init(&it, m);
    for (size_t i = 0; i < N / 2; i++) {
        assert_true(hmap_iter_next(&it, &k, NULL));
        first_half[*(uint64_t *)k] = 1;
    }
    hmap_iter copy = it;
    for (int pass = 0; pass < 2; pass++) {
        hmap_iter *which = pass ? &copy : &it;
        memset(seen, 0, sizeof seen);
        n = 0;
        while (hmap_iter_next(which, &k, NULL)) {
            uint64_t key = *(uint64_t *)k;
            assert_int_equal(first_half[key], 0);
            assert_int_equal(seen[key], 0);
            seen[key] = 1;
            n++;
        }
        assert_int_equal(n, N - N / 2);
    }
    hmap_free(m);
}

static void test_iteration_order_varies(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    uint64_t first[20];
    bool varies = false;
    for (int r = 0; r < 20; r++) {
        hmap_iter it;
        void *k;
        hmap_iter_init(&it, m);
        assert_true(hmap_iter_next(&it, &k, NULL));
        first[r] = *(uint64_t *)k;
        hmap_iter_done(&it);
        if (r && first[r] != first[0])
            varies = true;
    }
    assert_true(varies);
    hmap_free(m);
}

/* fixed_seed promises a reproducible order: two maps built alike with the same seed iterate alike. */
static void test_fixed_seed_reproducible_order(void **state) {
    (void)state;
    hmap_options opts = {.fixed_seed = true, .seed = 12345};
    uint64_t order[2][300];
    for (int r = 0; r < 2; r++) {
        hmap *m = hmap_new_opts(&u64_type, 0, &opts);
        assert_non_null(m);
        for (uint64_t i = 0; i < 300; i++)
            assert_int_equal(hmap_put(m, &i, &i), 1);
        hmap_iter it;
        void *k;
        size_t n = 0;
        hmap_iter_init(&it, m);
        while (hmap_iter_next(&it, &k, NULL) && n < 300)
            order[r][n++] = *(uint64_t *)k;
        hmap_iter_done(&it);
        assert_int_equal(n, 300);
        hmap_free(m);
    }
    assert_memory_equal(order[0], order[1], sizeof order[0]);
}

/* ---- sets ---- */

static void test_set(void **state) {
    (void)state;
    hmap_type set_type = {.key_size = 4, .val_size = 0};
    hmap *m = hmap_new(&set_type, 0);
    assert_non_null(m);
    for (uint32_t i = 0; i < 3000; i++)
        assert_int_equal(hmap_put(m, &i, NULL), 1);
    for (uint32_t i = 0; i < 3000; i += 2)
        assert_int_equal(hmap_put(m, &i, NULL), 0);
    assert_int_equal(hmap_len(m), 3000);
    for (uint32_t i = 0; i < 6000; i++)
        assert_int_equal(hmap_get(m, &i) != NULL, i < 3000);
    bool inserted = true;
    uint32_t k = 5;
    assert_non_null(hmap_assign(m, &k, &inserted));
    assert_false(inserted);
    k = 7000;
    assert_non_null(hmap_assign(m, &k, &inserted));
    assert_true(inserted);
    assert_non_null(hmap_get(m, &k));
    assert_true(hmap_del(m, &k));
    assert_null(hmap_get(m, &k));
    uint32_t out = 0;
    k = 11;
    assert_true(hmap_take(m, &k, &out, NULL));
    assert_int_equal(out, 11);
    size_t n = 0;
    hmap_iter it;
    void *ik;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &ik, NULL)) {
        assert_true(*(uint32_t *)ik < 3000);
        n++;
    }
    hmap_iter_done(&it);
    assert_int_equal(n, 2999);
    hmap_free(m);
}

/* ---- string keys ---- */

static long live_strings;

static char *owned_string(const char *s) {
    char *p = strdup(s);
    assert_non_null(p);
    live_strings++;
    return p;
}

static void drop_string_key(void *k) {
    free(*(char **)k);
    live_strings--;
}

static void test_cstr_hash_and_equal(void **state) {
    (void)state;
    char a[] = "hello, world", b[] = "hello, world", c[] = "hello, worle";
    const char *pa = a, *pb = b, *pc = c;
    assert_int_equal(hmap_hash_cstr(&pa, 42), hmap_hash_cstr(&pb, 42));
    assert_true(hmap_equal_cstr(&pa, &pb));
    assert_false(hmap_equal_cstr(&pa, &pc));
    assert_true(hmap_hash_cstr(&pa, 42) != hmap_hash_cstr(&pc, 42));
    assert_true(hmap_hash_cstr(&pa, 42) != hmap_hash_cstr(&pa, 43));
    const char *empty = "";
    assert_true(hmap_equal_cstr(&empty, &empty));
    assert_false(hmap_equal_cstr(&empty, &pa));

    assert_int_equal(hmap_hash_bytes("abc", 3, 1), hmap_hash_bytes("abc", 3, 1));
    assert_true(hmap_hash_bytes("abc", 3, 1) != hmap_hash_bytes("abc", 3, 2));
    assert_true(hmap_hash_bytes("abc", 3, 1) != hmap_hash_bytes("abd", 3, 1));
}

static void test_string_keys_owned_by_the_map(void **state) {
    (void)state;
    hmap_type type = {.key_size = sizeof(char *),
                      .val_size = sizeof(uint64_t),
                      .hash = hmap_hash_cstr,
                      .equal = hmap_equal_cstr,
                      .key_drop = drop_string_key};
    live_strings = 0;
    hmap *m = hmap_new(&type, 0);
    assert_non_null(m);
    char buf[64];
    /* Count words: each word is put once per occurrence; the map keeps one string per word. */
    for (int round = 0; round < 3; round++) {
        for (int w = 0; w < 2000; w++) {
            snprintf(buf, sizeof buf, "word-%d", w);
            char *probe = buf;
            uint64_t *count = hmap_get(m, &probe);
            uint64_t next = count ? *count + 1 : 1;
            char *key = owned_string(buf);
            assert_int_equal(hmap_put(m, &key, &next), round == 0 ? 1 : 0);
        }
    }
    assert_int_equal(live_strings, 2000);
    for (int w = 0; w < 2000; w++) {
        snprintf(buf, sizeof buf, "word-%d", w);
        char *probe = buf;
        uint64_t *count = hmap_get(m, &probe);
        assert_non_null(count);
        assert_int_equal(*count, 3);
    }
    snprintf(buf, sizeof buf, "word-%d", 17);
    char *probe = buf;
    assert_true(hmap_del(m, &probe));
    char *taken = NULL;
    snprintf(buf, sizeof buf, "word-%d", 18);
    assert_true(hmap_take(m, &probe, &taken, NULL));
    assert_string_equal(taken, "word-18");
    free(taken);
    live_strings--;
    assert_int_equal(live_strings, 1998);
    hmap_free(m);
    assert_int_equal(live_strings, 0);
}

/* ---- stats and memstats ---- */

static void test_get_stats(void **state) {
    (void)state;
    char name[] = "api-test";
    hmap_options opts = {.name = name};
    hmap *m = hmap_new_opts(&u64_type, 0, &opts);
    assert_non_null(m);
    name[0] = 'X'; /* the map copied the name */
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.phase, HMAP_STEADY);
    assert_true(st.buckets == 0 || st.buckets == (size_t)1 << st.B); /* 0: no array allocated yet */
    assert_int_equal(st.old_buckets, 0);
    assert_true(st.bytes > 0);
    assert_non_null(st.name);
    assert_string_equal(st.name, "api-test");
    size_t prev_bytes = st.bytes;
    unsigned B0 = st.B;
    for (uint64_t i = 0; i < 100000; i++) {
        assert_int_equal(hmap_put(m, &i, &i), 1);
        hmap_get_stats(m, &st);
        assert_int_equal(st.count, i + 1);
        assert_int_equal(st.buckets, (size_t)1 << st.B);
        assert_true(st.evacuated <= st.old_buckets);
        assert_true(st.old_buckets == 0 || st.phase != HMAP_STEADY);
        /* Load factor 6.5: more entries than that per bucket start a growth at once (Go lets up to
         * 8 entries sit in a single bucket). */
        assert_true(st.count <= 8 || st.count <= 6.5 * (double)st.buckets);
    }
    /* 100000 entries need 2^14 buckets (6.5 * 2^13 < 100000 <= 6.5 * 2^14), one doubling per grow. */
    assert_int_equal(st.B, 14);
    assert_int_equal(st.grows, 14 - B0);
    assert_true(st.bytes > prev_bytes);
    assert_true(st.bytes >= 100000 * 16); /* at least the keys and values themselves */
    hmap_free(m);
}

static void test_memstats_return_to_start(void **state) {
    (void)state;
    hmap_memstats start, mid, end;
    hmap_read_memstats(&start);
    hmap *maps[4];
    for (int j = 0; j < 4; j++) {
        maps[j] = hmap_new(&u64_type, (size_t)j * 1000);
        assert_non_null(maps[j]);
        for (uint64_t i = 0; i < 20000; i++)
            assert_int_equal(hmap_put(maps[j], &i, &i), 1);
    }
    hmap_read_memstats(&mid);
    assert_true(mid.live_bytes > start.live_bytes);
    assert_true(mid.mallocs > start.mallocs);
    assert_true(mid.total_bytes >= start.total_bytes + (mid.live_bytes - start.live_bytes));
    assert_true(mid.peak_bytes >= mid.live_bytes);
    /* The map's own figure is part of the live figure. */
    hmap_stats st;
    hmap_get_stats(maps[0], &st);
    assert_true(mid.live_bytes - start.live_bytes >= st.bytes);
    for (uint64_t i = 0; i < 20000; i++)
        assert_true(hmap_del(maps[1], &i));
    hmap_clear(maps[2]);
    for (int j = 0; j < 4; j++)
        hmap_free(maps[j]);
    hmap_read_memstats(&end);
    assert_int_equal(end.live_bytes, start.live_bytes);
    assert_int_equal(end.mallocs - start.mallocs, end.frees - start.frees);
    assert_true(end.peak_bytes >= mid.live_bytes);
    assert_true(end.total_bytes >= mid.total_bytes);
}

/* Concurrent readers with no writer are safe: four threads look up every key of a map caught in the
 * middle of a grow (old and new arrays both live), and all must see every value. */
typedef struct reader_arg {
    hmap *m;
    uint64_t n, misses;
    size_t len_seen;
} reader_arg;

static void *reader(void *p) {
    reader_arg *a = p;
    for (int round = 0; round < 20; round++) {
        for (uint64_t i = 0; i < a->n; i++) {
            uint64_t *v = hmap_get(a->m, &i);
            if (!v || *v != i * 3)
                a->misses++;
        }
        a->len_seen = hmap_len(a->m);
        hmap_stats st;
        hmap_get_stats(a->m, &st);
    }
    return NULL;
}

static void test_concurrent_readers(void **state) {
    (void)state;
    hmap *m = hmap_new(&u64_type, 0);
    assert_non_null(m);
    uint64_t n = 0;
    hmap_stats st;
    do { /* insert until a grow is under way, and a bit further */
        uint64_t v = n * 3;
        assert_int_equal(hmap_put(m, &n, &v), 1);
        n++;
        hmap_get_stats(m, &st);
    } while (n < 20000 || st.phase != HMAP_GROWING);
    assert_true(st.evacuated < st.old_buckets);
    reader_arg args[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (reader_arg){m, n, 0, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, reader, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(args[t].misses, 0);
        assert_int_equal(args[t].len_seen, n);
    }
    hmap_stats after;
    hmap_get_stats(m, &after);
    assert_int_equal(after.evacuated, st.evacuated); /* reads moved nothing */
    assert_int_equal(after.buckets_moved, st.buckets_moved);
    hmap_free(m);
}

/* ---- maps made on many threads ---- */

/* Maps of one type and options share a class; each thread keeps its last one. Threads that make and free
 * maps of two names in turn, and then exit, while the main thread does the same: every map carries its own
 * name, and works. (A class handed to the wrong map, or freed while a thread still holds it, shows here, and
 * under the sanitizers.) */
static void *make_named_maps(void *p) {
    int *failures = p;
    for (int i = 0; i < 2000; i++) {
        const char *name = (i / 100) % 2 ? "odd" : "even";
        hmap_options opts = {.name = name};
        hmap *m = hmap_new_opts(&u64_type, 0, &opts);
        uint64_t k = (uint64_t)i, v = k * 7;
        hmap_stats st;
        if (!m || hmap_put(m, &k, &v) != 1) {
            ++*failures;
            hmap_free(m);
            continue;
        }
        hmap_get_stats(m, &st);
        uint64_t *got = hmap_get(m, &k);
        if (!st.name || strcmp(st.name, name) != 0 || !got || *got != v)
            ++*failures;
        hmap_free(m);
    }
    return NULL;
}

static void test_maps_made_on_many_threads(void **state) {
    (void)state;
    pthread_t threads[4];
    int failures[5] = {0};
    for (int round = 0; round < 3; round++) {
        for (int t = 0; t < 4; t++)
            assert_int_equal(pthread_create(&threads[t], NULL, make_named_maps, &failures[t]), 0);
        make_named_maps(&failures[4]);
        for (int t = 0; t < 4; t++)
            assert_int_equal(pthread_join(threads[t], NULL), 0);
    }
    for (int t = 0; t < 5; t++)
        assert_int_equal(failures[t], 0);
    hmap *plain = hmap_new(&u64_type, 0); /* no name: not the class the main thread used last */
    assert_non_null(plain);
    hmap_stats st;
    hmap_get_stats(plain, &st);
    assert_null(st.name);
    hmap_free(plain);
}

/* ---- callbacks with a context ---- */

typedef struct callback_counts {
    int hashes, equals, key_drops, val_drops;
} callback_counts;

static uint64_t ctx_hash(const void *key, uint64_t seed, void *ctx) {
    ((callback_counts *)ctx)->hashes++;
    uint64_t k;
    memcpy(&k, key, 8);
    return k ^ seed;
}
static bool ctx_equal(const void *a, const void *b, void *ctx) {
    ((callback_counts *)ctx)->equals++;
    return memcmp(a, b, 8) == 0;
}
static void ctx_key_drop(void *key, void *ctx) {
    (void)key;
    ((callback_counts *)ctx)->key_drops++;
}
static void ctx_val_drop(void *val, void *ctx) {
    (void)val;
    ((callback_counts *)ctx)->val_drops++;
}

/* Two maps, each with its own counters through ctx: no globals needed, and each map calls only its own. */
static void test_callbacks_with_context(void **state) {
    (void)state;
    callback_counts a = {0}, b = {0};
    hmap_type ta = {.key_size = 8,
                    .val_size = 8,
                    .hash_ctx = ctx_hash,
                    .equal_ctx = ctx_equal,
                    .key_drop_ctx = ctx_key_drop,
                    .val_drop_ctx = ctx_val_drop,
                    .ctx = &a};
    hmap_type tb = ta;
    tb.ctx = &b;
    hmap *ma = hmap_new(&ta, 0), *mb = hmap_new(&tb, 0);
    assert_non_null(ma);
    assert_non_null(mb);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(hmap_put(ma, &i, &i), 1);
    assert_true(a.hashes >= 100);
    assert_int_equal(b.hashes, 0);
    uint64_t k = 7, v = 70;
    assert_int_equal(hmap_put(ma, &k, &v), 0); /* replace: the old value dropped, the same key bytes kept */
    assert_true(a.equals >= 1);
    assert_int_equal(a.val_drops, 1);
    assert_int_equal(a.key_drops, 0);
    assert_true(hmap_del(ma, &k));
    assert_int_equal(a.key_drops, 1);
    assert_int_equal(a.val_drops, 2);
    hmap_free(ma);
    assert_int_equal(a.key_drops, 100);
    assert_int_equal(a.val_drops, 101);
    hmap_free(mb);
    assert_int_equal(b.key_drops, 0);

    /* Both variants of one callback: refused. */
    hmap_type both = {.key_size = 8, .val_size = 8, .key_drop_ctx = ctx_key_drop, .key_drop = tkey_drop};
    errno = 0;
    assert_null(hmap_new(&both, 0));
    assert_int_equal(errno, EINVAL);
}

/* Reserved words: options refuse non-zero ones; stats and memstats come back with them zeroed. */
static void test_reserved_words(void **state) {
    (void)state;
    hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_options o = {0};
    o.reserved_[3] = 1;
    errno = 0;
    assert_null(hmap_new_opts(&t, 0, &o));
    assert_int_equal(errno, EINVAL);
    o.reserved_[3] = 0;
    hmap *m = hmap_new_opts(&t, 10, &o);
    assert_non_null(m);
    hmap_stats st;
    memset(&st, 0xff, sizeof st);
    hmap_get_stats(m, &st);
    for (size_t i = 0; i < sizeof st.reserved_ / sizeof st.reserved_[0]; i++)
        assert_int_equal(st.reserved_[i], 0);
    hmap_memstats ms;
    memset(&ms, 0xff, sizeof ms);
    hmap_read_memstats(&ms);
    for (size_t i = 0; i < sizeof ms.reserved_ / sizeof ms.reserved_[0]; i++)
        assert_int_equal(ms.reserved_[i], 0);
    hmap_free(m);
}

/* hmap_reset drops everything and keeps the array: refilling to the same size allocates nothing. */
static void test_reset_keeps_the_array(void **state) {
    (void)state;
    callback_counts c = {0};
    hmap_type t = {
        .key_size = 8, .val_size = 8, .key_drop_ctx = ctx_key_drop, .val_drop_ctx = ctx_val_drop, .ctx = &c};
    hmap *m = hmap_new(&t, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < 5000; i++)
        assert_int_equal(hmap_put(m, &i, &i), 1);
    hmap_stats before, after;
    hmap_get_stats(m, &before);
    assert_true(before.old_buckets > 0 || before.phase == HMAP_STEADY);
    hmap_iter it;
    hmap_iter_init(&it, m);
    void *k, *v;
    assert_true(hmap_iter_next(&it, &k, &v));
    hmap_reset(m);
    assert_false(hmap_iter_next(&it, &k, &v)); /* open iterations end */
    assert_int_equal(hmap_len(m), 0);
    assert_int_equal(c.key_drops, 5000);
    assert_int_equal(c.val_drops, 5000);
    hmap_get_stats(m, &after);
    assert_int_equal(after.buckets, before.buckets);
    assert_int_equal(after.old_buckets, 0);
    assert_int_equal(after.overflow_buckets, 0);
    assert_int_equal(after.tombstones, 0);
    hmap_memstats ms0, ms1;
    hmap_read_memstats(&ms0);
    for (uint64_t i = 0; i < 4000; i++) /* fits the kept array: no growth, no allocation */
        assert_int_equal(hmap_put(m, &i, &i), 1);
    hmap_read_memstats(&ms1);
    hmap_get_stats(m, &after);
    assert_int_equal(after.grows, before.grows);
    assert_true(ms1.mallocs - ms0.mallocs <= 2); /* at most overflow slabs */
    for (uint64_t i = 0; i < 4000; i++) {
        uint64_t *got = hmap_get(m, &i);
        assert_non_null(got);
        assert_int_equal(*got, i);
    }
    hmap_reset(NULL);
    hmap_free(m);
    assert_int_equal(c.key_drops, 9000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_types),
        cmocka_unit_test(test_new_rejects_huge_hint),
        cmocka_unit_test(test_new_with_hint_needs_no_growth),
        cmocka_unit_test(test_small_map_holds_one_header_and_one_bucket),
        cmocka_unit_test(test_null_map_is_einval),
        cmocka_unit_test(test_null_key_is_einval_and_changes_nothing),
        cmocka_unit_test(test_put_get_len),
        cmocka_unit_test(test_odd_key_and_value_sizes),
        cmocka_unit_test_setup(test_put_replace_drops_old_value_and_passed_key, reset_counters),
        cmocka_unit_test_setup(test_assign, reset_counters),
        cmocka_unit_test_setup(test_del_drops_key_and_value_once, reset_counters),
        cmocka_unit_test_setup(test_take, reset_counters),
        cmocka_unit_test_setup(test_clear_drops_all_and_gives_arrays_back, reset_counters),
        cmocka_unit_test(test_clear_ends_open_iterations),
        cmocka_unit_test_setup(test_free_drops_everything_once, reset_counters),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_reserve_survives_deletes_while_filling),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_iterator_yields_each_entry_once),
        cmocka_unit_test(test_iteration_order_varies),
        cmocka_unit_test(test_fixed_seed_reproducible_order),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_cstr_hash_and_equal),
        cmocka_unit_test(test_string_keys_owned_by_the_map),
        cmocka_unit_test(test_get_stats),
        cmocka_unit_test(test_memstats_return_to_start),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_maps_made_on_many_threads),
        cmocka_unit_test(test_callbacks_with_context),
        cmocka_unit_test(test_reserved_words),
        cmocka_unit_test(test_reset_keeps_the_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
