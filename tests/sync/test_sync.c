/* SPDX-License-Identifier: MIT */
/*
 * test_sync.c — every function of include/hmap_sync.h from one thread: results, ownership, the
 * reclamation rule, memory after deletes, clear and compact, bad input and allocation failure.
 *
 * Ownership is checked by counting drops. Owned values are heap objects that record their key; the drop
 * function checks the object is intact before freeing it, so a double drop or a drop of garbage fails
 * here (and ASan sees any use after the free). Three kinds of map are exercised, because they take
 * different paths: u64 keys (lock-free reads), odd-sized keys and values (lock-free reads, byte copies),
 * and string keys with an equal() function (reads under the lock).
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
#include "test_alloc.h" /* test_side_record_bytes */

static const hmap_type u64_type = {.key_size = 8, .val_size = 8};

/* ---- owned values ---- */

#define OBJ_MAGIC 0x6f626a6563742121ULL

typedef struct obj {
    uint64_t magic;
    uint64_t key;
} obj;

static unsigned long obj_made, obj_dropped;

static obj *obj_new(uint64_t key) {
    obj *o = malloc(sizeof *o);
    assert_non_null(o);
    o->magic = OBJ_MAGIC;
    o->key = key;
    obj_made++;
    return o;
}

static void obj_free(obj *o) {
    assert_int_equal(o->magic, OBJ_MAGIC);
    o->magic = 0;
    free(o);
}

static void obj_drop(void *val) {
    obj_free(*(obj **)val);
    obj_dropped++;
}

static const hmap_type owned_type = {.key_size = 8, .val_size = sizeof(obj *), .val_drop = obj_drop};

/* ---- owned string keys ---- */

static unsigned long str_dropped;

static void str_drop(void *key) {
    free(*(char **)key);
    str_dropped++;
}

static char *str_new(uint64_t i) {
    char *s = malloc(32);
    assert_non_null(s);
    snprintf(s, 32, "key-%llu", (unsigned long long)i);
    return s;
}

static const hmap_type str_type = {.key_size = sizeof(char *),
                                   .val_size = 8,
                                   .hash = hmap_hash_cstr,
                                   .equal = hmap_equal_cstr,
                                   .key_drop = str_drop};

/* ---- helpers ---- */

static uint64_t load_u64(hmap_sync *m, uint64_t k, bool *found) {
    uint64_t v = 0;
    *found = hmap_sync_load(m, &k, &v);
    return v;
}

static void store_u64(hmap_sync *m, uint64_t k, uint64_t v, int expect) {
    assert_int_equal(hmap_sync_store(m, &k, &v), expect);
}

static bool count_entry(const void *key, const void *val, void *ctx) {
    (void)key;
    (void)val;
    (*(size_t *)ctx)++;
    return true;
}

static size_t range_count(hmap_sync *m) {
    size_t n = 0;
    hmap_sync_range(m, count_entry, &n);
    return n;
}

/* ---- tests ---- */

