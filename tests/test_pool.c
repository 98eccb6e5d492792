/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c — hmap_pool: reuse, the two-cycle release, max_idle, threads that exit, hmap_pool_free,
 * bad input, memory accounting and heap profile labels.
 *
 * Objects are counted where they are born and die: make() and destroy() of the test bump atomic counters,
 * and every object records whether someone holds it, so that a get returning an object that is already
 * out (two threads sharing one object) fails the test on the spot. Threads meet at barriers rather than
 * sleeping, so that nothing depends on timing; the one timed feature (cycle_ms) is checked by waiting for
 * its effect, with a deadline that only guards against a hang.
 */
#define _GNU_SOURCE /* memmem */
#include <hmap.h>

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
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

/* For code that also runs on other threads (workers, the pool timer), where cmocka's assertions cannot
 * unwind: report and abort, which fails the test as surely. */
#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                         \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

typedef struct counters {
    _Atomic uint64_t made, destroyed, resets;
    int pool_id;
} counters;

typedef struct obj {
    _Atomic int out; /* 1 while a caller holds it */
    int pool_id;
    uint64_t payload;
} obj;

static void *make_obj(void *ctx) {
    counters *k = ctx;
    obj *o = calloc(1, sizeof *o);
    CHECK(o != NULL);
    o->pool_id = k->pool_id;
    atomic_fetch_add(&k->made, 1);
    return o;
}

static void reset_obj(void *p, void *ctx) {
    counters *k = ctx;
    ((obj *)p)->payload = 0;
    atomic_fetch_add(&k->resets, 1);
}

static void destroy_obj(void *p, void *ctx) {
    counters *k = ctx;
    obj *o = p;
    CHECK(atomic_load(&o->out) == 0); /* never destroy what a caller holds */
    atomic_fetch_add(&k->destroyed, 1);
    free(o);
}

static hmap_pool *new_pool(counters *k, size_t max_idle) {
    hmap_pool_config cfg = {.make = make_obj,
                            .reset = reset_obj,
                            .destroy = destroy_obj,
                            .ctx = k,
                            .max_idle = max_idle,
                            .name = "test-pool"};
    hmap_pool *p = hmap_pool_new(&cfg);
    assert_non_null(p);
    return p;
}

/* A get that checks the object is not out already, and marks it out. */
static obj *get(hmap_pool *p) {
    obj *o = hmap_pool_get(p);
    CHECK(o != NULL);
    CHECK(atomic_exchange(&o->out, 1) == 0);
    return o;
}

static void put(hmap_pool *p, obj *o) {
    atomic_store(&o->out, 0);
    hmap_pool_put(p, o);
}

static hmap_pool_stats stats(hmap_pool *p) {
    hmap_pool_stats st;
    hmap_pool_get_stats(p, &st);
    return st;
}

/* ---------------------------------------------------------------------------------------------------- */

static void test_bad_input(void **state) {
    (void)state;
    errno = 0;
    assert_null(hmap_pool_new(NULL));
    assert_int_equal(errno, EINVAL);

    hmap_pool_config no_destroy = {.make = make_obj};
    errno = 0;
    assert_null(hmap_pool_new(&no_destroy));
    assert_int_equal(errno, EINVAL);

    errno = 0;
    assert_null(hmap_pool_get(NULL));
    assert_int_equal(errno, EINVAL);

    counters k = {0};
    obj *o = make_obj(&k);
    errno = 0;
    hmap_pool_put(NULL, o); /* left to the caller */
    assert_int_equal(errno, EINVAL);
    free(o);

    hmap_pool_stats st;
    memset(&st, 0xff, sizeof st);
    hmap_pool_get_stats(NULL, &st);
    assert_int_equal(st.gets + st.puts + st.idle + st.victims, 0);
    hmap_pool_get_stats(NULL, NULL);
    hmap_pool_cycle(NULL);
    hmap_pool_free(NULL);

    hmap_pool *p = new_pool(&k, 0);
    hmap_pool_put(p, NULL); /* ignored */
    assert_int_equal(stats(p).puts, 0);
    hmap_pool_free(p);
}

