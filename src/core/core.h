/* SPDX-License-Identifier: MIT */
/*
 * core/core.h — what the files of the core share: the map's structures and its hot inline helpers.
 * Nothing here is public API.
 *
 * A map is three records, so that small maps stay small (an empty u64 map: a 128-byte handle; one of 1-8
 * entries adds one array of B = 0, a 72-byte header and 144 bytes of bucket: 344 in all):
 *   - its class (map_class, class.c): type, key kind, slot layout, allocator hook, option flags, name —
 *     immutable and shared by every map made with the same type and options;
 *   - its handle (struct hmap): what differs between maps and what every lookup and write reads (the
 *     arrays, count, seed, iteration stamps, and copies of the class's layout fields, so that the fast
 *     paths never go through the class pointer);
 *   - its side record (map_cold): resize bookkeeping, reservation, lifetime counters — made by the first
 *     resize that moves entries (or a reservation), never by a map that stays within its first array.
 * Each array likewise keeps in its header (table) only what lookups, writes, iteration and evacuation read,
 * and the rest in a side record of its own (table_ext: overflow slabs and spares, a mapped array's page
 * bookkeeping), made only by an array that needs an overflow bucket or is mapped.
 *
 * The library is layered; each layer includes only the layers below it:
 *
 *   core/   the map: map.c (lookup, insert, delete, creation; the design essay is at its top), class.c
 *           (map classes: what maps of one kind share, interned),
 *           bucket.c (slot layout, chains, overflow buckets), resize.c (growth, same-size growth, shrink,
 *           evacuation), iter.c (iteration), hash.c (the built-in hash, string keys)
 *   mem/    memory: alloc.c (the allocator hook, accounting by owner, mapped arrays, memstats),
 *           memthread.c (the background pre-faulting and unmapping thread)
 *   diag/   diagnostics: profile.c (sampling and records), pprof.c (the pprof writer), symbols.c (ELF
 *           symbols and mappings), table.c (the profiler's own memory and index table), trace.c (HMAP_TRACE)
 *   base/   mixing and randomness
 * (and beside the core, on mem/ only: pool/, the object pool)
 *
 * Conventions: public names carry the hmap_ prefix and live in include/; internal functions shared between
 * files are declared in their layer's header without the prefix, which a macro there adds (hmap__) so that
 * a statically linked program's own names cannot clash with them; everything else is static to its file.
 */
#ifndef HMAP_CORE_H
#define HMAP_CORE_H

#include "../base/random.h"
#include "../diag/trace.h"
#include "../mem/mem.h"
#include "encoding.h"
#include "hash.h"
#include "hmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define B_for_count hmap__B_for_count
#define chain_extend hmap__chain_extend
#define drop_entry hmap__drop_entry
#define end_resize hmap__end_resize
#define finish_resize hmap__finish_resize
#define free_overflow hmap__free_overflow
#define map_became_empty hmap__map_became_empty
#define map_hash hmap__map_hash
#define stored_hash hmap__stored_hash
#define maybe_start_shrink hmap__maybe_start_shrink
#define resize_work hmap__resize_work
#define set_layout hmap__set_layout
#define set_rest_before hmap__set_rest_before
#define start_resize hmap__start_resize
#define table_free hmap__table_free
#define table_retire hmap__table_retire
#define table_reset hmap__table_reset
#define free_retired_tables hmap__free_retired_tables
#define release_evacuated hmap__release_evacuated
#define table_new hmap__table_new
#define table_ext_make hmap__table_ext_make

/* An overflow bucket: its own tophash word and link, followed by the slots. The regular buckets of an
 * array keep their tophash words in one dense array instead (see map.c). */
typedef struct overflow_bucket {
    uint64_t tophash;                   /* 8 tophash bytes, slot i in byte i */
    struct overflow_bucket *next;       /* next in the chain */
    _Alignas(16) unsigned char slots[]; /* 8 keys and 8 values (see set_layout in bucket.c) */
} overflow_bucket;

/* Overflow buckets beyond those preallocated with an array come from slabs, each twice the size of the
 * previous one: few allocations, and large slabs are mapped from the OS, so that freeing them lowers RSS
 * (overflow buckets allocated one by one would stay in the C heap's free lists). */
typedef struct overflow_slab {
    struct overflow_slab *next;
    size_t bytes;
    bool mapped;
    _Alignas(16) unsigned char buckets[];
} overflow_slab;

