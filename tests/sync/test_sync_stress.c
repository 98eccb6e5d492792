/* SPDX-License-Identifier: MIT */
/*
 * test_sync_stress.c — hmap_sync from 2, 4 and 8 threads at once.
 *
 * What each test can catch:
 *  - mixed: every thread writes only its own keys (key % threads == thread) with every write operation,
 *    and keeps a log of what each of its keys must hold; it reads keys of all threads. A read of its own
 *    key must match its log exactly (a stale or lost write shows); a read of another thread's key must
 *    be a whole value of that key (values are four words that must agree: a torn copy shows). Over a
 *    small key space (many threads per shard) and a large one that the threads fill and empty in
 *    phases (shards grow and shrink under the readers). Afterwards the map equals the union of the logs.
 *  - owned values: values are heap objects dropped by val_drop while other threads load and dereference
 *    them inside read sections; a drop that came too early is a use after free (ASan), a double drop
 *    trips the object's check; every object made is dropped or handed out exactly once.
 *  - load_or_store: all threads race to store the same fresh keys: exactly one wins each key, and every
 *    loser loads the winner's value.
 *  - counters: increments by update and by load + compare_and_swap loops lose nothing.
 *  - swap: tokens swapped in by all threads are conserved: each comes out exactly once (handed to a
 *    swapper or left in the map).
 *  - clear and compact: one thread fills, compacts and clears two maps round after round while the others
 *    dereference owned values inside read sections (a drop or free that came too early is a use after
 *    free), check that 8-byte values read lock-free belong to their key, range, store and delete; every
 *    object made is dropped exactly once.
 * No test measures time; the ThreadSanitizer build (ctest sync_tsan) runs this file too.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"

#include "thread_check.h"

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

typedef void *(*thread_fn)(void *);

/* Runs fn(args + i * size) on n threads and joins them. */
static void run_threads(int n, thread_fn fn, void *args, size_t size) {
    pthread_t t[16];
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * size), 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
}

static const int thread_counts[] = {2, 4, 8};

/* ================================================================ mixed operations with logs */

/* A value of key k with serial s: four words that must agree. */
typedef struct tv {
    uint64_t w[4];
} tv;

static tv tv_make(uint64_t k, uint64_t serial) {
    tv v = {{k, serial, k ^ serial ^ 0x9e3779b97f4a7c15ULL, ~(k + serial)}};
    return v;
}

static bool tv_valid(const tv *v, uint64_t k) {
    return v->w[0] == k && v->w[2] == (k ^ v->w[1] ^ 0x9e3779b97f4a7c15ULL) && v->w[3] == ~(k + v->w[1]);
}

static const hmap_type tv_type = {.key_size = 8, .val_size = sizeof(tv)};

typedef struct mixed_arg {
    hmap_sync *m;
    int id, nthreads;
    uint64_t keys, ops;
    bool phases;      /* fill and empty in turns (large key space) */
    uint64_t *serial; /* log: serial of each own key (index k / nthreads), 0 = absent */
    uint64_t next_serial;
    pthread_barrier_t *start;
} mixed_arg;

static void set_serial(void *val, bool inserted, void *ctx) {
    const tv *want = ctx;
    (void)inserted;
    memcpy(val, want, sizeof *want);
}