/* Holding h objects at a time, over and over, makes h objects in all. */
static void test_single_thread_reuse(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool *p = new_pool(&k, 0);
    enum { HELD = 40, ROUNDS = 200 }; /* more than a thread's slot and stack: the ring is used too */
    obj *held[HELD];
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < HELD; i++)
            held[i] = get(p);
        for (int i = 0; i < HELD; i++)
            put(p, held[i]);
    }
    assert_int_equal(atomic_load(&k.made), HELD);
    assert_int_equal(atomic_load(&k.resets), HELD * ROUNDS); /* reset on every put */
    hmap_pool_stats st = stats(p);
    assert_int_equal(st.gets, HELD * ROUNDS);
    assert_int_equal(st.misses, HELD);
    assert_int_equal(st.hits, HELD * (ROUNDS - 1));
    assert_int_equal(st.puts, HELD * ROUNDS);
    assert_int_equal(st.idle, HELD);
    assert_int_equal(st.victims, 0);
    assert_int_equal(st.destroyed, 0);
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), HELD);
}

/* Without make, get returns NULL on an empty pool, and what was put otherwise. */
static void test_no_make(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool_config cfg = {.destroy = destroy_obj, .ctx = &k};
    hmap_pool *p = hmap_pool_new(&cfg);
    assert_non_null(p);
    assert_null(hmap_pool_get(p));
    obj *o = make_obj(&k);
    hmap_pool_put(p, o);
    assert_ptr_equal(hmap_pool_get(p), o);
    assert_null(hmap_pool_get(p));
    hmap_pool_stats st = stats(p);
    assert_int_equal(st.gets, 3);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);
    hmap_pool_put(p, o);
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), 1);
}

/* Idle objects become victims at the first cycle and are destroyed at the second; a victim got in
 * between lives on. */
static void test_two_cycles_release(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool *p = new_pool(&k, 0);
    enum { N = 300 }; /* slot, stack, ring and spill */
    obj *held[N];
    for (int i = 0; i < N; i++)
        held[i] = get(p);
    for (int i = 0; i < N; i++)
        put(p, held[i]);
    assert_int_equal(stats(p).idle, N);

    hmap_pool_cycle(p);
    hmap_pool_stats st = stats(p);
    assert_int_equal(st.idle, 0);
    assert_int_equal(st.victims, N);
    assert_int_equal(atomic_load(&k.destroyed), 0);

    obj *kept = get(p); /* a victim, saved */
    assert_int_equal(atomic_load(&k.made), N);
    hmap_pool_cycle(p);
    assert_int_equal(atomic_load(&k.destroyed), N - 1);
    st = stats(p);
    assert_int_equal(st.destroyed, N - 1);
    assert_int_equal(st.idle + st.victims, 0);

    put(p, kept);
    hmap_pool_cycle(p);
    hmap_pool_cycle(p);
    assert_int_equal(atomic_load(&k.destroyed), N);
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), N);
}

/* max_idle caps what the pool holds, and a put beyond it destroys. */
static void test_max_idle(void **state) {
    (void)state;
    counters k = {0};
    enum { CAP = 5, N = 20 };
    hmap_pool *p = new_pool(&k, CAP);
    obj *held[N];
    for (int i = 0; i < N; i++)
        held[i] = get(p);
    for (int i = 0; i < N; i++) {
        put(p, held[i]);
        hmap_pool_stats st = stats(p);
        assert_true(st.idle + st.victims <= CAP);
    }
    assert_int_equal(stats(p).idle, CAP); /* one thread: its allowance is the whole cap */
    assert_int_equal(atomic_load(&k.destroyed), N - CAP);
    for (int i = 0; i < CAP; i++) /* all hits */
        held[i] = get(p);
    assert_int_equal(atomic_load(&k.made), N);
    for (int i = 0; i < CAP; i++)
        put(p, held[i]);
    hmap_pool_cycle(p); /* victims count against the cap too */
    for (int i = 0; i < N; i++)
        held[i] = get(p);
    for (int i = 0; i < N; i++)
        put(p, held[i]);
    hmap_pool_stats st = stats(p);
    assert_true(st.idle + st.victims <= CAP);
    assert_int_equal(atomic_load(&k.made) - atomic_load(&k.destroyed), st.idle + st.victims);
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.made), atomic_load(&k.destroyed));
}

/* ---- threads ------------------------------------------------------------------------------------- */

enum { THREADS = 4, THREAD_HELD = 12, THREAD_ROUNDS = 3000 };

typedef struct worker {
    hmap_pool *p;
    int held;
    int rounds;
    bool cycle; /* also cycle now and then */
    unsigned seed;
} worker;

