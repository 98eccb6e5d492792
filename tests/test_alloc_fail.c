/*
 * test_alloc_fail.c — every allocation made to fail in turn.
 *
 * A scripted scenario of about 10k operations (grow, iterate with writes inside, shrink, reserve, grow
 * again, compact, clear, assign, take) runs on a map whose allocator (hmap_options.allocator) counts its
 * calls and fails exactly the k-th one. The scenario runs once without failures to count the allocations
 * A, then once for every k in 1..A. In every run:
 *
 *   - a call that reports an error (-ENOMEM, or NULL with errno ENOMEM) must be the call during which the
 *     allocation failed, and must have changed nothing (the map still matches the reference model);
 *   - a call during which an allocation failed but which reports success (the map may postpone a grow or
 *     a shrink) must have done its job (the map matches the model, with the call applied);
 *   - lookups never allocate;
 *   - at the end, after hmap_free, the allocator holds no block and no byte, each key and value was
 *     dropped exactly once, and hmap_read_memstats' live bytes are back where they started.
 *
 * The allocator also checks that every free names the size that was allocated for that block.
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

#include "hmap.h"
#include "model.h"

/* ---- the failing allocator ---- */

#define HEADER 16 /* keeps the caller's block 16-byte aligned, holds the size for the free check */

typedef struct fail_alloc {
    uint64_t calls;   /* allocations attempted so far */
    uint64_t fail_at; /* the call to fail (1-based); 0: none */
    bool failed;      /* the failing call happened */
    size_t outstanding_bytes, outstanding_blocks;
} fail_alloc;

static void *failing_alloc(size_t size, void *ctx) {
    fail_alloc *a = ctx;
    if (++a->calls == a->fail_at) {
        a->failed = true;
        return NULL;
    }
    if (size > SIZE_MAX - HEADER)
        return NULL;
    unsigned char *p = malloc(size + HEADER);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    a->outstanding_bytes += size;
    a->outstanding_blocks++;
    return p + HEADER;
}

static void failing_free(void *ptr, size_t size, void *ctx) {
    fail_alloc *a = ctx;
    assert_non_null(ptr);
    unsigned char *p = (unsigned char *)ptr - HEADER;
    size_t allocated;
    memcpy(&allocated, p, sizeof allocated);
    if (allocated != size)
        fail_msg("free of a %zu-byte block named %zu bytes", allocated, size);
    assert_true(a->outstanding_blocks > 0);
    a->outstanding_bytes -= size;
    a->outstanding_blocks--;
    free(p);
}

/* ---- the scenario ---- */

static uint64_t key_drops, val_drops;
static void count_key_drop(void *k) {
    (void)k;
    key_drops++;
}
static void count_val_drop(void *v) {
    (void)v;
    val_drops++;
}

typedef struct run {
    fail_alloc fa;
    hmap *m;
    model ref;
    prng rng;
    uint64_t expect_key_drops, expect_val_drops;
    size_t op;
    char context[120];
} run;

static const char *where(run *r) {
    snprintf(r->context, sizeof r->context, "[fail_at=%" PRIu64 " op=%zu len=%zu]", r->fa.fail_at, r->op,
             model_len(&r->ref));
    return r->context;
}

/* Over all runs: failures reported as errors, and failures the map absorbed (a postponed resize). */
static uint64_t errors_reported, failures_absorbed;

/* Called after every operation: if the allocation failed during it, the whole map is compared now. */
static void after_call(run *r, bool failed_before, bool reported_error) {
    r->op++;
    bool failed_now = r->fa.failed && !failed_before;
    if (reported_error && !failed_now)
        fail_msg("%s error reported but no allocation failed", where(r));
    if (failed_now) {
        model_assert_matches(&r->ref, r->m, where(r));
        errors_reported += reported_error;
        failures_absorbed += !reported_error;
    }
}

static void do_put(run *r, uint64_t k) {
    uint64_t v = prng_next(&r->rng);
    bool before = r->fa.failed;
    model_entry *old = model_find(&r->ref, &k, 8);
    bool same_val = old && memcmp(old->val, &v, 8) == 0;
    int rc = hmap_put(r->m, &k, &v);
    if (rc == -ENOMEM) {
        after_call(r, before, true);
        return;
    }
    int want = model_put(&r->ref, &k, 8, &v);
    if (rc != want)
        fail_msg("%s hmap_put returned %d, model %d", where(r), rc, want);
    /* The key passed is bitwise the stored one (8-byte keys): the same object, never dropped. A value
     * bitwise equal to the stored one is not dropped either. */
    if (want == 0)
        r->expect_val_drops += !same_val;
    after_call(r, before, false);
}

