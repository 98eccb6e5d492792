/* SPDX-License-Identifier: MIT */
/*
 * test_model.c — differential testing: seeded random operations on hmap and on the reference model,
 * through the shared harness (support/diff.h), which compares every answer and, at checkpoints, the
 * whole map, the drops and the memory.
 *
 * One cmocka test per configuration: key sizes 1, 4, 8, 16, 40, 200 bytes and string keys (char * owned
 * by the map, freed by key_drop), values of 0 (a set), 8 (drops counted) and 100 bytes (each value owns a
 * heap block that val_drop frees), with the built-in hash and with a poor one that reads the first byte
 * only (so whole groups of keys share one 64-bit hash); plus a few with a good custom hash and with a
 * constant one. Each configuration runs a schedule of phases that make the map grow to a few thousand
 * entries, shrink to 0 and come back, with churn in between; inside all of it, rarely, clear, reserve,
 * compact, a value put straight from hmap_get, and iterations: most run to the end with writes inside
 * (also through the iterator's own key and value pointers), some are abandoned half way, some run two at
 * a time, interleaved.
 *
 * Knobs: HMAP_FUZZ_OPS (total operations over all configurations, default 1320000), HMAP_FUZZ_SEED,
 * HMAP_FUZZ_STRICT (default 1: every rule; 0 or a list leaves rules out, see support/diff.h). The seed and
 * operation number are in every failure message.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "diff.h"
#include "hmap.h"
#include "model.h"

#define DEFAULT_OPS 1320000u
#define DEFAULT_SEED 0x5eed2026u

typedef struct config {
    char name[48];
    size_t key_size; /* 0: string keys */
    size_t val_size;
    diff_hash hash;
} config;

typedef enum { PHASE_GROW, PHASE_SHRINK, PHASE_CHURN } phase;

typedef struct run {
    const config *cfg;
    diff d;
    prng rng;
    uint64_t op, ops;
    phase ph;
    size_t target;     /* GROW: the size to reach */
    uint64_t id_space; /* new keys are drawn from ids below this */
    uint64_t phase_end;
    unsigned emptied; /* coverage, printed and checked at the end */
} run;

/* ---- keys ---- */

static uint64_t random_id(run *r) {
    uint64_t space = r->id_space;
    if (r->cfg->key_size == 1 && space > 256)
        space = 256;
    return prng_below(&r->rng, space);
}

/* Usually (with `existing` and a non-empty map) a key the map holds, else a random one. */
static uint64_t pick(run *r, double existing) {
    if (prng_chance(&r->rng, existing))
        return diff_existing_id(&r->d, prng_next(&r->rng), random_id(r));
    return random_id(r);
}

/* ---- operations ---- */

static void some_write(run *r, unsigned put, unsigned assign, unsigned get, unsigned del, unsigned take) {
    uint64_t x = prng_below(&r->rng, put + assign + get + del + take);
    if (x < put)
        diff_put(&r->d, pick(r, 0.3));
    else if ((x -= put) < assign)
        diff_assign(&r->d, pick(r, 0.3));
    else if ((x -= assign) < get)
        diff_get(&r->d, pick(r, 0.5));
    else if ((x -= get) < del)
        diff_del(&r->d, pick(r, 0.75));
    else
        diff_take(&r->d, pick(r, 0.75), prng_chance(&r->rng, 0.5), prng_chance(&r->rng, 0.5));
}

/* A write inside an iteration, just after `slot` yielded: often through the yielded pointers. */
static void write_inside(run *r, int slot) {
    uint64_t x = prng_below(&r->rng, 100);
    if (x < 10)
        diff_iter_alias(&r->d, slot, (diff_alias)prng_below(&r->rng, DIFF_ALIAS_KINDS), pick(r, 0.5));
    else if (x < 20)
        diff_del(&r->d, r->d.iters[slot].id); /* the key just yielded, by a copy */
    else if (x < 78)
        some_write(r, 25, 7, 16, 8, 4);
}

