/*
 * test_model.c — differential fuzzing: random operations on hmap and on the reference model (model.h),
 * results compared call by call, full contents compared at checkpoints.
 *
 * One cmocka test per configuration: key sizes 1, 4, 8, 16, 40, 200 bytes and string keys (char *
 * owned by the map, freed by key_drop), values of 0 (a set), 8 and 100 bytes, with the built-in hash and
 * with a poor hash that looks at the first byte only (so that many keys share one 64-bit hash). Each
 * configuration runs a schedule of phases that make the map grow to a few thousand entries, shrink to 0
 * and come back, with churn in between; inside all of it, rarely, clear, reserve, compact and whole
 * iterations that delete, insert and replace while they run (checked against the iteration guarantee).
 *
 * Ownership is checked by counting: every key and value that leaves the map must be dropped exactly once
 * (put-replace, assign of a present key, del, take with NULL outs, clear, free); for string keys the test
 * also counts live strings, which must equal the map's length at every checkpoint and 0 at the end.
 *
 * Knobs: HMAP_FUZZ_OPS (total operations over all configurations, default 1200000), HMAP_FUZZ_SEED.
 * The seed and the operation number are printed in every failure message.
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

#include "core/check.h" /* the consistency walker, from the library's own sources */

#define DEFAULT_OPS 1200000u
#define DEFAULT_SEED 0x5eed2026u
#define MAX_KEY 256
#define MAX_VAL 128

typedef struct config {
    const char *name;
    size_t key_size; /* 0: string keys */
    size_t val_size;
    bool poor_hash;
} config;

typedef enum { PHASE_GROW, PHASE_SHRINK, PHASE_CHURN } phase;

typedef struct fuzz {
    const config *cfg;
    hmap *m;
    model ref;
    prng rng;
    uint64_t seed, op, ops;
    phase ph;
    size_t target;     /* GROW: the size to reach */
    uint64_t id_space; /* new keys are drawn from ids below this */
    uint64_t phase_end;
    uint64_t expect_key_drops, expect_val_drops;
    size_t max_len; /* coverage figures, printed and checked at the end */
    unsigned emptied, iterations;
    char context[200];
} fuzz;

/* Drop counters: the map's callbacks increment them. */
static uint64_t key_drops, val_drops;
static long live_strings;

static void count_key_drop(void *k) {
    (void)k;
    key_drops++;
}

static void free_string_key(void *k) {
    free(*(char **)k);
    live_strings--;
    key_drops++;
}

static void count_val_drop(void *v) {
    (void)v;
    val_drops++;
}

/* The poor hashes: the first byte only, seed ignored, so keys collide in full 64-bit hashes. */
static uint64_t first_byte_hash(const void *key, uint64_t seed) {
    (void)seed;
    return *(const unsigned char *)key;
}

static uint64_t first_char_hash(const void *key, uint64_t seed) {
    (void)seed;
    return (unsigned char)**(const char *const *)key;
}

static const char *where(fuzz *f) {
    snprintf(f->context, sizeof f->context, "[%s seed=0x%" PRIx64 " op=%" PRIu64 " len=%zu]", f->cfg->name,
             f->seed, f->op, model_len(&f->ref));
    return f->context;
}

/* ---- keys and values ---- */

/* A key's bytes as the model stores them (fixed: key_size bytes; strings: the characters). Injective in
 * id, and built so that keys share long runs of bytes, to catch an equality that stops early: fixed keys
 * of up to 8 bytes are the id itself; longer ones are filled from the id's group (id >> 3, 8 ids) and end
 * with the id, so the keys of a group differ in their last 8 bytes only; strings are a padding drawn from
 * the group, then a ':' (which the padding never contains), then the id in hex. */