static void *churn(void *arg) {
    worker *w = arg;
    obj *held[64];
    for (int r = 0; r < w->rounds; r++) {
        int n = 1 + (int)(rand_r(&w->seed) % (unsigned)w->held);
        for (int i = 0; i < n; i++) {
            held[i] = get(w->p);
            CHECK(held[i]->payload == 0); /* reset ran */
            held[i]->payload = (uint64_t)r + 1;
        }
        for (int i = 0; i < n; i++)
            put(w->p, held[i]);
        if (w->cycle && r % 500 == 0)
            hmap_pool_cycle(w->p);
    }
    return NULL;
}

static void run_workers(hmap_pool *p, int held, bool cycle) {
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){p, held, THREAD_ROUNDS, cycle, (unsigned)i * 7919u + 1};
        assert_int_equal(pthread_create(&t[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

/* Threads that each hold at most h objects at a time make at most threads x h objects: a thread's gets
 * empty its own slot and stack first, so what it holds plus what sits there never exceeds h, and it makes
 * an object only when nothing else is idle. */
static void test_multi_thread_reuse(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool *p = new_pool(&k, 0);
    run_workers(p, THREAD_HELD, false);
    assert_true(atomic_load(&k.made) <= THREADS * THREAD_HELD);
    hmap_pool_stats st = stats(p);
    assert_int_equal(st.gets, st.puts);
    assert_int_equal(st.misses, atomic_load(&k.made));
    assert_int_equal(st.idle, atomic_load(&k.made)); /* exited threads gave everything back */
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), atomic_load(&k.made));
}

typedef struct cycler {
    hmap_pool *p;
    _Atomic bool stop;
} cycler;

static void *cycle_until_stopped(void *arg) {
    cycler *c = arg;
    while (!atomic_load(&c->stop))
        hmap_pool_cycle(c->p);
    return NULL;
}

/* Cycles from the working threads themselves and from a thread that does nothing else, and a cap:
 * objects are conserved, never shared, never destroyed while held. */
static void test_multi_thread_cycles_and_cap(void **state) {
    (void)state;
    counters k = {0};
    enum { CAP = 16 };
    hmap_pool *p = new_pool(&k, CAP);
    cycler cy = {p, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cycle_until_stopped, &cy), 0);
    run_workers(p, THREAD_HELD, true);
    atomic_store(&cy.stop, true);
    pthread_join(t, NULL);
    hmap_pool_stats st = stats(p);
    assert_true(st.idle + st.victims <= CAP);
    assert_int_equal(atomic_load(&k.made) - atomic_load(&k.destroyed), st.idle + st.victims);
    assert_int_equal(st.destroyed, atomic_load(&k.destroyed));
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), atomic_load(&k.made));
}

/* A thread that put objects and then waits (alive, not calling the pool). */
typedef struct sleeper {
    hmap_pool *p;
    int n;
    pthread_barrier_t *filled, *release;
} sleeper;

static void *fill_and_wait(void *arg) {
    sleeper *s = arg;
    obj *held[64];
    for (int i = 0; i < s->n; i++)
        held[i] = get(s->p);
    for (int i = 0; i < s->n; i++)
        put(s->p, held[i]);
    pthread_barrier_wait(s->filled);
    pthread_barrier_wait(s->release);
    return NULL;
}

/* Cycles reach the private slot and stack of a thread that is alive but idle. */
static void test_cycles_reach_idle_threads(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool *p = new_pool(&k, 0);
    pthread_barrier_t filled, release;
    pthread_barrier_init(&filled, NULL, 2);
    pthread_barrier_init(&release, NULL, 2);
    sleeper s = {p, 6, &filled, &release}; /* fits in its slot and stack: owner-only */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fill_and_wait, &s), 0);
    pthread_barrier_wait(&filled);
    assert_int_equal(stats(p).idle, 6);
    hmap_pool_cycle(p);
    assert_int_equal(stats(p).victims, 6);
    hmap_pool_cycle(p);
    assert_int_equal(atomic_load(&k.destroyed), 6);
    assert_int_equal(stats(p).idle + stats(p).victims, 0);
    pthread_barrier_wait(&release);
    pthread_join(t, NULL);
    hmap_pool_free(p);
    pthread_barrier_destroy(&filled);
    pthread_barrier_destroy(&release);
}

