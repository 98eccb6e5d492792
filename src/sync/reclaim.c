/* SPDX-License-Identifier: MIT */
/*
 * sync/reclaim.c — deferred reclamation per shard: drops of keys and values that left the map, and frees
 * of the map's own memory, each waiting until no reader that could see it remains (sync/epoch.h).
 *
 * Two queues per shard, both oldest first and both used under the shard's lock:
 *  - drops: chunks of fixed-size entries (which parts to drop, the key bytes, the value bytes), filled by
 *    deletes and replacements; a chunk goes once its newest entry is safe. Entries are copies of the
 *    slot bytes: a drop function receives a pointer to a copy, as hmap_take's caller would.
 *  - frees: blocks the shard's hmap freed (arrays, overflow slabs, table headers) in an optimistic map,
 *    where readers walk the hmap without the lock. The hmap allocates through the hook below, which asks
 *    its allocator for a little more than requested, so that a freed block carries its queue link just
 *    past its end, where no reader looks: queueing a free never allocates and never fails.
 *
 * Writers take what is safe out of the queues under the lock (limbo_collect) and run it after unlocking
 * (limbo_run): user drop functions never run under a lock. Reclamation is paced by removals: every
 * ADVANCE_EVERY removals, or a free of ADVANCE_BYTES or more, a thread tries to move the epoch (after
 * unlocking: with membarrier that is a system call), so the
 * queues hold a bounded number of entries per shard while readers come and go, and a large array freed
 * by a shrink goes back as soon as no reader is inside a section (at once, when none is).
 *
 * The hook's memory: with the built-in allocator, blocks of MAP_THRESHOLD bytes and more are mapped from
 * the OS (pre-faulted and unmapped by the memory thread, as mem/alloc.c does for hmap's arrays) and the
 * rest comes from aligned_alloc, each block on its own cache lines. With a user allocator, blocks come
 * from it, 32 bytes larger than what the hmap asked for. Either way the accounting (memstats, the map's
 * bytes, the heap profile) counts what the hmap asked for, when it asked and when it freed; the bytes of
 * a block still queued are added by hmap_sync_get_stats.
 */
#include "sync.h"

#include "../mem/memthread.h"
#include "epoch.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LINE 64
#define ADVANCE_EVERY 256 /* an advance may cost a membarrier system call (~2 us here): ~8 ns a removal */
#define ADVANCE_BYTES ((size_t)1 << 10) /* an array a resize freed: a shard of 50 entries has one */

/* ---------------------------------------------------------------- the allocator hook */

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Where a freed block's queue link goes, and the whole block. */
static size_t link_offset(size_t size) { return round_up(size, 16); }
static size_t block_bytes(size_t size) { return link_offset(size) + round_up(sizeof(deferred_free), 16); }

static void *hook_alloc(size_t size, void *ctx) {
    const shard *sh = ctx;
    const hmap_sync *m = sh->owner;
    size_t total = block_bytes(size);
    if (m->custom_alloc)
        return m->user.alloc(total, m->user.ctx);
    if (total >= MAP_THRESHOLD) {
        size_t len = round_up(total, mem_page_size());
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        populate_in_background(p, len);
        return p;
    }
    return aligned_alloc(LINE, round_up(total, LINE)); /* no block shares a line with another shard's */
}

static void release_block(const hmap_sync *m, void *p, size_t size) {
    size_t total = block_bytes(size);
    if (m->custom_alloc)
        m->user.free(p, total, m->user.ctx);
    else if (total >= MAP_THRESHOLD)
        unmap_in_background(p, round_up(total, mem_page_size()));
    else
        free(p);
}

static _Thread_local unsigned removals; /* since this thread last tried to move the epoch */
_Thread_local bool limbo_advance_due __attribute__((tls_model("initial-exec"))); /* try after the unlock */

void limbo_note_removal(size_t bytes) {
    if (bytes >= ADVANCE_BYTES || ++removals >= ADVANCE_EVERY) {
        removals = 0;
        limbo_advance_due = true;
    }
}

bool limbo_advance_if_due(void) {
    if (!limbo_advance_due)
        return false;
    limbo_advance_due = false;
    epoch_try_advance(); /* outside the lock: it may cost a system call (membarrier) */
    return true;
}

/* Called by the shard's hmap under the shard's lock (or while the map is created or freed). */
static void hook_free(void *p, size_t size, void *ctx) {
    shard *sh = ctx;
    if (!sh->defer_frees) {
        release_block(sh->owner, p, size);
        return;
    }
    deferred_free *d = (deferred_free *)((unsigned char *)p + link_offset(size));
    d->next = NULL;
    d->size = size;
    d->stamp = epoch_stamp();
    if (sh->frees_tail)
        sh->frees_tail->next = d;
    else
        sh->frees = d;
    sh->frees_tail = d;
    sh->deferred_frees++;
    atomic_fetch_add_explicit(&sh->deferred_bytes, size, memory_order_relaxed);
    limbo_note_removal(size);
}

void shard_hook_init(hmap_sync *m, shard *sh) {
    sh->owner = m;
    sh->hook.alloc = hook_alloc;
    sh->hook.free = hook_free;
    sh->hook.ctx = sh;
    sh->defer_frees = false; /* while the shard's hmap is made no reader can see it: frees are immediate */
}

/* ---------------------------------------------------------------- deferred drops */

static size_t chunk_bytes(const hmap_sync *m) {
    return sizeof(limbo_chunk) + m->chunk_entries * m->entry_size;
}

static void limbo_free_chunks(const hmap_sync *m, shard *sh, limbo_chunk *c);

