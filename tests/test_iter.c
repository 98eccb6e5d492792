/* SPDX-License-Identifier: MIT */
/*
 * test_iter.c — the iteration guarantee (include/hmap.h), checked directly, key by key:
 *
 *   - a key present when the iteration starts and not deleted during it is yielded exactly once;
 *   - a key is never yielded while it is absent from the map (so never after its deletion);
 *   - a key inserted during the iteration is yielded at most once (per insertion: a key deleted and
 *     inserted again is a new key);
 *   - every yielded value is the key's current value.
 *
 * ...while the map grows from a handful of entries to 100k inside the loop, shrinks inside the loop,
 * grows then shrinks inside one iteration, with several iterations open at once, with the iteration
 * started in the middle of a grow and of a shrink, with the built-in and with a poor hash (first byte
 * only, so whole groups of keys share one 64-bit hash), and with owned string keys (strdup, freed by
 * key_drop) deleted and re-inserted inside the loop. Under ASan the last one proves the library never
 * reads a dropped key; without ASan, key_drop scribbles over the string before freeing it, so that a
 * stale read is likely to show up as a wrong answer.
 *
 * The bookkeeping: a "world" holds the map and which ids are present (plus a list of present ids for
 * random deletes); each open iteration has a tracker with three bytes per id (present at start, deleted
 * since, yielded since the last insertion). Keys are ids (uint64) or strings derived from ids.
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

#include "hmap.h"
#include "model.h"

#define MAX_IDS 400000u
#define MAX_TRACKERS 4

typedef enum { KEYS_U64, KEYS_STRING } key_mode;

typedef struct tracker {
    hmap_iter it;
    unsigned char *start, *deleted, *yields;
    size_t yielded;
    bool open;
} tracker;

typedef struct world {
    hmap *m;
    key_mode mode;
    prng rng;
    unsigned char *present;
    uint32_t *live_ids, *pos; /* live_ids[pos[id]] == id for present ids */
    size_t live;
    uint64_t next_fresh;
    tracker *trackers[MAX_TRACKERS];
} world;

static long live_strings;

/* ---- keys ---- */

static uint64_t value_of(uint64_t id) { return id * 0x9e3779b97f4a7c15ULL + 1; }

static void string_of(uint64_t id, char *buf, size_t size) {
    /* The id first (so it parses back), then a tail of varying length. */
    int n = snprintf(buf, size, "s%" PRIu64 "-", id);
    size_t tail = id % 23;
    for (size_t i = 0; i < tail && (size_t)n + i + 1 < size; i++)
        buf[n + i] = (char)('a' + (id + i) % 26);
    buf[(size_t)n + tail] = '\0';
}

static void drop_string(void *k) {
    char *s = *(char **)k;
    memset(s, 0x5a, strlen(s)); /* a stale read now sees garbage, not the old key */
    free(s);
    live_strings--;
}

static uint64_t poor_u64_hash(const void *k, uint64_t seed) {
    (void)seed;
    return *(const unsigned char *)k;
}

/* Keys in groups of 64 share a hash: inserted and deleted group by group, they leave chains of
 * tombstones and overflow buckets behind, which is what same-size growth cleans up. */
static uint64_t grouped_u64_hash(const void *k, uint64_t seed) {
    return mix64((*(const uint64_t *)k >> 6) ^ seed);
}

static uint64_t poor_string_hash(const void *k, uint64_t seed) {
    (void)seed;
    const char *s = *(const char *const *)k;
    return (unsigned char)s[1]; /* the first digit of the id */
}

static uint64_t id_of_key(const world *w, const void *k) {
    if (w->mode == KEYS_U64)
        return *(const uint64_t *)k;
    const char *s = *(const char *const *)k;
    assert_int_equal(s[0], 's');
    return strtoull(s + 1, NULL, 10);
}

/* ---- the world ---- */

static void world_init_hash(world *w, key_mode mode, bool poor_hash, uint64_t seed,
                            uint64_t (*hash)(const void *, uint64_t));

static void world_init(world *w, key_mode mode, bool poor_hash, uint64_t seed) {
    world_init_hash(w, mode, poor_hash, seed, NULL);
}

