/* SPDX-License-Identifier: MIT */
/*
 * mem/mem.h — the memory layer: every byte the library takes, counted by its owner.
 *
 * Each part of the library that holds memory (a map, a concurrent map's shards, a pool) embeds a
 * mem_owner: the bytes it holds now, and its mem_source — the allocator hook it allocates through and the
 * label its memory carries in heap profiles (a map's source is its class's, shared: core.h). Everything
 * allocated through an owner is also counted in the process-wide memstats (hmap_read_memstats) and reported
 * to the heap profiler (diag/profile.h).
 *
 * Two kinds of memory:
 *  - small objects (map structs, names, tables' headers): from the hook, malloc/free when none is given;
 *  - arrays (bucket arrays, overflow slabs): with the built-in hook, arrays of MAP_THRESHOLD bytes or more
 *    are mapped from the OS, so that freeing them lowers RSS; the memory thread (mem/memthread.h)
 *    pre-faults new ones (or the parts of a lazy one about to be written anywhere) and unmaps freed ones.
 * With a user hook, arrays come from the hook.
 */
#ifndef HMAP_MEM_H
#define HMAP_MEM_H

#include "hmap.h"

#include <stdbool.h>
#include <stddef.h>

#define default_allocator hmap__default_allocator
#define mem_alloc hmap__mem_alloc
#define mem_free hmap__mem_free
#define mem_alloc_array hmap__mem_alloc_array
#define mem_alloc_array_lazy hmap__mem_alloc_array_lazy
#define mem_count_pages hmap__mem_count_pages
#define mem_free_array hmap__mem_free_array
#define mem_probe_array hmap__mem_probe_array
#define mem_raw_alloc hmap__mem_raw_alloc
#define mem_raw_free hmap__mem_raw_free
#define memstats_note_alloc hmap__memstats_note_alloc
#define memstats_note_free hmap__memstats_note_free

#define mem_page_size hmap__mem_page_size
#define mem_array_maps hmap__mem_array_maps
#define mem_prefault hmap__mem_prefault

/* Arrays of this many bytes or more are mapped from the OS by the built-in allocator (a part with a hook of
 * its own, as the concurrent map's, follows the same rule). */
#define MAP_THRESHOLD ((size_t)256 << 10)

size_t mem_page_size(void); /* the OS page size, read once */

/* Where a piece of memory comes from: the hook, and the label its blocks carry in heap profiles. An owner
 * points to one; owners that allocate alike may share one (every map of one class does: core.h). */
typedef struct mem_source {
    hmap_allocator alloc; /* the hook (a copy of the user's, or the built-in malloc/free) */
    bool custom_alloc;    /* a user hook: arrays come from it rather than from mmap */
    const char *name;     /* label in heap profiles; NULL for none */
} mem_source;

/* Who holds a piece of memory: its source, and every byte held through this owner now. */
typedef struct mem_owner {
    const mem_source *src;
    size_t bytes;
} mem_owner;

extern const hmap_allocator default_allocator;

/* Is `a` a user's hook (NULL and default_allocator are the built-in one)? */
static inline bool mem_allocator_is_custom(const hmap_allocator *a) { return a && a != &default_allocator; }

/* The source record for allocator `a` (NULL: the built-in one). */
static inline void mem_source_init(mem_source *s, const hmap_allocator *a, const char *name) {
    s->custom_alloc = mem_allocator_is_custom(a);
    s->alloc = a ? *a : default_allocator;
    s->name = name;
}

/* An owner allocating from src; bytes start at 0. */
static inline void mem_owner_init(mem_owner *o, const mem_source *src) {
    o->src = src;
    o->bytes = 0;
}

/* Small objects, through the hook. NULL on failure. */
void *mem_alloc(mem_owner *o, size_t size);
void mem_free(mem_owner *o, void *p, size_t size);

/* Arrays: *size may be rounded up to whole pages; only the first zero_prefix bytes are guaranteed zero;
 * *mapped tells mem_free_array how to give it back. populate: a mapped array is pre-faulted in the
 * background (for an array about to be filled; not for one that fills only as fast as another empties). */
void *mem_alloc_array(mem_owner *o, size_t *size, size_t zero_prefix, bool populate, bool *mapped);
/* Would mem_alloc_array map an array of `size` bytes from the OS? (Else it comes from the allocator.) */
bool mem_array_maps(const mem_owner *o, size_t size);
/* An array that fills only as fast as another empties (a shrink's, a same-size growth's): mapped, none of
 * its bytes are counted as held at first (*counted_whole false), and the caller counts each page with
 * mem_count_pages before it first writes there, so that the owner's bytes and memstats say what the
 * process holds: a page never written is never backed (reads see the shared zero page). An array below
 * MAP_THRESHOLD or from a user hook is as mem_alloc_array's, counted whole (*counted_whole true). */
void *mem_alloc_array_lazy(mem_owner *o, size_t *size, size_t zero_prefix, bool *counted_whole, bool *mapped);
void mem_count_pages(mem_owner *o, size_t bytes); /* bytes of a lazy array now counted as held */
/* Frees an array; `released`: bytes of it not counted as held any more (given back by
 * mem_release_array_pages, or never counted: a lazy array's pages never written). */
void mem_free_array(mem_owner *o, void *p, size_t size, size_t released, bool mapped);
/* Gives the whole pages of a mapped array's byte range [*from, to) back to the OS, its contents no longer
 * needed (they read as zeros after); they stop counting as held, in the owner and in memstats (the heap
 * profile keeps the array's full size until it is freed). *from advances to where the next call should
 * start. Returns the bytes released: 0 for an array that is not mapped (freed whole only). */
size_t mem_release_array_pages(mem_owner *o, void *p, size_t *from, size_t to, bool mapped);
/* Asks for the whole pages covering [p, p + size) of a mapped array to be faulted in, in the background (a
 * hint, for a range about to be written anywhere). */
void mem_prefault(void *p, size_t size);
/* Could an array of `size` bytes be had now? Asks for it and gives it back untouched (a mapping and an
 * unmapping with the built-in allocator; the hook's alloc and free otherwise, counted in memstats as such).
 */
bool mem_probe_array(mem_owner *o, size_t size);

/* Allocation before an owner exists (the struct that will embed it): counted in memstats, not in any
 * owner's bytes. */
void *mem_raw_alloc(const hmap_allocator *a, size_t size);
void mem_raw_free(const hmap_allocator *a, void *p, size_t size);

void memstats_note_alloc(size_t size);
void memstats_note_free(size_t size);

#endif /* HMAP_MEM_H */