static void do_assign(run *r, uint64_t k) {
    uint64_t v = prng_next(&r->rng);
    bool before = r->fa.failed, inserted = false;
    errno = 0;
    uint64_t *slot = hmap_assign(r->m, &k, &inserted);
    if (!slot) {
        if (errno != ENOMEM)
            fail_msg("%s hmap_assign: NULL with errno %d", where(r), errno);
        after_call(r, before, true);
        return;
    }
    bool present = model_find(&r->ref, &k, 8) != NULL;
    if (inserted == present)
        fail_msg("%s hmap_assign: inserted=%d against the model", where(r), inserted);
    *slot = v; /* the key passed is bitwise the stored one: not dropped */
    model_put(&r->ref, &k, 8, &v);
    after_call(r, before, false);
}

static void do_get(run *r, uint64_t k) {
    uint64_t calls = r->fa.calls;
    uint64_t *v = hmap_get(r->m, &k);
    model_entry *e = model_find(&r->ref, &k, 8);
    if ((v != NULL) != (e != NULL) || (v && memcmp(v, e->val, 8)))
        fail_msg("%s hmap_get disagrees with the model", where(r));
    if (r->fa.calls != calls)
        fail_msg("%s hmap_get allocated", where(r));
    r->op++;
}

static void do_del(run *r, uint64_t k) {
    bool before = r->fa.failed;
    bool got = hmap_del(r->m, &k), want = model_del(&r->ref, &k, 8);
    if (got != want)
        fail_msg("%s hmap_del returned %d, model %d", where(r), got, want);
    r->expect_key_drops += want;
    r->expect_val_drops += want;
    after_call(r, before, false);
}

static void do_take(run *r, uint64_t k) {
    bool before = r->fa.failed;
    uint64_t kout = 0, vout = 0;
    model_entry *e = model_find(&r->ref, &k, 8);
    uint64_t want_val = 0;
    if (e)
        memcpy(&want_val, e->val, 8);
    bool got = hmap_take(r->m, &k, &kout, &vout);
    if (got != (e != NULL) || (got && (kout != k || vout != want_val)))
        fail_msg("%s hmap_take disagrees with the model", where(r));
    model_del(&r->ref, &k, 8);
    after_call(r, before, false);
}

static void do_reserve(run *r, size_t n) {
    bool before = r->fa.failed;
    int rc = hmap_reserve(r->m, n);
    if (rc != 0 && rc != -ENOMEM)
        fail_msg("%s hmap_reserve returned %d", where(r), rc);
    after_call(r, before, rc != 0);
}

static void do_compact(run *r) {
    bool before = r->fa.failed;
    int rc = hmap_compact(r->m);
    if (rc != 0 && rc != -ENOMEM)
        fail_msg("%s hmap_compact returned %d", where(r), rc);
    after_call(r, before, rc != 0);
}

static void do_clear(run *r) {
    bool before = r->fa.failed;
    r->expect_key_drops += model_len(&r->ref);
    r->expect_val_drops += model_len(&r->ref);
    hmap_clear(r->m);
    model_clear(&r->ref);
    after_call(r, before, false);
}

/* A key: usually one the model holds (for deletes), else a random one from a small space. */
static uint64_t some_key(run *r, bool existing, uint64_t space) {
    if (existing && model_len(&r->ref))
        return *(uint64_t *)model_at(&r->ref, prng_below(&r->rng, model_len(&r->ref)))->key;
    return prng_below(&r->rng, space);
}

static void grow_to(run *r, size_t n, bool use_assign) {
    while (model_len(&r->ref) < n) {
        uint64_t k = some_key(r, false, 4 * n);
        if (use_assign)
            do_assign(r, k);
        else
            do_put(r, k);
        if (prng_chance(&r->rng, 0.3))
            do_get(r, some_key(r, true, 4 * n));
    }
}

static void shrink_to(run *r, size_t n, bool use_take) {
    while (model_len(&r->ref) > n) {
        uint64_t k = some_key(r, true, 1);
        if (use_take)
            do_take(r, k);
        else
            do_del(r, k);
    }
}

