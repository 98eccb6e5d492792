/* SPDX-License-Identifier: MIT */
/*
 * model.h — the reference model the tests compare hmap against, and the helpers around it.
 *
 * The model is deliberately plain so that it is obviously correct: a dense array of pointers to entries
 * (a delete moves the last entry into the hole) and, beside it, an index from key to array position: an
 * open-addressing table with linear probing over an FNV-1a hash of the key bytes, nothing shared with
 * hmap's own hashing. (A sorted array with memmove, the first version, spent 60% of the allocation sweep
 * moving memory at 12k entries.) Keys are byte strings (fixed-size keys: their key_size bytes; string
 * keys: the characters of the string), values are val_size bytes. Each entry carries flag bits for the
 * caller (the iteration checks). model_at(i) is the i-th entry of the dense array: any order, but the
 * same for the same sequence of calls.
 *
 * model_assert_matches() compares a whole map against the model: the length, every entry yielded by a full
 * iteration (present in the model, with the same value, exactly once) and every model entry found by
 * hmap_get. A mismatch goes through check.h: it fails the cmocka test, or aborts the fuzzer.
 *
 * Part of the test support library (tests/support/), which depends on hmap and libc only.
 *
 * Also here: the deterministic PRNG every test uses (splitmix64), so that a failure reproduces from the
 * seed the test prints.
 */
#ifndef HMAP_TEST_MODEL_H
#define HMAP_TEST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

/* Entry flags used by iteration checks. */
enum {
    MODEL_AT_START = 1u, /* present when the iteration started (and not deleted since: deletes free it) */
    MODEL_YIELDED = 2u,  /* yielded by the current iteration */
};

typedef struct model_entry {
    size_t klen;
    unsigned flags;
    unsigned char *val;  /* val_size bytes inside this same allocation */
    unsigned char key[]; /* klen bytes */
} model_entry;

typedef struct model {
    size_t key_size; /* fixed key size in bytes, or 0 for string keys (the map key is a char *) */
    size_t val_size;
    model_entry **e; /* dense: e[0..n) */
    size_t n, cap;
    size_t *slots; /* the index: positions in e, or SIZE_MAX when free; nslots a power of two > 2n */
    size_t nslots;
} model;

void model_init(model *r, size_t key_size, size_t val_size);
void model_destroy(model *r);
size_t model_len(const model *r);
model_entry *model_at(const model *r, size_t i);
model_entry *model_find(const model *r, const void *key, size_t klen);
/* 1 inserted, 0 replaced (the entry keeps its flags). */
int model_put(model *r, const void *key, size_t klen, const void *val);
bool model_del(model *r, const void *key, size_t klen);
void model_clear(model *r);
void model_set_flags_all(model *r, unsigned flags);

/* The model's view of a key as stored in the map (the bytes, or a string's characters). */
const void *model_key_bytes(const model *r, const void *map_key, size_t *klen);

/* Checks that the map holds exactly the model's entries. `context` names the caller's state
 * (seed, operation number) in failure messages. */
void model_assert_matches(const model *r, hmap *m, const char *context);

/* splitmix64: tiny, fast, good enough for test data, and fully determined by its seed. */
typedef struct prng {
    uint64_t s;
} prng;
uint64_t prng_next(prng *p);
uint64_t prng_below(prng *p, uint64_t n); /* uniform enough in [0, n), n > 0 */
bool prng_chance(prng *p, double probability);
uint64_t mix64(uint64_t x); /* the splitmix64 finalizer: a bijection on 64-bit words */

/* Environment knobs: an unsigned number or `fallback`. */
uint64_t env_u64(const char *name, uint64_t fallback);

#endif /* HMAP_TEST_MODEL_H */
