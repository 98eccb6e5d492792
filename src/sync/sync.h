/* SPDX-License-Identifier: MIT */
/*
 * sync/sync.h — what the files of the concurrent map share: the map and shard structures, and the
 * deferred reclamation of each shard (reclaim.c). Nothing here is public API.
 *
 * The sync layer sits above the core and sees the map only through hmap.h, core/hashed.h and
 * core/sync_support.h; it uses mem/ for its own memory and the memory thread, and base/ for seeds.
 *
 *   hmap_sync
 *   +-------------+----------------------------------------------------------------------------------+
 *   | type, flags | shards[2^s], each on its own 256-byte block (two cache lines and their prefetch   |
 *   | mem owner   | pair):  seq | view | map | count | lock || limbo (drops, frees) | hook            |  |
 *   +-------------+----------------------------------------------------------------------------------+
 *
 * A reader of 8-byte keys and values touches the first line of its shard (seq and the view of the
 * map's array) and then the array itself; other readers go through the map pointer to the shard's hmap.
 * A writer takes the lock on the same line and rewrites it; the second holds what reclamation needs.
 * Shards never share a line, and each shard's hmap and arrays come from its own allocations (aligned to a
 * cache line by the built-in hook), so two threads working on two shards never write the same line.
 */
#ifndef HMAP_SYNC_SYNC_H
#define HMAP_SYNC_SYNC_H

#include "../core/sync_support.h"
#include "../mem/mem.h"
#include "hmap.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define limbo_reserve hmap__limbo_reserve
#define limbo_commit hmap__limbo_commit
#define limbo_make_room hmap__limbo_make_room
#define limbo_fill hmap__limbo_fill
#define limbo_stamp_since hmap__limbo_stamp_since
#define limbo_collect hmap__limbo_collect
#define limbo_run hmap__limbo_run
#define limbo_recycle hmap__limbo_recycle
#define limbo_drain hmap__limbo_drain
#define limbo_pending hmap__limbo_pending
#define limbo_note_removal hmap__limbo_note_removal
#define limbo_advance_if_due hmap__limbo_advance_if_due
#define limbo_advance_due hmap__limbo_advance_due
#define shard_hook_init hmap__shard_hook_init

typedef struct hmap_sync hmap_sync;

/* A chunk of deferred drops: entries of one fixed size (which parts to drop, then a key, then a value),
 * freed together once the newest of them is safe (its epoch stamp). */
typedef struct limbo_chunk {
    struct limbo_chunk *next;
    uint64_t stamp; /* of the newest entry */
    unsigned used;
    _Alignas(16) unsigned char entries[];
} limbo_chunk;

enum { DROP_KEY = 1, DROP_VAL = 2 };

/* A deferred free: written just past the freed block (sync/reclaim.c's allocator hook makes room). */
typedef struct deferred_free {
    struct deferred_free *next;
    uint64_t stamp;
    size_t size;
} deferred_free;

/* What a writer took out of a shard's limbo under the lock, to run after unlocking. */
typedef struct limbo_batch {
    limbo_chunk *chunks;
    deferred_free *frees;
} limbo_batch;

/* A shard's writer lock: one word, 0 free, 1 held, 2 held and a thread may be asleep on it (a futex).
 * Taking a free lock is one compare-and-swap and giving it back one exchange, inline: a glibc mutex costs
 * some fifty instructions more a write, which at 1Mi keys keeps the next write's cache misses from
 * overlapping this one's. A thread that finds it held spins briefly, then sleeps (threads may outnumber
 * cores). Functions in sync.c. */
typedef struct shard_lock {
    _Atomic uint32_t word;
} shard_lock;

typedef struct shard {
    /* the line lock-free readers use, which a writer rewrites (with the lock on it: one line a write): */
    _Alignas(128) _Atomic uint64_t seq; /* odd while a writer changes the map (optimistic maps only) */
    map_view view;                      /* where the map's array is (optimistic maps; see sync_support.h) */
    hmap *map;
    _Atomic size_t count; /* the map's count, for hmap_sync_len without the lock */
    shard_lock lock;
    /* the second line: */
    _Alignas(64) hmap_sync *owner;
    /* under the lock: */
    limbo_chunk *drops, *drops_tail, *spare; /* deferred drops, oldest first; empty chunks kept (one,
                                                or those limbo_make_room prepared) */
    deferred_free *frees, *frees_tail;       /* deferred frees, oldest first */
    size_t deferred_drops, deferred_frees;   /* entries and blocks waiting */
    _Atomic size_t deferred_bytes;           /* bytes of the blocks waiting (read by get_stats) */
    bool defer_frees;                        /* false once the map is being freed */
    mem_source src;                          /* the user's allocator or the built-in one, the map's name */
    mem_owner mem;                           /* the limbo chunks */
    hmap_allocator hook;                     /* what the shard's hmap allocates through */
} shard;

