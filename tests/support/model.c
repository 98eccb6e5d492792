/* SPDX-License-Identifier: MIT */
/*
 * model.c — the reference model (see model.h): a dense array of entries and an index into it.
 * Nothing clever on purpose; the only goal is to be obviously right. Failed checks go through check.h,
 * so the same code serves the cmocka tests and the fuzzer.
 */
#include "model.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static bool same_key(const model_entry *e, const void *key, size_t klen) {
    return e->klen == klen && memcmp(e->key, key, klen) == 0;
}

static size_t fnv1a(const void *key, size_t klen) {
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return (size_t)(h ^ (h >> 29));
}

#define FREE_SLOT SIZE_MAX

/* The index slot holding key, or the free slot where it would go. */
static size_t slot_of(const model *r, const void *key, size_t klen) {
    size_t mask = r->nslots - 1;
    for (size_t s = fnv1a(key, klen) & mask;; s = (s + 1) & mask)
        if (r->slots[s] == FREE_SLOT || same_key(r->e[r->slots[s]], key, klen))
            return s;
}

static void rebuild_index(model *r, size_t nslots) {
    free(r->slots);
    r->nslots = nslots;
    r->slots = xmalloc(nslots * sizeof *r->slots);
    for (size_t s = 0; s < nslots; s++)
        r->slots[s] = FREE_SLOT;
    for (size_t i = 0; i < r->n; i++)
        r->slots[slot_of(r, r->e[i]->key, r->e[i]->klen)] = i;
}

void model_init(model *r, size_t key_size, size_t val_size) {
    memset(r, 0, sizeof *r);
    r->key_size = key_size;
    r->val_size = val_size;
    rebuild_index(r, 16);
}

void model_clear(model *r) {
    for (size_t i = 0; i < r->n; i++)
        free(r->e[i]);
    r->n = 0;
    for (size_t s = 0; s < r->nslots; s++)
        r->slots[s] = FREE_SLOT;
}

void model_destroy(model *r) {
    model_clear(r);
    free(r->e);
    free(r->slots);
    memset(r, 0, sizeof *r);
}

size_t model_len(const model *r) { return r->n; }

model_entry *model_at(const model *r, size_t i) { return i < r->n ? r->e[i] : NULL; }

model_entry *model_find(const model *r, const void *key, size_t klen) {
    size_t s = slot_of(r, key, klen);
    return r->slots[s] == FREE_SLOT ? NULL : r->e[r->slots[s]];
}

int model_put(model *r, const void *key, size_t klen, const void *val) {
    size_t s = slot_of(r, key, klen);
    if (r->slots[s] != FREE_SLOT) {
        if (r->val_size)
            memcpy(r->e[r->slots[s]]->val, val, r->val_size);
        return 0;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->e = xrealloc(r->e, r->cap * sizeof *r->e);
    }
    model_entry *e = xmalloc(sizeof *e + klen + r->val_size);
    e->klen = klen;
    e->flags = 0;
    memcpy(e->key, key, klen);
    e->val = e->key + klen;
    if (r->val_size)
        memcpy(e->val, val, r->val_size);
    r->e[r->n] = e;
    r->slots[s] = r->n++;
    if (2 * r->n >= r->nslots)
        rebuild_index(r, 2 * r->nslots);
    return 1;
}

/* Linear probing without tombstones: after freeing a slot, later members of its run that could live in
 * the hole move into it (Knuth's algorithm R). */
static void free_index_slot(model *r, size_t hole) {
    size_t mask = r->nslots - 1;
    r->slots[hole] = FREE_SLOT;
    for (size_t s = (hole + 1) & mask; r->slots[s] != FREE_SLOT; s = (s + 1) & mask) {
        const model_entry *e = r->e[r->slots[s]];
        size_t home = fnv1a(e->key, e->klen) & mask;
        bool movable = hole <= s ? (home <= hole || home > s) : (home <= hole && home > s);
        if (movable) {
            r->slots[hole] = r->slots[s];
            r->slots[s] = FREE_SLOT;
            hole = s;
        }
    }
}