/* Another thread takes what a live thread put beyond its own slot and stack (its ring, then the spill). */
static void test_stealing(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool *p = new_pool(&k, 0);
    pthread_barrier_t filled, release;
    pthread_barrier_init(&filled, NULL, 2);
    pthread_barrier_init(&release, NULL, 2);
    enum { N = 64 };
    sleeper s = {p, N, &filled, &release};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fill_and_wait, &s), 0);
    pthread_barrier_wait(&filled);
    assert_int_equal(atomic_load(&k.made), N);
    obj *held[N];
    for (int i = 0; i < N; i++)
        held[i] = get(p);
    hmap_pool_stats st = stats(p);
    assert_true(st.hits >= N / 2);                           /* all but the other thread's slot and stack */
    assert_int_equal(atomic_load(&k.made), 2 * N - st.hits); /* N by the other thread, misses by this one */
    for (int i = 0; i < N; i++)
        put(p, held[i]);
    pthread_barrier_wait(&release);
    pthread_join(t, NULL);
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), atomic_load(&k.made));
    pthread_barrier_destroy(&filled);
    pthread_barrier_destroy(&release);
}

typedef struct filler {
    hmap_pool *p;
    int n;
} filler;

static void *fill_and_exit(void *arg) {
    filler *f = arg;
    obj *held[64];
    for (int i = 0; i < f->n; i++)
        held[i] = get(f->p);
    for (int i = 0; i < f->n; i++)
        put(f->p, held[i]);
    return NULL;
}

/* A thread that exits gives its whole cache back, the owner-only part included. */
static void test_thread_exit_gives_cache_back(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool *p = new_pool(&k, 0);
    obj *first = get(p); /* this thread has its cache now, and holds one object */
    filler f = {p, 5};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fill_and_exit, &f), 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&k.made), 6);
    assert_int_equal(stats(p).idle, 5);
    obj *held[5];
    for (int i = 0; i < 5; i++)
        held[i] = get(p);
    assert_int_equal(atomic_load(&k.made), 6); /* all five came back */
    assert_int_equal(stats(p).hits, 5);
    for (int i = 0; i < 5; i++)
        put(p, held[i]);
    /* A new thread takes over the retired cache rather than allocating one: the pool's memory is the
     * same after it ran (its five objects fit in the ring at exit: no spill array either). */
    hmap_memstats before, after;
    hmap_read_memstats(&before);
    assert_int_equal(pthread_create(&t, NULL, fill_and_exit, &f), 0);
    pthread_join(t, NULL);
    hmap_read_memstats(&after);
    assert_int_equal(after.live_bytes, before.live_bytes);
    assert_int_equal(atomic_load(&k.made), 11); /* this thread's five were in its own slot and stack */
    put(p, first);
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), 11);
}

/* hmap_pool_free destroys everything idle: this thread's, an exited thread's, a live thread's, the
 * victims; and the live thread, which used the freed pool, can still use another pool and exit. */
static void *use_other_pool_and_exit(void *arg) {
    sleeper *s = arg;
    fill_and_wait(s);
    obj *o = get(s->p); /* s->p is now another pool */
    put(s->p, o);
    return NULL;
}

static void test_free_destroys_everything(void **state) {
    (void)state;
    counters k = {0}, k2 = {0};
    hmap_pool *p = new_pool(&k, 0), *other = new_pool(&k2, 0);
    filler f = {p, 20};
    pthread_t exited, alive;
    assert_int_equal(pthread_create(&exited, NULL, fill_and_exit, &f), 0);
    pthread_join(exited, NULL);
    pthread_barrier_t filled, release;
    pthread_barrier_init(&filled, NULL, 2);
    pthread_barrier_init(&release, NULL, 2);
    sleeper s = {p, 30, &filled, &release};
    assert_int_equal(pthread_create(&alive, NULL, use_other_pool_and_exit, &s), 0);
    pthread_barrier_wait(&filled);
    obj *mine[10];
    for (int i = 0; i < 10; i++)
        mine[i] = get(p);
    hmap_pool_cycle(p); /* some become victims */
    for (int i = 0; i < 10; i++)
        put(p, mine[i]);
    uint64_t made = atomic_load(&k.made);
    hmap_pool_stats st = stats(p);
    assert_int_equal(st.idle + st.victims, made);
    hmap_pool_free(p);
    assert_int_equal(atomic_load(&k.destroyed), made);
    s.p = other;
    pthread_barrier_wait(&release);
    pthread_join(alive, NULL);
    assert_int_equal(stats(other).idle, 1);
    hmap_pool_free(other);
    assert_int_equal(atomic_load(&k2.destroyed), 1);
    pthread_barrier_destroy(&filled);
    pthread_barrier_destroy(&release);
}