struct hmap_sync {
    hmap_type type;
    bool optimistic;   /* keys compare bytewise: reads take no lock */
    bool fast_reads;   /* optimistic, and 8-byte keys and values: reads inline, through the shards' views */
    bool drops;        /* key_drop or val_drop: removals are deferred through the limbo */
    bool u64_hash;     /* the shards hash with the built-in 8-byte hash and hash_seed: inline here */
    bool inline_reads; /* fast_reads and u64_hash: hmap_sync_load is inline to the view, no call */
    bool plain_writes; /* fast_reads and no drops: store and delete without the limbo's drop queues */
    uint64_t hash_seed;
    unsigned shard_bits;
    uint64_t shard_offset_mask; /* (2^shard_bits - 1) << SHARD_SHIFT: the hash bits choosing the shard */
    size_t key_offset, val_offset, entry_size, chunk_entries; /* limbo entry layout */
    hmap_allocator user; /* the allocator the options gave (or the built-in one) */
    bool custom_alloc;
    mem_source src; /* the allocator the options gave, and the name */
    mem_owner mem;  /* this struct, the shards, the name */
    size_t name_bytes;
    void *shards_mem; /* the allocation holding the aligned shards */
    size_t shards_bytes;
    shard *shards;
};

/* The type's drops, plain or with its ctx (hmap_type allows either variant of each). */
static inline bool type_drops_key(const hmap_type *t) { return t->key_drop || t->key_drop_ctx; }
static inline bool type_drops_val(const hmap_type *t) {
    return t->val_size && (t->val_drop || t->val_drop_ctx);
}

static inline void drop_key(const hmap_type *t, void *key) {
    if (t->key_drop)
        t->key_drop(key);
    else if (t->key_drop_ctx)
        t->key_drop_ctx(key, t->ctx);
}

static inline void drop_val(const hmap_type *t, void *val) {
    if (t->val_drop)
        t->val_drop(val);
    else if (t->val_drop_ctx)
        t->val_drop_ctx(val, t->ctx);
}

/* ---- reclaim.c ---- */

/* The allocator hook of a shard's hmap: with defer_frees (set once the shard is made, in optimistic maps)
 * every free waits for the epoch, else it is immediate. */
void shard_hook_init(hmap_sync *m, shard *sh);

/* A slot for one deferred drop (key and value areas at m->key_offset / m->val_offset), NULL on ENOMEM.
 * Under the lock; the entry counts only once committed. */
unsigned char *limbo_reserve(hmap_sync *m, shard *sh);
void limbo_commit(hmap_sync *m, shard *sh, unsigned char *entry, unsigned parts);

/* For a removal of many entries at once (hmap_sync_clear): room for n more entries without allocating, all
 * or nothing (false on ENOMEM); then each entry is limbo_reserve'd and limbo_fill'ed (committed, without a
 * stamp), and once they have all left the map limbo_stamp_since stamps the chunks from `from` (the tail
 * before the first fill, NULL for none) to the end. Under the lock. */
bool limbo_make_room(hmap_sync *m, shard *sh, size_t n);
void limbo_fill(hmap_sync *m, shard *sh, unsigned char *entry, unsigned parts);
void limbo_stamp_since(shard *sh, limbo_chunk *from);

/* Something left the shard: paces the epoch's advance, which limbo_advance_if_due then makes (called by
 * every write after its unlock). */
void limbo_note_removal(size_t bytes);
bool limbo_advance_if_due(void); /* true when it tried */
extern _Thread_local bool limbo_advance_due
    __attribute__((tls_model("initial-exec"))); /* an advance is wanted (checked inline by writes) */

/* Under the lock: detaches what is safe to reclaim now. */
void limbo_collect(shard *sh, limbo_batch *b);
/* After unlocking: runs the drops and frees of a batch; the emptied chunks need the lock again
 * (limbo_recycle), so the caller passes them back. */
void limbo_run(hmap_sync *m, shard *sh, limbo_batch *b);
void limbo_recycle(hmap_sync *m, shard *sh, limbo_chunk *chunks);

/* No reader left (the map is being freed): everything, now. */
void limbo_drain(hmap_sync *m, shard *sh);

/* Deferred entries and blocks still waiting in the shard (under the lock). */
size_t limbo_pending(const shard *sh);

#endif /* HMAP_SYNC_SYNC_H */