/* One bucket array: 2^B regular buckets plus their preallocated overflow buckets, all in one allocation,
 * which starts at the tophash words (and, when it comes from the allocator rather than being mapped, ends
 * with this header: table.embedded). The header holds only what lookups, writes, iteration and evacuation
 * read; what only some arrays need is in its side record (table_ext). */
typedef struct table {
    uint64_t *tophash;          /* nbuckets words: bucket i's 8 tophash bytes; where the allocation starts */
    overflow_bucket **overflow; /* nbuckets chain heads */
    unsigned char *slots;       /* nbuckets * bucket_bytes: 8 keys and 8 values per bucket */
    size_t nbuckets;            /* 2^B */
    size_t noverflow;           /* overflow buckets in use */
    size_t tombstones;          /* EMPTY_ONE slots */
    struct table *next_retired; /* in hmap.retired */
    struct table_ext *ext;      /* NULL until the array uses an overflow bucket, unless it is mapped */
    uint8_t B;
    bool mapped;   /* the allocation came from the OS (mmap) rather than the allocator (then ext is set) */
    bool lazy;     /* a lazy array, counted page by page (ext->counted; resize.c, "lazy arrays") */
    bool embedded; /* the header lives at the end of the array's own allocation (one that is not mapped) */
} table;

/* What only some arrays need, made by the first overflow bucket an array takes (chain_extend) or with a
 * mapped array (table_new), counted in the map's bytes and freed with the array: an array of B = 0 or 1
 * filled within its buckets never has one. (The allocation's size is not here when it can be recomputed
 * from B and the layout: an array that is not mapped is exactly table_bytes' size.) */
typedef struct table_ext {
    unsigned char *spare; /* free overflow buckets: the array's preallocated ones, then the last slab's */
    size_t spare_used, spare_cap;
    overflow_slab *slabs; /* slabs allocated for overflow buckets, freed with the table */
    size_t slab_bytes;
    /* a mapped array only */
    size_t mem_bytes;      /* its size, rounded to pages */
    size_t released_from;  /* an old array: offset where its next pages to give back start */
    size_t released_bytes; /* ...and the bytes of it given back so far (see release_evacuated) */
    size_t tophash_released, heads_released; /* ...and where the next pages of its tophash words and of its
                                                chain heads to give back start (offsets in the array) */
    size_t release_at; /* ...and where evacuation must reach before the next pages go back */
    /* a lazy array only (table.lazy): one bit per page counted as held, and its bytes not counted yet; the
     * bits are freed once the array is counted whole */
    uint64_t *counted;
    size_t uncounted;
    unsigned page_shift; /* log2 of the page size */
} table_ext;

_Static_assert(sizeof(table) <= 72, "an array's header stays within 72 bytes: small maps stay small");

/* A position in one bucket chain: the tophash word and slot storage of one bucket of the chain. */
typedef struct bucket_ref {
    uint64_t *tophash;
    unsigned char *slots;
    overflow_bucket **next; /* where the link to the following bucket lives */
} bucket_ref;

/* How keys are compared and hashed: chosen once at creation, it selects the inlined fast path. */
typedef enum { KEYS_GENERIC, KEYS_U64, KEYS_CSTR } key_kind;

/* What every map made with one type and one set of options shares (class.c): immutable once made, except
 * the registry's refcount and link. Its bytes are no map's: a shared class comes from the C heap and is
 * counted in no map and not in memstats (the library's bookkeeping, as the profiler's memory is); a map
 * with its own allocator hook owns its class, allocated through the hook and counted in its bytes. */
typedef struct map_class {
    mem_source src; /* allocator hook and name: first, so that a map's mem.src leads to its class */
    hmap_type type;
    key_kind kind;
    bool drops;                    /* the type has a key or value drop callback */
    bool no_shrink, fixed_seed;    /* the options */
    bool owned;                    /* one map's own (a user hook), not in the registry */
    size_t hash_off;               /* 8 when each slot stores its key's hash before the key, else 0 */
    size_t key_stride, val_stride; /* distance between consecutive keys / values in a bucket */
    size_t vals_offset;  /* where values[0] starts in a bucket's slots (a set: its keys[0], see set_layout) */
    size_t bucket_bytes; /* slot storage of one bucket */
    _Atomic size_t refs; /* maps using it, and threads keeping it as their last class (class.c) */
    size_t record_bytes; /* this record with its name */
    struct map_class *next; /* in its registry chain */
    char name_copy[];       /* src.name points here */
} map_class;