static void world_init_hash(world *w, key_mode mode, bool poor_hash, uint64_t seed,
                            uint64_t (*hash)(const void *, uint64_t)) {
    memset(w, 0, sizeof *w);
    w->mode = mode;
    w->rng.s = seed;
    w->present = calloc(MAX_IDS, 1);
    w->live_ids = calloc(MAX_IDS, sizeof *w->live_ids);
    w->pos = calloc(MAX_IDS, sizeof *w->pos);
    assert_true(w->present && w->live_ids && w->pos);
    hmap_type type = {.val_size = sizeof(uint64_t)};
    if (mode == KEYS_U64) {
        type.key_size = sizeof(uint64_t);
        type.hash = hash ? hash : poor_hash ? poor_u64_hash : NULL;
    } else {
        type.key_size = sizeof(char *);
        type.hash = poor_hash ? poor_string_hash : hmap_hash_cstr;
        type.equal = hmap_equal_cstr;
        type.key_drop = drop_string;
    }
    live_strings = 0;
    w->m = hmap_new(&type, 0);
    assert_non_null(w->m);
}

static void world_destroy(world *w) {
    hmap_free(w->m);
    assert_int_equal(live_strings, 0);
    free(w->present);
    free(w->live_ids);
    free(w->pos);
}

static void world_insert(world *w, uint64_t id) {
    assert_true(id < MAX_IDS);
    uint64_t v = value_of(id);
    int rc;
    if (w->mode == KEYS_U64) {
        rc = hmap_put(w->m, &id, &v);
    } else {
        char buf[64];
        string_of(id, buf, sizeof buf);
        char *s = strdup(buf);
        assert_non_null(s);
        live_strings++;
        rc = hmap_put(w->m, &s, &v);
    }
    assert_int_equal(rc, w->present[id] ? 0 : 1);
    if (w->present[id])
        return;
    w->present[id] = 1;
    w->pos[id] = (uint32_t)w->live;
    w->live_ids[w->live++] = (uint32_t)id;
    for (int t = 0; t < MAX_TRACKERS; t++)
        if (w->trackers[t])
            w->trackers[t]->yields[id] = 0; /* a new key as far as the guarantee goes */
}

static uint64_t world_insert_fresh(world *w) {
    uint64_t id = w->next_fresh++;
    world_insert(w, id);
    return id;
}

static void world_delete(world *w, uint64_t id) {
    assert_true(w->present[id]);
    bool ok;
    if (w->mode == KEYS_U64) {
        ok = hmap_del(w->m, &id);
    } else {
        char buf[64], *p = buf;
        string_of(id, buf, sizeof buf);
        ok = hmap_del(w->m, &p);
    }
    assert_true(ok);
    w->present[id] = 0;
    uint32_t last = w->live_ids[--w->live];
    w->live_ids[w->pos[id]] = last;
    w->pos[last] = w->pos[id];
    for (int t = 0; t < MAX_TRACKERS; t++)
        if (w->trackers[t])
            w->trackers[t]->deleted[id] = 1;
}

static void world_delete_random(world *w) {
    if (w->live)
        world_delete(w, w->live_ids[prng_below(&w->rng, w->live)]);
}

static void world_fill(world *w, size_t n) {
    while (w->live < n)
        world_insert_fresh(w);
}

/* The map holds exactly the present ids, with their values. */
static void world_assert_consistent(world *w) {
    assert_int_equal(hmap_len(w->m), w->live);
    for (size_t i = 0; i < w->live; i++) {
        uint64_t id = w->live_ids[i];
        uint64_t *v;
        if (w->mode == KEYS_U64) {
            v = hmap_get(w->m, &id);
        } else {
            char buf[64], *p = buf;
            string_of(id, buf, sizeof buf);
            v = hmap_get(w->m, &p);
        }
        assert_non_null(v);
        assert_int_equal(*v, value_of(id));
    }
}

static hmap_stats stats_of(const world *w) {
    hmap_stats st;
    hmap_get_stats(w->m, &st);
    return st;
}

/* ---- trackers: one per open iteration ---- */

static void tracker_begin(world *w, tracker *t) {
    memset(t, 0, sizeof *t);
    t->start = malloc(MAX_IDS);
    t->deleted = calloc(MAX_IDS, 1);
    t->yields = calloc(MAX_IDS, 1);
    assert_true(t->start && t->deleted && t->yields);
    memcpy(t->start, w->present, MAX_IDS);
    int slot = 0;
    while (slot < MAX_TRACKERS && w->trackers[slot])
        slot++;
    assert_true(slot < MAX_TRACKERS);
    w->trackers[slot] = t;
    t->open = true;
    hmap_iter_init(&t->it, w->m);
}