/* One full iteration with deletes, puts and assigns inside. */
static void iterate_with_writes(run *r) {
    hmap_iter it;
    void *k;
    model_set_flags_all(&r->ref, MODEL_AT_START);
    hmap_iter_init(&it, r->m);
    while (hmap_iter_next(&it, &k, NULL)) {
        uint64_t key = *(uint64_t *)k;
        model_entry *e = model_find(&r->ref, &key, 8);
        if (!e || (e->flags & MODEL_YIELDED))
            fail_msg("%s iteration yielded an absent key or a key twice", where(r));
        e->flags |= MODEL_YIELDED;
        uint64_t dice = prng_below(&r->rng, 4);
        if (dice == 0)
            do_del(r, key);
        else if (dice == 1)
            do_put(r, prng_below(&r->rng, 8000));
        else if (dice == 2)
            do_assign(r, prng_below(&r->rng, 8000));
    }
    hmap_iter_done(&it);
    for (size_t i = 0; i < model_len(&r->ref); i++) {
        model_entry *e = model_at(&r->ref, i);
        if ((e->flags & MODEL_AT_START) && !(e->flags & MODEL_YIELDED))
            fail_msg("%s iteration missed a key present throughout", where(r));
    }
    model_set_flags_all(&r->ref, 0);
}

static void scenario(run *r) {
    grow_to(r, 2000, false);
    iterate_with_writes(r);
    shrink_to(r, 50, false);
    do_reserve(r, 3000);
    grow_to(r, 1500, false);
    do_compact(r);
    shrink_to(r, 700, true);
    do_compact(r);
    iterate_with_writes(r);
    do_clear(r);
    grow_to(r, 1000, true);
    shrink_to(r, 0, false);
    grow_to(r, 300, false);
}

/* Runs the scenario failing allocation fail_at (0: none). Returns the number of allocations made. */
static uint64_t run_once(uint64_t fail_at, size_t *ops) {
    hmap_memstats ms_start, ms_end;
    hmap_read_memstats(&ms_start);
    run r;
    memset(&r, 0, sizeof r);
    r.fa.fail_at = fail_at;
    r.rng.s = 0xa110c;
    key_drops = val_drops = 0;
    hmap_allocator hook = {failing_alloc, failing_free, &r.fa};
    hmap_options opts = {.allocator = &hook, .fixed_seed = true, .seed = 42}; /* reproducible runs */
    hmap_type type = {.key_size = 8, .val_size = 8, .key_drop = count_key_drop, .val_drop = count_val_drop};
    errno = 0;
    r.m = hmap_new_opts(&type, 0, &opts);
    if (!r.m) {
        if (!r.fa.failed || errno != ENOMEM)
            fail_msg("[fail_at=%" PRIu64 "] hmap_new_opts: NULL, errno %d", fail_at, errno);
        assert_int_equal(r.fa.outstanding_blocks, 0);
        return r.fa.calls;
    }
    model_init(&r.ref, 8, 8);
    scenario(&r);
    model_assert_matches(&r.ref, r.m, where(&r));
    r.expect_key_drops += model_len(&r.ref);
    r.expect_val_drops += model_len(&r.ref);
    hmap_free(r.m);
    model_destroy(&r.ref);
    if (r.fa.outstanding_blocks || r.fa.outstanding_bytes)
        fail_msg("[fail_at=%" PRIu64 "] leaked %zu blocks, %zu bytes", fail_at, r.fa.outstanding_blocks,
                 r.fa.outstanding_bytes);
    assert_int_equal(key_drops, r.expect_key_drops);
    assert_int_equal(val_drops, r.expect_val_drops);
    hmap_read_memstats(&ms_end);
    assert_int_equal(ms_end.live_bytes, ms_start.live_bytes);
    if (fail_at)
        assert_true(r.fa.failed || r.fa.calls < fail_at);
    *ops = r.op;
    return r.fa.calls;
}

