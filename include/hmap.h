/* SPDX-License-Identifier: MIT */
/*
 * hmap — Go's runtime hash map in C, that gives memory back.
 *
 * A map from fixed-size keys to fixed-size values (val_size 0 makes a set). Keys and values are copied
 * into the map by value (memcpy of key_size / val_size bytes); to store strings or objects, store a
 * pointer and give the map a hash, an equality and drop functions (see hmap_hash_cstr below).
 *
 * Growth and shrinking are incremental, as in Go: no single call moves more than a small, bounded
 * number of buckets, except the calls documented as O(n) (hmap_reserve, hmap_compact, hmap_clear,
 * hmap_free). After deletes the map shrinks by itself and large arrays go back to the OS.
 *
 * Threads: one thread at a time may use a map. Concurrent hmap_get / hmap_len / hmap_get_stats calls with
 * no writer are safe (reads never move entries). hmap_read_memstats may be called from any thread.
 *
 * Errors, one rule per kind of function. After any failed call the map is unchanged, nothing leaks, and
 * the caller still owns what it passed. A NULL map or key is an error, never a crash.
 *  - Status calls return int: >= 0 on success (hmap_put: 1 inserted, 0 replaced), a negative errno on
 *    failure (-EINVAL, -ENOMEM; hmap_write_heap_profile also the file system's), errno untouched:
 *    hmap_put, hmap_reserve, hmap_compact, hmap_write_heap_profile.
 *  - Calls that return a new object or a slot return NULL on failure and set errno (EINVAL, ENOMEM):
 *    hmap_new, hmap_new_opts, hmap_assign, and hmap_pool_new / hmap_sync_new.
 *  - Queries answer NULL or false for "not there", which is not an error and leaves errno alone; a NULL
 *    map or key gets the same answer with errno set to EINVAL: hmap_get, hmap_del, hmap_take
 *    (hmap_len: 0; hmap_iter_next: false).
 *  - void calls accept NULL and do nothing: hmap_free, hmap_clear, hmap_reset, hmap_iter_init,
 * hmap_iter_done, hmap_get_stats (zeroed stats), hmap_read_memstats.
 */
#ifndef HMAP_H
#define HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap_typed.h"   /* HMAP_DEFINE: typed maps over this API */
#include "hmap_version.h" /* HMAP_VERSION, hmap_version() */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmap hmap;

/* How the map treats keys and values. The map keeps a copy of this struct. */
typedef struct hmap_type {
    size_t key_size;                                  /* bytes, > 0 */
    size_t val_size;                                  /* bytes, 0 makes a set */
    uint64_t (*hash)(const void *key, uint64_t seed); /* NULL: built-in seeded hash of key_size bytes */
    bool (*equal)(const void *a, const void *b);      /* NULL: byte comparison of key_size bytes */
    void (*key_drop)(void *key); /* NULL: nothing. Called once for each key that leaves the map */
    void (*val_drop)(void *val); /* likewise for values */
    /* The same four callbacks receiving `ctx` (a per-map arena, a counter...): set either the plain one or
     * the _ctx one of each, not both (EINVAL). Zero-initialised types leave them NULL. */
    uint64_t (*hash_ctx)(const void *key, uint64_t seed, void *ctx);
    bool (*equal_ctx)(const void *a, const void *b, void *ctx);
    void (*key_drop_ctx)(void *key, void *ctx);
    void (*val_drop_ctx)(void *val, void *ctx);
    void *ctx;
} hmap_type;

/* Where the map's memory comes from. Every allocation a map makes goes through it. (Maps on the built-in
 * allocator share one small record per distinct type and options, from the C heap; like the heap
 * profiler's memory it is counted in no map's bytes and not in hmap_read_memstats.) */
typedef struct hmap_allocator {
    void *(*alloc)(size_t size, void *ctx); /* NULL on failure; memory need not be zeroed */
    void (*free)(void *ptr, size_t size, void *ctx);
    void *ctx;
} hmap_allocator;

typedef struct hmap_options {
    const hmap_allocator *allocator; /* NULL: built-in (large arrays mapped from the OS, so freeing them
                                        lowers RSS) */
    bool no_shrink;                  /* true: keep memory after deletes, as Go's map does */
    bool fixed_seed;                 /* true: use `seed` (reproducible order, tests only) */
    uint64_t seed;
    const char *name;      /* label in stats, traces and heap profiles; may be NULL. Copied. */
    uint64_t reserved_[4]; /* must be zero (EINVAL otherwise): options added in minor versions go here, so a
                              program built for a newer library fails clearly on an older one */
} hmap_options;

/* Creates a map sized for `hint` entries. NULL with errno EINVAL (NULL type, key_size 0, sizes too large)
 * or ENOMEM (hint too large to allocate, e.g. SIZE_MAX). */