/* Advances one step; false at the end. The yielded id goes to *id. */
static bool tracker_step(world *w, tracker *t, uint64_t *id) {
    void *k, *v;
    if (!hmap_iter_next(&t->it, &k, &v))
        return false;
    *id = id_of_key(w, k);
    if (*id >= MAX_IDS || !w->present[*id])
        fail_msg("yielded key %" PRIu64 ", which is not in the map", *id);
    if (t->yields[*id])
        fail_msg("key %" PRIu64 " yielded twice", *id);
    t->yields[*id] = 1;
    t->yielded++;
    if (*(uint64_t *)v != value_of(*id))
        fail_msg("key %" PRIu64 " yielded with a wrong value", *id);
    return true;
}

static void tracker_end(world *w, tracker *t) {
    hmap_iter_done(&t->it);
    t->open = false;
    for (int s = 0; s < MAX_TRACKERS; s++)
        if (w->trackers[s] == t)
            w->trackers[s] = NULL;
    size_t missed = 0;
    uint64_t first_missed = 0;
    for (uint64_t id = 0; id < MAX_IDS; id++) {
        if (t->start[id] && !t->deleted[id] && !t->yields[id]) {
            if (!missed++)
                first_missed = id;
        }
    }
    free(t->start);
    free(t->deleted);
    free(t->yields);
    if (missed)
        fail_msg("%zu keys present throughout were never yielded (first: %" PRIu64 ")", missed, first_missed);
}

/* ---- plans: what the loop body does ---- */

typedef struct plan {
    size_t initial;   /* entries before the iteration starts */
    size_t grow_to;   /* insert until this many (0: no growing phase) */
    size_t shrink_to; /* then delete down to this many (0: no shrinking phase) */
    unsigned ins_per_step, del_per_step;
    double del_current; /* chance of deleting the key just yielded */
    double reinsert;    /* chance of inserting it again right after */
} plan;

typedef struct outcome {
    hmap_stats before, after;
    size_t steps;
    size_t max_live, min_live;
} outcome;

/* One step of the loop body after `id` was yielded. `shrinking` flips when grow_to is reached. */
static void plan_step(world *w, const plan *p, uint64_t id, bool *shrinking) {
    if (prng_chance(&w->rng, p->del_current) && w->present[id]) {
        world_delete(w, id);
        if (prng_chance(&w->rng, p->reinsert))
            world_insert(w, id);
    }
    if (!*shrinking && p->grow_to) {
        for (unsigned i = 0; i < p->ins_per_step && w->live < p->grow_to; i++)
            world_insert_fresh(w);
        if (w->live >= p->grow_to)
            *shrinking = p->shrink_to != 0;
    } else if (*shrinking || !p->grow_to) {
        for (unsigned i = 0; i < p->del_per_step && w->live > p->shrink_to; i++)
            world_delete_random(w);
    }
}

static outcome run_plan(world *w, const plan *p) {
    outcome o;
    memset(&o, 0, sizeof o);
    world_fill(w, p->initial);
    o.before = stats_of(w);
    o.max_live = o.min_live = w->live;
    tracker t;
    tracker_begin(w, &t);
    bool shrinking = !p->grow_to;
    uint64_t id;
    while (tracker_step(w, &t, &id)) {
        plan_step(w, p, id, &shrinking);
        o.steps++;
        if (w->live > o.max_live)
            o.max_live = w->live;
        if (w->live < o.min_live)
            o.min_live = w->live;
    }
    tracker_end(w, &t);
    o.after = stats_of(w);
    world_assert_consistent(w);
    return o;
}

/* ---- the tests ---- */

static void grow_inside_loop(key_mode mode, bool poor, size_t initial, size_t target) {
    world w;
    world_init(&w, mode, poor, 0x17e4 + initial);
    plan p = {.initial = initial,
              .grow_to = target,
              .ins_per_step = (unsigned)((target - initial) / initial + 4),
              .del_current = 0.05,
              .reinsert = 0.5};
    outcome o = run_plan(&w, &p);
    assert_int_equal(o.max_live >= target - 1, true); /* the loop really grew the map to the target */
    assert_true(o.after.grows > o.before.grows);
    print_message("  grow %zu -> %zu: %zu steps, %" PRIu64 " grows during the loop\n", initial, target,
                  o.steps, o.after.grows - o.before.grows);
    world_destroy(&w);
}

