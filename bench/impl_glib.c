/* SPDX-License-Identifier: MIT */
/*
 * impl_glib.c — GLib's GHashTable, as C programs commonly use it.
 *
 * uint64 keys are stored in the key pointer itself (64-bit pointers) with g_direct_hash/g_direct_equal,
 * the cheapest way GLib offers (no allocation per key); the keys are already well mixed, so the 32-bit
 * truncation in g_direct_hash costs nothing. String keys: g_str_hash/g_str_equal on the arena pointers.
 * Values are stored in the value pointer. GHashTable has no size hint, so "insert after reserve" is not
 * reported for it.
 *
 * Bytes held: GHashTable allocates its arrays with g_malloc (glibc malloc), so the map's bytes are the
 * growth of malloc's in-use bytes (mallinfo2) since the map was created. That is exact only while it is
 * the only thing allocating, which holds in the worker's memory experiment.
 */
#include "loops.h"

#include <glib.h>
#include <stdlib.h>

typedef struct gmap {
    GHashTable *t;
    size_t base; /* malloc_in_use() before the table existed */
} gmap;

static bool gl_supports(key_kind kind) {
    (void)kind;
    return true;
}

static void *gl_create(key_kind kind, size_t reserve) {
    (void)reserve;
    gmap *g = malloc(sizeof *g);
    if (!g)
        abort();
    g->base = malloc_in_use();
    g->t = kind == KEYS_U64 ? g_hash_table_new(g_direct_hash, g_direct_equal)
                            : g_hash_table_new(g_str_hash, g_str_equal);
    return g;
}

static void gl_destroy(void *m) {
    gmap *g = m;
    g_hash_table_destroy(g->t);
    free(g);
}

#define AS_PTR(x) ((gpointer)(uintptr_t)(x))

static inline void gl_put_u64(void *m, uint64_t key, uint64_t val) {
    g_hash_table_insert(((gmap *)m)->t, AS_PTR(key), AS_PTR(val));
}
static inline void gl_put_str(void *m, const char *key, uint32_t len, uint64_t val) {
    (void)len;
    g_hash_table_insert(((gmap *)m)->t, (gpointer)key, AS_PTR(val));
}
/* Values are never 0 (value of key i is i + 1), so a NULL result means absent. */
static inline bool gl_get_u64(void *m, uint64_t key, uint64_t *val) {
    gpointer p = g_hash_table_lookup(((gmap *)m)->t, AS_PTR(key));
    *val = (uint64_t)(uintptr_t)p;
    return p != NULL;
}
static inline bool gl_get_str(void *m, const char *key, uint32_t len, uint64_t *val) {
    (void)len;
    gpointer p = g_hash_table_lookup(((gmap *)m)->t, key);
    *val = (uint64_t)(uintptr_t)p;
    return p != NULL;
}
static inline bool gl_del_u64(void *m, uint64_t key) {
    return g_hash_table_remove(((gmap *)m)->t, AS_PTR(key));
}
static inline bool gl_del_str(void *m, const char *key, uint32_t len) {
    (void)len;
    return g_hash_table_remove(((gmap *)m)->t, key);
}

DEFINE_LOOPS(gl)

static uint64_t gl_iterate(void *m, size_t *count) {
    GHashTableIter it;
    gpointer k, v;
    uint64_t sum = 0;
    size_t c = 0;
    g_hash_table_iter_init(&it, ((gmap *)m)->t);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        sum += (uint64_t)(uintptr_t)v;
        c++;
    }
    *count = c;
    return sum;
}

static size_t gl_bytes(void *m) {
    size_t now = malloc_in_use(), base = ((gmap *)m)->base;
    return now > base ? now - base : 0;
}

static size_t gl_len(void *m) { return g_hash_table_size(((gmap *)m)->t); }

const adapter adapter_glib = ADAPTER(gl, "glib", false, NULL, NULL);
