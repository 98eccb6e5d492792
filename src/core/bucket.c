/* SPDX-License-Identifier: MIT */
/*
 * bucket.c — the storage primitives under the map: slot layout, bucket chains, overflow buckets.
 *
 * Everything above this file (map.c's lookups and writes, resize.c's evacuation, iter.c's walk) sees a
 * bucket through a bucket_ref (core.h): its tophash word, its slots and the link to the next bucket
 * of its chain. This file decides where a slot's key and value sit inside a bucket (set_layout), finds the
 * bucket holding a chain position (chain_at, inline in core.h), grows chains with overflow buckets
 * (chain_extend) and carries on set_slot_empty's walk back over a chain's tombstones (set_rest_before).
 *
 * Overflow buckets come first from the spare ones allocated with each array (1/16 of its buckets, as Go
 * preallocates), then from slabs that double in size, so that a table makes O(log n) allocations for them
 * and frees them with itself; large slabs are mapped from the OS, so freeing them lowers RSS. Which of them
 * are in use is kept in the array's side record (table_ext, core.h), made by its first overflow bucket: an
 * array that never needs one (every small map whose keys spread) holds only its header and its buckets.
 */
#include "core.h"

#include <string.h>

/* ---------------------------------------------------------------- layout */

static size_t alignment_of_size(size_t size) {
    size_t a = size & -size; /* largest power of two dividing size */
    return a > 16 ? 16 : a;
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Slot layout inside a bucket: (key, value) pairs when they pack without padding, so that a hit reads one
 * cache line; otherwise keys[8] then values[8], as Go, so that e.g. 1-byte keys with 8-byte values waste
 * nothing. slot_key()/slot_val() only see the two strides and the values' offset. */
void set_layout(map_class *m) {
    size_t ks = m->type.key_size + m->hash_off, vs = m->type.val_size;
    /* An item that leads with a stored hash is aligned as that hash (8 bytes, read with memcpy): a C-string
     * key's (hash, pointer) then pairs with an 8-byte value, one 24-byte item a slot. */
    size_t ka = m->hash_off ? 8 : alignment_of_size(ks), va = vs ? alignment_of_size(vs) : 1;
    if (vs && ks % va == 0 && (ks + vs) % ka == 0) {
        m->key_stride = m->val_stride = ks + vs;
        m->vals_offset = ks;
        m->bucket_bytes = SLOTS_PER_BUCKET * (ks + vs);
    } else {
        m->key_stride = ks;
        m->val_stride = vs;
        m->vals_offset = round_up(SLOTS_PER_BUCKET * ks, va);
        m->bucket_bytes = round_up(m->vals_offset + SLOTS_PER_BUCKET * vs, ka > va ? ka : va);
    }
    if (!vs) { /* a set: a slot's "value" is its key (the presence token), so slot_val() needs no test */
        m->vals_offset = m->hash_off;
        m->val_stride = m->key_stride;
    }
}

/* ---------------------------------------------------------------- keys and chains */

uint64_t map_hash(const hmap *m, const void *key) { return hash_key(m, key, m->kind); }

uint64_t stored_hash(const hmap *m, const bucket_ref *b, unsigned i) {
    switch (m->kind) {
    case KEYS_U64:
        return slot_hash(m, b, i, KEYS_U64);
    case KEYS_CSTR:
        return slot_hash(m, b, i, KEYS_CSTR);
    default:
        return slot_hash(m, b, i, KEYS_GENERIC);
    }
}

/* ---------------------------------------------------------------- overflow buckets */

/* The spare overflow buckets are the array's preallocated ones (after its slots), none in use. */
static void reset_spares(const hmap *m, const table *t, table_ext *x) {
    x->spare = t->slots + t->nbuckets * m->bucket_bytes;
    x->spare_used = 0;
    x->spare_cap = spare_buckets(t->B);
}

table_ext *table_ext_make(hmap *m, table *t) {
    table_ext *x = mem_alloc(&m->mem, sizeof *x);
    if (!x)
        return NULL;
    memset(x, 0, sizeof *x);
    reset_spares(m, t, x);
    t->ext = x;
    return x;
}

/* A new slab of overflow buckets for table t, as many as the table already uses (one, for an array's
 * first: arrays below B = 4 have no spares): the slabs double, so a table makes O(log n) of them, and a
 * small array's first overflow bucket costs one bucket, not a slab as large as the array itself. */
static bool add_overflow_slab(hmap *m, table *t, table_ext *x) {
    size_t per = overflow_bucket_bytes(m), count = t->noverflow ? t->noverflow : 1;
    size_t bytes = sizeof(overflow_slab) + count * per;
    bool mapped;
    overflow_slab *slab = mem_alloc_array(&m->mem, &bytes, sizeof(overflow_slab), true, &mapped);
    if (!slab)
        return false;
    slab->next = x->slabs;
    slab->bytes = bytes;
    slab->mapped = mapped;
    x->slabs = slab;
    x->slab_bytes += bytes;
    x->spare = slab->buckets;
    x->spare_used = 0;
    x->spare_cap = (bytes - sizeof(overflow_slab)) / per; /* page rounding may have added some */
    return true;
}

/* A new overflow bucket for table t: a preallocated one, else one from a new slab. */
static overflow_bucket *new_overflow(hmap *m, table *t) {
    table_ext *x = table_ext_get(m, t);
    if (!x || (x->spare_used == x->spare_cap && !add_overflow_slab(m, t, x)))
        return NULL;
    overflow_bucket *o = (overflow_bucket *)(x->spare + x->spare_used * overflow_bucket_bytes(m));
    x->spare_used++;
    t->noverflow++;
    memset(o, 0, sizeof *o); /* spares are not zeroed in advance; the slots need not be */
    return o;
}

void free_overflow(hmap *m, table *t) {
    table_ext *x = t->ext;
    if (!x)
        return;
    while (x->slabs) {
        overflow_slab *slab = x->slabs;
        x->slabs = slab->next;
        mem_free_array(&m->mem, slab, slab->bytes, 0, slab->mapped);
    }
    x->slab_bytes = 0;
    reset_spares(m, t, x);
}

/* Appends an empty overflow bucket after the chain's last bucket `last`. */
bool chain_extend(hmap *m, table *t, bucket_ref *last) {
    overflow_bucket *o = new_overflow(m, t);
    if (!o)
        return false;
    *last->next = o;
    return bucket_ref_next(m, last);
}

/* ---------------------------------------------------------------- emptying a slot */

void drop_entry(const hmap *m, void *key, void *val) {
    call_key_drop(m, key);
    call_val_drop(m, val);
}

#define REST_WALK_BUCKETS 8

/* The rest of set_slot_empty's walk: every slot of overflow bucket b of chain i is EMPTY_REST now, so the
 * tombstones at the end of the buckets before it become EMPTY_REST too. Buckets of a chain are singly
 * linked, so the previous bucket is found by walking from the head again — only within the first
 * REST_WALK_BUCKETS buckets of a chain: on a long chain (keys that collide) the tombstones before b stay
 * EMPTY_ONE, which costs lookups a little and keeps a delete O(1). */
void set_rest_before(hmap *m, table *t, size_t i, const bucket_ref *b) {
    bucket_ref cur = *b;
    for (;;) {
        bucket_ref prev = table_bucket(m, t, i);
        if (prev.tophash == cur.tophash)
            return; /* reached the head of the chain */
        unsigned steps = 0;
        bucket_ref walk = prev;
        for_each_chain_bucket(m, walk) { /* prev becomes the bucket before cur */
            if (walk.tophash == cur.tophash)
                break;
            if (++steps > REST_WALK_BUCKETS)
                return;
            prev = walk;
        }
        cur = prev;
        for (int s = SLOTS_PER_BUCKET - 1; s >= 0; s--) {
            if (slot_top(&cur, (unsigned)s) != EMPTY_ONE)
                return;
            set_slot_top(&cur, (unsigned)s, EMPTY_REST);
            t->tombstones--;
        }
    }
}