_Static_assert(offsetof(map_class, src) == 0, "map_class_of() finds the class from its mem_source");

struct hmap {
    /* Read by every lookup and write. The layout fields are copies of the class's (narrowed: a bucket
     * of items of at most 2^24 bytes stays far below 2^32), kept here so that the fast paths load them
     * from the line they read anyway rather than through the class pointer. */
    table *cur; /* where new entries go */
    table *old; /* being evacuated into cur, or NULL */
    size_t count;
    uint64_t seed;
    uint32_t key_stride, val_stride, vals_offset, bucket_bytes, val_size;
    uint8_t kind;     /* key_kind */
    uint8_t hash_off; /* the class's */
    bool drops;       /* the class's */
    bool release_due; /* evacuation has passed enough of a mapped old array to give pages back (end_write) */
#ifndef NDEBUG
    bool writing; /* a write is under way (the debug check for concurrent writers) */
#endif
    bool reserving; /* a reservation holds (its size: cold->reserved) */
    bool no_shrink; /* the class's option */
    /* Two keys with one 64-bit hash have been in the map since it was last empty. Only a map that stores
     * hashes can tell: an insert compares the stored hash of every slot whose tophash matches, so it meets
     * any key with its own hash. Iteration over a map that stores hashes checks each chain for repeated
     * hashes only when this is set (iter.c). */
    bool equal_hashes;

    /* Iterations read these; the map never knows which iterations are open (iter.c). */
    uint64_t change_stamp; /* bumped when a new key is stored, and with every move: iterator caches re-read */
    uint64_t write_stamp; /* ...and with every delete too: the iterators' windows (hmap.h) look at this one */
    uint64_t move_stamp;  /* bumped when entries move between arrays or an array is freed (note_moved) */
    uint64_t epoch;       /* bumped by hmap_clear and by a new seed: open iterations end */

    /* Arrays a write has finished with, freed when the write returns (end_write): until then a key or value
     * argument that points into them stays readable (arguments may alias the map's storage). */
    table *retired;

    struct map_cold *cold; /* NULL until the map first resizes with entries to move, or reserves */
    mem_owner mem;         /* its source is the class's (map_class_of); every byte this map holds now */
};

/* What only a map that has resized or reserved needs: the running resize's bookkeeping, the reservation,
 * the lifetime counters of hmap_get_stats. Allocated (counted in the map's bytes) by the first resize that
 * has entries to move, or by hmap_reserve, and kept until the map is freed: a map that never grew past
 * its first array never has one. While `old` is set, cold is too. */
typedef struct map_cold {
    hmap_phase phase;     /* why `old` exists */
    size_t nevacuate;     /* old buckets below this index are all evacuated */
    size_t old_evacuated; /* old buckets evacuated so far (in any order) */
    size_t evacuate_pace; /* old buckets to evacuate per write, besides the written one */
    size_t reserved;      /* hmap_reserve(n) holds (no shrink below it) until the count first reaches n */

    /* accounting */
    uint64_t grows, same_size_grows, shrinks, buckets_moved, max_moved_per_op;
    uint64_t moved_this_op;

    /* the running resize, for its trace lines */
    uint64_t resize_ops, resize_max_step_ns;
    size_t resize_bytes_before;
    unsigned resize_B_before;
} map_cold;

#define map_cold_get hmap__map_cold_get
#define end_reservation hmap__end_reservation
map_cold *map_cold_get(hmap *m); /* the map's cold record, made if need be; NULL on ENOMEM */

static inline size_t map_reserved(const hmap *m) { return m->reserving ? m->cold->reserved : 0; }
/* n > 0 needs the cold record (map_cold_get) */
static inline void set_reserved(hmap *m, size_t n) {
    m->reserving = n > 0;
    if (m->cold)
        m->cold->reserved = n;
}
/* After an insert: the reservation is filled, from now on the map may shrink again. */
static inline void note_count_grew(hmap *m) {
    if (__builtin_expect(m->reserving, 0) && m->count >= m->cold->reserved)
        set_reserved(m, 0);
}
static inline hmap_phase map_phase(const hmap *m) { return m->old ? m->cold->phase : HMAP_STEADY; }

static inline const map_class *map_class_of(const hmap *m) { return (const map_class *)m->mem.src; }
static inline const hmap_type *map_type(const hmap *m) { return &map_class_of(m)->type; }

