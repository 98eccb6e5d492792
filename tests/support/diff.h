/* SPDX-License-Identifier: MIT */
/*
 * diff.h — differential operations: each call applies one operation to an hmap and to the reference
 * model (model.h), and checks the map's answer against the model's before returning.
 *
 * This is the part the cmocka differential test (test_model), the allocation-failure sweep
 * (test_alloc_fail) and the libFuzzer target (fuzz/fuzz_map.c) share: they differ only in how they choose
 * operations (a seeded schedule, a script, the fuzzer's input). Keys are named by a 64-bit id; the harness
 * turns an id into the key's bytes for the configured key kind, so that callers never build keys.
 *
 * What a configuration chooses (diff_config): fixed key sizes 1..255 bytes or C string keys (a char * the
 * map owns: strdup'ed by the harness, freed by key_drop); value sizes 0..DIFF_MAX_VAL; the hash (built-in,
 * a good custom one, one that reads the first byte only, a constant); owned values (each holds a
 * heap block that val_drop frees) or counted drops; the test allocator (required for injected allocation
 * failures) or the built-in one; no_shrink, fixed_seed, a creation hint.
 *
 * What is checked, call by call: return values (inserted / replaced / present / absent), values read, keys
 * and values handed over by take, that a call reporting -ENOMEM had an allocation refused during it and
 * changed nothing (the whole map is compared with the model then), that lookups never allocate. At
 * diff_check (and at the end): the whole map against the model, every key and value dropped exactly once,
 * live owned strings and value blocks equal to the length, the test allocator's live bytes equal to the
 * map's own byte count, abandoned iterators untouched; at diff_destroy also memstats back where they were.
 *
 * Iterations (up to DIFF_ITERS open at once) are checked against the iteration rules: a key present when
 * the iteration starts and not deleted before it is reached is yielded exactly once; a key is only yielded
 * while present, with its current value; a key inserted meanwhile is yielded at most once; and no key is
 * yielded twice by one iteration even when it was deleted and inserted again; an iteration ended by
 * hmap_clear yields nothing more.
 *
 * Four rules can be left out (diff_config.rules), so that the rest can be exercised on a library that
 * lacks them:
 *   DIFF_RULE_SAME_KEY  a replace with a key bitwise identical to the stored one drops nothing (without
 *                       it, either is accepted for fixed-size keys, and string maps skip such replaces);
 *   DIFF_RULE_ALIAS     writes through the key and value pointers an iteration just yielded, and a value
 *                       put straight from hmap_get (without it, these operations are skipped);
 *   DIFF_RULE_ABANDON   iterations dropped without hmap_iter_done: their storage is poisoned and watched,
 *                       the map must never write to it again (without it, abandoning closes);
 *   DIFF_RULE_REINSERT  no key is yielded twice by one iteration, also when it was deleted and inserted
 *                       again in between (without it, once per insertion).
 * diff_rules_from_env() reads them from HMAP_FUZZ_STRICT: unset or 1 all, 0 none, or a comma-separated
 * list of samekey, alias, abandon, reinsert.
 *
 * Drop callbacks carry no context, so one diff is active at a time (per process): the last one made by
 * diff_init (a harness left behind by a failed test is simply forgotten).
 */
#ifndef HMAP_TEST_DIFF_H
#define HMAP_TEST_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "model.h"
#include "test_alloc.h"

#define DIFF_MAX_KEY 255
#define DIFF_MAX_VAL 100
#define DIFF_ITERS 4
#define DIFF_GRAVES 8

typedef enum {
    DIFF_HASH_BUILTIN,  /* hash NULL (the built-in seeded hash; hmap_hash_cstr for string keys) */
    DIFF_HASH_GOOD,     /* a custom seeded hash; fixed-size keys also get a custom equality */
    DIFF_HASH_POOR,     /* custom, the first byte only (seed ignored): groups of keys share one 64-bit hash */
    DIFF_HASH_CONSTANT, /* custom, one hash for every key */
    DIFF_HASH_KINDS
} diff_hash;

typedef struct diff_config {
    const char *name;
    size_t key_size; /* 1..DIFF_MAX_KEY; 0: C string keys */
    size_t val_size; /* 0..DIFF_MAX_VAL */
    diff_hash hash;
    bool owned_values;     /* (val_size >= 8) each value holds a heap block that val_drop frees */
    bool count_drops;      /* counting key_drop / val_drop on fixed keys and plain values (else NULL) */
    bool custom_allocator; /* the test allocator (d->ta); needed by diff_fail_in */
    bool no_shrink, fixed_seed;
    uint64_t seed; /* the map's seed with fixed_seed; always the seed of value contents */
    size_t hint;
    unsigned rules; /* DIFF_RULE_* checked (above); DIFF_RULES_ALL normally */
} diff_config;

enum {
    DIFF_RULE_SAME_KEY = 1u,
    DIFF_RULE_ALIAS = 2u,
    DIFF_RULE_ABANDON = 4u,
    DIFF_RULE_REINSERT = 8u,
    DIFF_RULES_ALL = 15u,
};