hmap *hmap_new(const hmap_type *type, size_t hint);
hmap *hmap_new_opts(const hmap_type *type, size_t hint, const hmap_options *opts);

/* Drops every key and value and frees the map. NULL is fine. O(n). */
void hmap_free(hmap *m);

/* Live entries; 0 for NULL. */
size_t hmap_len(const hmap *m);

/* The value stored for key, inside the map, or NULL (also for a NULL map or key, with errno EINVAL).
 * Valid until the next write to the map. For a set (val_size 0) a non-NULL pointer means present.
 * Never moves entries: safe from several threads when nothing writes. */
void *hmap_get(const hmap *m, const void *key);

/*
 * Arguments may point into the map. Any key or value passed to a write (put, assign, del, take) may point
 * into the map's own storage — the key and value an iteration just yielded, the value hmap_get returned:
 * the write reads them before anything they point to moves or is freed. A key passed that is bitwise
 * identical to the stored key is the same object, and a value bitwise identical to the stored value
 * likewise: neither is dropped. So `hmap_del(m, key_from_iteration)`, `hmap_put(m, k, hmap_get(m, k))`
 * and re-putting an owned key through the iterator's key pointer are all safe.
 */

/* Inserts or replaces. Returns 1 inserted, 0 replaced, -ENOMEM, -EINVAL (NULL map/key, or val NULL while
 * val_size > 0). The map takes ownership of the key and value passed; on replace it drops the old value
 * and the key passed (the stored key stays) — except a key or value bitwise identical to the stored one,
 * which is the same object and is not dropped. On error nothing changed and the caller still owns both. */
int hmap_put(hmap *m, const void *key, const void *val);

/* The slot for key's value, zeroed when new (*inserted = true), NULL on ENOMEM/EINVAL. The map takes
 * ownership of key when inserted; when the key was present the key passed is dropped (unless it is
 * bitwise the stored key). `inserted` may be NULL. For a set the pointer is only a presence token. */
void *hmap_assign(hmap *m, const void *key, bool *inserted);

/* Removes key, dropping key and value. false if absent (or NULL map/key). */
bool hmap_del(hmap *m, const void *key);

/* Removes key without dropping: the stored key and value are copied to key_out / val_out and ownership
 * moves to the caller. A NULL out drops that part. false if absent. */
bool hmap_take(hmap *m, const void *key, void *key_out, void *val_out);

/* Drops every entry and gives the arrays back (unlike Go's clear(), which keeps them). O(n).
 * Open iterations end: their next hmap_iter_next returns false. */
void hmap_clear(hmap *m);

/* Drops every entry and keeps the current array (as Go's clear() does): a map that will be filled to the
 * same size again — a pooled scratch map, say — does not regrow. Overflow buckets and an array being
 * evacuated are freed. O(buckets). Open iterations end. The kept array shrinks later like any other when
 * the map stays small (deletes), or at hmap_compact. */
void hmap_reset(hmap *m);

/* Makes room for n entries without further growth: 0, -ENOMEM or -EINVAL. O(n): finishes any resize.
 * The room is kept (no shrinking below it, also when entries are deleted meanwhile) until the count first
 * reaches n, or until hmap_compact / hmap_clear. On -ENOMEM the entries are unchanged, and any doubling
 * done before the failure is undone by a shrink over the next writes. */
int hmap_reserve(hmap *m, size_t n);

/* Finishes any evacuation and shrinks the arrays to fit the live entries, now (also with no_shrink; an
 * empty map gives its arrays back): 0 or -ENOMEM, the map then as it was. Ends a reservation. O(n). */
int hmap_compact(hmap *m);

/* Not for callers: the part of an iterator that hmap_iter_next reads inline. The library hands out the
 * entries of the buckets the iteration is in ahead of time (one bucket, or a run of up to a few
 * consecutive ones), as a mask of their slots; they stay valid while the map's write stamp is unchanged
 * (nothing inserted, deleted or moved, no clear). So the common call is a few loads and stores, and after
 * any write inside the loop the next call goes back to the library, which keeps the guarantees above. */
typedef struct hmap_iter_window_ {
    const uint64_t *stamp; /* the map's write stamp */
    uint64_t stamp_seen;   /* ...when the entries were handed out */
    uint64_t slots;        /* bit i: the window's slot i is still to be yielded (slot s of its bucket b is
                              slot 8 * b + s: a run's buckets lie one after the other, 8 slots each) */
    unsigned char *keys;   /* slot i's key is at keys + i * key_step, */
    unsigned char *vals;   /* its value at vals + i * val_step */
    uint32_t key_step, val_step;
} hmap_iter_window_;