/* ---- class.c ---- */
#define class_acquire hmap__class_acquire
#define class_release hmap__class_release
/* The class of maps made with this type, allocator and options: a shared one (one more map) or, for a user
 * hook, a new one of the map's own, allocated through the hook and counted in *owner (whose source is not
 * set yet). NULL on ENOMEM. */
const map_class *class_acquire(const hmap_type *type, const hmap_allocator *a, const hmap_options *opts,
                               mem_owner *owner);
void class_release(const map_class *c, mem_owner *owner); /* owner: the map's, for an owned class */

/* ---- bucket.c: storage primitives ---- */
void set_layout(map_class *c); /* where keys and values sit in a bucket, from the type */
/* Bytes of one overflow bucket, its header and slots: a multiple of 16 (slabs and spares are arrays). */
static inline size_t overflow_bucket_bytes(const hmap *m) {
    return (sizeof(overflow_bucket) + m->bucket_bytes + 15) & ~(size_t)15;
}
bool chain_extend(hmap *m, table *t, bucket_ref *last); /* appends an empty overflow bucket; false: ENOMEM */
/* Overflow buckets preallocated with a 2^B array: 1/16 of its buckets, as Go; none below B = 4. */
static inline size_t spare_buckets(unsigned B) { return B >= 4 ? ((size_t)1 << B) >> 4 : 0; }
table_ext *table_ext_make(hmap *m, table *t); /* t's side record, made (none in use yet); NULL: ENOMEM */
static inline table_ext *table_ext_get(hmap *m, table *t) { return t->ext ? t->ext : table_ext_make(m, t); }
void free_overflow(hmap *m, table *t); /* frees t's slabs: its spares are the preallocated ones again */
uint64_t map_hash(const hmap *m, const void *key);
uint64_t stored_hash(const hmap *m, const bucket_ref *b, unsigned i);   /* slot_hash, for any kind */
void set_rest_before(hmap *m, table *t, size_t i, const bucket_ref *b); /* see set_slot_empty */
void drop_entry(const hmap *m, void *key, void *val);

/* The hot helpers, inline for every file. */

/* bucket_index(hash, t->B) with one multiply instead of a subtraction and two shifts: the high B bits of
 * hash are hash * 2^B / 2^64, and nbuckets is 2^B (B = 0 gives 0 too). */
static inline size_t table_index(const table *t, uint64_t hash) {
    return (size_t)(((unsigned __int128)hash * t->nbuckets) >> 64);
}

static inline bucket_ref table_bucket(const hmap *m, const table *t, size_t i) {
    bucket_ref b = {&t->tophash[i], t->slots + i * m->bucket_bytes, &t->overflow[i]};
    return b;
}

/* Moves b to the next bucket of its chain; false at the end (b unchanged). */
static inline bool bucket_ref_next(const hmap *m, bucket_ref *b) {
    (void)m;
    overflow_bucket *o = *b->next;
    if (!o)
        return false;
    b->tophash = &o->tophash;
    b->slots = o->slots;
    b->next = &o->next;
    return true;
}

/* Visits the bucket_ref b and then each bucket after it in its chain, moving b along; every walk over a chain
 * is this loop. After a walk that ran to the end (no `break`), b is the chain's last bucket. */
#define for_each_chain_bucket(m, b)                                                                          \
    for (bool chain_more_ = true; chain_more_; chain_more_ = bucket_ref_next((m), &(b)))

/* A probe (a lookup, or an insert's search) goes on to the next bucket of the chain unless this one's
 * tophash word w holds an EMPTY_REST byte: nothing follows it. */
static inline bool probe_continues(const hmap *m, uint64_t w, bucket_ref *b) {
    return !has_empty_rest(w) && bucket_ref_next(m, b);
}

/* The bucket of chain i holding linear position pos (slot pos % 8 of the chain's (pos / 8)-th bucket). */
static inline bucket_ref chain_at(const hmap *m, const table *t, size_t i, size_t pos) {
    bucket_ref b = table_bucket(m, t, i);
    for (size_t k = pos / SLOTS_PER_BUCKET; k > 0; k--)
        bucket_ref_next(m, &b);
    return b;
}

/* A slot's key item: the stored hash (when the map keeps them) followed by the key. */
/* (Offsets inside a bucket are below bucket_bytes, which fits 32 bits: computed in 32 bits, they take the
 * handle's 32-bit layout fields as memory operands, as 64-bit arithmetic could not.) */
