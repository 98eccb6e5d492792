/* SPDX-License-Identifier: MIT */
/*
 * diag/table.c — the diagnostics layer's own memory, and its one index table (see diag.h).
 *
 * Own memory. The profiler runs inside every allocation the library makes, and a map may be built with an
 * allocator hook precisely so that it never touches the C heap; the profiler's records must then not
 * come from malloc either, and they cannot come from the map's hook (they outlive the map and belong to
 * no map). So this layer maps its own pages. Arrays that grow (records, live samples, index tables) are
 * whole mappings grown with mremap, which moves pages instead of copying them. Small blocks (names, the
 * trace filter) come from 64 KiB chunks split into power-of-two classes of 16 to 2048 bytes, each class
 * with a free list: freed blocks are reused, never returned, so a program that keeps creating and freeing
 * named maps reaches a steady size. The writer of a profile is the exception: it runs on demand, off
 * the allocation path, and uses the C heap as zlib and stdio do anyway.
 *
 * The index table replaces four hand-written ones (records, live samples, the profile's strings, its
 * locations). It stores, per slot, 32 bits of the key's hash and the number of an item kept in the
 * caller's array: the caller's arrays stay dense and stable, growing rehashes from the stored hash bits
 * without calling back, and a lookup compares full keys only when those 32 bits agree.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap */
#endif
#include "diag.h"

#include "../base/mix.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- pages --------------------------------------------------------------------------------------------- */

static _Atomic size_t mapped_bytes;

static size_t round_to_pages(size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return n == 0 ? page : (n + page - 1) & ~(page - 1);
}

void *own_pages(size_t *bytes) {
    size_t n = round_to_pages(*bytes);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    atomic_fetch_add_explicit(&mapped_bytes, n, memory_order_relaxed);
    *bytes = n;
    return p;
}

void own_pages_free(void *p, size_t bytes) {
    if (p == NULL)
        return;
    munmap(p, bytes);
    atomic_fetch_sub_explicit(&mapped_bytes, bytes, memory_order_relaxed);
}

void *own_pages_grow(void *p, size_t old_bytes, size_t *bytes) {
    if (p == NULL)
        return own_pages(bytes);
    size_t n = round_to_pages(*bytes);
    void *q = mremap(p, old_bytes, n, MREMAP_MAYMOVE);
    if (q == MAP_FAILED)
        return NULL;
    atomic_fetch_add_explicit(&mapped_bytes, n - old_bytes, memory_order_relaxed);
    *bytes = n;
    return q;
}

size_t own_bytes(void) { return atomic_load_explicit(&mapped_bytes, memory_order_relaxed); }

/* ---- small blocks -------------------------------------------------------------------------------------- */

#define SMALL_MIN_SHIFT 4  /* 16 bytes */
#define SMALL_MAX_SHIFT 11 /* 2048 bytes; larger blocks are whole mappings */
#define CHUNK_BYTES ((size_t)64 << 10)
#define NCLASSES (SMALL_MAX_SHIFT - SMALL_MIN_SHIFT + 1)

typedef struct free_block {
    struct free_block *next;
} free_block;

static pthread_mutex_t small_lock = PTHREAD_MUTEX_INITIALIZER;
static free_block *free_lists[NCLASSES];
static unsigned char *chunk_at, *chunk_end; /* the rest of the chunk being carved */

static unsigned class_of(size_t n) {
    unsigned c = 0;
    while (((size_t)1 << (c + SMALL_MIN_SHIFT)) < n)
        c++;
    return c;
}

/* A block of class c from the current chunk (a new one when it is used up). Called with small_lock. */
static void *carve(unsigned c) {
    size_t size = (size_t)1 << (c + SMALL_MIN_SHIFT);
    if (chunk_at == NULL || (size_t)(chunk_end - chunk_at) < size) {
        size_t bytes = CHUNK_BYTES;
        unsigned char *chunk = own_pages(&bytes);
        if (chunk == NULL)
            return NULL;
        chunk_at = chunk; /* the old chunk's tail (under 2 KiB) is left unused */
        chunk_end = chunk + bytes;
    }
    void *p = chunk_at;
    chunk_at += size;
    return p;
}