static void test_grow_from_1_to_100k(void **state) {
    (void)state;
    grow_inside_loop(KEYS_U64, false, 1, 100000);
}

static void test_grow_from_64_to_100k(void **state) {
    (void)state;
    grow_inside_loop(KEYS_U64, false, 64, 100000);
}

static void test_grow_from_1000_to_100k(void **state) {
    (void)state;
    grow_inside_loop(KEYS_U64, false, 1000, 100000);
}

static void test_grow_poor_hash(void **state) {
    (void)state;
    grow_inside_loop(KEYS_U64, true, 100, 20000);
}

static void shrink_inside_loop(key_mode mode, bool poor, size_t initial, size_t floor) {
    world w;
    world_init(&w, mode, poor, 0x5411 + initial);
    plan p = {.initial = initial,
              .shrink_to = floor,
              .del_per_step = (unsigned)(initial / floor + 2),
              .del_current = 0.2,
              .reinsert = 0.3};
    outcome o = run_plan(&w, &p);
    assert_true(o.min_live <= floor);
    assert_true(o.after.shrinks > o.before.shrinks);
    print_message("  shrink %zu -> %zu: %zu steps, %" PRIu64 " shrinks during the loop\n", initial, floor,
                  o.steps, o.after.shrinks - o.before.shrinks);
    world_destroy(&w);
}

static void test_shrink_100k_to_1000(void **state) {
    (void)state;
    shrink_inside_loop(KEYS_U64, false, 100000, 1000);
}

static void test_shrink_100k_to_10(void **state) {
    (void)state;
    shrink_inside_loop(KEYS_U64, false, 100000, 10);
}

static void test_shrink_poor_hash(void **state) {
    (void)state;
    shrink_inside_loop(KEYS_U64, true, 20000, 100);
}

static void test_grow_then_shrink_in_one_iteration(void **state) {
    (void)state;
    world w;
    world_init(&w, KEYS_U64, false, 0x6575);
    plan p = {.initial = 1000,
              .grow_to = 60000,
              .shrink_to = 100,
              .ins_per_step = 120,
              .del_per_step = 120,
              .del_current = 0.1,
              .reinsert = 0.5};
    outcome o = run_plan(&w, &p);
    assert_int_equal(o.max_live, 60000);
    assert_true(o.after.grows > o.before.grows);
    assert_true(o.after.shrinks > o.before.shrinks);
    world_destroy(&w);
}

/* A map at the edge of its load factor has many overflow chains; deleting most entries without shrinking
 * leaves chains whose first bucket is empty while their overflow buckets are not. Plain iterations (no
 * writes) walk all of that bucket by bucket and must still yield every entry exactly once, and so must one
 * that deletes and inserts again a third of the keys it yields — for 8-byte keys (their own records) and
 * for a custom hash (stored hashes). */
static uint64_t custom_mix_hash(const void *key, uint64_t seed) {
    uint64_t k;
    memcpy(&k, key, sizeof k);
    k ^= seed;
    k *= 0x9e3779b97f4a7c15u;
    return k ^ (k >> 29);
}

static void iterate_sparse_chains(uint64_t (*hash)(const void *, uint64_t)) {
    enum { N = 200000 }; /* 2^15 buckets at 6.1 entries each: many chains */
    hmap_type type = {.key_size = 8, .val_size = 8, .hash = hash};
    hmap_options opts = {.no_shrink = true};
    hmap *m = hmap_new_opts(&type, 0, &opts);
    assert_non_null(m);
    static unsigned char present[N], seen[N];
    for (uint64_t i = 0; i < N; i++) {
        uint64_t key = i * 0x9e3779b97f4a7c15u, val = i;
        assert_int_equal(hmap_put(m, &key, &val), 1);
        present[i] = 1;
    }
    for (uint64_t i = 0; i < N; i++)
        if ((i * 7919) % 10 < 6) {
            uint64_t key = i * 0x9e3779b97f4a7c15u;
            assert_true(hmap_del(m, &key));
            present[i] = 0;
        }
    for (int pass = 0; pass < 3; pass++) {
        memset(seen, 0, sizeof seen);
        size_t n = 0;
        hmap_iter it;
        void *k, *v;
        hmap_iter_init(&it, m);
        while (hmap_iter_next(&it, &k, &v)) {
            uint64_t i = *(uint64_t *)v;
            assert_true(i < N && present[i] && !seen[i]);
            seen[i] = 1;
            n++;
            if (pass == 2 && i % 3 == 0) { /* deleted and inserted again: still yielded once */
                uint64_t key = *(uint64_t *)k;
                assert_true(hmap_del(m, &key));
                assert_int_equal(hmap_put(m, &key, &i), 1);
            }
        }
        assert_int_equal(n, hmap_len(m));
    }
    hmap_free(m);
}