static size_t key_from_id(const fuzz *f, uint64_t id, unsigned char *out) {
    size_t ks = f->cfg->key_size;
    uint64_t group = id >> 3;
    if (ks == 0) {
        size_t pad = mix64(group) % 40;
        for (size_t i = 0; i < pad; i++)
            out[i] = (unsigned char)('a' + mix64(group + i) % 26);
        int n = snprintf((char *)out + pad, MAX_KEY - pad, ":%" PRIx64, id);
        return pad + (size_t)n;
    }
    if (ks <= 8) {
        memcpy(out, &id, ks);
        return ks;
    }
    for (size_t i = 0; i < ks - 8; i += 8) {
        uint64_t w = mix64(group + i * 0x1000193ULL);
        memcpy(out + i, &w, ks - 8 - i < 8 ? ks - 8 - i : 8);
    }
    memcpy(out + ks - 8, &id, 8);
    return ks;
}

static uint64_t max_ids(const fuzz *f) { return f->cfg->key_size == 1 ? 256 : UINT64_MAX; }

/* Key bytes for an operation: usually (when `existing` and the model is not empty) a key the model holds,
 * else a random id below id_space. */
static size_t pick_key(fuzz *f, bool existing, unsigned char *out) {
    if (existing && model_len(&f->ref) > 0) {
        model_entry *e = model_at(&f->ref, prng_below(&f->rng, model_len(&f->ref)));
        memcpy(out, e->key, e->klen);
        if (!f->cfg->key_size)
            out[e->klen] = '\0';
        return e->klen;
    }
    uint64_t space = f->id_space < max_ids(f) ? f->id_space : max_ids(f);
    return key_from_id(f, prng_below(&f->rng, space), out);
}

static void random_val(fuzz *f, unsigned char *out) {
    for (size_t i = 0; i < f->cfg->val_size; i += 8) {
        uint64_t w = prng_next(&f->rng);
        memcpy(out + i, &w, f->cfg->val_size - i < 8 ? f->cfg->val_size - i : 8);
    }
}

/* What a lookup passes to the map: the bytes, or a char * to the string. */
typedef struct map_key {
    const void *ptr;
    char *str;
} map_key;

static const void *lookup_key(const fuzz *f, unsigned char *bytes, map_key *mk) {
    if (f->cfg->key_size)
        return bytes;
    mk->str = (char *)bytes;
    return &mk->str;
}

/* A key whose ownership goes to the map: strings are duplicated (the map frees them through key_drop). */
static const void *owned_key(const fuzz *f, unsigned char *bytes, map_key *mk) {
    if (f->cfg->key_size)
        return bytes;
    mk->str = strdup((char *)bytes);
    assert_non_null(mk->str);
    live_strings++;
    return &mk->str;
}

static void disown_key(const fuzz *f, map_key *mk) {
    if (!f->cfg->key_size) {
        free(mk->str);
        live_strings--;
    }
}

/* ---- operations: each applies to both and compares ---- */

static void op_put(fuzz *f) {
    unsigned char kb[MAX_KEY], vb[MAX_VAL];
    size_t klen = pick_key(f, prng_chance(&f->rng, 0.3), kb);
    random_val(f, vb);
    map_key mk;
    model_entry *old = model_find(&f->ref, kb, klen);
    bool same_val = old && memcmp(old->val, vb, f->cfg->val_size) == 0;
    int rc = hmap_put(f->m, owned_key(f, kb, &mk), f->cfg->val_size ? vb : NULL);
    if (rc < 0)
        disown_key(f, &mk);
    int want = model_put(&f->ref, kb, klen, vb);
    if (rc != want)
        fail_msg("%s hmap_put returned %d, model %d", where(f), rc, want);
    /* On replace the key passed is dropped unless it is bitwise the stored key (byte keys always are; a
     * fresh string copy never is), and the old value unless the new one is bitwise the same. */
    if (want == 0) {
        f->expect_key_drops += !f->cfg->key_size;
        f->expect_val_drops += f->cfg->val_size > 0 && !same_val;
    }
}