unsigned char *limbo_reserve(hmap_sync *m, shard *sh) {
    limbo_chunk *c = sh->drops_tail;
    if (!c || c->used == m->chunk_entries) {
        c = sh->spare;
        if (c)
            sh->spare = c->next;
        else if ((c = mem_alloc(&sh->mem, chunk_bytes(m))) == NULL)
            return NULL;
        c->next = NULL;
        c->used = 0;
        c->stamp = 0;
        if (sh->drops_tail)
            sh->drops_tail->next = c;
        else
            sh->drops = c;
        sh->drops_tail = c;
    }
    return c->entries + (size_t)c->used * m->entry_size;
}

void limbo_commit(hmap_sync *m, shard *sh, unsigned char *entry, unsigned parts) {
    limbo_fill(m, sh, entry, parts);
    sh->drops_tail->stamp = epoch_stamp();
    limbo_note_removal(0);
}

void limbo_fill(hmap_sync *m, shard *sh, unsigned char *entry, unsigned parts) {
    (void)m;
    entry[0] = (unsigned char)parts;
    sh->drops_tail->used++;
    sh->deferred_drops++;
}

bool limbo_make_room(hmap_sync *m, shard *sh, size_t n) {
    size_t room = sh->drops_tail ? m->chunk_entries - sh->drops_tail->used : 0;
    for (const limbo_chunk *c = sh->spare; c && room < n; c = c->next)
        room += m->chunk_entries;
    limbo_chunk *more = NULL;
    while (room < n) {
        limbo_chunk *c = mem_alloc(&sh->mem, chunk_bytes(m));
        if (!c) {
            limbo_free_chunks(m, sh, more);
            return false;
        }
        c->next = more;
        more = c;
        room += m->chunk_entries;
    }
    if (more) { /* in front of the spare list: used first */
        limbo_chunk *last = more;
        while (last->next)
            last = last->next;
        last->next = sh->spare;
        sh->spare = more;
    }
    return true;
}

void limbo_stamp_since(shard *sh, limbo_chunk *from) {
    uint64_t now = epoch_stamp();
    for (limbo_chunk *c = from ? from : sh->drops; c; c = c->next)
        c->stamp = now;
    limbo_note_removal(ADVANCE_BYTES); /* many at once: worth moving the epoch for */
}

void limbo_collect(shard *sh, limbo_batch *b) {
    b->chunks = NULL;
    b->frees = NULL;
    if (!sh->drops && !sh->frees)
        return;
    uint64_t now = atomic_load_explicit(&epoch_global, memory_order_acquire);
    limbo_chunk **ct = &b->chunks;
    while (sh->drops && sh->drops->stamp + 2 <= now) {
        limbo_chunk *c = sh->drops;
        sh->drops = c->next;
        sh->deferred_drops -= c->used;
        c->next = NULL;
        *ct = c;
        ct = &c->next;
    }
    if (!sh->drops)
        sh->drops_tail = NULL;
    deferred_free **ft = &b->frees;
    while (sh->frees && sh->frees->stamp + 2 <= now) {
        deferred_free *d = sh->frees;
        sh->frees = d->next;
        sh->deferred_frees--;
        d->next = NULL;
        *ft = d;
        ft = &d->next;
    }
    if (!sh->frees)
        sh->frees_tail = NULL;
}

static void run_drops(const hmap_sync *m, const limbo_chunk *c) {
    for (; c; c = c->next) {
        for (unsigned i = 0; i < c->used; i++) {
            unsigned char *e = (unsigned char *)c->entries + (size_t)i * m->entry_size;
            if (e[0] & DROP_KEY)
                drop_key(&m->type, e + m->key_offset);
            if (e[0] & DROP_VAL)
                drop_val(&m->type, e + m->val_offset);
        }
    }
}

static void run_frees(const hmap_sync *m, shard *sh, deferred_free *d) {
    while (d) {
        deferred_free *next = d->next;
        size_t size = d->size;
        atomic_fetch_sub_explicit(&sh->deferred_bytes, size, memory_order_relaxed);
        release_block(m, (unsigned char *)d - link_offset(size), size);
        d = next;
    }
}

void limbo_run(hmap_sync *m, shard *sh, limbo_batch *b) {
    run_drops(m, b->chunks);
    run_frees(m, sh, b->frees);
    b->frees = NULL;
}

static void limbo_free_chunks(const hmap_sync *m, shard *sh, limbo_chunk *c) {
    while (c) {
        limbo_chunk *next = c->next;
        mem_free(&sh->mem, c, chunk_bytes(m));
        c = next;
    }
}

void limbo_recycle(hmap_sync *m, shard *sh, limbo_chunk *chunks) {
    while (chunks) {
        limbo_chunk *c = chunks;
        chunks = c->next;
        if (!sh->spare) {
            c->next = NULL; /* the spare list: this one alone */
            sh->spare = c;
        } else {
            mem_free(&sh->mem, c, chunk_bytes(m));
        }
    }
}

void limbo_drain(hmap_sync *m, shard *sh) {
    run_drops(m, sh->drops);
    limbo_recycle(m, sh, sh->drops);
    sh->drops = sh->drops_tail = NULL;
    sh->deferred_drops = 0;
    limbo_free_chunks(m, sh, sh->spare);
    sh->spare = NULL;
    run_frees(m, sh, sh->frees);
    sh->frees = sh->frees_tail = NULL;
    sh->deferred_frees = 0;
}

size_t limbo_pending(const shard *sh) { return sh->deferred_drops + sh->deferred_frees; }