static inline unsigned char *slot_item(const hmap *m, const bucket_ref *b, unsigned i) {
    return b->slots + (uint32_t)(i * m->key_stride);
}

static inline unsigned char *slot_key(const hmap *m, const bucket_ref *b, unsigned i) {
    return slot_item(m, b, i) + m->hash_off;
}

/* slot_key, with the key kind's constant offset (no load of hash_off) where the kind fixes it. */
static inline __attribute__((always_inline)) unsigned char *
slot_key_of_kind(const hmap *m, const bucket_ref *b, unsigned i, key_kind kind) {
    size_t hash_off = kind == KEYS_U64 ? 0 : kind == KEYS_CSTR ? 8 : m->hash_off;
    return slot_item(m, b, i) + hash_off;
}

/* Bytes of a key item: the key, and its stored hash if the map keeps them. */
static inline size_t key_item_size(const hmap *m) { return map_type(m)->key_size + m->hash_off; }

/* The value of slot i; for a set (val_size 0) the key's address, which serves as the presence token (the
 * layout says so: set_layout). */
static inline unsigned char *slot_val(const hmap *m, const bucket_ref *b, unsigned i) {
    return b->slots + (uint32_t)(m->vals_offset + i * m->val_stride);
}

/* memcpy with the common 8-byte case inlined (keys and values are usually 8 bytes). */
static inline void copy_item(void *dst, const void *src, size_t n) {
    if (n == 8)
        __builtin_memcpy(dst, src, 8);
    else
        __builtin_memcpy(dst, src, n);
}

static inline uint8_t slot_top(const bucket_ref *b, unsigned i) { return ((const uint8_t *)b->tophash)[i]; }

static inline void set_slot_top(bucket_ref *b, unsigned i, uint8_t top) { ((uint8_t *)b->tophash)[i] = top; }

/* Empties a slot of bucket b of chain i and keeps Go's EMPTY_REST invariant, inline: a tombstone when
 * something follows it in the chain; else it and the tombstones right before it in b become EMPTY_REST,
 * and only a run that reaches back past b's first slot into earlier buckets of the chain goes out of line
 * (set_rest_before, bucket.c). `first`: b is the chain's first bucket (a constant where the caller knows
 * it, as a delete settled in the first bucket does). */
static inline void set_slot_empty(hmap *m, table *t, size_t i, bucket_ref *b, unsigned slot, bool first) {
    uint8_t after = slot < SLOTS_PER_BUCKET - 1 ? slot_top(b, slot + 1)
                    : *b->next                  ? (uint8_t)(*b->next)->tophash
                                                : EMPTY_REST;
    if (after != EMPTY_REST) {
        set_slot_top(b, slot, EMPTY_ONE);
        t->tombstones++;
        return;
    }
    set_slot_top(b, slot, EMPTY_REST);
    while (slot-- > 0) {
        if (slot_top(b, slot) != EMPTY_ONE)
            return;
        set_slot_top(b, slot, EMPTY_REST);
        t->tombstones--;
    }
    if (!first) {           /* b is an overflow bucket: the run may go on before it */
        bucket_ref at = *b; /* (a copy: the caller's b need not live in memory for this call) */
        set_rest_before(m, t, i, &at);
    }
}

static inline bool table_bucket_evacuated(const table *t, size_t i) {
    uint8_t first = (uint8_t)t->tophash[i]; /* evacuation marks every slot, so slot 0 tells */
    return first >= EVACUATED_X && first <= EVACUATED_EMPTY;
}

/* Is old bucket oi evacuated? Every bucket below nevacuate is, and a mapped old array gives back the
 * tophash words and chain heads of those (release_evacuated: they then read as zeros), so only the marks
 * of buckets at or past nevacuate are read (a shrink or a same-size growth moves a written key's bucket
 * ahead of the others). */
static inline bool old_bucket_evacuated(const hmap *m, size_t oi) {
    return oi < m->cold->nevacuate || table_bucket_evacuated(m->old, oi);
}

/* Where entries with this hash live now: the old bucket while it is not evacuated, else the cur bucket. */
static inline void locate(const hmap *m, uint64_t hash, table **t, size_t *i) {
    *t = m->cur;
    *i = table_index(m->cur, hash);
    if (m->old) {
        size_t oi = table_index(m->old, hash);
        if (!old_bucket_evacuated(m, oi)) {
            *t = m->old;
            *i = oi;
        }
    }
}