static void test_sparse_chains_iterated(void **state) {
    (void)state;
    iterate_sparse_chains(NULL);
    iterate_sparse_chains(custom_mix_hash);
}

/* The inverse of the core's mix64 (base/mix.h: xor-shifts by 33, which undo themselves, and two odd
 * multiplies), so that a custom hash can choose what the map's hash of each key will be: the key itself. */
static uint64_t inverse_odd(uint64_t c) {
    uint64_t x = c; /* Newton's iteration doubles the correct low bits each step: 3, 6, 12, 24, 48, 96 */
    for (int i = 0; i < 5; i++)
        x *= 2 - c * x;
    return x;
}
static uint64_t map_hash_is_key(const void *key, uint64_t seed) {
    (void)seed;
    uint64_t h;
    memcpy(&h, key, 8);
    h ^= h >> 33;
    h *= inverse_odd(0xc4ceb9fe1a85ec53ULL);
    h ^= h >> 33;
    h *= inverse_odd(0xff51afd7ed558ccdULL);
    h ^= h >> 33;
    return h;
}

/* A write inside the window a plain iteration hands out (a run of consecutive buckets, hmap.h) must leave
 * exactly the entries not yet taken still to come. Keys are their own hashes (map_hash_is_key): 256
 * buckets of 4 keys each, bucket b holding the hashes with top byte b. After every `stride`-th entry
 * yielded, a key of the same bucket not yet yielded is deleted for good, the entry yielded is deleted, a
 * fresh key of that bucket takes its slot, and the entry yielded is inserted again — into the freed slot
 * of the other key, which the window had handed out and not yet taken. It must not come again, the deleted
 * key must not come at all, every other key comes once. */
static void write_inside_a_run(unsigned stride) {
    enum { BUCKETS = 256, PER_BUCKET = 4, N = BUCKETS * PER_BUCKET, FRESH = 256 };
    static unsigned char present[N + FRESH], seen[N + FRESH];
    hmap_type type = {.key_size = 8, .val_size = 8, .hash = map_hash_is_key};
    hmap *m = hmap_new(&type, 0);
    assert_non_null(m);
    uint64_t keys[N + FRESH];
    for (uint64_t i = 0; i < N + FRESH; i++) { /* top byte: the bucket; low byte: distinct tophash bytes */
        uint64_t bucket = i < N ? i / PER_BUCKET : (i - N) % BUCKETS;
        keys[i] = bucket << 56 | i << 8 | (0x10 + i % 0xe0);
    }
    memset(present, 0, sizeof present);
    memset(seen, 0, sizeof seen);
    for (uint64_t i = 0; i < N; i++) {
        assert_int_equal(hmap_put(m, &keys[i], &i), 1);
        present[i] = 1;
    }
    unsigned steps = 0, fresh = N;
    hmap_iter it;
    void *k, *v;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, &v)) {
        uint64_t i = *(uint64_t *)v;
        assert_true(i < N + FRESH && present[i]);
        if (seen[i]++)
            fail_msg("key %" PRIu64 " yielded twice (stride %u, step %u)", i, stride, steps);
        if (++steps % stride || i >= N || fresh == N + FRESH)
            continue;
        uint64_t first = i / PER_BUCKET * PER_BUCKET, other = first;
        while (other < first + PER_BUCKET && (other == i || seen[other] || !present[other]))
            other++;
        if (other == first + PER_BUCKET)
            continue; /* the rest of the bucket has been yielded */
        uint64_t f = fresh++;
        keys[f] = ((keys[i] & ~(uint64_t)0xff) ^ (uint64_t)1 << 40) | 0xfe; /* bucket i's, a new tophash */
        assert_true(hmap_del(m, &keys[other]));
        present[other] = 0;
        assert_true(hmap_del(m, &keys[i]));
        assert_int_equal(hmap_put(m, &keys[f], &f), 1);
        present[f] = 1;
        assert_int_equal(hmap_put(m, &keys[i], &i), 1);
    }
    for (uint64_t i = 0; i < N; i++)
        if (present[i] && !seen[i])
            fail_msg("key %" PRIu64 ", present throughout, never yielded (stride %u)", i, stride);
    hmap_free(m);
}