/* One iteration with writes inside; sometimes abandoned part way, sometimes beside a second one. */
static void op_iterate(run *r) {
    int a = diff_iter_open(&r->d);
    int b = prng_chance(&r->rng, 0.2) ? diff_iter_open(&r->d) : -1;
    uint64_t abandon_after =
        prng_chance(&r->rng, 0.15) ? prng_below(&r->rng, 2 * hmap_len(r->d.m) + 1) : UINT64_MAX;
    for (uint64_t n = 0; diff_iter_is_open(&r->d, a) || diff_iter_is_open(&r->d, b); n++) {
        int slot = diff_iter_is_open(&r->d, b) && (!diff_iter_is_open(&r->d, a) || prng_chance(&r->rng, 0.5))
                       ? b
                       : a;
        if (n == abandon_after) {
            diff_iter_abandon(&r->d, slot);
            continue;
        }
        if (diff_iter_next(&r->d, slot))
            write_inside(r, slot);
    }
}

static void op_reserve(run *r) {
    check(diff_reserve(&r->d, hmap_len(r->d.m) + prng_below(&r->rng, 6000)) == 0, "%s hmap_reserve failed",
          diff_where(&r->d));
}

static void op_compact(run *r) {
    check(diff_compact(&r->d) == 0, "%s hmap_compact failed", diff_where(&r->d));
}

/* Operation weights per phase, in per mille: put, assign, get, del, take; the rest is rare ops. */
static void one_op(run *r) {
    static const unsigned weights[3][5] = {
        [PHASE_GROW] = {550, 200, 150, 40, 20},
        [PHASE_SHRINK] = {50, 20, 130, 500, 250},
        [PHASE_CHURN] = {250, 100, 250, 250, 100},
    };
    const unsigned *w = weights[r->ph];
    uint64_t x = prng_below(&r->rng, 1000);
    if (x < w[0] + w[1] + w[2] + w[3] + w[4]) {
        some_write(r, w[0], w[1], w[2], w[3], w[4]);
        return;
    }
    uint64_t rare = prng_below(&r->rng, 1000);
    if (rare < 1) /* about once per 20k operations */
        diff_clear(&r->d);
    else if (rare < 34)
        op_iterate(r);
    else if (rare < 134)
        op_reserve(r);
    else if (rare < 234)
        op_compact(r);
    else if (rare < 334)
        diff_put_from_get(&r->d, pick(r, 0.5), pick(r, 0.9));
    else
        diff_get(&r->d, pick(r, 0.5));
}

/* ---- the schedule: grow, shrink to 0, churn, again ---- */

static void next_phase(run *r) {
    /* Short phases, so that a long run (HMAP_FUZZ_OPS) repeats the whole cycle many times. */
    uint64_t budget = (r->ops / 4 < 10000 ? r->ops / 4 : 10000) + 1;
    switch (r->ph) {
    case PHASE_GROW:
        r->ph = PHASE_SHRINK;
        budget *= 3; /* emptying ~5000 entries takes ~10k operations (half of them remove) */
        break;
    case PHASE_SHRINK:
        r->ph = PHASE_CHURN;
        budget /= 2;
        break;
    case PHASE_CHURN:
        r->ph = PHASE_GROW;
        budget *= 2; /* growing to a few thousand (or back to 0) takes ~2 operations per entry */
        break;
    }
    r->target = 1000 + prng_below(&r->rng, 4000);
    if (r->cfg->key_size == 1)
        r->target = 100 + prng_below(&r->rng, 150);
    if (r->cfg->hash == DIFF_HASH_CONSTANT) /* every lookup compares against every key */
        r->target = 200 + prng_below(&r->rng, 800);
    r->id_space = r->target * 4;
    r->phase_end = r->op + budget;
}

static bool phase_done(const run *r) {
    size_t len = hmap_len(r->d.m);
    if (r->op >= r->phase_end)
        return true;
    if (r->ph == PHASE_GROW)
        return len >= r->target;
    if (r->ph == PHASE_SHRINK)
        return len == 0;
    return false;
}

static uint64_t ops_per_config;

/* The schedule must have done what it is for: grown, shrunk to 0, iterated, and the map must have resized
 * both ways. Printed so that a run shows what it covered. */
static void assert_coverage(run *r) {
    hmap_stats st;
    hmap_get_stats(r->d.m, &st);
    print_message("  %-24s max len %5zu, emptied %u times, %" PRIu64 " iterations (%" PRIu64
                  " abandoned), %" PRIu64 " writes through map pointers, grows %" PRIu64 ", shrinks %" PRIu64
                  "\n",
                  r->cfg->name, r->d.max_len, r->emptied, r->d.iterations_done, r->d.iterations_abandoned,
                  r->d.alias_writes, st.grows, st.shrinks);
    if (r->ops < 20000)
        return; /* a short run (HMAP_FUZZ_OPS) need not cover everything */
    assert_true(r->d.max_len >= (r->cfg->key_size == 1 ? 100 : 200));
    assert_true(r->emptied >= 1);
    assert_true(r->d.iterations_done >= 5);
    assert_true(st.grows >= 3);
    assert_true(st.shrinks >= 1);
}