static void op_assign(fuzz *f) {
    unsigned char kb[MAX_KEY], vb[MAX_VAL];
    size_t klen = pick_key(f, prng_chance(&f->rng, 0.3), kb);
    random_val(f, vb);
    map_key mk;
    bool inserted = false;
    unsigned char *slot = hmap_assign(f->m, owned_key(f, kb, &mk), &inserted);
    if (!slot)
        fail_msg("%s hmap_assign failed (errno %d)", where(f), errno);
    bool present = model_find(&f->ref, kb, klen) != NULL;
    if (inserted == present)
        fail_msg("%s hmap_assign inserted=%d but the model %s the key", where(f), inserted,
                 present ? "holds" : "lacks");
    if (inserted) {
        for (size_t i = 0; i < f->cfg->val_size; i++)
            if (slot[i])
                fail_msg("%s hmap_assign: new slot not zeroed", where(f));
    } else {
        f->expect_key_drops += !f->cfg->key_size; /* byte keys: the key passed is bitwise the stored one */
        if (f->cfg->val_size && memcmp(slot, model_find(&f->ref, kb, klen)->val, f->cfg->val_size))
            fail_msg("%s hmap_assign: existing slot holds a wrong value", where(f));
    }
    if (f->cfg->val_size)
        memcpy(slot, vb, f->cfg->val_size);
    model_put(&f->ref, kb, klen, vb);
}

static void op_get(fuzz *f) {
    unsigned char kb[MAX_KEY];
    size_t klen = pick_key(f, prng_chance(&f->rng, 0.5), kb);
    map_key mk;
    unsigned char *v = hmap_get(f->m, lookup_key(f, kb, &mk));
    model_entry *e = model_find(&f->ref, kb, klen);
    if ((v != NULL) != (e != NULL))
        fail_msg("%s hmap_get %s, model %s", where(f), v ? "hit" : "missed", e ? "holds it" : "does not");
    if (e && f->cfg->val_size && memcmp(v, e->val, f->cfg->val_size))
        fail_msg("%s hmap_get: wrong value", where(f));
}

static void op_del(fuzz *f) {
    unsigned char kb[MAX_KEY];
    size_t klen = pick_key(f, prng_chance(&f->rng, 0.75), kb);
    map_key mk;
    bool got = hmap_del(f->m, lookup_key(f, kb, &mk));
    bool want = model_del(&f->ref, kb, klen);
    if (got != want)
        fail_msg("%s hmap_del returned %d, model %d", where(f), got, want);
    if (want) {
        f->expect_key_drops++;
        f->expect_val_drops += f->cfg->val_size > 0;
    }
}

static void op_take(fuzz *f) {
    unsigned char kb[MAX_KEY], kout[MAX_KEY], vout[MAX_VAL];
    size_t klen = pick_key(f, prng_chance(&f->rng, 0.75), kb);
    bool want_key = prng_chance(&f->rng, 0.5), want_val = prng_chance(&f->rng, 0.5);
    model_entry *e = model_find(&f->ref, kb, klen);
    unsigned char expect_val[MAX_VAL];
    if (e && f->cfg->val_size)
        memcpy(expect_val, e->val, f->cfg->val_size);
    map_key mk;
    bool got = hmap_take(f->m, lookup_key(f, kb, &mk), want_key ? kout : NULL, want_val ? vout : NULL);
    if (got != (e != NULL))
        fail_msg("%s hmap_take returned %d, model %d", where(f), got, e != NULL);
    if (!got)
        return;
    model_del(&f->ref, kb, klen);
    if (want_key) {
        size_t outlen;
        const void *ob = model_key_bytes(&f->ref, kout, &outlen);
        if (outlen != klen || memcmp(ob, kb, klen))
            fail_msg("%s hmap_take: wrong key handed over", where(f));
        if (!f->cfg->key_size) { /* the string is ours now */
            free(*(char **)kout);
            live_strings--;
        }
    } else {
        f->expect_key_drops++;
    }
    if (want_val) {
        if (f->cfg->val_size && memcmp(vout, expect_val, f->cfg->val_size))
            fail_msg("%s hmap_take: wrong value handed over", where(f));
    } else {
        f->expect_val_drops += f->cfg->val_size > 0;
    }
}