void *own_alloc(size_t n) {
    if (n > ((size_t)1 << SMALL_MAX_SHIFT))
        return own_pages(&n);
    unsigned c = class_of(n);
    pthread_mutex_lock(&small_lock);
    free_block *b = free_lists[c];
    void *p;
    if (b != NULL) {
        free_lists[c] = b->next;
        p = b;
    } else {
        p = carve(c);
    }
    pthread_mutex_unlock(&small_lock);
    return p;
}

void own_free(void *p, size_t n) {
    if (p == NULL)
        return;
    if (n > ((size_t)1 << SMALL_MAX_SHIFT)) {
        own_pages_free(p, round_to_pages(n));
        return;
    }
    unsigned c = class_of(n);
    free_block *b = p;
    pthread_mutex_lock(&small_lock);
    b->next = free_lists[c];
    free_lists[c] = b;
    pthread_mutex_unlock(&small_lock);
}

void own_fork_prepare(void) { pthread_mutex_lock(&small_lock); }
void own_fork_release(void) { pthread_mutex_unlock(&small_lock); }

/* ---- the index table ----------------------------------------------------------------------------------- */

uint32_t dtable_find(const dtable *t, uint64_t hash, dtable_match match, const void *ctx, const void *key) {
    if (t->cap == 0)
        return DTABLE_NONE;
    uint32_t h = (uint32_t)hash;
    size_t mask = t->cap - 1;
    for (size_t i = h & mask; t->slots[i].item != 0; i = (i + 1) & mask)
        if (t->slots[i].hash == h && match(ctx, t->slots[i].item - 1, key))
            return t->slots[i].item - 1;
    return DTABLE_NONE;
}

static void place(dtable_slot *slots, size_t cap, dtable_slot s) {
    size_t i = s.hash & (cap - 1);
    while (slots[i].item != 0)
        i = (i + 1) & (cap - 1);
    slots[i] = s;
}

static bool grow(dtable *t) {
    size_t cap = t->cap ? t->cap * 2 : 512; /* 512 slots: one 4 KiB page */
    size_t bytes = cap * sizeof(dtable_slot);
    dtable_slot *slots = own_pages(&bytes);
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].item != 0)
            place(slots, cap, t->slots[i]);
    own_pages_free(t->slots, t->cap * sizeof(dtable_slot));
    t->slots = slots;
    t->cap = cap;
    return true;
}

bool dtable_add(dtable *t, uint64_t hash, uint32_t item) {
    if ((t->count + 1) * 2 > t->cap && !grow(t))
        return false;
    place(t->slots, t->cap, (dtable_slot){(uint32_t)hash, item + 1});
    t->count++;
    return true;
}

void dtable_remove(dtable *t, uint64_t hash, uint32_t item) {
    if (t->cap == 0)
        return;
    uint32_t h = (uint32_t)hash;
    size_t mask = t->cap - 1, i = h & mask;
    while (t->slots[i].item != item + 1 || t->slots[i].hash != h) {
        if (t->slots[i].item == 0)
            return;
        i = (i + 1) & mask;
    }
    /* Backward shift: later slots of the run move into the hole unless their home lies cyclically in
     * (hole, j], which keeps every probe sequence unbroken without tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; t->slots[j].item != 0; j = (j + 1) & mask) {
        size_t home = t->slots[j].hash & mask;
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = (dtable_slot){0, 0};
    t->count--;
}

void dtable_free(dtable *t) {
    own_pages_free(t->slots, t->cap * sizeof(dtable_slot));
    *t = (dtable){0};
}

uint64_t hash_string(const char *s, size_t n) {
    uint64_t h = mix64(n ^ 0x9e3779b97f4a7c15ULL);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w);
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix64(h ^ w);
}