/* Not for callers: the lowest bit set in a window's mask (a macro: hmap_iter_next may only use what has
 * external linkage or none). */
#if defined(__GNUC__) || defined(__clang__)
#define HMAP_ITER_LOWEST_BIT_(slots) ((unsigned)__builtin_ctzll(slots))
#else
#define HMAP_ITER_LOWEST_BIT_(slots) hmap_iter_lowest_bit_(slots)
unsigned hmap_iter_lowest_bit_(uint64_t slots);
#endif

/*
 * Iteration. Order is unspecified and differs between iterations. While an iteration is open the caller
 * may put, assign, delete and take on the same map, and open more iterations. A key present when the
 * iteration starts and not deleted before it is reached is yielded exactly once, even when the map grows
 * or shrinks meanwhile; a deleted key is not yielded after its deletion; a key inserted meanwhile is
 * yielded at most once, and a key already yielded is not yielded again when it is deleted and inserted
 * again. (One limit: with a custom hash that gives several keys the same 64-bit hash, those keys are told
 * apart by their bytes — by their strings when equal is hmap_equal_cstr — so with another equal() a key
 * deleted and inserted again with different bytes that equal() calls equal may be yielded again.)
 * hmap_clear, or the map becoming empty
 * (it then draws a new seed), ends open iterations. Key and value pointers are valid until the next write
 * to the map, and may be passed to that write (see "Arguments may point into the map" above).
 *
 * An open iteration holds only a position in hash space: it pins no memory, and the map keeps no record
 * of it. So an iteration may be abandoned at any point — a break or return out of the loop — and the
 * hmap_iter simply goes out of scope. hmap_iter_done is optional: it marks the iterator finished (later
 * hmap_iter_next calls return false), which helps when an iterator variable is reused. Copying an
 * hmap_iter copies the iteration: both copies go on from the same place. Cost: O(1) amortized per entry,
 * and most calls are inline, a few loads and stores (a write inside the loop sends the next call to the
 * library). Nothing is hashed for 8-byte keys with the built-in hash or for maps that keep hashes (string
 * keys, custom hashes); other keys are hashed once per chain per iteration (again after a write inserts a
 * key or moves entries). A chain of n keys with equal hashes costs O(n) per 12 entries yielded from it.
 */
typedef struct hmap_iter {
    hmap_iter_window_ window_;
    uint64_t opaque_[96];
} hmap_iter; /* size may grow; stack-allocated */

void hmap_iter_init(hmap_iter *it, hmap *m);
void hmap_iter_done(hmap_iter *it); /* optional: ends the iteration; abandoning it is fine too */

/* Not for callers: what hmap_iter_next does when the window holds nothing valid; it yields the next entry
 * the general way and fills the window again. */
bool hmap_iter_refill_(hmap_iter *it, void **key, void **val);

/* The next entry: false at the end; key/val may be NULL. Inline, so that most calls are no call at all;
 * the library exports it too (for bindings that cannot use an inline function). */
inline bool hmap_iter_next(hmap_iter *it, void **key, void **val) {
    if (it) {
        hmap_iter_window_ *w = &it->window_;
        uint64_t slots = w->slots;
        if (slots && *w->stamp == w->stamp_seen) {
            size_t i = HMAP_ITER_LOWEST_BIT_(slots);
            w->slots = slots & (slots - 1);
            if (key)
                *key = w->keys + i * w->key_step;
            if (val)
                *val = w->vals + i * w->val_step;
            return true;
        }
    }
    return hmap_iter_refill_(it, key, val);
}

typedef enum { HMAP_STEADY, HMAP_GROWING, HMAP_SAME_SIZE_GROWING, HMAP_SHRINKING } hmap_phase;

typedef struct hmap_stats {
    size_t count;            /* live entries */
    unsigned B;              /* log2 of the bucket count */
    size_t buckets;          /* 2^B */
    size_t overflow_buckets; /* overflow buckets in use */
    size_t old_buckets;      /* buckets of the array being evacuated, 0 when none */
    size_t evacuated; /* old buckets already moved (in any order; Go's nevacuate is the lowest not moved) */
    hmap_phase phase;
    size_t tombstones; /* slots marked deleted (emptyOne) */
    size_t bytes;      /* every byte the map holds now */
    uint64_t grows, same_size_grows, shrinks;
    /* Beyond Go's hmap: */
    uint64_t buckets_moved;    /* old buckets evacuated since creation */
    uint64_t max_moved_per_op; /* most old buckets evacuated by one call (excluding O(n) calls) */
    const char *name;          /* hmap_options.name or NULL */
    uint64_t reserved_[8];     /* zero: room for fields added in minor versions */
} hmap_stats;
void hmap_get_stats(const hmap *m, hmap_stats *st);