static void mixed_own_write(mixed_arg *a, uint64_t k, uint64_t r, bool filling, bool emptying) {
    hmap_sync *m = a->m;
    uint64_t *log = &a->serial[k / (uint64_t)a->nthreads];
    bool present = *log != 0;
    tv now = tv_make(k, *log), fresh = tv_make(k, a->next_serial), got;
    unsigned op = (unsigned)(r % 8);
    bool removal = op == 1 || op == 4 || op == 5;
    if (((r >> 40) & 7) != 0) { /* 7 times in 8, a phase turns writes into inserts or deletes */
        if (filling && removal)
            op = 0;
        else if (emptying && !removal)
            op = 1;
    }
    switch (op) {
    case 0:
        CHECK(hmap_sync_store(m, &k, &fresh) == (present ? 0 : 1));
        *log = a->next_serial++;
        break;
    case 1:
        CHECK(hmap_sync_delete(m, &k) == present);
        *log = 0;
        break;
    case 2:
        CHECK(hmap_sync_swap(m, &k, &fresh, &got) == (present ? 0 : 1));
        if (present)
            CHECK(memcmp(&got, &now, sizeof got) == 0);
        *log = a->next_serial++;
        break;
    case 3:
        if (present) {
            tv wrong = tv_make(k, *log + 1);
            CHECK(!hmap_sync_compare_and_swap(m, &k, &wrong, &fresh));
            CHECK(hmap_sync_compare_and_swap(m, &k, &now, &fresh));
            *log = a->next_serial++;
        } else {
            CHECK(!hmap_sync_compare_and_swap(m, &k, &now, &fresh));
        }
        break;
    case 4:
        CHECK(hmap_sync_compare_and_delete(m, &k, &now) == present);
        *log = 0;
        break;
    case 5:
        CHECK(hmap_sync_load_and_delete(m, &k, &got) == present);
        if (present)
            CHECK(memcmp(&got, &now, sizeof got) == 0);
        *log = 0;
        break;
    case 6:
        CHECK(hmap_sync_load_or_store(m, &k, &fresh, &got) == (present ? 0 : 1));
        if (present)
            CHECK(memcmp(&got, &now, sizeof got) == 0);
        else
            *log = a->next_serial++;
        break;
    default:
        CHECK(hmap_sync_update(m, &k, set_serial, &fresh) == (present ? 0 : 1));
        *log = a->next_serial++;
        break;
    }
}

static void *mixed_thread(void *p) {
    mixed_arg *a = p;
    uint64_t rng = 0x1234567ULL + (uint64_t)a->id * 0x9e3779b97f4a7c15ULL;
    a->next_serial = 1;
    pthread_barrier_wait(a->start);
    for (uint64_t i = 0; i < a->ops; i++) {
        uint64_t r = rng_next(&rng);
        uint64_t k = (r >> 8) % a->keys;
        unsigned quarter = (unsigned)(i * 4 / a->ops); /* phases: fill, empty, fill, empty */
        bool filling = a->phases && quarter % 2 == 0, emptying = a->phases && quarter % 2 == 1;
        if (r % 16 < 7) { /* a read of any key */
            tv got;
            bool found = hmap_sync_load(a->m, &k, &got);
            if (found)
                CHECK(tv_valid(&got, k));
            if (k % (uint64_t)a->nthreads == (uint64_t)a->id) {
                uint64_t s = a->serial[k / (uint64_t)a->nthreads];
                CHECK(found == (s != 0));
                if (found)
                    CHECK(got.w[1] == s);
            }
            continue;
        }
        k -= k % (uint64_t)a->nthreads; /* one of ours */
        k += (uint64_t)a->id;
        if (k >= a->keys)
            continue;
        mixed_own_write(a, k, r, filling, emptying);
    }
    return NULL;
}

typedef struct final_ctx {
    const mixed_arg *args;
    int nthreads;
    unsigned char *seen;
    size_t visits;
} final_ctx;

static bool final_visit(const void *key, const void *val, void *ctx) {
    final_ctx *c = ctx;
    uint64_t k;
    memcpy(&k, key, 8);
    const tv *v = val;
    const mixed_arg *owner = &c->args[k % (uint64_t)c->nthreads];
    CHECK(c->seen[k] == 0);
    c->seen[k] = 1;
    CHECK(v->w[1] == owner->serial[k / (uint64_t)c->nthreads]);
    c->visits++;
    return true;
}

/* The map equals the union of the threads' logs: by load, by len and by range. */
static void check_against_logs(hmap_sync *m, const mixed_arg *args, int n, uint64_t keys) {
    size_t present = 0;
    for (uint64_t k = 0; k < keys; k++) {
        uint64_t s = args[k % (uint64_t)n].serial[k / (uint64_t)n];
        tv got;
        bool found = hmap_sync_load(m, &k, &got);
        assert_int_equal(found, s != 0);
        if (found) {
            assert_true(tv_valid(&got, k));
            assert_int_equal(got.w[1], s);
        }
        present += s != 0;
    }
    assert_int_equal(hmap_sync_len(m), present);
    final_ctx c = {.args = args, .nthreads = n, .seen = calloc(keys, 1)};
    hmap_sync_range(m, final_visit, &c);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(c.visits, present);
    free(c.seen);
}