static void test_write_inside_a_run(void **state) {
    (void)state;
    for (unsigned stride = 1; stride <= 40; stride++)
        write_inside_a_run(stride);
}

/* map_hash_is_key with byte 4 of the key left out: keys that differ only there have equal 64-bit hashes. */
static uint64_t hash_ignoring_byte_4(const void *key, uint64_t seed) {
    uint64_t k;
    memcpy(&k, key, 8);
    k &= ~((uint64_t)0xff << 32);
    return map_hash_is_key(&k, seed);
}

/* A key inserted inside the loop with the same 64-bit hash as a key not yet yielded must not take that
 * key's place: both are in the chain the iteration is taking. Keys 0..n-1 go in slot after slot, all in
 * one chain; after the first entry yielded, a pending key may be deleted (freeing its slot), and a new key
 * with the hash of key `target` is put, into the chain's first free slot, ahead of `target`. */
typedef struct collide_case {
    unsigned n;         /* keys inserted first (distinct tophash bytes) */
    int tombstone;      /* deleted before the iteration, or -1 */
    unsigned target;    /* the new key has this key's hash */
    int freed, or_else; /* deleted at the first step (or_else if freed came first; -1: none) */
    unsigned B;         /* the map's B: all keys are in bucket 0 */
} collide_case;

static void colliding_write_in_loop(const collide_case *c) {
    hmap_type type = {.key_size = 8, .val_size = 8, .hash = hash_ignoring_byte_4};
    hmap_options opts = {.no_shrink = true};
    hmap *m = hmap_new_opts(&type, 0, &opts);
    assert_non_null(m);
    enum { MAX = 16 };
    uint64_t keys[MAX + 1];
    unsigned char seen[MAX + 1] = {0}, present[MAX + 1] = {0};
    const uint64_t fresh = c->n;
    for (uint64_t i = 0; i < c->n; i++) { /* top bit 0: bucket 0 of any B */
        keys[i] = i << 8 | (0x10 + i);
        assert_int_equal(hmap_put(m, &keys[i], &i), 1);
        present[i] = 1;
    }
    hmap_stats st;
    hmap_get_stats(m, &st);
    assert_int_equal(st.B, c->B);
    if (c->tombstone >= 0) {
        assert_true(hmap_del(m, &keys[c->tombstone]));
        present[c->tombstone] = 0;
    }
    keys[fresh] = keys[c->target] | (uint64_t)0x5a << 32; /* the hash of keys[target], another key */
    hmap_iter it;
    void *k, *v;
    size_t steps = 0;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, &v)) {
        uint64_t i = *(uint64_t *)v;
        assert_true(i <= fresh && present[i] && !seen[i]);
        seen[i] = 1;
        if (steps++ == 0) {
            int freed = (int)i == c->freed ? c->or_else : c->freed;
            if (freed >= 0) {
                assert_true(hmap_del(m, &keys[freed]));
                present[freed] = 0;
            }
            assert_int_equal(hmap_put(m, &keys[fresh], &fresh), 1);
            present[fresh] = 1;
        }
    }
    for (uint64_t i = 0; i < c->n; i++)
        if (present[i] && !seen[i])
            fail_msg("key %" PRIu64 " (target %u), present throughout, never yielded", i, c->target);
    hmap_free(m);
}

static void test_colliding_insert_in_loop(void **state) {
    (void)state;
    for (int trial = 0; trial < 64; trial++) { /* each iteration starts at its own place in hash space */
        /* One chain of 2 buckets (B = 1): the overflow bucket holds a tombstone, then key 9. The new key
         * goes into the tombstone, or (key 6 deleted) into the first bucket. */
        colliding_write_in_loop(&(collide_case){.n = 10, .tombstone = 8, .target = 9, .freed = -1, .B = 1});
        colliding_write_in_loop(
            &(collide_case){.n = 10, .tombstone = 8, .target = 7, .freed = 6, .or_else = -1, .B = 1});
        /* One bucket with room (B = 0): the new key goes in by hmap_put's inline path (a first bucket that
         * ends its chain), into the slot of key 1 (or 2) deleted in the loop. */
        colliding_write_in_loop(
            &(collide_case){.n = 6, .tombstone = -1, .target = 4, .freed = 1, .or_else = 2, .B = 0});
    }
}