static void test_bad_input(void **state) {
    (void)state;
    hmap_type zero = {.key_size = 0, .val_size = 8};
    errno = 0;
    assert_null(hmap_sync_new(NULL, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hmap_sync_new(&zero, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hmap_sync_new(&u64_type, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    hmap_allocator broken = {NULL, NULL, NULL};
    hmap_options opts = {.allocator = &broken};
    errno = 0;
    assert_null(hmap_sync_new_opts(&u64_type, 0, &opts));
    assert_int_equal(errno, EINVAL);

    uint64_t k = 1, v = 2;
    errno = 0;
    assert_false(hmap_sync_load(NULL, &k, &v));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(hmap_sync_store(NULL, &k, &v), -EINVAL);
    assert_false(hmap_sync_delete(NULL, &k));
    assert_int_equal(hmap_sync_load_or_store(NULL, &k, &v, NULL), -EINVAL);
    assert_false(hmap_sync_load_and_delete(NULL, &k, NULL));
    assert_int_equal(hmap_sync_swap(NULL, &k, &v, NULL), -EINVAL);
    assert_false(hmap_sync_compare_and_swap(NULL, &k, &v, &v));
    assert_false(hmap_sync_compare_and_delete(NULL, &k, &v));
    assert_int_equal(hmap_sync_update(NULL, &k, NULL, NULL), -EINVAL);
    assert_int_equal(hmap_sync_len(NULL), 0);
    hmap_sync_range(NULL, count_entry, NULL);
    hmap_sync_free(NULL);
    hmap_stats st;
    hmap_sync_get_stats(NULL, &st);
    assert_int_equal(st.count, 0);

    hmap_sync *m = hmap_sync_new(&u64_type, 0);
    assert_non_null(m);
    errno = 0;
    assert_false(hmap_sync_load(m, NULL, &v));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(hmap_sync_store(m, NULL, &v), -EINVAL);
    assert_int_equal(hmap_sync_store(m, &k, NULL), -EINVAL);
    assert_false(hmap_sync_delete(m, NULL));
    assert_false(hmap_sync_compare_and_swap(m, &k, NULL, &v));
    assert_int_equal(hmap_sync_update(m, &k, NULL, NULL), -EINVAL);
    assert_int_equal(hmap_sync_len(m), 0);
    hmap_sync_free(m);
}

static void test_shard_count(void **state) {
    (void)state;
    hmap_sync *m = hmap_sync_new(&u64_type, 0);
    size_t n = hmap_sync_shards(m);
    assert_true(n >= 16 && n <= 256);
    assert_int_equal(n & (n - 1), 0);
    hmap_sync_free(m);
}

/* Many keys in, then out: every answer right on the way, and the shards grow and shrink. */
static void test_store_load_delete(void **state) {
    (void)state;
    enum { N = 50000 };
    hmap_sync *m = hmap_sync_new(&u64_type, 0);
    assert_non_null(m);
    for (uint64_t k = 0; k < N; k++)
        store_u64(m, k, k * 3, 1);
    assert_int_equal(hmap_sync_len(m), N);
    for (uint64_t k = 0; k < N; k++)
        store_u64(m, k, k * 7, 0);
    bool found;
    for (uint64_t k = 0; k < N + 100; k++) {
        uint64_t v = load_u64(m, k, &found);
        assert_int_equal(found, k < N);
        if (found)
            assert_int_equal(v, k * 7);
    }
    assert_int_equal(range_count(m), N);
    hmap_stats full;
    hmap_sync_get_stats(m, &full);
    assert_int_equal(full.count, N);
    assert_true(full.grows > 0);
    for (uint64_t k = 0; k < N; k++)
        assert_true(hmap_sync_delete(m, &k));
    assert_int_equal(hmap_sync_len(m), 0);
    for (uint64_t k = 0; k < N; k++)
        assert_false(hmap_sync_delete(m, &k));
    hmap_sync_reclaim(m);
    hmap_stats empty;
    hmap_sync_get_stats(m, &empty);
    assert_int_equal(empty.count, 0);
    assert_true(empty.bytes * 10 < full.bytes);
    hmap_sync_free(m);
}

/* After deleting 99%, the map holds at most twice what a fresh map of the survivors holds. */
static void test_memory_follows_deletes(void **state) {
    (void)state;
    enum { N = 1 << 17 };
    hmap_sync *m = hmap_sync_new(&u64_type, 0);
    for (uint64_t k = 0; k < N; k++)
        store_u64(m, k, k, 1);
    for (uint64_t k = 0; k < N; k++)
        if (k % 100 != 0)
            assert_true(hmap_sync_delete(m, &k));
    assert_int_equal(hmap_sync_reclaim(m), 0);
    hmap_sync *fresh = hmap_sync_new(&u64_type, 0);
    for (uint64_t k = 0; k < N; k += 100)
        store_u64(fresh, k, k, 1);
    hmap_stats a, b;
    hmap_sync_get_stats(m, &a);
    hmap_sync_get_stats(fresh, &b);
    assert_int_equal(a.count, b.count);
    print_message("after deleting 99%% of %d: %zu bytes; a fresh map of the survivors: %zu (%.2fx)\n", N,
                  a.bytes, b.bytes, (double)a.bytes / (double)b.bytes);
    assert_true(a.bytes <= 2 * b.bytes);
    hmap_sync_free(m);
    hmap_sync_free(fresh);
}

static void add_ctx(void *val, bool inserted, void *ctx) {
    uint64_t *v = val;
    if (inserted)
        assert_int_equal(*v, 0);
    *v += *(uint64_t *)ctx;
}

static void test_each_operation(void **state) {
    (void)state;
    hmap_sync *m = hmap_sync_new(&u64_type, 16);
    uint64_t k = 42, v = 1, w = 2, out = 0;
    assert_int_equal(hmap_sync_load_or_store(m, &k, &v, &out), 1);
    out = 0;
    assert_int_equal(hmap_sync_load_or_store(m, &k, &w, &out), 0);
    assert_int_equal(out, 1);
    assert_int_equal(hmap_sync_swap(m, &k, &w, &out), 0);
    assert_int_equal(out, 1);
    uint64_t k2 = 43;
    assert_int_equal(hmap_sync_swap(m, &k2, &w, &out), 1);
    assert_false(hmap_sync_compare_and_swap(m, &k, &v, &v)); /* value is 2 */
    assert_true(hmap_sync_compare_and_swap(m, &k, &w, &v));  /* 2 -> 1 */
    bool found;
    assert_int_equal(load_u64(m, k, &found), 1);
    assert_false(hmap_sync_compare_and_delete(m, &k, &w));
    assert_true(hmap_sync_compare_and_delete(m, &k, &v));
    assert_false(hmap_sync_load(m, &k, NULL));
    uint64_t missing = 7;
    assert_false(hmap_sync_compare_and_swap(m, &missing, &v, &w));
    assert_false(hmap_sync_load_and_delete(m, &missing, &out));
    assert_true(hmap_sync_load_and_delete(m, &k2, &out));
    assert_int_equal(out, 2);
    uint64_t five = 5;
    assert_int_equal(hmap_sync_update(m, &k, add_ctx, &five), 1);
    assert_int_equal(hmap_sync_update(m, &k, add_ctx, &five), 0);
    assert_int_equal(load_u64(m, k, &found), 10);
    assert_int_equal(hmap_sync_len(m), 1);
    hmap_sync_free(m);
}

static void test_set(void **state) {
    (void)state;
    hmap_type set = {.key_size = 8, .val_size = 0};
    hmap_sync *m = hmap_sync_new(&set, 0);
    for (uint64_t k = 0; k < 1000; k++)
        assert_int_equal(hmap_sync_store(m, &k, NULL), 1);
    for (uint64_t k = 0; k < 1000; k++)
        assert_int_equal(hmap_sync_load_or_store(m, &k, NULL, NULL), 0);
    for (uint64_t k = 0; k < 2000; k++)
        assert_int_equal(hmap_sync_load(m, &k, NULL), k < 1000);
    uint64_t k = 3;
    assert_true(hmap_sync_compare_and_delete(m, &k, NULL));
    assert_int_equal(range_count(m), 999);
    hmap_sync_free(m);
}

/* 12-byte keys, 20-byte values: lock-free reads with byte-wise copies. */
typedef struct odd_key {
    uint32_t a, b, c;
} odd_key;
typedef struct odd_val {
    uint32_t w[5];
} odd_val;

static void test_odd_sizes(void **state) {
    (void)state;
    hmap_type t = {.key_size = sizeof(odd_key), .val_size = sizeof(odd_val)};
    hmap_sync *m = hmap_sync_new(&t, 0);
    for (uint32_t i = 0; i < 20000; i++) {
        odd_key k = {i, ~i, i * 7};
        odd_val v = {{i, i + 1, i + 2, i + 3, i + 4}};
        assert_int_equal(hmap_sync_store(m, &k, &v), 1);
    }
    for (uint32_t i = 0; i < 21000; i++) {
        odd_key k = {i, ~i, i * 7};
        odd_val v;
        bool found = hmap_sync_load(m, &k, &v);
        assert_int_equal(found, i < 20000);
        if (found)
            for (int j = 0; j < 5; j++)
                assert_int_equal(v.w[j], i + (uint32_t)j);
    }
    hmap_sync_free(m);
}

/* Owned values: every value made is dropped exactly once, replaced, deleted or at free. */
static void test_owned_values_dropped_once(void **state) {
    (void)state;
    obj_made = obj_dropped = 0;
    hmap_sync *m = hmap_sync_new(&owned_type, 0);
    for (uint64_t k = 0; k < 5000; k++) {
        obj *o = obj_new(k);
        assert_int_equal(hmap_sync_store(m, &k, &o), 1);
    }
    for (uint64_t k = 0; k < 5000; k += 2) { /* replace: the old one is dropped */
        obj *o = obj_new(k);
        assert_int_equal(hmap_sync_store(m, &k, &o), 0);
    }
    for (uint64_t k = 0; k < 5000; k += 3)
        assert_true(hmap_sync_delete(m, &k));
    uint64_t k = 1;
    obj *taken = NULL;
    assert_true(hmap_sync_load_and_delete(m, &k, &taken)); /* ownership to us */
    assert_int_equal(taken->key, 1);
    obj *fresh = obj_new(5), *old = NULL;
    k = 5;
    assert_int_equal(hmap_sync_swap(m, &k, &fresh, &old), 0); /* the old one is ours */
    assert_int_equal(old->key, 5);
    obj *cur = NULL;
    k = 7;
    assert_true(hmap_sync_load(m, &k, &cur));
    obj *repl = obj_new(7);
    assert_true(hmap_sync_compare_and_swap(m, &k, &cur, &repl));
    obj *wrong = obj_new(7);
    assert_false(hmap_sync_compare_and_swap(m, &k, &cur, &wrong)); /* not taken: still ours */
    obj_free(wrong);
    obj_made--;
    obj *mine = obj_new(8);
    k = 8;
    obj *actual = NULL;
    assert_int_equal(hmap_sync_load_or_store(m, &k, &mine, &actual), 0); /* present: nothing taken */
    assert_int_equal(actual->key, 8);
    obj_free(mine);
    obj_made--;
    hmap_sync_reclaim(m);
    unsigned long live = hmap_sync_len(m);
    hmap_sync_free(m);
    /* everything made was dropped, except the two handed to us */
    assert_int_equal(obj_dropped + 2, obj_made);
    (void)live;
    obj_free(taken);
    obj_free(old);
}

/* The rule: a value loaded inside a read section is not dropped before the section ends. */
static void test_pinned_value_outlives_delete(void **state) {
    (void)state;
    obj_made = obj_dropped = 0;
    hmap_sync *m = hmap_sync_new(&owned_type, 0);
    uint64_t k = 99;
    obj *o = obj_new(k);
    assert_int_equal(hmap_sync_store(m, &k, &o), 1);
    assert_int_equal(hmap_sync_pin(), 0);
    obj *seen = NULL;
    assert_true(hmap_sync_load(m, &k, &seen));
    assert_true(hmap_sync_delete(m, &k));
    assert_true(hmap_sync_reclaim(m) > 0); /* the drop is still waiting for us */
    assert_int_equal(obj_dropped, 0);
    assert_int_equal(seen->magic, OBJ_MAGIC); /* still readable */
    assert_int_equal(seen->key, 99);
    assert_int_equal(hmap_sync_synchronize(), -EDEADLK);
    hmap_sync_unpin();
    assert_int_equal(hmap_sync_reclaim(m), 0);
    assert_int_equal(obj_dropped, 1);
    assert_int_equal(hmap_sync_synchronize(), 0);
    hmap_sync_free(m);
}

static void check_obj(const void *val, void *ctx) {
    const obj *o = *(obj *const *)val;
    assert_int_equal(o->magic, OBJ_MAGIC);
    *(uint64_t *)ctx = o->key;
}

static void test_load_with(void **state) {
    (void)state;
    hmap_sync *m = hmap_sync_new(&owned_type, 0);
    uint64_t k = 3, seen = 0;
    obj *o = obj_new(k);
    hmap_sync_store(m, &k, &o);
    assert_true(hmap_sync_load_with(m, &k, check_obj, &seen));
    assert_int_equal(seen, 3);
    k = 4;
    assert_false(hmap_sync_load_with(m, &k, check_obj, &seen));
    hmap_sync_free(m);
}

/* String keys: reads under the lock; the key passed to a replacing store is dropped, unless it is the
 * stored key itself. */
static bool store_same_key(const void *key, const void *val, void *ctx) {
    hmap_sync *m = ctx;
    uint64_t v = *(const uint64_t *)val + 1;
    assert_int_equal(hmap_sync_store(m, key, &v), 0); /* the stored key object: must not be dropped */
    return true;
}

static void test_string_keys(void **state) {
    (void)state;
    str_dropped = 0;
    hmap_sync *m = hmap_sync_new(&str_type, 0);
    enum { N = 3000 };
    for (uint64_t i = 0; i < N; i++) {
        char *s = str_new(i);
        assert_int_equal(hmap_sync_store(m, &s, &i), 1);
    }
    for (uint64_t i = 0; i < N; i++) {
        char *s = str_new(i);
        uint64_t v = i + 10;
        assert_int_equal(hmap_sync_store(m, &s, &v), 0); /* our copy is dropped */
    }
    assert_int_equal(str_dropped, N);
    hmap_sync_range(m, store_same_key, m);
    assert_int_equal(str_dropped, N);
    char probe[32];
    for (uint64_t i = 0; i < N; i++) {
        snprintf(probe, sizeof probe, "key-%llu", (unsigned long long)i);
        char *p = probe;
        uint64_t v;
        assert_true(hmap_sync_load(m, &p, &v));
        assert_int_equal(v, i + 11);
        if (i % 2)
            assert_true(hmap_sync_delete(m, &p)); /* the stored key is dropped, later */
    }
    hmap_sync_reclaim(m);
    assert_int_equal(str_dropped, N + N / 2);
    hmap_sync_free(m);
    assert_int_equal(str_dropped, 2 * N);
}

/* Range: everything once; fn may write the map; returning false stops. */
typedef struct seen_ctx {
    hmap_sync *m;
    unsigned char *seen;
    size_t n, visits;
    size_t stop_after;
} seen_ctx;

static bool mark_and_churn(const void *key, const void *val, void *ctx) {
    seen_ctx *c = ctx;
    uint64_t k;
    memcpy(&k, key, 8);
    if (k < c->n) {
        assert_int_equal(*(const uint64_t *)val, k);
        assert_int_equal(c->seen[k], 0);
        c->seen[k] = 1;
    }
    c->visits++;
    uint64_t other = k + c->n; /* stores and deletes keys outside the checked range */
    hmap_sync_store(c->m, &other, &other);
    hmap_sync_delete(c->m, &other);
    return c->visits != c->stop_after;
}

static void test_range(void **state) {
    (void)state;
    enum { N = 20000 };
    hmap_sync *m = hmap_sync_new(&u64_type, 0);
    for (uint64_t k = 0; k < N; k++)
        store_u64(m, k, k, 1);
    seen_ctx c = {.m = m, .seen = calloc(N, 1), .n = N, .stop_after = SIZE_MAX};
    hmap_sync_range(m, mark_and_churn, &c);
    for (size_t k = 0; k < N; k++)
        assert_int_equal(c.seen[k], 1);
    memset(c.seen, 0, N);
    c.visits = 0;
    c.stop_after = 100;
    hmap_sync_range(m, mark_and_churn, &c);
    assert_int_equal(c.visits, 100);
    free(c.seen);
    hmap_sync_free(m);
}

/* Clear: everything gone at once, the arrays given back, the map usable again. */
static void test_clear(void **state) {
    (void)state;
    enum { N = 50000 };
    assert_int_equal(hmap_sync_clear(NULL), -EINVAL);
    hmap_sync *m = hmap_sync_new(&u64_type, 0);
    hmap_sync *fresh = hmap_sync_new(&u64_type, 0);
    assert_int_equal(hmap_sync_clear(m), 0); /* empty: nothing to do */
    for (uint64_t k = 0; k < N; k++)
        store_u64(m, k, k, 1);
    hmap_stats full, cleared, empty;
    hmap_sync_get_stats(m, &full);
    assert_int_equal(hmap_sync_clear(m), 0);
    assert_int_equal(hmap_sync_len(m), 0);
    assert_int_equal(range_count(m), 0);
    for (uint64_t k = 0; k < N; k += 7)
        assert_false(hmap_sync_load(m, &k, NULL));
    assert_int_equal(hmap_sync_reclaim(m), 0); /* no reader: the arrays went back */
    hmap_sync_get_stats(m, &cleared);
    hmap_sync_get_stats(fresh, &empty);
    assert_int_equal(cleared.count, 0);
    print_message("clear: %zu bytes full, %zu after, %zu for a new map\n", full.bytes, cleared.bytes,
                  empty.bytes);
    /* A shard's map that has grown keeps its side record (resize bookkeeping, lifetime counters): */
    assert_true(cleared.bytes <= empty.bytes + hmap_sync_shards(m) * test_side_record_bytes());
    for (uint64_t k = 0; k < N; k += 2) /* usable again */
        store_u64(m, k, k + 1, 1);
    bool found;
    for (uint64_t k = 0; k < N; k++) {
        uint64_t v = load_u64(m, k, &found);
        assert_int_equal(found, k % 2 == 0);
        if (found)
            assert_int_equal(v, k + 1);
    }
    assert_int_equal(hmap_sync_len(m), N / 2);
    hmap_sync_free(m);
    hmap_sync_free(fresh);
}

/* Clear with drops: every key and value dropped once, but not while a read section that could have
 * loaded them is open. */
static void test_clear_defers_drops(void **state) {
    (void)state;
    enum { N = 3000 };
    obj_made = obj_dropped = 0;
    hmap_sync *m = hmap_sync_new(&owned_type, 0);
    for (uint64_t k = 0; k < N; k++) {
        obj *o = obj_new(k);
        assert_int_equal(hmap_sync_store(m, &k, &o), 1);
    }
    assert_int_equal(hmap_sync_pin(), 0);
    uint64_t k = 17;
    obj *seen = NULL;
    assert_true(hmap_sync_load(m, &k, &seen));
    assert_int_equal(hmap_sync_clear(m), 0);
    assert_int_equal(hmap_sync_len(m), 0);
    assert_true(hmap_sync_reclaim(m) >= N); /* every drop waits for our section */
    assert_int_equal(obj_dropped, 0);
    assert_int_equal(seen->magic, OBJ_MAGIC);
    assert_int_equal(seen->key, 17);
    hmap_sync_unpin();
    assert_int_equal(hmap_sync_reclaim(m), 0);
    assert_int_equal(obj_dropped, N);
    obj *o = obj_new(k); /* usable again, and what is stored after the clear is dropped by free */
    assert_int_equal(hmap_sync_store(m, &k, &o), 1);
    hmap_sync_free(m);
    assert_int_equal(obj_dropped, obj_made);

    str_dropped = 0; /* owned keys, read under the lock */
    m = hmap_sync_new(&str_type, 0);
    for (uint64_t i = 0; i < N; i++) {
        char *str = str_new(i);
        assert_int_equal(hmap_sync_store(m, &str, &i), 1);
    }
    assert_int_equal(hmap_sync_clear(m), 0);
    hmap_sync_reclaim(m);
    assert_int_equal(str_dropped, N);
    char *again = str_new(1);
    uint64_t one = 1;
    assert_int_equal(hmap_sync_store(m, &again, &one), 1);
    hmap_sync_free(m);
    assert_int_equal(str_dropped, N + 1);
}

/* Compact: after deleting 99% (or with no_shrink, which keeps the memory), the map shrinks to what a
 * fresh map of the survivors holds, entries intact. */
static void test_compact(void **state) {
    (void)state;
    enum { N = 1 << 17 };
    assert_int_equal(hmap_sync_compact(NULL), -EINVAL);
    /* One seed for the map and the fresh one: keys then fall into the same shards, whose sizes decide
     * the bytes. */
    hmap_options same = {.fixed_seed = true, .seed = 0x5eed}, keep = same;
    keep.no_shrink = true;
    for (int no_shrink = 0; no_shrink < 2; no_shrink++) {
        hmap_sync *m = hmap_sync_new_opts(&u64_type, 0, no_shrink ? &keep : &same);
        for (uint64_t k = 0; k < N; k++)
            store_u64(m, k, k, 1);
        for (uint64_t k = 0; k < N; k++)
            if (k % 100 != 0)
                assert_true(hmap_sync_delete(m, &k));
        hmap_sync_reclaim(m);
        hmap_stats before, after, b;
        hmap_sync_get_stats(m, &before);
        assert_int_equal(hmap_sync_compact(m), 0);
        assert_int_equal(hmap_sync_reclaim(m), 0);
        hmap_sync_get_stats(m, &after);
        hmap_sync *fresh = hmap_sync_new_opts(&u64_type, 0, &same);
        for (uint64_t k = 0; k < N; k += 100)
            store_u64(fresh, k, k, 1);
        hmap_sync_reclaim(fresh); /* its growth's old arrays may still wait for readers that are gone */
        hmap_sync_get_stats(fresh, &b);
        print_message("compact%s: %zu bytes before, %zu after; a fresh map of the survivors: %zu\n",
                      no_shrink ? " (no_shrink)" : "", before.bytes, after.bytes, b.bytes);
        assert_true(after.bytes <= b.bytes);
        if (no_shrink)
            assert_true(before.bytes > 4 * after.bytes);
        assert_int_equal(after.phase, HMAP_STEADY);
        bool found;
        for (uint64_t k = 0; k < N; k++) {
            uint64_t v = load_u64(m, k, &found);
            assert_int_equal(found, k % 100 == 0);
            if (found)
                assert_int_equal(v, k);
        }
        hmap_sync_free(m);
        hmap_sync_free(fresh);
    }
}

/* The _ctx variants of the callbacks: drops with the type's ctx (deferred like the plain ones), and an
 * equal_ctx map reads under the lock. */
static void count_drop_ctx(void *val, void *ctx) {
    (void)val;
    (*(unsigned long *)ctx)++;
}

static bool equal_ctx_u64(const void *a, const void *b, void *ctx) {
    (*(unsigned long *)ctx)++;
    return memcmp(a, b, 8) == 0;
}

static void test_ctx_callbacks(void **state) {
    (void)state;
    unsigned long drops = 0, compares = 0;
    hmap_type t = {.key_size = 8, .val_size = 8, .val_drop_ctx = count_drop_ctx, .ctx = &drops};
    hmap_sync *m = hmap_sync_new(&t, 0);
    for (uint64_t k = 0; k < 100; k++)
        store_u64(m, k, k, 1);
    for (uint64_t k = 0; k < 100; k += 2)
        store_u64(m, k, k + 1, 0); /* 50 old values dropped */
    for (uint64_t k = 1; k < 100; k += 2)
        assert_true(hmap_sync_delete(m, &k)); /* 50 more */
    hmap_sync_reclaim(m);
    assert_int_equal(drops, 100);
    hmap_sync_free(m);
    assert_int_equal(drops, 150);

    hmap_type both = t;
    both.val_drop = obj_drop; /* either variant of each, not both */
    errno = 0;
    assert_null(hmap_sync_new(&both, 0));
    assert_int_equal(errno, EINVAL);

    hmap_type eq = {.key_size = 8, .val_size = 8, .equal_ctx = equal_ctx_u64, .ctx = &compares};
    m = hmap_sync_new(&eq, 0);
    store_u64(m, 5, 50, 1);
    bool found;
    assert_int_equal(load_u64(m, 5, &found), 50);
    assert_true(found);
    assert_true(compares > 0); /* the user's equal() decided, under the lock */
    hmap_sync_free(m);

    hmap_options bad = {.reserved_ = {1}};
    errno = 0;
    assert_null(hmap_sync_new_opts(&u64_type, 0, &bad));
    assert_int_equal(errno, EINVAL);
}

/* ---- allocation failure: every allocation of a scenario made to fail in turn ---- */

typedef struct failing {
    long countdown; /* allocations left before failures start */
    long live, refused;
} failing;

static void *fail_alloc(size_t size, void *ctx) {
    failing *f = ctx;
    if (f->countdown == 0) {
        f->refused++;
        return NULL;
    }
    if (f->countdown > 0)
        f->countdown--;
    void *p = malloc(size);
    if (p)
        f->live++;
    return p;
}

static void fail_free(void *p, size_t size, void *ctx) {
    (void)size;
    failing *f = ctx;
    f->live--;
    free(p);
}

/* Returns false once the scenario ran to its end without a refused allocation. */
static bool failing_scenario(const hmap_type *t, long fail_at) {
    failing f = {.countdown = fail_at};
    hmap_allocator a = {fail_alloc, fail_free, &f};
    hmap_options opts = {.allocator = &a, .name = "failing"};
    obj_made = obj_dropped = 0;
    hmap_sync *m = hmap_sync_new_opts(t, 0, &opts);
    if (!m) {
        assert_int_equal(errno, ENOMEM);
        assert_int_equal(f.live, 0);
        return true;
    }
    bool owned = t->val_drop != NULL;
    uint64_t present[600] = {0};
    for (uint64_t k = 0; k < 600; k++) {
        obj *o = owned ? obj_new(k) : NULL;
        uint64_t v = owned ? (uint64_t)(uintptr_t)o : k;
        int rc = hmap_sync_store(m, &k, &v);
        if (rc == -ENOMEM) {
            if (owned) {
                obj_free(o); /* not taken */
                obj_made--;
            }
        } else {
            assert_int_equal(rc, 1);
            present[k] = 1;
        }
    }
    for (uint64_t k = 0; k < 600; k += 2) {
        errno = 0;
        bool gone = hmap_sync_delete(m, &k);
        if (!gone && present[k]) {
            assert_int_equal(errno, ENOMEM);
        } else if (gone) {
            present[k] = 0;
        }
    }
    for (uint64_t k = 0; k < 600; k++)
        assert_int_equal(hmap_sync_load(m, &k, NULL), present[k]);
    int rc = hmap_sync_compact(m); /* a shard that cannot be rebuilt stays as it was */
    assert_true(rc == 0 || rc == -ENOMEM);
    for (uint64_t k = 0; k < 600; k++)
        assert_int_equal(hmap_sync_load(m, &k, NULL), present[k]);
    rc = hmap_sync_clear(m); /* a shard whose drops cannot be queued keeps its entries */
    assert_true(rc == 0 || (rc == -ENOMEM && owned));
    size_t kept = 0;
    for (uint64_t k = 0; k < 600; k++) {
        bool found = hmap_sync_load(m, &k, NULL);
        assert_true(!found || present[k]);
        kept += found;
    }
    assert_int_equal(kept, hmap_sync_len(m));
    if (rc == 0)
        assert_int_equal(kept, 0);
    hmap_sync_free(m);
    assert_int_equal(f.live, 0);
    if (owned)
        assert_int_equal(obj_made, obj_dropped);
    return f.refused > 0;
}

static void test_allocation_failure(void **state) {
    (void)state;
    const hmap_type *types[] = {&u64_type, &owned_type};
    for (int t = 0; t < 2; t++) {
        long k = 0;
        while (failing_scenario(types[t], k))
            k++;
        assert_true(k > 10);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_shard_count),
        cmocka_unit_test(test_store_load_delete),
        cmocka_unit_test(test_memory_follows_deletes),
        cmocka_unit_test(test_each_operation),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_odd_sizes),
        cmocka_unit_test(test_owned_values_dropped_once),
        cmocka_unit_test(test_pinned_value_outlives_delete),
        cmocka_unit_test(test_load_with),
        cmocka_unit_test(test_string_keys),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_clear_defers_drops),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_ctx_callbacks),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