static void mixed_run(uint64_t keys, uint64_t ops, bool phases) {
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        int n = thread_counts[t];
        hmap_sync *m = hmap_sync_new(&tv_type, 0);
        assert_non_null(m);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        mixed_arg args[8];
        /* with phases, each quarter writes every own key about three times: the shards really empty */
        uint64_t per_thread = phases && 24 * keys / (uint64_t)n > ops ? 24 * keys / (uint64_t)n : ops;
        for (int i = 0; i < n; i++) {
            args[i] = (mixed_arg){.m = m,
                                  .id = i,
                                  .nthreads = n,
                                  .keys = keys,
                                  .ops = per_thread,
                                  .phases = phases,
                                  .serial = calloc(keys / (uint64_t)n + 1, sizeof(uint64_t)),
                                  .start = &start};
        }
        run_threads(n, mixed_thread, args, sizeof args[0]);
        check_against_logs(m, args, n, keys);
        hmap_stats st;
        hmap_sync_get_stats(m, &st);
        if (phases) {
            assert_true(st.grows > 0 && st.shrinks > 0);
            print_message("%d threads, %llu keys: %llu grows, %llu shrinks across the shards\n", n,
                          (unsigned long long)keys, (unsigned long long)st.grows,
                          (unsigned long long)st.shrinks);
        }
        for (int i = 0; i < n; i++)
            free(args[i].serial);
        pthread_barrier_destroy(&start);
        hmap_sync_free(m);
    }
}

static void test_mixed_small_key_space(void **state) {
    (void)state;
    mixed_run(64, 60000, false);
}

static void test_mixed_large_key_space(void **state) {
    (void)state;
    mixed_run(1 << 15, 120000, true);
}

/* ================================================================ owned values, read while dropped */

#define OBJ_MAGIC 0x6f776e65642d6f62ULL

typedef struct obj {
    uint64_t magic, key, serial, check;
} obj;

static _Atomic unsigned long objs_made, objs_dropped, objs_handed;

static obj *obj_new(uint64_t key, uint64_t serial) {
    obj *o = malloc(sizeof *o);
    o->magic = OBJ_MAGIC;
    o->key = key;
    o->serial = serial;
    o->check = key * 31 + serial;
    atomic_fetch_add(&objs_made, 1);
    return o;
}

static void obj_check(const obj *o, uint64_t key) {
    CHECK(o->magic == OBJ_MAGIC);
    CHECK(o->key == key);
    CHECK(o->check == o->key * 31 + o->serial);
}

static void obj_release(obj *o) {
    CHECK(o->magic == OBJ_MAGIC);
    o->magic = 0xdeadULL;
    free(o);
}

static void obj_drop(void *val) {
    obj_release(*(obj **)val);
    atomic_fetch_add(&objs_dropped, 1);
}

static const hmap_type owned_type = {.key_size = 8, .val_size = sizeof(obj *), .val_drop = obj_drop};

typedef struct owned_arg {
    hmap_sync *m;
    int id;
    uint64_t keys, ops;
    pthread_barrier_t *start;
} owned_arg;

static void check_loaded(const void *val, void *ctx) { obj_check(*(obj *const *)val, *(uint64_t *)ctx); }

static void *owned_thread(void *p) {
    owned_arg *a = p;
    uint64_t rng = 0xabcdefULL + (uint64_t)a->id * 0x9e3779b97f4a7c15ULL;
    obj **mine = malloc(a->ops * sizeof *mine); /* handed to us: freed once no reader can hold them */
    size_t nmine = 0;
    pthread_barrier_wait(a->start);
    for (uint64_t i = 0; i < a->ops; i++) {
        uint64_t r = rng_next(&rng), k = (r >> 8) % a->keys;
        unsigned op = (unsigned)(r % 10);
        obj *o = NULL;
        if (op < 4) { /* dereference inside a read section */
            hmap_sync_pin();
            if (hmap_sync_load(a->m, &k, &o))
                obj_check(o, k);
            hmap_sync_unpin();
        } else if (op == 4) {
            hmap_sync_load_with(a->m, &k, check_loaded, &k);
        } else if (op == 5 || op == 6) {
            o = obj_new(k, i);
            CHECK(hmap_sync_store(a->m, &k, &o) >= 0);
        } else if (op == 7) {
            hmap_sync_delete(a->m, &k);
        } else if (op == 8) {
            obj *fresh = obj_new(k, i);
            if (hmap_sync_swap(a->m, &k, &fresh, &o) == 0)
                mine[nmine++] = o;
        } else if (hmap_sync_load_and_delete(a->m, &k, &o)) {
            mine[nmine++] = o;
        }
    }
    /* Other threads may still be reading what we were handed: wait for their sections to end. */
    CHECK(hmap_sync_synchronize() == 0);
    for (size_t j = 0; j < nmine; j++) {
        obj_release(mine[j]);
        atomic_fetch_add(&objs_handed, 1);
    }
    free(mine);
    return NULL;
}