static void test_several_iterations_open(void **state) {
    (void)state;
    world w;
    world_init(&w, KEYS_U64, false, 0x3333);
    world_fill(&w, 2000);
    hmap_stats before = stats_of(&w);
    tracker t[3];
    bool open[3] = {true, false, false};
    tracker_begin(&w, &t[0]);
    size_t round = 0;
    size_t opened = 1;
    while (open[0] || open[1] || open[2] || opened < 3) {
        /* Open the second and third iterations later, in the middle of the growth. */
        if (opened < 3 && round == 500 * opened) {
            tracker_begin(&w, &t[opened]);
            open[opened++] = true;
        }
        for (int i = 0; i < 3; i++) {
            uint64_t id;
            if (open[i] && !tracker_step(&w, &t[i], &id)) {
                tracker_end(&w, &t[i]);
                open[i] = false;
            }
        }
        if (round < 3000) { /* grow */
            for (int i = 0; i < 12; i++)
                world_insert_fresh(&w);
            world_delete_random(&w);
        } else { /* then shrink */
            for (int i = 0; i < 16; i++)
                world_delete_random(&w);
        }
        round++;
    }
    hmap_stats after = stats_of(&w);
    assert_true(after.grows > before.grows);
    assert_true(after.shrinks > before.shrinks);
    world_assert_consistent(&w);
    world_destroy(&w);
}

/* Runs a mutating iteration that starts while the map is in `phase`. */
static void iterate_from_phase(world *w, hmap_phase phase, bool grow_meanwhile) {
    assert_int_equal(stats_of(w).phase, phase);
    tracker t;
    tracker_begin(w, &t);
    uint64_t id;
    size_t steps = 0;
    while (tracker_step(w, &t, &id)) {
        if (prng_chance(&w->rng, 0.2))
            world_delete(w, id);
        if (grow_meanwhile) {
            for (int i = 0; i < 3; i++)
                world_insert_fresh(w);
            world_delete_random(w);
        } else {
            for (int i = 0; i < 3; i++)
                world_delete_random(w);
            if (steps % 4 == 0)
                world_insert_fresh(w);
        }
        steps++;
    }
    tracker_end(w, &t);
    world_assert_consistent(w);
}

static void test_start_during_grow(void **state) {
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        world w;
        world_init(&w, KEYS_U64, false, 0x4747 + (uint64_t)variant);
        world_fill(&w, 26000);
        /* Insert until a grow starts, then a little further so that it is partly done (a grow moves up to
         * 1025 old buckets per insert: from 2^12 buckets it lasts 4 inserts). */
        size_t guard = 0;
        while (stats_of(&w).phase != HMAP_GROWING && guard++ < 100000)
            world_insert_fresh(&w);
        assert_int_equal(stats_of(&w).phase, HMAP_GROWING);
        for (int i = 0; i < 1 && stats_of(&w).phase == HMAP_GROWING; i++)
            world_insert_fresh(&w);
        if (stats_of(&w).phase == HMAP_GROWING)
            iterate_from_phase(&w, HMAP_GROWING, variant == 0);
        else
            fail_msg("the grow finished within 1 insert: cannot start an iteration in its middle");
        world_destroy(&w);
    }
}

static void test_start_during_shrink(void **state) {
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        world w;
        world_init(&w, KEYS_U64, false, 0x5151 + (uint64_t)variant);
        world_fill(&w, 50000);
        size_t guard = 0;
        while (stats_of(&w).phase != HMAP_SHRINKING && w.live > 0 && guard++ < 100000)
            world_delete_random(&w);
        assert_int_equal(stats_of(&w).phase, HMAP_SHRINKING);
        for (int i = 0; i < 5 && stats_of(&w).phase == HMAP_SHRINKING; i++)
            world_delete_random(&w);
        assert_int_equal(stats_of(&w).phase, HMAP_SHRINKING);
        iterate_from_phase(&w, HMAP_SHRINKING, variant == 0);
        world_destroy(&w);
    }
}

