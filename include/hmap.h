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
 * Errors: functions that can fail return -ENOMEM / -EINVAL (or NULL and set errno). After any failed
 * call the map is unchanged and nothing leaks. A NULL map or key is reported as EINVAL, never a crash.
 */
#ifndef HMAP_H
#define HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
} hmap_type;

/* Where the map's memory comes from. Every allocation the library makes goes through it. */
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
    const char *name; /* label in stats, traces and heap profiles; may be NULL. Copied. */
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

/* Inserts or replaces. Returns 1 inserted, 0 replaced, -ENOMEM, -EINVAL (NULL map/key, or val NULL while
 * val_size > 0). The map takes ownership of the key and value passed; on replace it drops the old value
 * and the key passed (the stored key stays). On error nothing changed and the caller still owns both. */
int hmap_put(hmap *m, const void *key, const void *val);

/* The slot for key's value, zeroed when new (*inserted = true), NULL on ENOMEM/EINVAL. The map takes
 * ownership of key when inserted; when the key was present the key passed is dropped. `inserted` may be
 * NULL. For a set the pointer is only a presence token. */
void *hmap_assign(hmap *m, const void *key, bool *inserted);

/* Removes key, dropping key and value. false if absent (or NULL map/key). */
bool hmap_del(hmap *m, const void *key);

/* Removes key without dropping: the stored key and value are copied to key_out / val_out and ownership
 * moves to the caller. A NULL out drops that part. false if absent. */
bool hmap_take(hmap *m, const void *key, void *key_out, void *val_out);

/* Drops every entry and gives the arrays back (unlike Go's clear(), which keeps them). O(n).
 * Open iterations end: their next hmap_iter_next returns false. */
void hmap_clear(hmap *m);

/* Makes room for n entries without further growth: 0, -ENOMEM or -EINVAL. O(n): finishes any resize.
 * The room is kept (no shrinking below it, also when entries are deleted meanwhile) until the count first
 * reaches n, or until hmap_compact / hmap_clear. On -ENOMEM the entries are unchanged, and any doubling
 * done before the failure is undone by a shrink over the next writes. */
int hmap_reserve(hmap *m, size_t n);

/* Finishes any evacuation and shrinks the arrays to fit the live entries, now (also with no_shrink; an
 * empty map gives its arrays back): 0 or -ENOMEM, the map then as it was. Ends a reservation. O(n). */
int hmap_compact(hmap *m);

/*
 * Iteration. Order is unspecified and differs between iterations. While an iteration is open the caller
 * may put, assign, delete and take on the same map, and open more iterations. A key present when the
 * iteration starts and not deleted before it is reached is yielded exactly once, even when the map grows
 * or shrinks meanwhile; a deleted key is not yielded after its deletion; a key inserted meanwhile is
 * yielded at most once (a key deleted and inserted again counts as a new key; it is not yielded twice
 * unless a custom hash gives it the same 64-bit hash as another key). Key and value pointers are valid
 * until the next write to the map.
 * An open iteration pins no memory: it holds only a position in hash space.
 */
typedef struct hmap_iter {
    uint64_t opaque_[32];
} hmap_iter; /* size may grow; stack-allocated */
void hmap_iter_init(hmap_iter *it, hmap *m);
bool hmap_iter_next(hmap_iter *it, void **key, void **val); /* false at the end; key/val may be NULL */
void hmap_iter_done(hmap_iter *it); /* once, whether or not the end was reached; before hmap_free */

typedef enum { HMAP_STEADY, HMAP_GROWING, HMAP_SAME_SIZE_GROWING, HMAP_SHRINKING } hmap_phase;

typedef struct hmap_stats {
    size_t count;            /* live entries */
    unsigned B;              /* log2 of the bucket count */
    size_t buckets;          /* 2^B */
    size_t overflow_buckets; /* overflow buckets in use */
    size_t old_buckets;      /* buckets of the array being evacuated, 0 when none */
    size_t evacuated;        /* nevacuate: old buckets already moved */
    hmap_phase phase;
    size_t tombstones; /* slots marked deleted (emptyOne) */
    size_t bytes;      /* every byte the map holds now */
    uint64_t grows, same_size_grows, shrinks;
    /* Additions to the contract: */
    uint64_t buckets_moved;    /* old buckets evacuated since creation */
    uint64_t max_moved_per_op; /* most old buckets evacuated by one call (excluding O(n) calls) */
    const char *name;          /* hmap_options.name or NULL */
} hmap_stats;
void hmap_get_stats(const hmap *m, hmap_stats *st);

typedef struct hmap_memstats { /* everything the library allocated, all maps, all threads */
    uint64_t live_bytes, total_bytes, peak_bytes, mallocs, frees;
} hmap_memstats;
void hmap_read_memstats(hmap_memstats *ms);

/* Heap profiling: mean bytes between samples; 0 off; 1 every allocation; default 512 KiB
 * (HMAP_PROFILE_RATE in the environment sets it at start). */
void hmap_set_profile_rate(size_t bytes);
/* Writes a gzipped pprof protobuf heap profile: 0 or -errno. HMAP_HEAPPROFILE=path writes one at exit. */
int hmap_write_heap_profile(const char *path);

/*
 * Giving memory back to the OS. Large arrays (256 KiB and more, with the built-in allocator) are mapped
 * from the OS; a background "memory thread", started when the first one is made, faults new arrays in
 * ahead of the inserts that will touch them and unmaps freed ones, so that neither page faults nor munmap
 * land on a write. It takes no signals and is joined at exit. HMAP_MEMORY_THREAD=0 in the environment, or
 * hmap_set_memory_thread(false) before the first large map, turns it off: then the writes that touch or
 * free an array pay for its page work themselves (a longer tail of insert latency while growing).
 */
void hmap_set_memory_thread(bool enabled);
/* Returns once every array the library has freed is back with the OS (the background unmaps done) and the
 * C heap has been trimmed (malloc_trim): the counterpart of Go's debug.FreeOSMemory. It waits for the
 * memory thread (about 1 ms per 10 MiB queued) and walks the C heap's free lists. Always 0. */
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
#include "hmap_sync.h" /* the concurrent map */
#endif /* HMAP_H */
