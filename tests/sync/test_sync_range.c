/* SPDX-License-Identifier: MIT */
/*
 * test_sync_range.c — hmap_sync_range while other threads store and delete.
 *
 * Three kinds of keys: stable ones (stored before, never touched), rewritten ones (present throughout,
 * their value replaced over and over) and churned ones (inserted and deleted in waves large enough that
 * the shards grow and shrink). Writer threads churn and rewrite until the rangers are done; each ranger
 * runs whole ranges and counts the visits of every key in each. In every range: no key is visited twice,
 * every stable and every rewritten key exactly once, every value is one the key really had. One ranger's
 * fn also writes the map itself (it may: no lock is held while fn runs). The thread counts are 2, 4, 8.
 */
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

enum { STABLE = 4000, REWRITTEN = 1000, CHURNED = 12000, KEYS = STABLE + REWRITTEN + CHURNED };
enum {
    RANGES = 12,
    WAVES = 6
}; /* each ranger ranges at least RANGES times, and until the writers have
      done WAVES fill-and-empty cycles */

/* Values say which key they belong to: value = key * 2^20 + serial (serial < 2^20). */
static uint64_t value_of(uint64_t k, uint64_t serial) { return (k << 20) | (serial & 0xfffff); }

typedef struct shared {
    hmap_sync *m;
    _Atomic int rangers_left;
    _Atomic int cycles;             /* fill-and-empty cycles the writers completed together */
    bool go_on;                     /* decided by writer 0 between cycles */
    pthread_barrier_t start, waves; /* everyone; the writers (who fill and empty in step) */
} shared;

typedef struct writer_arg {
    shared *s;
    int id, writers;
} writer_arg;

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

/* Waves over this writer's churned keys (fill all, empty all), with rewrites in between; the writers
 * fill and empty in step, so that the shards really shrink. */
static void *writer_thread(void *p) {
    writer_arg *a = p;
    shared *sh = a->s;
    hmap_sync *m = sh->m;
    uint64_t rng = 5 + (uint64_t)a->id, serial = 0;
    pthread_barrier_wait(&sh->start);
    for (;;) {
        for (int wave = 0; wave < 2; wave++) {
            for (uint64_t k = STABLE + REWRITTEN + (uint64_t)a->id; k < KEYS; k += (uint64_t)a->writers) {
                if (wave == 0) {
                    uint64_t v = value_of(k, ++serial);
                    CHECK(hmap_sync_store(m, &k, &v) >= 0);
                } else {
                    hmap_sync_delete(m, &k);
                }
                if (k % 8 == 0) {
                    uint64_t r = STABLE + rng_next(&rng) % REWRITTEN, v = value_of(r, ++serial);
                    CHECK(hmap_sync_store(m, &r, &v) == 0);
                }
            }
            pthread_barrier_wait(&sh->waves);
        }
        if (a->id == 0) {
            atomic_fetch_add(&sh->cycles, 1);
            sh->go_on = atomic_load(&sh->rangers_left) > 0;
        }
        pthread_barrier_wait(&sh->waves); /* go_on is read after writer 0 wrote it */
        if (!sh->go_on)
            return NULL;
    }
}

typedef struct ranger_arg {
    shared *s;
    int id;
    bool writes; /* fn also stores and deletes churned keys */
    unsigned char *visits;
    uint64_t rng;
    int ranges;
} ranger_arg;

static bool visit(const void *key, const void *val, void *ctx) {
    ranger_arg *a = ctx;
    uint64_t k, v;
    memcpy(&k, key, 8);
    memcpy(&v, val, 8);
    CHECK(k < KEYS);
    if (k >= KEYS)
        return false;
    CHECK(v >> 20 == k);
    if (k < STABLE)
        CHECK(v == value_of(k, 0));
    CHECK(a->visits[k] == 0); /* no key twice */
    a->visits[k]++;
    if (a->writes && k % 16 == 0) {
        uint64_t c = STABLE + REWRITTEN + a->rng++ % CHURNED, cv = value_of(c, 0);
        if (a->rng % 2)
            hmap_sync_store(a->s->m, &c, &cv);
        else
            hmap_sync_delete(a->s->m, &c);
    }
    return true;
}

static void *ranger_thread(void *p) {
    ranger_arg *a = p;
    pthread_barrier_wait(&a->s->start);
    for (int r = 0; r < RANGES || atomic_load(&a->s->cycles) < WAVES; r++) {
        memset(a->visits, 0, KEYS);
        hmap_sync_range(a->s->m, visit, a);
        for (uint64_t k = 0; k < STABLE + REWRITTEN; k++)
            CHECK(a->visits[k] == 1); /* present throughout: exactly once */
        a->ranges++;
    }
    atomic_fetch_sub(&a->s->rangers_left, 1);
    return NULL;
}

static void range_run(int writers, int rangers) {
    shared s = {.m = hmap_sync_new(&(hmap_type){.key_size = 8, .val_size = 8}, 0)};
    assert_non_null(s.m);
    for (uint64_t k = 0; k < STABLE + REWRITTEN; k++) {
        uint64_t v = value_of(k, 0);
        assert_int_equal(hmap_sync_store(s.m, &k, &v), 1);
    }
    atomic_store(&s.rangers_left, rangers);
    pthread_barrier_init(&s.start, NULL, (unsigned)(writers + rangers));
    pthread_barrier_init(&s.waves, NULL, (unsigned)writers);
    pthread_t t[8];
    writer_arg wa[8];
    ranger_arg ra[8];
    for (int i = 0; i < writers; i++) {
        wa[i] = (writer_arg){&s, i, writers};
        assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &wa[i]), 0);
    }
    for (int i = 0; i < rangers; i++) {
        ra[i] = (ranger_arg){&s, i, i == 1, calloc(KEYS, 1), 17 * (uint64_t)i, 0};
        assert_int_equal(pthread_create(&t[writers + i], NULL, ranger_thread, &ra[i]), 0);
    }
    for (int i = 0; i < writers + rangers; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    hmap_stats st;
    hmap_sync_get_stats(s.m, &st);
    print_message(
        "%d writers, %d rangers: %d ranges by the first; %llu grows, %llu shrinks across the shards\n",
        writers, rangers, ra[0].ranges, (unsigned long long)st.grows, (unsigned long long)st.shrinks);
    assert_true(st.shrinks > 0);
    for (int i = 0; i < rangers; i++)
        free(ra[i].visits);
    pthread_barrier_destroy(&s.start);
    pthread_barrier_destroy(&s.waves);
    hmap_sync_free(s.m);
}

static void test_range_2_threads(void **state) {
    (void)state;
    range_run(1, 1);
}

static void test_range_4_threads(void **state) {
    (void)state;
    range_run(2, 2);
}

static void test_range_8_threads(void **state) {
    (void)state;
    range_run(6, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_2_threads),
        cmocka_unit_test(test_range_4_threads),
        cmocka_unit_test(test_range_8_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