static void test_owned_strings_deleted_and_reinserted(void **state) {
    (void)state;
    for (int poor = 0; poor < 2; poor++) {
        world w;
        world_init(&w, KEYS_STRING, poor != 0, 0x5757 + (uint64_t)poor);
        plan grow = {.initial = 200,
                     .grow_to = poor ? 8000 : 30000,
                     .shrink_to = 50,
                     .ins_per_step = 40,
                     .del_per_step = 40,
                     .del_current = 0.5,
                     .reinsert = 0.6};
        outcome o = run_plan(&w, &grow);
        assert_true(o.after.grows > o.before.grows);
        assert_true(o.after.shrinks > o.before.shrinks);
        assert_int_equal(live_strings, (long)w.live);
        /* Delete and re-insert the yielded key at every step, at a constant size. */
        plan churn = {.del_current = 1.0, .reinsert = 0.9, .shrink_to = 50};
        run_plan(&w, &churn);
        assert_int_equal(live_strings, (long)w.live);
        world_destroy(&w);
    }
}

/* Every key has the same 64-bit hash: one chain holds everything, in every array, and the iteration can
 * only tell keys apart by their position in the chain, which deletes, re-inserts and evacuation shift. */
static uint64_t constant_hash(const void *k, uint64_t seed) {
    (void)k;
    (void)seed;
    return 0x1234;
}

static void test_all_keys_one_hash(void **state) {
    (void)state;
    for (uint64_t seed = 0; seed < 8; seed++) {
        world w;
        world_init_hash(&w, KEYS_U64, false, 0xc0 + seed, constant_hash);
        plan p = {.initial = 300,
                  .grow_to = 3000,
                  .shrink_to = 20,
                  .ins_per_step = 12,
                  .del_per_step = 12,
                  .del_current = 0.3,
                  .reinsert = 0.5};
        outcome o = run_plan(&w, &p);
        if (seed == 0)
            print_message("  one hash for all keys: %zu steps, %" PRIu64 " grows, %" PRIu64
                          " shrinks in the loop\n",
                          o.steps, o.after.grows - o.before.grows, o.after.shrinks - o.before.shrinks);
        assert_int_equal(o.max_live, 3000);
        assert_true(o.after.shrinks > o.before.shrinks);
        world_destroy(&w);
    }
}

/* Same-size growth while the iteration is open: groups of colliding keys come and go inside the loop. */
static void test_same_size_growth_inside_loop(void **state) {
    (void)state;
    world w;
    world_init_hash(&w, KEYS_U64, false, 0x55e, grouped_u64_hash);
    uint64_t next_group = 0, oldest_group = 0;
    for (; next_group < 40; next_group++)
        for (uint64_t j = 0; j < 64; j++)
            world_insert(&w, (next_group << 6) | j);
    hmap_stats before = stats_of(&w);
    tracker t;
    tracker_begin(&w, &t);
    uint64_t id;
    size_t steps = 0;
    while (tracker_step(&w, &t, &id)) {
        if (++steps % 8)
            continue;
        for (uint64_t j = 0; j < 64; j++) /* a new group in, the oldest out: constant size */
            world_insert(&w, (next_group << 6) | j);
        for (uint64_t j = 0; j < 64; j++)
            if (w.present[(oldest_group << 6) | j])
                world_delete(&w, (oldest_group << 6) | j);
        next_group++;
        oldest_group++;
        assert_true((next_group << 6) < MAX_IDS);
    }
    tracker_end(&w, &t);
    hmap_stats after = stats_of(&w);
    print_message("  grouped churn inside one iteration: %zu steps, %" PRIu64 " same-size grows\n", steps,
                  after.same_size_grows - before.same_size_grows);
    assert_true(after.same_size_grows > before.same_size_grows);
    world_assert_consistent(&w);
    world_destroy(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_from_1_to_100k),
        cmocka_unit_test(test_grow_from_64_to_100k),
        cmocka_unit_test(test_grow_from_1000_to_100k),
        cmocka_unit_test(test_grow_poor_hash),
        cmocka_unit_test(test_shrink_100k_to_1000),
        cmocka_unit_test(test_shrink_100k_to_10),
        cmocka_unit_test(test_shrink_poor_hash),
        cmocka_unit_test(test_grow_then_shrink_in_one_iteration),
        cmocka_unit_test(test_several_iterations_open),
        cmocka_unit_test(test_start_during_grow),
        cmocka_unit_test(test_start_during_shrink),
        cmocka_unit_test(test_same_size_growth_inside_loop),
        cmocka_unit_test(test_all_keys_one_hash),
        cmocka_unit_test(test_sparse_chains_iterated),
        cmocka_unit_test(test_write_inside_a_run),
        cmocka_unit_test(test_colliding_insert_in_loop),
        cmocka_unit_test(test_owned_strings_deleted_and_reinserted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