static void test_owned_values(void **state) {
    (void)state;
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        int n = thread_counts[t];
        atomic_store(&objs_made, 0);
        atomic_store(&objs_dropped, 0);
        atomic_store(&objs_handed, 0);
        hmap_sync *m = hmap_sync_new(&owned_type, 0);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        owned_arg args[8];
        for (int i = 0; i < n; i++)
            args[i] = (owned_arg){.m = m, .id = i, .keys = 512, .ops = 40000, .start = &start};
        run_threads(n, owned_thread, args, sizeof args[0]);
        hmap_sync_free(m);
        pthread_barrier_destroy(&start);
        assert_int_equal(atomic_load(&failures), 0);
        assert_int_equal(atomic_load(&objs_made), atomic_load(&objs_dropped) + atomic_load(&objs_handed));
    }
}

/* ================================================================ load_or_store: one winner */

enum { LOS_KEYS = 4000 };

typedef struct los_arg {
    hmap_sync *m;
    int id;
    int result[LOS_KEYS];
    uint64_t actual[LOS_KEYS];
    pthread_barrier_t *start;
} los_arg;

static void *los_thread(void *p) {
    los_arg *a = p;
    pthread_barrier_wait(a->start);
    for (uint64_t j = 0; j < LOS_KEYS; j++) {
        uint64_t k = (a->id % 2) ? LOS_KEYS - 1 - j : j; /* half the threads from each end */
        uint64_t v = ((uint64_t)a->id << 32) | k;
        a->actual[k] = 0;
        a->result[k] = hmap_sync_load_or_store(a->m, &k, &v, &a->actual[k]);
    }
    return NULL;
}

static void test_load_or_store_one_winner(void **state) {
    (void)state;
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        int n = thread_counts[t];
        hmap_sync *m = hmap_sync_new(&(hmap_type){.key_size = 8, .val_size = 8}, 0);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        los_arg *args = calloc((size_t)n, sizeof *args);
        for (int i = 0; i < n; i++) {
            args[i].m = m;
            args[i].id = i;
            args[i].start = &start;
        }
        run_threads(n, los_thread, args, sizeof args[0]);
        for (uint64_t k = 0; k < LOS_KEYS; k++) {
            int winners = 0;
            uint64_t winner_val = 0;
            for (int i = 0; i < n; i++) {
                assert_true(args[i].result[k] == 0 || args[i].result[k] == 1);
                if (args[i].result[k] == 1) {
                    winners++;
                    winner_val = ((uint64_t)i << 32) | k;
                }
            }
            assert_int_equal(winners, 1);
            for (int i = 0; i < n; i++)
                if (args[i].result[k] == 0)
                    assert_int_equal(args[i].actual[k], winner_val);
            uint64_t v;
            assert_true(hmap_sync_load(m, &k, &v));
            assert_int_equal(v, winner_val);
        }
        free(args);
        pthread_barrier_destroy(&start);
        hmap_sync_free(m);
    }
}

/* ================================================================ counters */

enum { COUNTER_KEYS = 16, COUNTER_OPS = 20000 };

typedef struct counter_arg {
    hmap_sync *m;
    int id;
    pthread_barrier_t *start;
} counter_arg;

static void add_one(void *val, bool inserted, void *ctx) {
    (void)inserted;
    (void)ctx;
    (*(uint64_t *)val)++;
}