bool model_del(model *r, const void *key, size_t klen) {
    size_t s = slot_of(r, key, klen);
    if (r->slots[s] == FREE_SLOT)
        return false;
    size_t i = r->slots[s];
    free(r->e[i]);
    free_index_slot(r, s);
    if (i != --r->n) { /* the last entry fills the hole in the dense array */
        r->e[i] = r->e[r->n];
        r->slots[slot_of(r, r->e[i]->key, r->e[i]->klen)] = i;
    }
    return true;
}

void model_set_flags_all(model *r, unsigned flags) {
    for (size_t i = 0; i < r->n; i++)
        r->e[i]->flags = flags;
}

const void *model_key_bytes(const model *r, const void *map_key, size_t *klen) {
    if (r->key_size) {
        *klen = r->key_size;
        return map_key;
    }
    const char *s = *(const char *const *)map_key;
    *klen = strlen(s);
    return s;
}

/* Every yielded entry is in the model with the same value, none twice, and all of them are yielded. */
static void assert_iteration_matches(const model *r, hmap *m, const char *context) {
    unsigned char *seen = xcalloc(r->n + 1, 1);
    size_t yielded = 0;
    hmap_iter it;
    void *k, *v;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, &v)) {
        size_t klen;
        const void *kb = model_key_bytes(r, k, &klen);
        size_t s = slot_of(r, kb, klen);
        if (r->slots[s] == FREE_SLOT)
            check_fail("%s: iteration yielded a key the model does not hold", context);
        size_t i = r->slots[s];
        if (seen[i])
            check_fail("%s: iteration yielded a key twice", context);
        seen[i] = 1;
        if (r->val_size && memcmp(v, r->e[i]->val, r->val_size) != 0)
            check_fail("%s: iteration yielded a wrong value", context);
        yielded++;
    }
    hmap_iter_done(&it);
    free(seen);
    if (yielded != r->n)
        check_fail("%s: iteration yielded %zu entries, the model holds %zu", context, yielded, r->n);
}

/* hmap_get finds every model entry with its value. The map's key for an entry is its bytes, or (string
 * keys) a char * to a NUL-terminated copy of its characters. */
static void assert_lookups_match(const model *r, hmap *m, const char *context) {
    char buf[512];
    for (size_t i = 0; i < r->n; i++) {
        const model_entry *e = r->e[i];
        const void *key = e->key;
        char *str = buf;
        if (!r->key_size) {
            check(e->klen < sizeof buf, "%s: model key too long for a lookup", context);
            memcpy(buf, e->key, e->klen);
            buf[e->klen] = '\0';
            key = &str;
        }
        void *v = hmap_get(m, key);
        if (!v)
            check_fail("%s: hmap_get misses a key the model holds", context);
        if (r->val_size && memcmp(v, e->val, r->val_size) != 0)
            check_fail("%s: hmap_get returns a wrong value", context);
    }
}

void model_assert_matches(const model *r, hmap *m, const char *context) {
    if (hmap_len(m) != r->n)
        check_fail("%s: hmap_len %zu, model %zu", context, hmap_len(m), r->n);
    assert_iteration_matches(r, m, context);
    assert_lookups_match(r, m, context);
}

uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t prng_next(prng *p) {
    p->s += 0x9e3779b97f4a7c15ULL;
    return mix64(p->s);
}

uint64_t prng_below(prng *p, uint64_t n) { return prng_next(p) % n; }

bool prng_chance(prng *p, double probability) {
    return (double)(prng_next(p) >> 11) * 0x1.0p-53 < probability;
}

uint64_t env_u64(const char *name, uint64_t fallback) {
    const char *s = getenv(name);
    if (!s || !*s)
        return fallback;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    return *end ? fallback : (uint64_t)v;
}