static void op_clear(fuzz *f) {
    f->expect_key_drops += model_len(&f->ref);
    f->expect_val_drops += f->cfg->val_size ? model_len(&f->ref) : 0;
    hmap_clear(f->m);
    model_clear(&f->ref);
    if (hmap_len(f->m) != 0)
        fail_msg("%s hmap_clear left entries", where(f));
}

static void op_reserve(fuzz *f) {
    size_t n = model_len(&f->ref) + prng_below(&f->rng, 6000);
    int rc = hmap_reserve(f->m, n);
    if (rc != 0)
        fail_msg("%s hmap_reserve(%zu) returned %d", where(f), n, rc);
}

static void op_compact(fuzz *f) {
    int rc = hmap_compact(f->m);
    if (rc != 0)
        fail_msg("%s hmap_compact returned %d", where(f), rc);
}

/* ---- iteration with writes inside, checked against the guarantee ---- */

static void check_yield(fuzz *f, void *k, void *v, unsigned char *kb, size_t *klen) {
    const void *bytes = model_key_bytes(&f->ref, k, klen);
    memcpy(kb, bytes, *klen); /* the pointers die at the next write: copy now */
    if (!f->cfg->key_size)
        kb[*klen] = '\0';
    model_entry *e = model_find(&f->ref, kb, *klen);
    if (!e)
        fail_msg("%s iteration yielded a key that is not in the map", where(f));
    if (e->flags & MODEL_YIELDED)
        fail_msg("%s iteration yielded a key twice", where(f));
    e->flags |= MODEL_YIELDED;
    if (f->cfg->val_size && memcmp(v, e->val, f->cfg->val_size))
        fail_msg("%s iteration yielded a wrong value", where(f));
}

static void write_inside_iteration(fuzz *f, unsigned char *cur, size_t curlen) {
    uint64_t r = prng_below(&f->rng, 100);
    if (r < 10) { /* delete the entry just yielded */
        map_key mk;
        if (!hmap_del(f->m, lookup_key(f, cur, &mk)))
            fail_msg("%s hmap_del of the yielded key failed", where(f));
        model_del(&f->ref, cur, curlen);
        f->expect_key_drops++;
        f->expect_val_drops += f->cfg->val_size > 0;
    } else if (r < 18) {
        op_del(f);
    } else if (r < 43) {
        op_put(f);
    } else if (r < 50) {
        op_assign(f);
    } else if (r < 54) {
        op_take(f);
    } else if (r < 70) {
        op_get(f);
    }
}

static void op_iterate(fuzz *f) {
    model_set_flags_all(&f->ref, MODEL_AT_START);
    hmap_iter it;
    void *k, *v;
    unsigned char kb[MAX_KEY];
    hmap_iter_init(&it, f->m);
    while (hmap_iter_next(&it, &k, &v)) {
        size_t klen;
        check_yield(f, k, v, kb, &klen);
        write_inside_iteration(f, kb, klen);
    }
    hmap_iter_done(&it);
    f->iterations++;
    for (size_t i = 0; i < model_len(&f->ref); i++) {
        model_entry *e = model_at(&f->ref, i);
        if ((e->flags & MODEL_AT_START) && !(e->flags & MODEL_YIELDED))
            fail_msg("%s iteration missed a key present throughout", where(f));
    }
    model_set_flags_all(&f->ref, 0);
}

/* ---- checkpoints ---- */

static void checkpoint(fuzz *f) {
    char why[256];
    if (map_check(f->m, why, sizeof why) < 0)
        fail_msg("%s inconsistent map: %s", where(f), why);
    model_assert_matches(&f->ref, f->m, where(f));
    if (key_drops != f->expect_key_drops)
        fail_msg("%s key drops %" PRIu64 ", expected %" PRIu64, where(f), key_drops, f->expect_key_drops);
    if (val_drops != f->expect_val_drops)
        fail_msg("%s value drops %" PRIu64 ", expected %" PRIu64, where(f), val_drops, f->expect_val_drops);
    if (!f->cfg->key_size && live_strings != (long)model_len(&f->ref))
        fail_msg("%s %ld live key strings for %zu entries", where(f), live_strings, model_len(&f->ref));
}