static void *counter_thread(void *p) {
    counter_arg *a = p;
    uint64_t rng = 77 + (uint64_t)a->id;
    pthread_barrier_wait(a->start);
    for (int i = 0; i < COUNTER_OPS; i++) {
        uint64_t k = rng_next(&rng) % COUNTER_KEYS;
        CHECK(hmap_sync_update(a->m, &k, add_one, NULL) >= 0);
        uint64_t c = k + COUNTER_KEYS, old = 0; /* the same by load + compare_and_swap */
        for (;;) {
            bool found = hmap_sync_load(a->m, &c, &old);
            uint64_t next = found ? old + 1 : 1;
            if (!found) {
                uint64_t one = 1;
                if (hmap_sync_load_or_store(a->m, &c, &one, NULL) == 1)
                    break;
                continue;
            }
            if (hmap_sync_compare_and_swap(a->m, &c, &old, &next))
                break;
        }
    }
    return NULL;
}

static void test_counters(void **state) {
    (void)state;
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        int n = thread_counts[t];
        hmap_sync *m = hmap_sync_new(&(hmap_type){.key_size = 8, .val_size = 8}, 0);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        counter_arg args[8];
        for (int i = 0; i < n; i++)
            args[i] = (counter_arg){m, i, &start};
        run_threads(n, counter_thread, args, sizeof args[0]);
        uint64_t by_update = 0, by_cas = 0;
        for (uint64_t k = 0; k < 2 * COUNTER_KEYS; k++) {
            uint64_t v = 0;
            hmap_sync_load(m, &k, &v);
            *(k < COUNTER_KEYS ? &by_update : &by_cas) += v;
        }
        assert_int_equal(by_update, (uint64_t)n * COUNTER_OPS);
        assert_int_equal(by_cas, (uint64_t)n * COUNTER_OPS);
        pthread_barrier_destroy(&start);
        hmap_sync_free(m);
    }
}

/* ================================================================ swap conservation */

enum { SWAP_KEYS = 64, SWAP_OPS = 20000 };

typedef struct swap_arg {
    hmap_sync *m;
    int id;
    _Atomic unsigned char *out; /* times each token came out */
    pthread_barrier_t *start;
} swap_arg;

static void *swap_thread(void *p) {
    swap_arg *a = p;
    uint64_t rng = 999 + (uint64_t)a->id;
    pthread_barrier_wait(a->start);
    for (uint64_t i = 0; i < SWAP_OPS; i++) {
        uint64_t k = rng_next(&rng) % SWAP_KEYS;
        uint64_t token = SWAP_KEYS + (uint64_t)a->id * SWAP_OPS + i, old;
        int rc = hmap_sync_swap(a->m, &k, &token, &old);
        CHECK(rc == 0);
        if (rc == 0)
            atomic_fetch_add(&a->out[old], 1);
    }
    return NULL;
}

static void test_swap_conserves_tokens(void **state) {
    (void)state;
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        int n = thread_counts[t];
        size_t tokens = SWAP_KEYS + (size_t)n * SWAP_OPS;
        _Atomic unsigned char *out = calloc(tokens, 1);
        hmap_sync *m = hmap_sync_new(&(hmap_type){.key_size = 8, .val_size = 8}, 0);
        for (uint64_t k = 0; k < SWAP_KEYS; k++)
            assert_int_equal(hmap_sync_store(m, &k, &k), 1); /* token k starts in key k */
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        swap_arg args[8];
        for (int i = 0; i < n; i++)
            args[i] = (swap_arg){m, i, out, &start};
        run_threads(n, swap_thread, args, sizeof args[0]);
        for (uint64_t k = 0; k < SWAP_KEYS; k++) {
            uint64_t v;
            assert_true(hmap_sync_load(m, &k, &v));
            atomic_fetch_add(&out[v], 1);
        }
        for (size_t i = 0; i < tokens; i++)
            assert_int_equal(atomic_load(&out[i]), 1);
        free((void *)out);
        pthread_barrier_destroy(&start);
        hmap_sync_free(m);
    }
}

/* ================================================================ clear and compact under readers */

enum { CLEAR_KEYS = 2000, CLEAR_ROUNDS = 40, CLEAR_READS = 30000 };

typedef struct clear_arg {
    hmap_sync *owned, *plain; /* owned objects; 8-byte values (round << 32 | key) */
    int id;
    _Atomic int *done;
    pthread_barrier_t *start;
} clear_arg;