static void test_every_allocation_fails_in_turn(void **state) {
    (void)state;
    size_t ops = 0;
    uint64_t total = run_once(0, &ops);
    print_message("  scenario: %zu operations, %" PRIu64 " allocations; failing each in turn\n", ops, total);
    assert_true(ops >= 8000);
    assert_true(total >= 10);
    for (uint64_t k = 1; k <= total; k++)
        run_once(k, &ops);
    print_message("  %" PRIu64 " failures reported as errors, %" PRIu64
                  " absorbed by a call that succeeded\n",
                  errors_reported, failures_absorbed);
    assert_true(errors_reported > 0);
}

/* The map creation itself failing, with and without a hint: NULL, ENOMEM, nothing held. */
static void test_creation_fails_cleanly(void **state) {
    (void)state;
    hmap_type type = {.key_size = 8, .val_size = 8};
    for (size_t hint = 0; hint <= 100000; hint = hint ? hint * 10 : 1) {
        for (uint64_t k = 1; k <= 4; k++) {
            fail_alloc fa = {.fail_at = k};
            hmap_allocator hook = {failing_alloc, failing_free, &fa};
            hmap_options opts = {.allocator = &hook};
            errno = 0;
            hmap *m = hmap_new_opts(&type, hint, &opts);
            if (m) {
                hmap_free(m);
            } else {
                assert_true(fa.failed);
                assert_int_equal(errno, ENOMEM);
            }
            assert_int_equal(fa.outstanding_blocks, 0);
            assert_int_equal(fa.outstanding_bytes, 0);
        }
    }
}

/* Ownership on failure: a put or assign that fails with ENOMEM leaves the key with the caller (the map
 * must not have dropped it: under ASan a double free would show), and one that succeeds took it. String
 * keys make the ownership observable: live_strings counts the strings not yet freed by anyone. */
static long live_strings;

static void drop_string(void *k) {
    free(*(char **)k);
    live_strings--;
}

static char *new_string(uint64_t i) {
    char buf[40];
    snprintf(buf, sizeof buf, "key-%" PRIu64 "-%" PRIx64, i, mix64(i));
    char *s = strdup(buf);
    assert_non_null(s);
    live_strings++;
    return s;
}

static void test_failed_insert_leaves_key_with_caller(void **state) {
    (void)state;
    hmap_type type = {.key_size = sizeof(char *),
                      .val_size = 8,
                      .hash = hmap_hash_cstr,
                      .equal = hmap_equal_cstr,
                      .key_drop = drop_string};
    uint64_t total = 0;
    for (uint64_t k = 0; k == 0 || k <= total; k++) {
        fail_alloc fa = {.fail_at = k};
        hmap_allocator hook = {failing_alloc, failing_free, &fa};
        hmap_options opts = {.allocator = &hook, .fixed_seed = true, .seed = 7};
        live_strings = 0;
        hmap *m = hmap_new_opts(&type, 0, &opts);
        if (!m)
            continue;
        size_t errors = 0;
        for (uint64_t i = 0; i < 3000; i++) {
            char *key = new_string(i % 2000); /* the last third replaces: the map drops the key passed */
            if (i % 3 == 0) {
                bool inserted;
                uint64_t *slot = hmap_assign(m, &key, &inserted);
                if (slot)
                    *slot = i;
                else
                    errors++;
                if (!slot)
                    drop_string(&key); /* still ours */
            } else {
                int rc = hmap_put(m, &key, &i);
                if (rc < 0) {
                    assert_int_equal(rc, -ENOMEM);
                    errors++;
                    drop_string(&key); /* still ours */
                }
            }
            /* Every string alive is a key in the map: none leaked, none dropped twice. */
            if (live_strings != (long)hmap_len(m))
                fail_msg("[fail_at=%" PRIu64 " i=%" PRIu64 "] %ld live strings, %zu keys", k, i, live_strings,
                         hmap_len(m));
        }
        assert_true(errors <= 1);
        hmap_free(m);
        assert_int_equal(live_strings, 0);
        assert_int_equal(fa.outstanding_blocks, 0);
        if (k == 0)
            total = fa.calls;
    }
    print_message("  string keys: %" PRIu64 " allocations, each failed in turn\n", total);
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
        cmocka_unit_test(test_every_allocation_fails_in_turn),
        cmocka_unit_test(test_failed_insert_leaves_key_with_caller),
        cmocka_unit_test(test_failed_reserve_keeps_no_reservation),
        cmocka_unit_test(test_failed_compact_keeps_the_reservation),
        cmocka_unit_test(test_compact_empties_a_no_shrink_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