/* ---- the schedule: grow, shrink to 0, churn, again ---- */

static void next_phase(fuzz *f) {
    /* Short phases, so that a long run (HMAP_FUZZ_OPS) repeats the whole cycle many times. */
    uint64_t budget = (f->ops / 4 < 10000 ? f->ops / 4 : 10000) + 1;
    switch (f->ph) {
    case PHASE_GROW:
        f->ph = PHASE_SHRINK;
        budget *= 2;
        break;
    case PHASE_SHRINK:
        f->ph = PHASE_CHURN;
        budget /= 2;
        break;
    case PHASE_CHURN:
        f->ph = PHASE_GROW;
        budget *= 2; /* growing to a few thousand (or back to 0) takes ~2 operations per entry */
        break;
    }
    f->target = 1000 + prng_below(&f->rng, 4000);
    if (f->cfg->key_size == 1)
        f->target = 100 + prng_below(&f->rng, 150);
    f->id_space = f->target * 4;
    f->phase_end = f->op + budget;
}

static bool phase_done(const fuzz *f) {
    if (f->op >= f->phase_end)
        return true;
    if (f->ph == PHASE_GROW)
        return model_len(&f->ref) >= f->target;
    if (f->ph == PHASE_SHRINK)
        return model_len(&f->ref) == 0;
    return false;
}

/* Operation weights per phase, in per mille: put, assign, get, del, take; the rest is rare ops. */
static void one_op(fuzz *f) {
    static const unsigned weights[3][5] = {
        [PHASE_GROW] = {550, 200, 150, 40, 20},
        [PHASE_SHRINK] = {50, 20, 130, 500, 250},
        [PHASE_CHURN] = {250, 100, 250, 250, 100},
    };
    const unsigned *w = weights[f->ph];
    uint64_t r = prng_below(&f->rng, 1000);
    if (r < w[0])
        op_put(f);
    else if ((r -= w[0]) < w[1])
        op_assign(f);
    else if ((r -= w[1]) < w[2])
        op_get(f);
    else if ((r -= w[2]) < w[3])
        op_del(f);
    else if ((r -= w[3]) < w[4])
        op_take(f);
    else {
        uint64_t rare = prng_below(&f->rng, 1000);
        if (rare < 1) /* about once per 20k operations */
            op_clear(f);
        else if (rare < 34)
            op_iterate(f);
        else if (rare < 134)
            op_reserve(f);
        else if (rare < 234)
            op_compact(f);
        else
            op_get(f);
    }
}

static hmap_type type_for(const config *cfg) {
    hmap_type t = {.key_size = cfg->key_size ? cfg->key_size : sizeof(char *), .val_size = cfg->val_size};
    if (cfg->key_size) {
        t.hash = cfg->poor_hash ? first_byte_hash : NULL;
        t.key_drop = count_key_drop;
    } else {
        t.hash = cfg->poor_hash ? first_char_hash : hmap_hash_cstr;
        t.equal = hmap_equal_cstr;
        t.key_drop = free_string_key;
    }
    t.val_drop = cfg->val_size ? count_val_drop : NULL;
    return t;
}

static uint64_t ops_per_config;

/* The schedule must have done what it is for: grown, shrunk to 0, iterated, and the map must have resized
 * both ways. Printed so that a run shows what it covered. */