/* The clearing thread: fills both maps, sometimes compacts, clears; round after round. */
static void *clearer_thread(void *p) {
    clear_arg *a = p;
    pthread_barrier_wait(a->start);
    for (uint64_t round = 1; round <= CLEAR_ROUNDS; round++) {
        for (uint64_t k = 0; k < CLEAR_KEYS; k++) {
            obj *o = obj_new(k, round);
            CHECK(hmap_sync_store(a->owned, &k, &o) >= 0);
            uint64_t v = round << 32 | k;
            CHECK(hmap_sync_store(a->plain, &k, &v) >= 0);
        }
        for (uint64_t k = 0; k < CLEAR_KEYS; k += 3) { /* a third gone: compact has something to do */
            hmap_sync_delete(a->owned, &k);
            hmap_sync_delete(a->plain, &k);
        }
        if (round % 2) {
            CHECK(hmap_sync_compact(a->owned) == 0);
            CHECK(hmap_sync_compact(a->plain) == 0);
        }
        CHECK(hmap_sync_clear(a->owned) == 0);
        CHECK(hmap_sync_clear(a->plain) == 0);
    }
    atomic_store(a->done, 1);
    return NULL;
}

static bool check_visit(const void *key, const void *val, void *ctx) {
    (void)ctx;
    uint64_t k;
    memcpy(&k, key, 8);
    obj_check(*(obj *const *)val, k); /* range's fn runs in a read section: the object is alive */
    return true;
}

/* The reading threads: dereference owned values in read sections, check plain values are whole, range,
 * and write a little too (stores and deletes meet the clears). */
static void *clear_reader_thread(void *p) {
    clear_arg *a = p;
    uint64_t rng = 0x5151ULL + (uint64_t)a->id * 0x9e3779b97f4a7c15ULL;
    pthread_barrier_wait(a->start);
    for (uint64_t i = 0; i < CLEAR_READS || !atomic_load(a->done); i++) {
        uint64_t r = rng_next(&rng), k = (r >> 8) % CLEAR_KEYS, v;
        obj *o;
        switch (r % 16) {
        case 0:
            hmap_sync_range(a->owned, check_visit, NULL);
            break;
        case 1:
            o = obj_new(k, 0);
            CHECK(hmap_sync_store(a->owned, &k, &o) >= 0);
            break;
        case 2:
            hmap_sync_delete(a->plain, &k);
            break;
        case 3:
            hmap_sync_load_with(a->owned, &k, check_loaded, &k);
            break;
        default:
            hmap_sync_pin();
            if (hmap_sync_load(a->owned, &k, &o))
                obj_check(o, k);
            hmap_sync_unpin();
            if (hmap_sync_load(a->plain, &k, &v))
                CHECK((v & 0xffffffffu) == k && (v >> 32) >= 1 && (v >> 32) <= CLEAR_ROUNDS);
            break;
        }
        if (i > 100 * CLEAR_READS)
            break; /* the clearer is stuck: its CHECKs report it */
    }
    return NULL;
}

static void *clear_thread(void *p) {
    clear_arg *a = p;
    return a->id == 0 ? clearer_thread(p) : clear_reader_thread(p);
}

static void test_clear_and_compact_under_readers(void **state) {
    (void)state;
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        int n = thread_counts[t];
        atomic_store(&objs_made, 0);
        atomic_store(&objs_dropped, 0);
        hmap_sync *owned = hmap_sync_new(&owned_type, 0);
        hmap_sync *plain = hmap_sync_new(&(hmap_type){.key_size = 8, .val_size = 8}, 0);
        _Atomic int done = 0;
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        clear_arg args[8];
        for (int i = 0; i < n; i++)
            args[i] = (clear_arg){owned, plain, i, &done, &start};
        run_threads(n, clear_thread, args, sizeof args[0]);
        hmap_sync_free(owned);
        hmap_sync_free(plain);
        pthread_barrier_destroy(&start);
        assert_int_equal(atomic_load(&failures), 0);
        assert_int_equal(atomic_load(&objs_made), atomic_load(&objs_dropped));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_small_key_space),
        cmocka_unit_test(test_mixed_large_key_space),
        cmocka_unit_test(test_owned_values),
        cmocka_unit_test(test_load_or_store_one_winner),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_swap_conserves_tokens),
        cmocka_unit_test(test_clear_and_compact_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