/* FNV-1a of the configuration's name: each configuration gets its own stream from the one seed. */
static uint64_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void run_config(void **state) {
    const config *cfg = *state;
    run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    uint64_t seed = env_u64("HMAP_FUZZ_SEED", DEFAULT_SEED) ^ name_hash(cfg->name);
    r.rng.s = seed;
    r.ops = ops_per_config;
    diff_config dc = {
        .name = cfg->name,
        .key_size = cfg->key_size,
        .val_size = cfg->val_size,
        .hash = cfg->hash,
        .owned_values = cfg->val_size >= 100,
        .count_drops = true,
        .custom_allocator = prng_chance(&r.rng, 0.5),
        .fixed_seed = true, /* a failure reproduces from the printed seed */
        .seed = seed,
        .hint = prng_below(&r.rng, 2) ? 0 : prng_below(&r.rng, 3000),
        .rules = diff_rules_from_env(),
    };
    diff_init(&r.d, &dc);
    r.ph = PHASE_CHURN;
    next_phase(&r); /* starts with GROW */
    for (r.op = 0; r.op < r.ops; r.op++) {
        one_op(&r);
        if (r.op % 2000 == 0)
            diff_check(&r.d);
        if (phase_done(&r)) {
            r.emptied += r.ph == PHASE_SHRINK && hmap_len(r.d.m) == 0;
            diff_check(&r.d);
            next_phase(&r);
        }
    }
    diff_check(&r.d);
    assert_coverage(&r);
    diff_destroy(&r.d);
}

/* ---- the configurations ---- */

static const size_t KEY_SIZES[] = {1, 4, 8, 16, 40, 200, 0};
static const size_t VAL_SIZES[] = {0, 8, 100};
static const diff_hash HASHES[] = {DIFF_HASH_BUILTIN, DIFF_HASH_POOR};
enum { NKEYS = 7, NVALS = 3, NHASHES = 2, NEXTRA = 4, NCONFIGS = NKEYS * NVALS * NHASHES + NEXTRA };

static const char *const HASH_NAMES[DIFF_HASH_KINDS] = {"hash", "goodhash", "poorhash", "consthash"};

static config configs[NCONFIGS];

static void name_config(config *c) {
    if (c->key_size)
        snprintf(c->name, sizeof c->name, "key%zu_val%zu_%s", c->key_size, c->val_size, HASH_NAMES[c->hash]);
    else
        snprintf(c->name, sizeof c->name, "cstr_val%zu_%s", c->val_size, HASH_NAMES[c->hash]);
}

int main(void) {
    uint64_t total_ops = env_u64("HMAP_FUZZ_OPS", DEFAULT_OPS);
    ops_per_config = total_ops / NCONFIGS + 1;
    print_message("test_model: %" PRIu64 " operations in %d configurations, seed 0x%" PRIx64
                  " (HMAP_FUZZ_OPS, HMAP_FUZZ_SEED), rules checked: %s (HMAP_FUZZ_STRICT)\n",
                  ops_per_config * NCONFIGS, NCONFIGS, env_u64("HMAP_FUZZ_SEED", DEFAULT_SEED),
                  diff_rules_name(diff_rules_from_env()));
    struct CMUnitTest tests[NCONFIGS];
    size_t n = 0;
    for (size_t k = 0; k < NKEYS; k++)
        for (size_t v = 0; v < NVALS; v++)
            for (size_t h = 0; h < NHASHES; h++, n++)
                configs[n] = (config){"", KEY_SIZES[k], VAL_SIZES[v], HASHES[h]};
    configs[n++] = (config){"", 8, 8, DIFF_HASH_GOOD};
    configs[n++] = (config){"", 0, 100, DIFF_HASH_GOOD};
    configs[n++] = (config){"", 8, 8, DIFF_HASH_CONSTANT};
    configs[n++] = (config){"", 0, 8, DIFF_HASH_CONSTANT};
    for (size_t i = 0; i < n; i++) {
        name_config(&configs[i]);
        tests[i] = (struct CMUnitTest){configs[i].name, run_config, NULL, NULL, &configs[i]};
    }
    return _cmocka_run_group_tests("test_model", tests, n, NULL, NULL);
}
