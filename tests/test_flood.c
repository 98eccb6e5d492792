/* SPDX-License-Identifier: MIT */
/*
 * test_flood.c — hash flooding: keys crafted to collide for one seed stay spread under the map's own
 * random seed. Counted, never timed.
 *
 * The attack: an attacker who knows the seed (here: a map made with fixed_seed) picks keys whose hashes
 * share their top bits, which choose the bucket, so that they pile into a small fraction of the buckets
 * in long overflow chains, and every lookup and insert walks one. The defence is the per-map random seed:
 * the same keys hashed with another seed are just keys.
 *
 * The crafting uses the public API only: the map's built-in hash of key_size bytes is hmap_hash_bytes
 * (hmap.h), so 16-byte keys are drawn at random and kept when hmap_hash_bytes(key, 16, seed) has its top
 * CRAFT_BITS bits equal to a target: about 2^CRAFT_BITS tries a key. (Top bits and not the tophash byte
 * as well because 1M keys sharing 14 bits would take 10^10 hashes; 6 bits take 6.4 * 10^7, ~1.5 s, and
 * already pack the keys into 1/64 of the buckets: ~30 overflow buckets a chain at 1M entries.)
 *
 * Probes are counted two ways: the map's overflow buckets (hmap_get_stats), and the key comparisons a
 * lookup makes, through a counting equality function (it compares only when the tophash byte matches,
 * so it counts the entries a lookup really examines). The test first shows that the crafted keys do flood
 * a map that uses the seed they were crafted for (far more overflow buckets than random keys), so that it
 * cannot pass with keys that are not crafted; then that under a random seed their overflow buckets and
 * comparisons per lookup are within 3x of random keys', on average and at the worst lookup.
 *
 * The 8-byte built-in hash has no public twin to craft against, so uint64 keys are checked against
 * structured families that weak mixes cluster (only high bits varying, only low bits, multiples of a
 * large power of two, a counter in the middle bytes): their overflow buckets within 3x of random keys'.
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

#define N_KEYS 1000000u
#define CRAFT_BITS 6
#define CRAFT_SEED UINT64_C(0xf100d5eed)
#define KEY16 16

/* ---- counting equality ---- */

static uint64_t comparisons;

static bool counting_equal16(const void *a, const void *b) {
    comparisons++;
    return memcmp(a, b, KEY16) == 0;
}

typedef struct probes {
    size_t overflow_buckets;
    unsigned B;
    double mean_comparisons; /* per successful lookup */
    uint64_t max_comparisons;
} probes;

/* Inserts every key into a fresh map (seed: fixed to `seed`, or random when `random_seed`), then looks
 * every one up, counting comparisons. */
static probes measure16(const unsigned char (*keys)[KEY16], size_t n, bool random_seed, uint64_t seed) {
    hmap_type t = {.key_size = KEY16, .val_size = 0, .equal = counting_equal16};
    hmap_options o = {.fixed_seed = !random_seed, .seed = seed};
    hmap *m = hmap_new_opts(&t, 0, &o);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hmap_put(m, keys[i], NULL), 1);
    probes p = {0};
    hmap_stats st;
    assert_int_equal(hmap_compact(m), 0); /* a settled map: no evacuation half done */
    hmap_get_stats(m, &st);
    p.overflow_buckets = st.overflow_buckets;
    p.B = st.B;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        comparisons = 0;
        assert_non_null(hmap_get(m, keys[i]));
        total += comparisons;
        if (comparisons > p.max_comparisons)
            p.max_comparisons = comparisons;
    }
    p.mean_comparisons = (double)total / (double)n;
    hmap_free(m);
    return p;
}

static void print_probes(const char *what, probes p) {
    print_message("  %-34s B %2u, %7zu overflow buckets, %.3f comparisons per lookup, worst %" PRIu64 "\n",
                  what, p.B, p.overflow_buckets, p.mean_comparisons, p.max_comparisons);
}

/* Random 16-byte keys whose hash under `seed` has its top CRAFT_BITS bits equal to `target`. */
static void craft(unsigned char (*keys)[KEY16], size_t n, uint64_t seed, uint64_t target, uint64_t *tries) {
    prng rng = {0xc4af7ed};
    *tries = 0;
    for (size_t i = 0; i < n;) {
        uint64_t w[2] = {prng_next(&rng), prng_next(&rng)};
        ++*tries;
        if (hmap_hash_bytes(w, KEY16, seed) >> (64 - CRAFT_BITS) == target)
            memcpy(keys[i++], w, KEY16);
    }
}

