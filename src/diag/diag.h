/* SPDX-License-Identifier: MIT */
/*
 * diag/diag.h — what the files of the diagnostics layer share. Nothing here leaves diag/: the layers above
 * see only profile.h (the memory layer's hooks) and trace.h (the core's resize record).
 *
 *   profile.c   sampling, the records of sampled stacks, the table of live samples, periodic and signalled
 *               heap profile dumps, the environment (HMAP_PROFILE_RATE, HMAP_HEAPPROFILE...), fork
 *   pprof.c     the writer: pprof's protobuf, stacks cut at the public API, gzip (hmap_write_heap_profile)
 *   symbols.c   the loaded objects: address ranges, build ids, ELF symbol tables, /proc/self/maps
 *   table.c     the layer's own memory (mapped pages: never the C heap, never a map's allocator hook) and
 *               its one index table
 *   trace.c     the resize trace (HMAP_TRACE, hmap_set_trace)
 *
 * This layer includes only base/ and the public header: it knows nothing of maps or of the memory layer,
 * which is why it allocates its own memory rather than through mem/ (which reports to it).
 */
#ifndef HMAP_DIAG_DIAG_H
#define HMAP_DIAG_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define own_pages hmap__own_pages
#define own_pages_grow hmap__own_pages_grow
#define own_pages_free hmap__own_pages_free
#define own_alloc hmap__own_alloc
#define own_free hmap__own_free
#define own_bytes hmap__own_bytes
#define own_fork_prepare hmap__own_fork_prepare
#define own_fork_release hmap__own_fork_release
#define hash_string hmap__hash_string
#define dtable_find hmap__dtable_find
#define dtable_add hmap__dtable_add
#define dtable_remove hmap__dtable_remove
#define dtable_free hmap__dtable_free
#define profile_snapshot_take hmap__profile_snapshot_take
#define profile_snapshot_free hmap__profile_snapshot_free
#define profile_record_count hmap__profile_record_count
#define profile_name_count hmap__profile_name_count
#define objects_load hmap__objects_load
#define objects_free hmap__objects_free
#define objects_function hmap__objects_function
#define objects_in_public_api hmap__objects_in_public_api
#define objects_mappings hmap__objects_mappings
#define trace_fork_prepare hmap__trace_fork_prepare
#define trace_fork_release hmap__trace_fork_release

/* ---- the layer's own memory (table.c) ---------------------------------------------------------------------
 * Zeroed pages mapped from the OS. Not counted in hmap_read_memstats, which counts what the library holds
 * for maps; own_bytes() tells what this layer holds. */

void *own_pages(size_t *bytes); /* *bytes rounded up to whole pages; NULL on failure */
void own_pages_free(void *p, size_t bytes);
/* Grows own_pages memory to *bytes (rounded up), moving it if it must; the contents are kept, the new tail
 * is zero. NULL on failure, the old mapping then intact. p may be NULL (then as own_pages). */
void *own_pages_grow(void *p, size_t old_bytes, size_t *bytes);
/* Small blocks (names, the trace filter), carved from own pages; any thread. NULL on failure. */
void *own_alloc(size_t n);
void own_free(void *p, size_t n);
size_t own_bytes(void);
void own_fork_prepare(void); /* takes the small-block lock (before fork) */
void own_fork_release(void); /* and gives it back (after fork, in parent and child) */

/* ---- the index table (table.c) ----------------------------------------------------------------------------
 * Maps a key to the number of an item the caller keeps in its own array: open addressing, linear probing,
 * at most half full, deletion by backward shift (no tombstones). A slot holds 32 bits of the key's hash
 * and the item number, so growing and deleting never ask the caller for its keys; only a lookup compares
 * keys, through `match`. Items are numbered from 0 to DTABLE_NONE - 1. Not thread-safe: callers lock. */

#define DTABLE_NONE UINT32_MAX

typedef struct dtable_slot {
    uint32_t hash; /* low 32 bits of the key's hash */
    uint32_t item; /* item number + 1; 0: empty */
} dtable_slot;

typedef struct dtable {
    dtable_slot *slots; /* own pages */
    size_t cap;         /* a power of two, or 0 before the first add */
    size_t count;
} dtable;

typedef bool (*dtable_match)(const void *ctx, uint32_t item, const void *key);

/* The item whose key is `key` (match(ctx, item, key) says so), or DTABLE_NONE. */
uint32_t dtable_find(const dtable *t, uint64_t hash, dtable_match match, const void *ctx, const void *key);
/* Adds an item that is not in the table yet. false when out of memory (the table is then unchanged). */
bool dtable_add(dtable *t, uint64_t hash, uint32_t item);
/* Removes an item added under `hash`; nothing when absent. */
void dtable_remove(dtable *t, uint64_t hash, uint32_t item);
void dtable_free(dtable *t);

/* A 64-bit hash of n bytes, word by word through base/mix.h's mix64 (for names and function names). */
uint64_t hash_string(const char *s, size_t n);

/* ---- the records, as the writer sees them (profile.c) -------------------------------------------------- */

/* Frames kept per sampled stack, counted from the caller of the allocation hook. Go's heap profile kept 32
 * for years; calls into a map are rarely that deep, and deeper stacks lose only their outermost frames. */
#define MAX_FRAMES 64

typedef struct sample_record {
    size_t size;            /* bytes of each block */
    size_t rate;            /* the sampling rate the samples were taken at (1: every allocation) */
    uint64_t allocs, frees; /* sampled allocations, and sampled blocks since freed */
    const char *name;       /* the "map" label, or NULL */
    unsigned nframes;
    void *frames[MAX_FRAMES]; /* return addresses, innermost first */
} sample_record;

/* A copy of every record, taken under the profiler's lock so that encoding runs without it. The copy is
 * on the C heap (like everything a write uses while it runs), freed by profile_snapshot_free. */
typedef struct profile_snapshot {
    sample_record *recs;
    size_t n;
    char *names; /* the labels the records point into */
    size_t rate; /* the rate now */
} profile_snapshot;

int profile_snapshot_take(profile_snapshot *s); /* 0 or -ENOMEM */
void profile_snapshot_free(profile_snapshot *s);
size_t profile_record_count(void); /* records and interned names held now (for tests) */
size_t profile_name_count(void);

/* ---- the loaded objects (symbols.c) -----------------------------------------------------------------------
 * Read once per profile write, on the C heap, freed with objects_free. */

typedef struct objects objects;

typedef struct mapping {
    uintptr_t start, limit, offset;
    char path[512];
    const char *build_id; /* hex, or "" */
} mapping;

objects *objects_load(void); /* NULL when out of memory */
void objects_free(objects *o);
/* The name of the function holding pc (from .symtab, else .dynsym, else dladdr), or NULL. */
const char *objects_function(objects *o, uintptr_t pc);
/* Is pc inside one of the library's public functions (global, default visibility, named hmap_ but not
 * hmap__), or a compiler-made part of one (hmap_put.cold)? */
bool objects_in_public_api(objects *o, uintptr_t pc);
/* The executable file mappings of /proc/self/maps, with their objects' build ids, in *maps (malloc'd:
 * free() it): 0, or -ENOMEM. */
int objects_mappings(objects *o, mapping **maps, size_t *n);

/* ---- fork (trace.c) ------------------------------------------------------------------------------------ */
void trace_fork_prepare(void);
void trace_fork_release(void);

#endif /* HMAP_DIAG_DIAG_H */
