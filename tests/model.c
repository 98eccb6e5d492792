/*
 * model.c — the reference model (see model.h): a sorted array of entry pointers and binary search.
 * Nothing clever on purpose; the only goal is to be obviously right.
 */
#include "model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int compare_key(const model_entry *e, const void *key, size_t klen) {
    if (e->klen != klen)
        return e->klen < klen ? -1 : 1;
    return memcmp(e->key, key, klen);
}

/* Index of the first entry not less than key. */
static size_t lower_bound(const model *r, const void *key, size_t klen) {
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (compare_key(r->e[mid], key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool found_at(const model *r, size_t i, const void *key, size_t klen) {
    return i < r->n && compare_key(r->e[i], key, klen) == 0;
}

void model_init(model *r, size_t key_size, size_t val_size) {
    memset(r, 0, sizeof *r);
    r->key_size = key_size;
    r->val_size = val_size;
}

void model_clear(model *r) {
    for (size_t i = 0; i < r->n; i++)
        free(r->e[i]);
    r->n = 0;
}

void model_destroy(model *r) {
    model_clear(r);
    free(r->e);
    memset(r, 0, sizeof *r);
}

size_t model_len(const model *r) { return r->n; }

model_entry *model_at(const model *r, size_t i) { return i < r->n ? r->e[i] : NULL; }

model_entry *model_find(const model *r, const void *key, size_t klen) {
    size_t i = lower_bound(r, key, klen);
    return found_at(r, i, key, klen) ? r->e[i] : NULL;
}

int model_put(model *r, const void *key, size_t klen, const void *val) {
    size_t i = lower_bound(r, key, klen);
    if (found_at(r, i, key, klen)) {
        if (r->val_size)
            memcpy(r->e[i]->val, val, r->val_size);
        return 0;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->e = realloc(r->e, r->cap * sizeof *r->e);
        assert_non_null(r->e);
    }
    model_entry *e = malloc(sizeof *e + klen + r->val_size);
    assert_non_null(e);
    e->klen = klen;
    e->flags = 0;
    memcpy(e->key, key, klen);
    e->val = e->key + klen;
    if (r->val_size)
        memcpy(e->val, val, r->val_size);
    memmove(&r->e[i + 1], &r->e[i], (r->n - i) * sizeof *r->e);
    r->e[i] = e;
    r->n++;
    return 1;
}

bool model_del(model *r, const void *key, size_t klen) {
    size_t i = lower_bound(r, key, klen);
    if (!found_at(r, i, key, klen))
        return false;
    free(r->e[i]);
    memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof *r->e);
    r->n--;
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
    unsigned char *seen = calloc(r->n + 1, 1);
    assert_non_null(seen);
    size_t yielded = 0;
    hmap_iter it;
    void *k, *v;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, &v)) {
        size_t klen;
        const void *kb = model_key_bytes(r, k, &klen);
        size_t i = lower_bound(r, kb, klen);
        if (!found_at(r, i, kb, klen))
            fail_msg("%s: iteration yielded a key the model does not hold", context);
        if (seen[i])
            fail_msg("%s: iteration yielded a key twice", context);
        seen[i] = 1;
        if (r->val_size && memcmp(v, r->e[i]->val, r->val_size) != 0)
            fail_msg("%s: iteration yielded a wrong value", context);
        yielded++;
    }
    hmap_iter_done(&it);
    free(seen);
    if (yielded != r->n)
        fail_msg("%s: iteration yielded %zu entries, the model holds %zu", context, yielded, r->n);
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
            assert_true(e->klen < sizeof buf);
            memcpy(buf, e->key, e->klen);
            buf[e->klen] = '\0';
            key = &str;
        }
        void *v = hmap_get(m, key);
        if (!v)
            fail_msg("%s: hmap_get misses a key the model holds", context);
        if (r->val_size && memcmp(v, e->val, r->val_size) != 0)
            fail_msg("%s: hmap_get returns a wrong value", context);
    }
}

void model_assert_matches(const model *r, hmap *m, const char *context) {
    if (hmap_len(m) != r->n)
        fail_msg("%s: hmap_len %zu, model %zu", context, hmap_len(m), r->n);
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