static void random_keys(unsigned char (*keys)[KEY16], size_t n) {
    prng rng = {0x7a2d0e};
    for (size_t i = 0; i < n; i++) {
        uint64_t w[2] = {prng_next(&rng), prng_next(&rng)};
        memcpy(keys[i], w, KEY16);
    }
}

/* At most 3x the baseline, with a little room for a baseline near zero. */
static void assert_within_3x(double x, double baseline, double slack, const char *what) {
    if (x > 3 * baseline + slack)
        fail_msg("%s: %.3f, more than 3x random keys' %.3f", what, x, baseline);
}

static void test_crafted_keys_spread_under_a_random_seed(void **state) {
    (void)state;
    unsigned char(*crafted)[KEY16] = malloc(N_KEYS * sizeof *crafted);
    unsigned char(*plain)[KEY16] = malloc(N_KEYS * sizeof *plain);
    assert_non_null(crafted);
    assert_non_null(plain);
    uint64_t tries;
    craft(crafted, N_KEYS, CRAFT_SEED, 0x2a & ((1u << CRAFT_BITS) - 1), &tries);
    random_keys(plain, N_KEYS);
    print_message("  %u keys crafted for seed %#" PRIx64 " (top %d hash bits equal), %" PRIu64 " hashes\n",
                  N_KEYS, CRAFT_SEED, CRAFT_BITS, tries);

    probes rnd = measure16((const void *)plain, N_KEYS, true, 0);
    probes attacked = measure16((const void *)crafted, N_KEYS, false, CRAFT_SEED);
    probes defended = measure16((const void *)crafted, N_KEYS, true, 0);
    print_probes("random keys, random seed", rnd);
    print_probes("crafted keys, the seed they target", attacked);
    print_probes("crafted keys, random seed", defended);

    /* The keys really flood the seed they were made for: a test with uncrafted keys fails here. */
    assert_true(attacked.overflow_buckets > 10 * rnd.overflow_buckets + 1000);
    /* ...and are ordinary keys for any other. */
    assert_int_equal(defended.B, rnd.B);
    assert_within_3x((double)defended.overflow_buckets, (double)rnd.overflow_buckets, 64, "overflow buckets");
    assert_within_3x(defended.mean_comparisons, rnd.mean_comparisons, 0.01, "comparisons per lookup");
    assert_within_3x((double)defended.max_comparisons, (double)rnd.max_comparisons, 1, "worst lookup");
    free(crafted);
    free(plain);
}

/* ---- uint64 keys: structured families against random keys ---- */

static size_t overflow_u64(uint64_t (*key_of)(uint64_t i)) {
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    hmap *m = hmap_new(&t, 0);
    assert_non_null(m);
    for (uint64_t i = 0; i < N_KEYS; i++) {
        uint64_t k = key_of(i);
        assert_int_equal(hmap_put(m, &k, &i), 1);
    }
    assert_int_equal(hmap_compact(m), 0);
    hmap_stats st;
    hmap_get_stats(m, &st);
    hmap_free(m);
    return st.overflow_buckets;
}

static uint64_t random_u64(uint64_t i) { return mix64(i ^ 0x51ed); }
static uint64_t high_bits_only(uint64_t i) { return i << 44; }
static uint64_t low_bits_only(uint64_t i) { return i; }
static uint64_t multiples_of_2_pow_20(uint64_t i) { return i << 20; }
static uint64_t middle_counter(uint64_t i) { return 0xabcd000000000123ULL | (i << 20); }
static uint64_t shared_low_32(uint64_t i) { return (i << 32) | 0xdeadbeefULL; }

static void test_structured_u64_keys_spread(void **state) {
    (void)state;
    static const struct {
        const char *name;
        uint64_t (*key_of)(uint64_t);
    } families[] = {
        {"i << 44 (high bits only)", high_bits_only}, {"i (low bits only)", low_bits_only},
        {"i << 20", multiples_of_2_pow_20},           {"0xabcd...123 | i << 20", middle_counter},
        {"i << 32 | 0xdeadbeef", shared_low_32},
    };
    size_t baseline = overflow_u64(random_u64);
    print_message("  %-26s %7zu overflow buckets at %u keys\n", "random uint64", baseline, N_KEYS);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        size_t o = overflow_u64(families[f].key_of);
        print_message("  %-26s %7zu overflow buckets\n", families[f].name, o);
        assert_within_3x((double)o, (double)baseline, 64, families[f].name);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crafted_keys_spread_under_a_random_seed),
        cmocka_unit_test(test_structured_u64_keys_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