static void assert_coverage(fuzz *f) {
    hmap_stats st;
    hmap_get_stats(f->m, &st);
    print_message("  %-22s max len %5zu, emptied %u times, %u iterations, grows %" PRIu64
                  ", same-size grows %" PRIu64 ", shrinks %" PRIu64 "\n",
                  f->cfg->name, f->max_len, f->emptied, f->iterations, st.grows, st.same_size_grows,
                  st.shrinks);
    if (f->ops < 20000)
        return; /* a short run (HMAP_FUZZ_OPS) need not cover everything */
    assert_true(f->max_len >= (f->cfg->key_size == 1 ? 100 : 1000));
    assert_true(f->emptied >= 1);
    assert_true(f->iterations >= 5);
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
    fuzz f;
    memset(&f, 0, sizeof f);
    f.cfg = cfg;
    f.seed = env_u64("HMAP_FUZZ_SEED", DEFAULT_SEED) ^ name_hash(cfg->name);
    f.rng.s = f.seed;
    f.ops = ops_per_config;
    key_drops = val_drops = 0;
    live_strings = 0;
    hmap_type type = type_for(cfg);
    hmap_options opts = {.fixed_seed = true, .seed = f.seed, .name = cfg->name};
    f.m = hmap_new_opts(&type, prng_below(&f.rng, 2) ? 0 : prng_below(&f.rng, 3000), &opts);
    assert_non_null(f.m);
    model_init(&f.ref, cfg->key_size, cfg->val_size);
    f.ph = PHASE_CHURN;
    next_phase(&f); /* starts with GROW */
    for (f.op = 0; f.op < f.ops; f.op++) {
        one_op(&f);
        if (f.op % 2000 == 0)
            checkpoint(&f);
        if (model_len(&f.ref) > f.max_len)
            f.max_len = model_len(&f.ref);
        if (phase_done(&f)) {
            f.emptied += f.ph == PHASE_SHRINK && model_len(&f.ref) == 0;
            checkpoint(&f);
            next_phase(&f);
        }
    }
    checkpoint(&f);
    assert_coverage(&f);
    f.expect_key_drops += model_len(&f.ref);
    f.expect_val_drops += cfg->val_size ? model_len(&f.ref) : 0;
    hmap_free(f.m);
    assert_int_equal(key_drops, f.expect_key_drops);
    assert_int_equal(val_drops, f.expect_val_drops);
    assert_int_equal(live_strings, 0);
    model_destroy(&f.ref);
}

/* ---- the configurations ---- */

static const size_t KEY_SIZES[] = {1, 4, 8, 16, 40, 200, 0};
static const size_t VAL_SIZES[] = {0, 8, 100};
enum { NKEYS = 7, NVALS = 3, NCONFIGS = NKEYS * NVALS * 2 };

static config configs[NCONFIGS];
static char names[NCONFIGS][48];

int main(void) {
    uint64_t total_ops = env_u64("HMAP_FUZZ_OPS", DEFAULT_OPS);
    ops_per_config = total_ops / NCONFIGS + 1;
    print_message("test_model: %" PRIu64 " operations in %d configurations, seed 0x%" PRIx64
                  " (HMAP_FUZZ_OPS, HMAP_FUZZ_SEED)\n",
                  ops_per_config * NCONFIGS, NCONFIGS, env_u64("HMAP_FUZZ_SEED", DEFAULT_SEED));
    struct CMUnitTest tests[NCONFIGS];
    size_t n = 0;
    for (size_t k = 0; k < NKEYS; k++) {
        for (size_t v = 0; v < NVALS; v++) {
            for (int poor = 0; poor < 2; poor++, n++) {
                if (KEY_SIZES[k])
                    snprintf(names[n], sizeof names[n], "key%zu_val%zu_%s", KEY_SIZES[k], VAL_SIZES[v],
                             poor ? "poorhash" : "hash");
                else
                    snprintf(names[n], sizeof names[n], "cstr_val%zu_%s", VAL_SIZES[v],
                             poor ? "poorhash" : "hash");
                configs[n] = (config){names[n], KEY_SIZES[k], VAL_SIZES[v], poor != 0};
                tests[n] = (struct CMUnitTest){names[n], run_config, NULL, NULL, &configs[n]};
            }
        }
    }
    return _cmocka_run_group_tests("test_model", tests, n, NULL, NULL);
}