/* The key kind's hash and equality, inlined into each kind's copy of the lookup and insert code. */
static inline __attribute__((always_inline)) uint64_t hash_key(const hmap *m, const void *key,
                                                               key_kind kind) {
    switch (kind) {
    case KEYS_U64: {
        uint64_t k;
        memcpy(&k, key, sizeof k);
        return hash_u64_inline(k, m->seed);
    }
    case KEYS_CSTR: {
        const char *s = *(const char *const *)key;
        return hash_bytes_inline(s, strlen(s), m->seed);
    }
    default:
        if (map_type(m)->hash)
            return mix64(map_type(m)->hash(key, m->seed));
        if (map_type(m)->hash_ctx)
            return mix64(map_type(m)->hash_ctx(key, m->seed, map_type(m)->ctx));
        return hash_bytes_inline(key, map_type(m)->key_size, m->seed);
    }
}

/* Does this map keep each key's hash in its slot? String keys (hashing reads the string: a cache miss for
 * every entry that evacuation or iteration looks at) and keys with a custom hash (a user function, maybe
 * slow, maybe colliding: evacuation and iteration then never call it). */
static inline __attribute__((always_inline)) bool stores_hashes(const hmap *m, key_kind kind) {
    return kind == KEYS_CSTR || (kind == KEYS_GENERIC && m->hash_off);
}

/* The hash of the key stored in slot i: read back when the map stores hashes, else computed. */
static inline __attribute__((always_inline)) uint64_t slot_hash(const hmap *m, const bucket_ref *b,
                                                                unsigned i, key_kind kind) {
    if (stores_hashes(m, kind)) {
        uint64_t h;
        memcpy(&h, slot_item(m, b, i), 8);
        return h;
    }
    return hash_key(m, slot_key(m, b, i), kind);
}

static inline __attribute__((always_inline)) bool equal_key(const hmap *m, const void *a, const void *b,
                                                            key_kind kind) {
    switch (kind) {
    case KEYS_U64:
        return memcmp(a, b, 8) == 0;
    case KEYS_CSTR:
        return equal_cstr_inline(a, b);
    default:
        if (map_type(m)->equal)
            return map_type(m)->equal(a, b);
        if (map_type(m)->equal_ctx)
            return map_type(m)->equal_ctx(a, b, map_type(m)->ctx);
        return memcmp(a, b, map_type(m)->key_size) == 0;
    }
}

/* The drop callbacks, plain or with the type's ctx; a set has no values to drop. */
static inline bool has_key_drop(const hmap *m) { return map_type(m)->key_drop || map_type(m)->key_drop_ctx; }
static inline bool has_val_drop(const hmap *m) {
    return m->val_size && (map_type(m)->val_drop || map_type(m)->val_drop_ctx);
}
static inline void call_key_drop(const hmap *m, void *key) {
    if (map_type(m)->key_drop)
        map_type(m)->key_drop(key);
    else if (map_type(m)->key_drop_ctx)
        map_type(m)->key_drop_ctx(key, map_type(m)->ctx);
}
static inline void call_val_drop(const hmap *m, void *val) {
    if (!m->val_size)
        return;
    if (map_type(m)->val_drop)
        map_type(m)->val_drop(val);
    else if (map_type(m)->val_drop_ctx)
        map_type(m)->val_drop_ctx(val, map_type(m)->ctx);
}

/* ---- resize.c ---- */
#define MAX_B 48 /* 2^48 buckets: far beyond any machine */
_Static_assert(MAX_B < 256, "B fits table.B, a byte");
/* Entries 2^B buckets may hold: 6.5 a bucket (8 for the single bucket of B = 0, as Go). */
#define LOAD_LIMIT(B) ((B) == 0 ? (size_t)8 : (size_t)13 << (B) >> 1)
#define load_limits hmap__load_limits
extern const size_t load_limits[MAX_B + 1]; /* LOAD_LIMIT(B) for each B (resize.c): a load, on every insert */
static inline size_t load_limit(unsigned B) { return load_limits[B]; }

void map_became_empty(hmap *m); /* re-seed; give the arrays back */

/* Entries moved or an array went: every stamp, so that an iterator that only asks "has anything changed?"
 * reads one. */