/* The rules named by HMAP_FUZZ_STRICT (see above); prints nothing, so callers report it. */
unsigned diff_rules_from_env(void);
/* "all", "none" or the list, for reports. */
const char *diff_rules_name(unsigned rules);

/* Writes through an iteration's own key and value pointers, right after it yielded them. */
typedef enum {
    DIFF_ALIAS_DEL,          /* hmap_del(m, kp) */
    DIFF_ALIAS_TAKE,         /* hmap_take(m, kp, kout, vout) */
    DIFF_ALIAS_PUT_SAME,     /* hmap_put(m, kp, vp) (plain values only) */
    DIFF_ALIAS_PUT_NEW,      /* hmap_put(m, kp, fresh value) */
    DIFF_ALIAS_ASSIGN,       /* hmap_assign(m, kp, ...) */
    DIFF_ALIAS_GET,          /* hmap_get(m, kp) */
    DIFF_ALIAS_VAL_TO_OTHER, /* hmap_put(m, another key, vp) (plain values only) */
    DIFF_ALIAS_KINDS
} diff_alias;

typedef struct diff_iter {
    hmap_iter *it; /* on the heap, so that an abandoned one can be poisoned and watched */
    bool open, ended_by_clear;
    model yielded;         /* keys it yielded and that were removed since (never to be yielded again) */
    uint64_t yield_writes; /* d->writes at the last yield: the pointers are valid while it is unchanged */
    void *kp, *vp;
    uint64_t id; /* of the key last yielded */
} diff_iter;

typedef struct diff {
    diff_config cfg;
    hmap *m;
    model ref;
    test_alloc ta;
    diff_iter iters[DIFF_ITERS];
    unsigned char *graves[DIFF_GRAVES]; /* abandoned iterators, poisoned */
    size_t ngraves;
    uint64_t writes; /* write calls so far: pointers yielded by the map die at each */
    uint64_t serial; /* values made */
    uint64_t expect_key_drops, expect_val_drops, key_drop_slack;
    uint64_t memstats_live_at_start;
    const char *note; /* the caller's state, printed in failure messages (may be NULL) */
    uint64_t op;      /* operations so far, printed in failure messages */
    /* Figures for reports. */
    uint64_t errors_reported, failures_absorbed, yields, iterations_done, iterations_abandoned, alias_writes;
    size_t max_len;
    char context[200];
} diff;

/* Creates the map (asserting success: no failure is armed yet). */
void diff_init(diff *d, const diff_config *cfg);
/* Ends open iterations, frees the map and checks that everything was given back. */
void diff_destroy(diff *d);
/* The whole map against the model, drops, live counts, abandoned iterators. O(n). */
void diff_check(diff *d);
/* The library's own consistency walker on any map, harness or not (a test that drives a map itself): a
 * failure is reported as the harness's checks are. */
void diff_check_consistent(const hmap *m);
const char *diff_where(diff *d);

/* Ids: the key of an id is fixed for the configuration; ids of short keys wrap (key_size < 8). */
uint64_t diff_id_of(const diff *d, uint64_t id);
/* The id of the model's i-th key (i taken modulo the length); `fallback` when the model is empty. */
uint64_t diff_existing_id(const diff *d, uint64_t i, uint64_t fallback);

/* Operations; each is checked against the model before it returns. */
int diff_put(diff *d, uint64_t id);    /* 1, 0 or -ENOMEM, as hmap_put */
int diff_assign(diff *d, uint64_t id); /* 1 inserted, 0 present, -ENOMEM */
bool diff_get(diff *d, uint64_t id);   /* present */
bool diff_del(diff *d, uint64_t id);   /* was present */
bool diff_take(diff *d, uint64_t id, bool want_key, bool want_val);
void diff_clear(diff *d);
int diff_reserve(diff *d, size_t n); /* 0 or -ENOMEM */
int diff_compact(diff *d);           /* 0 or -ENOMEM */
/* hmap_put(dst, hmap_get(src)): DIFF_RULE_ALIAS, plain values only; -1 when skipped or src absent. */
int diff_put_from_get(diff *d, uint64_t dst, uint64_t src);

/* Refuses the k-th allocation from now (custom allocator only; otherwise nothing). */
void diff_fail_in(diff *d, uint64_t k);

/* Iterations. open: a slot, or -1 when all are busy. next: true when a key was yielded (checked), false
 * at the end (checked: nothing present throughout was missed; the slot is closed then). */
int diff_iter_open(diff *d);
bool diff_iter_next(diff *d, int slot);
void diff_iter_close(diff *d, int slot);   /* hmap_iter_done */
void diff_iter_abandon(diff *d, int slot); /* never tell the map (without DIFF_RULE_ABANDON: close) */
bool diff_iter_is_open(const diff *d, int slot);
/* A write through slot's fresh key/value pointers; false when skipped (no fresh yield, or the
 * kind does not apply to the configuration or a rule is left out). `other` names the other key of
 * DIFF_ALIAS_VAL_TO_OTHER. */
bool diff_iter_alias(diff *d, int slot, diff_alias what, uint64_t other);

#endif /* HMAP_TEST_DIFF_H */