typedef struct hmap_memstats { /* everything the library allocated, all maps, all threads */
    uint64_t live_bytes, total_bytes, peak_bytes, mallocs, frees;
    uint64_t reserved_[4]; /* zero: room for counters added in minor versions */
} hmap_memstats;
void hmap_read_memstats(hmap_memstats *ms);

/* Heap profiling: mean bytes between samples; 0 off; 1 every allocation; default 512 KiB
 * (HMAP_PROFILE_RATE in the environment sets it at start). Each sample counts with the rate it was
 * taken at. Frees of unsampled blocks take no lock. */
void hmap_set_profile_rate(size_t bytes);
/* Writes a gzipped pprof protobuf heap profile: 0 or -errno. Stacks start at the caller of the hmap_
 * function that allocated; `go tool pprof` symbolizes them from the binary (file:line, -list), or shows
 * the function names the library wrote with -symbolize=none.
 * Environment, read at start: HMAP_HEAPPROFILE=path writes one at exit; with it,
 * HMAP_HEAPPROFILE_INTERVAL=N also writes path.0001.heap, path.0002.heap... after every N bytes the library
 * allocates, and HMAP_HEAPPROFILE_SIGNAL=USR2 (or USR1, HUP, a number) installs a handler that makes the
 * next allocation write the next one (the handler itself only sets a flag). In a forked child the names
 * carry its pid. The profiler's own memory is mapped apart (not the C heap, not a map's allocator) and is
 * not counted in hmap_read_memstats. */
int hmap_write_heap_profile(const char *path);

/*
 * Resize trace: one line when a resize starts and one when it ends (on stderr, or appended to
 * HMAP_TRACE_FILE=path):
 *   hmap: resize start map=NAME kind=grow|same-size|shrink B=X->Y count=N bytes=X->Y @S.SSSSSSs
 *   hmap: resize end map=NAME kind=K B=X->Y count=N bytes=X->Y ops=N max_step=T @S.SSSSSSs
 * NAME is hmap_options.name or "-"; B is log2 of the bucket count before->after; count the live entries;
 * bytes=X->Y what the map held when the resize started -> holds now (at the end: once the old array is
 * released); ops the writes the evacuation was spread over; max_step its longest step (ns/us/ms); @ the
 * seconds since the library was loaded. Fields may be added before @ (the source's src/diag/trace.c
 * describes each in full). HMAP_TRACE=1 traces every map,
 * HMAP_TRACE=name1,name2 only those ("-": maps without a name); HMAP_TRACE_MIN_BYTES=N only resizes of
 * maps that held at least N bytes. hmap_set_trace changes the selection at run time, from any thread,
 * with HMAP_TRACE's syntax (NULL, "" or "0": none).
 */
void hmap_set_trace(const char *spec);

/*
 * Giving memory back to the OS. Large arrays (256 KiB and more, with the built-in allocator) are mapped
 * from the OS; a background "memory thread", started when the first one is made, faults new arrays in
 * ahead of the inserts that will touch them and unmaps freed ones, so that neither page faults nor munmap
 * land on a write. It takes no signals and is joined at exit. HMAP_MEMORY_THREAD=0 in the environment, or
 * hmap_set_memory_thread(false) before the first large map, turns it off: then the writes that touch or
 * free an array pay for its page work themselves (a longer tail of insert latency while growing).
 */
void hmap_set_memory_thread(bool enabled);
/* Returns once every array the library has freed is back with the OS: the background unmaps of freed
 * arrays are done and the C heap is trimmed (malloc_trim), so RSS shows what the maps really hold. The
 * counterpart of Go's debug.FreeOSMemory. Not needed for memory to go back (freed arrays are unmapped by
 * themselves within milliseconds); it is for measuring, and before a fork or a snapshot of the process.
 * Cost: the pending unmaps plus malloc_trim's walk of the C heap; nothing when nothing is pending and the
 * heap is small. Any thread, any time. Returns 0. */
int hmap_release_os_memory(void);

/* Built-in string keys: the key is a `char *` to a NUL-terminated string (key_size = sizeof(char *)).
 * Using these two as hash and equal selects the map's string fast path. */
uint64_t hmap_hash_cstr(const void *key, uint64_t seed);
bool hmap_equal_cstr(const void *a, const void *b);

/* The built-in seeded hash of n bytes (XXH3). */
uint64_t hmap_hash_bytes(const void *data, size_t n, uint64_t seed);

#ifdef __cplusplus
}
#endif

#include "hmap_pool.h" /* the object pool */
#include "hmap_sync.h" /* the concurrent map */

#endif /* HMAP_H */
