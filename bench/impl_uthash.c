/* SPDX-License-Identifier: MIT */
/*
 * impl_uthash.c — uthash, the intrusive header-only hash table many C programs embed.
 *
 * Each entry is a node of our own (key, value, UT_hash_handle) allocated with malloc, as uthash users
 * do; uint64 keys use HASH_ADD/HASH_FIND on the 8 key bytes, string keys HASH_ADD_KEYPTR on the arena
 * pointer. uthash has no size hint ("insert after reserve" not reported) and never shrinks its bucket
 * array.
 *
 * Bytes held: every allocation (nodes here, bucket arrays inside uthash through the uthash_malloc /
 * uthash_free hooks) is counted as malloc_usable_size + 8, what glibc really spends on it (the chunk
 * header included), since per-entry nodes make malloc's overhead part of the map's cost. The counter is
 * per process; the worker's memory experiment has one uthash map alive at a time.
 */
#define _GNU_SOURCE
#include "loops.h"

#include <malloc.h>
#include <stdlib.h>

static size_t ut_bytes_held;

static void *ut_alloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "hmap-bench: out of memory in uthash\n");
        exit(1);
    }
    ut_bytes_held += malloc_usable_size(p) + 8;
    return p;
}

static void ut_release(void *p) {
    if (!p)
        return;
    ut_bytes_held -= malloc_usable_size(p) + 8;
    free(p);
}

#define uthash_malloc(sz) ut_alloc(sz)
#define uthash_free(ptr, sz) ut_release(ptr)
#include <uthash.h>

typedef struct node {
    union {
        uint64_t u64;
        const char *str;
    } key;
    uint64_t val;
    UT_hash_handle hh;
} node;

typedef struct utmap {
    node *head;
} utmap;

static bool ut_supports(key_kind kind) {
    (void)kind;
    return true;
}

static void *ut_create(key_kind kind, size_t reserve) {
    (void)kind;
    (void)reserve;
    utmap *u = ut_alloc(sizeof *u);
    u->head = NULL;
    return u;
}

static void ut_destroy(void *m) {
    utmap *u = m;
    node *e, *tmp;
    HASH_ITER(hh, u->head, e, tmp) {
        HASH_DEL(u->head, e);
        ut_release(e);
    }
    ut_release(u);
}

static inline void ut_put_u64(void *m, uint64_t key, uint64_t val) {
    utmap *u = m;
    node *e;
    HASH_FIND(hh, u->head, &key, sizeof key, e);
    if (e) {
        e->val = val;
        return;
    }
    e = ut_alloc(sizeof *e);
    e->key.u64 = key;
    e->val = val;
    HASH_ADD(hh, u->head, key.u64, sizeof(uint64_t), e);
}
static inline void ut_put_str(void *m, const char *key, uint32_t len, uint64_t val) {
    utmap *u = m;
    node *e;
    HASH_FIND(hh, u->head, key, len, e);
    if (e) {
        e->val = val;
        return;
    }
    e = ut_alloc(sizeof *e);
    e->key.str = key;
    e->val = val;
    HASH_ADD_KEYPTR(hh, u->head, e->key.str, len, e);
}
static inline bool ut_get_u64(void *m, uint64_t key, uint64_t *val) {
    node *e;
    HASH_FIND(hh, ((utmap *)m)->head, &key, sizeof key, e);
    if (!e)
        return false;
    *val = e->val;
    return true;
}
static inline bool ut_get_str(void *m, const char *key, uint32_t len, uint64_t *val) {
    node *e;
    HASH_FIND(hh, ((utmap *)m)->head, key, len, e);
    if (!e)
        return false;
    *val = e->val;
    return true;
}
static inline bool ut_del_u64(void *m, uint64_t key) {
    utmap *u = m;
    node *e;
    HASH_FIND(hh, u->head, &key, sizeof key, e);
    if (!e)
        return false;
    HASH_DEL(u->head, e);
    ut_release(e);
    return true;
}
static inline bool ut_del_str(void *m, const char *key, uint32_t len) {
    utmap *u = m;
    node *e;
    HASH_FIND(hh, u->head, key, len, e);
    if (!e)
        return false;
    HASH_DEL(u->head, e);
    ut_release(e);
    return true;
}

DEFINE_LOOPS(ut)

static uint64_t ut_iterate(void *m, size_t *count) {
    node *e, *tmp;
    uint64_t sum = 0;
    size_t c = 0;
    HASH_ITER(hh, ((utmap *)m)->head, e, tmp) {
        sum += e->val;
        c++;
    }
    *count = c;
    return sum;
}

static size_t ut_bytes(void *m) {
    (void)m;
    return ut_bytes_held;
}

static size_t ut_len(void *m) { return HASH_COUNT(((utmap *)m)->head); }

const adapter adapter_uthash = ADAPTER(ut, "uthash", false, NULL, NULL);