/* More pools than a thread's direct table holds, used in turn: each gets back only its own objects. */
static void test_many_pools(void **state) {
    (void)state;
    enum { POOLS = 21, ROUNDS = 50 };
    counters k[POOLS];
    hmap_pool *p[POOLS];
    for (int i = 0; i < POOLS; i++) {
        k[i] = (counters){.pool_id = i};
        p[i] = new_pool(&k[i], 0);
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < POOLS; i++) {
            obj *a = get(p[i]), *b = get(p[i]);
            assert_int_equal(a->pool_id, i);
            assert_int_equal(b->pool_id, i);
            put(p[i], a);
            put(p[i], b);
        }
    for (int i = 0; i < POOLS; i++) {
        assert_int_equal(atomic_load(&k[i].made), 2);
        hmap_pool_free(p[i]);
        assert_int_equal(atomic_load(&k[i].destroyed), 2);
    }
}

/* cycle_ms: idle objects are destroyed by the timer without any call. */
static void test_timed_cycles(void **state) {
    (void)state;
    counters k = {0};
    hmap_pool_config cfg = {.make = make_obj, .destroy = destroy_obj, .ctx = &k, .cycle_ms = 5};
    hmap_pool *p = hmap_pool_new(&cfg);
    assert_non_null(p);
    obj *held[10];
    for (int i = 0; i < 10; i++)
        held[i] = get(p);
    for (int i = 0; i < 10; i++)
        put(p, held[i]);
    for (int waited = 0; atomic_load(&k.destroyed) < 10 && waited < 30000; waited++) /* hang guard */
        usleep(1000);
    assert_int_equal(atomic_load(&k.destroyed), 10);
    assert_int_equal(stats(p).idle + stats(p).victims, 0);
    hmap_pool_free(p);
}

/* The pool's own memory is in hmap_read_memstats and comes back at hmap_pool_free. */
static void test_memstats(void **state) {
    (void)state;
    hmap_memstats before, during, after;
    hmap_read_memstats(&before);
    counters k = {0};
    hmap_pool *p = new_pool(&k, 0);
    obj *held[200];
    for (int i = 0; i < 200; i++)
        held[i] = get(p);
    for (int i = 0; i < 200; i++)
        put(p, held[i]); /* beyond the ring: the spill array */
    hmap_read_memstats(&during);
    assert_true(during.live_bytes > before.live_bytes + 200 * sizeof(void *)); /* caches, spill */
    hmap_pool_free(p);
    hmap_read_memstats(&after);
    assert_int_equal(after.live_bytes, before.live_bytes);
    assert_int_equal(after.mallocs - before.mallocs, after.frees - before.frees);
}

/* Heap profiles name the pool's memory after the pool. */
static void test_profile_label(void **state) {
    (void)state;
    hmap_set_profile_rate(1);
    counters k = {0};
    hmap_pool_config cfg = {.make = make_obj, .destroy = destroy_obj, .ctx = &k, .name = "pool-label-xyz"};
    hmap_pool *p = hmap_pool_new(&cfg);
    assert_non_null(p);
    obj *o = get(p);
    put(p, o);
    char path[] = "/tmp/hmap-pool-profile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(hmap_write_heap_profile(path), 0);
    hmap_pool_free(p);
    hmap_set_profile_rate(512 * 1024);
    gzFile gz = gzopen(path, "rb");
    assert_non_null(gz);
    static char buf[1 << 20];
    int n = gzread(gz, buf, sizeof buf);
    gzclose(gz);
    unlink(path);
    assert_true(n > 0);
    assert_non_null(memmem(buf, (size_t)n, "pool-label-xyz", strlen("pool-label-xyz")));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_single_thread_reuse),
        cmocka_unit_test(test_no_make),
        cmocka_unit_test(test_two_cycles_release),
        cmocka_unit_test(test_max_idle),
        cmocka_unit_test(test_multi_thread_reuse),
        cmocka_unit_test(test_multi_thread_cycles_and_cap),
        cmocka_unit_test(test_cycles_reach_idle_threads),
        cmocka_unit_test(test_stealing),
        cmocka_unit_test(test_thread_exit_gives_cache_back),
        cmocka_unit_test(test_free_destroys_everything),
        cmocka_unit_test(test_many_pools),
        cmocka_unit_test(test_timed_cycles),
        cmocka_unit_test(test_memstats),
        cmocka_unit_test(test_profile_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