static inline void note_moved(hmap *m) {
    m->move_stamp++;
    m->change_stamp++;
    m->write_stamp++;
}

/* A new key was stored. */
static inline void note_inserted(hmap *m) {
    m->change_stamp++;
    m->write_stamp++;
}

/* An entry was deleted. */
static inline void note_deleted(hmap *m) { m->write_stamp++; }

/* Open iterations end (hmap_clear, a new seed): the epoch says so, and the move stamp makes every iterator
 * look (iter.c's fastest path checks only that). */
static inline void end_iterations(hmap *m) {
    m->epoch++;
    note_moved(m);
}

/* Every O(1) write is bracketed by these: they keep the per-call evacuation count, and in debug builds
 * (without NDEBUG) catch a second thread writing at the same time, as Go's "concurrent map writes" does: a
 * best-effort check (a plain flag), not a lock. */
#ifndef NDEBUG
#define concurrent_write_detected hmap__concurrent_write_detected
_Noreturn void concurrent_write_detected(void);
#endif

/* The bracket of a write that moves and frees nothing (a slot filled, updated or emptied in place, by
 * map.c's fast paths): only the check. */
static inline void begin_slot_write(hmap *m) {
#ifndef NDEBUG
    if (m->writing)
        concurrent_write_detected();
    m->writing = true;
#else
    (void)m;
#endif
}
static inline void end_slot_write(hmap *m) {
#ifndef NDEBUG
    m->writing = false;
#else
    (void)m;
#endif
}

static inline void begin_write(hmap *m) {
    begin_slot_write(m);
    if (m->cold)
        m->cold->moved_this_op = 0;
}

void free_retired_tables(hmap *m);
void release_evacuated(hmap *m); /* the old array's evacuated pages go back to the OS */

/* The end of a write: what it finished with goes only now, as its arguments may have pointed there. */
static inline void end_write(hmap *m) {
    end_slot_write(m);
    if (m->retired)
        free_retired_tables(m);
    if (m->release_due)
        release_evacuated(m);
}
/* NULL on ENOMEM; populate: pre-fault a mapped array (one to be filled anywhere at once: a fresh map's). */
table *table_new(hmap *m, unsigned B, bool populate);
void table_free(hmap *m, table *t, bool drop_entries); /* dropping entries is O(size) */
void table_retire(hmap *m, table *t);                  /* freed at the end of the current write */
void table_reset(hmap *m, table *t);                   /* drops the entries, keeps the array: O(buckets) */
unsigned B_for_count(size_t count);                    /* smallest B whose load-factor limit holds count */
/* Called by every write before it touches bucket chain i (of cur): evacuates what it must. -ENOMEM if the
 * key's old bucket could not be evacuated (a shrink's; a growth leaves it in place). */
int resize_work(hmap *m, uint64_t hash);
/* Starts a shrink if one is due (after a delete); on ENOMEM the map just stays larger. */
void maybe_start_shrink(hmap *m);
/* Below this count a 2^B array shrinks: above a quarter of its load limit (a fresh map of a quarter fits
 * in a quarter of the buckets) by a 64th of that quarter, so that a shrink can be over before the count
 * reaches the quarter (resize.c, "Shrinking"). */
#define SHRINK_LINE(B) (LOAD_LIMIT(B) / 4 + LOAD_LIMIT(B) / 256 + 1)
static inline size_t shrink_line(unsigned B) { return SHRINK_LINE((size_t)B); }
/* The inline test before that call (see maybe_start_shrink), on every delete: the line comes from a table
 * (resize.c) rather than from B's arithmetic. B = 0 never shrinks: its line is 0. */
#define shrink_lines hmap__shrink_lines
extern const size_t shrink_lines[MAX_B + 1];
static inline bool shrink_may_be_due(const hmap *m) {
    return !m->old && !m->no_shrink && m->cur && m->count < shrink_lines[m->cur->B];
}
/* Makes a new array of 2^new_B buckets the current one and starts evacuating the old into it (or just
 * installs it when there is nothing to move). -ENOMEM leaves the map unchanged. */
int start_resize(hmap *m, unsigned new_B, hmap_phase phase);
int finish_resize(hmap *m); /* evacuates everything now: 0 or -ENOMEM */
/* Ends the running resize: the trace line, then the old array is freed (dropping its live entries first if
 * drop_entries: only when the map is being emptied). */
void end_resize(hmap *m, bool drop_entries);

#endif /* HMAP_CORE_H */
