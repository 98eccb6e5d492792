/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c — the counting, checking, refusing allocator of test_alloc.h.
 */
#include "test_alloc.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

#define HEADER 16
#define LIVE_TAG 0x1ee7b10cULL
#define FREED_TAG 0xdeadb10cULL

typedef struct header {
    size_t size;
    uint64_t tag;
} header;

_Static_assert(sizeof(header) <= HEADER, "the header must fit in front of the block");

static void *hook_alloc(size_t size, void *ctx) {
    test_alloc *a = ctx;
    a->calls++;
    if (a->calls == a->fail_at || size > SIZE_MAX - HEADER ||
        (a->limit && (size > a->limit || a->live_bytes > a->limit - size))) {
        a->failures++;
        return NULL;
    }
    unsigned char *p = malloc(size + HEADER);
    if (!p) {
        a->failures++;
        return NULL;
    }
    header h = {size, LIVE_TAG};
    memcpy(p, &h, sizeof h);
    a->live_bytes += size;
    a->live_blocks++;
    a->granted_bytes += size;
    if (a->live_bytes > a->peak_bytes)
        a->peak_bytes = a->live_bytes;
    return p + HEADER;
}

static void hook_free(void *ptr, size_t size, void *ctx) {
    test_alloc *a = ctx;
    check(ptr != NULL, "the map freed NULL through the hook");
    unsigned char *p = (unsigned char *)ptr - HEADER;
    header h;
    memcpy(&h, p, sizeof h);
    check(h.tag == LIVE_TAG, "free of a block that is not live (tag %#llx)", (unsigned long long)h.tag);
    check(h.size == size, "free of a %zu-byte block named %zu bytes", h.size, size);
    check(a->live_blocks > 0 && a->live_bytes >= size, "more freed than allocated");
    a->live_bytes -= size;
    a->live_blocks--;
    h.tag = FREED_TAG;
    memcpy(p, &h, sizeof h);
    /* A stale read sees garbage. (The first 256 KiB: a stale pointer into a bigger block is rare.) */
    memset(p + HEADER, 0xdb, size < ((size_t)256 << 10) ? size : (size_t)256 << 10);
    free(p);
}

void test_alloc_init(test_alloc *a) {
    memset(a, 0, sizeof *a);
    a->hook = (hmap_allocator){hook_alloc, hook_free, a};
}

void test_alloc_fail_in(test_alloc *a, uint64_t k) { a->fail_at = a->calls + (k ? k : 1); }

void test_alloc_check_empty(const test_alloc *a, const char *context) {
    check(a->live_blocks == 0 && a->live_bytes == 0, "%s: the allocator still holds %zu blocks, %zu bytes",
          context, a->live_blocks, a->live_bytes);
}

size_t test_side_record_bytes(void) {
    static const hmap_type u64 = {.key_size = 8, .val_size = 8};
    hmap *fresh = hmap_new(&u64, 0), *m = hmap_new(&u64, 0);
    check(fresh && m, "no memory for two maps");
    for (uint64_t i = 0; i < 9; i++) /* one growth: 9 entries do not fit one bucket */
        check(hmap_put(m, &i, &i) == 1, "put %llu", (unsigned long long)i);
    hmap_clear(m);
    hmap_stats a, b;
    hmap_get_stats(fresh, &a);
    hmap_get_stats(m, &b);
    hmap_free(fresh);
    hmap_free(m);
    check(b.bytes >= a.bytes && b.bytes - a.bytes < 256, "an emptied map holds %zu B, a fresh one %zu B",
          b.bytes, a.bytes);
    return b.bytes - a.bytes;
}
