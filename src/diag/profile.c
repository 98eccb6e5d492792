/* SPDX-License-Identifier: MIT */
/*
 * diag/profile.c — the sampled heap profile of every allocation the library makes: which call sites' maps
 * hold the library's memory, the way Go's heap profile tells it for Go's heap. The writer is pprof.c.
 *
 * Sampling (Go's MemProfileRate idea). Each thread counts down the bytes it allocates; when an allocation
 * crosses the countdown it is sampled and a new countdown is drawn from an exponential distribution with
 * mean `rate`. That makes the samples a Poisson process over allocated bytes: an allocation of s bytes is
 * sampled with probability 1 - exp(-s/rate), which the writer divides back out ("unsampling", as Go's
 * scaleHeapSample does). Rate 0 turns sampling off; rate 1 samples every allocation exactly.
 *
 * Records. A sampled allocation captures its stack (backtrace(), from the caller of the hook on: the
 * profiler's own frames are dropped by matching the hook's return address) and counts in the record of
 * (stack, size, rate, name), with allocated and freed counts. The rate is part of the key so that each
 * sample is unsampled with the rate it was taken at: a profile exact at rate 1 stays exact after the rate
 * changes. Records stay for the life of the process, as Go's do (alloc figures are cumulative), except
 * for their names: see below.
 *
 * Live samples. A table maps each sampled block that is still allocated to its record, so that its free
 * moves it from in-use to freed. Every free the library makes passes through profile_note_free, almost
 * none of them of a sampled block, so frees must not share anything writable: a filter of 2^16 counters,
 * indexed by 16 bits of the block's address hash, counts the live samples whose hash falls there. A free
 * reads its counter with one relaxed atomic load and returns when it is 0, with no lock and no write;
 * only a free whose counter is non-zero (its own sample, or another in the same slot: a share of about
 * live samples / 2^16 of the unsampled frees) takes the lock and looks in the table. The counters change only
 * under the lock. A free never misses its own sample: the sample's increment happened before the block was
 * handed out, hence before its free, and no decrement of another sample can bring the counter below the
 * samples still counted there. Counters saturate (never decremented again) rather than wrap.
 *
 * Names. A map's name labels its samples ("map" in pprof), and names come and go with maps: a program
 * may create millions of distinct names. Names are interned by hash with a count of the live samples that
 * carry them; when the count falls to 0 (every sampled block of that name freed), the name's records are
 * folded into their unnamed twins (same stack, size and rate) and the name is released. The stacks' alloc
 * figures stay whole; what is lost is only the label of allocations long freed, and the profiler's
 * memory stays flat however many named maps come and go.
 *
 * Memory. Everything above lives in the layer's own mapped pages (table.c), never the C heap or a
 * map's allocator hook, and is not counted in hmap_read_memstats (own_bytes() tells it).
 *
 * Dumps for long-running programs, as gperftools' HEAPPROFILE. With HMAP_HEAPPROFILE=prefix:
 *   - HMAP_HEAPPROFILE_INTERVAL=N writes prefix.0001.heap, prefix.0002.heap, ... each time N more bytes have
 *     been allocated through the library. Threads count their bytes locally and add them to the shared
 *     count every 64 KiB (or every N, if smaller), so a dump comes within 64 KiB per thread of its mark; an
 *     allocation crossing several marks makes one dump.
 *   - HMAP_HEAPPROFILE_SIGNAL=USR2 (or USR1, HUP, a number) installs a handler for that signal, replacing
 *     any the program had (and replaced in turn by any it installs later). Writing a profile is not
 *     async-signal-safe (it allocates, takes locks, opens files), so the handler only sets a flag; the next
 *     allocation the library makes, on whatever thread, writes the next numbered file. No allocation, no
 *     dump.
 *   - the profile at exit is written to prefix itself, as without either.
 * A dump runs on the allocating thread, inside that hmap call (milliseconds: symbol tables, gzip); a
 * dump due while another is being written is skipped. In a forked child, file names carry the child's pid
 * (prefix.PID.0001.heap, prefix.PID at exit) so that the child does not overwrite the parent's.
 *
 * Fork. pthread_atfork handlers take every lock of this layer (trace, records, small blocks) before fork
 * and release them after, so a child forked while other threads allocate finds them free and can allocate
 * and write profiles. Its records start as the parent's.
 *
 * Environment, read once by a constructor when the library is loaded: HMAP_PROFILE_RATE sets the rate,
 * HMAP_HEAPPROFILE=path writes a profile at exit, and the two dump variables above.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "profile.h"

#include "../base/mix.h"
#include "../base/random.h"
#include "diag.h"
#include "hmap.h"

#include <errno.h>
#include <execinfo.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_RATE (512u * 1024u) /* Go's default MemProfileRate */

/* --------------------------------------------------------------------------------------------------------
 * Rate and the per-thread countdown
 * -------------------------------------------------------------------------------------------------------- */

static _Atomic size_t profile_rate = DEFAULT_RATE;
static _Atomic unsigned rate_epoch = 1; /* bumped on every rate change: threads redraw their countdown */

static _Thread_local unsigned tls_epoch; /* epoch the countdown was drawn under; 0 = never drawn */
static _Thread_local uint64_t tls_left;  /* bytes still to allocate before the next sample */

/* Bytes until the next sample: exponential with mean `rate`, so that samples form a Poisson process. */
static uint64_t draw_countdown(size_t rate) {
    double u = ((double)(fast_random() >> 11) + 0.5) / 9007199254740992.0; /* uniform in (0, 1) */
    double bytes = -log(u) * (double)rate;
    return bytes >= 1e18 ? (uint64_t)1e18 : (uint64_t)bytes + 1;
}

/* Decides whether this allocation of `size` bytes is sampled; updates the thread's countdown. */
static bool should_sample(size_t size, size_t rate) {
    if (rate == 1)
        return true;
    unsigned epoch = atomic_load_explicit(&rate_epoch, memory_order_relaxed);
    if (tls_epoch != epoch) {
        tls_epoch = epoch;
        tls_left = draw_countdown(rate);
    }
    if (size < tls_left) {
        tls_left -= size;
        return false;
    }
    tls_left = draw_countdown(rate);
    return true;
}

void hmap_set_profile_rate(size_t bytes) {
    atomic_store_explicit(&profile_rate, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&rate_epoch, 1, memory_order_relaxed);
}

/* --------------------------------------------------------------------------------------------------------
 * Item arrays: dense arrays of fixed-size items in own pages, with freed items reused (guarded by prof_lock)
 * -------------------------------------------------------------------------------------------------------- */

typedef struct item_array {
    unsigned char *data;
    size_t bytes;       /* mapped */
    size_t item_size;   /* bytes per item */
    size_t link_offset; /* where a free item keeps the next free one (+1) */
    uint32_t used;      /* items ever handed out: the high-water mark */
    uint32_t free_head; /* first free item + 1, or 0 */
} item_array;

static void *item_at(const item_array *a, uint32_t i) { return a->data + (size_t)i * a->item_size; }

static uint32_t *item_link(const item_array *a, uint32_t i) {
    return (uint32_t *)((unsigned char *)item_at(a, i) + a->link_offset);
}

/* A free item's number (its contents undefined), or DTABLE_NONE when out of memory. May move the array. */
static uint32_t item_take(item_array *a) {
    if (a->free_head != 0) {
        uint32_t i = a->free_head - 1;
        a->free_head = *item_link(a, i);
        return i;
    }
    if ((size_t)(a->used + 1) * a->item_size > a->bytes) {
        if (a->used + 1 == DTABLE_NONE)
            return DTABLE_NONE;
        size_t bytes = a->bytes ? a->bytes * 2 : 64 * a->item_size;
        unsigned char *grown = own_pages_grow(a->data, a->bytes, &bytes);
        if (grown == NULL)
            return DTABLE_NONE;
        a->data = grown;
        a->bytes = bytes;
    }
    return a->used++;
}

static void item_put(item_array *a, uint32_t i) {
    *item_link(a, i) = a->free_head;
    a->free_head = i + 1;
}

/* --------------------------------------------------------------------------------------------------------
 * Records, names and live samples (guarded by prof_lock)
 * -------------------------------------------------------------------------------------------------------- */

#define FREE_RECORD UINT32_MAX /* nframes of a free record */

typedef struct record {
    uint64_t hash;
    size_t size, rate;
    uint64_t allocs, frees; /* sampled allocations, and sampled blocks since freed */
    uint32_t name;          /* name entry + 1, or 0 */
    uint32_t link;          /* in use: the next record of the same name + 1; free: the next free record */
    uint32_t nframes;       /* FREE_RECORD: free */
    void *frames[MAX_FRAMES];
} record;

typedef struct name_entry {
    uint64_t hash;
    char *str; /* own_alloc'd, len + 1 bytes; NULL: a free entry */
    size_t len;
    uint64_t live;      /* live samples carrying this name */
    uint32_t records;   /* its first record + 1 */
    uint32_t next_free; /* when free */
} name_entry;

typedef struct live_entry {
    const void *p; /* NULL: free */
    uint32_t record;
    uint32_t next_free; /* when free */
} live_entry;

static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static item_array records = {.item_size = sizeof(record), .link_offset = offsetof(record, link)};
static item_array names = {.item_size = sizeof(name_entry), .link_offset = offsetof(name_entry, next_free)};
static item_array live = {.item_size = sizeof(live_entry), .link_offset = offsetof(live_entry, next_free)};
static dtable record_index, name_index, live_index;

/* The free path's filter (see the top of the file): 2^16 counters, 128 KiB of zero pages until used. */
#define FILTER_BITS 16
static _Atomic uint16_t live_filter[1u << FILTER_BITS];
static _Atomic size_t live_samples; /* all of them: frees skip even the filter while there are none */

static record *record_at(uint32_t i) { return item_at(&records, i); }
static name_entry *name_at(uint32_t i) { return item_at(&names, i); }
static live_entry *live_at(uint32_t i) { return item_at(&live, i); }

static _Atomic uint16_t *filter_counter(uint64_t hash) { return &live_filter[hash >> (64 - FILTER_BITS)]; }

static void filter_add(uint64_t hash, int delta) {
    _Atomic uint16_t *c = filter_counter(hash);
    uint16_t v = atomic_load_explicit(c, memory_order_relaxed);
    if (v != UINT16_MAX) /* saturated: stays so (frees there just take the lock) */
        atomic_store_explicit(c, (uint16_t)(v + delta), memory_order_relaxed);
}

typedef struct record_key {
    void *const *frames;
    uint32_t nframes;
    size_t size, rate;
    uint32_t name;
} record_key;

static uint64_t record_hash(const record_key *k) {
    uint64_t h = mix64(k->size ^ ((uint64_t)k->name << 40) ^ mix64(k->rate));
    for (uint32_t i = 0; i < k->nframes; i++)
        h = mix64(h ^ (uint64_t)(uintptr_t)k->frames[i]);
    return h;
}

static bool record_matches(const void *ctx, uint32_t item, const void *key) {
    (void)ctx;
    const record *r = record_at(item);
    const record_key *k = key;
    return r->size == k->size && r->rate == k->rate && r->name == k->name && r->nframes == k->nframes &&
           memcmp(r->frames, k->frames, k->nframes * sizeof *k->frames) == 0;
}

/* The record of this key, created if new; DTABLE_NONE when out of memory. k->frames must not point into
 * the records (creating one may move them). */
static uint32_t find_or_add_record(const record_key *k) {
    uint64_t h = record_hash(k);
    uint32_t i = dtable_find(&record_index, h, record_matches, NULL, k);
    if (i != DTABLE_NONE)
        return i;
    if ((i = item_take(&records)) == DTABLE_NONE)
        return DTABLE_NONE;
    if (!dtable_add(&record_index, h, i)) {
        record_at(i)->nframes = FREE_RECORD;
        item_put(&records, i);
        return DTABLE_NONE;
    }
    record *r = record_at(i);
    *r = (record){.hash = h, .size = k->size, .rate = k->rate, .name = k->name, .nframes = k->nframes};
    memcpy(r->frames, k->frames, k->nframes * sizeof *k->frames);
    if (k->name != 0) { /* the name's list of records, for folding them when it goes */
        r->link = name_at(k->name - 1)->records;
        name_at(k->name - 1)->records = i + 1;
    }
    return i;
}

static void record_release(uint32_t i) {
    dtable_remove(&record_index, record_at(i)->hash, i);
    record_at(i)->nframes = FREE_RECORD;
    item_put(&records, i);
}

typedef struct name_key {
    const char *s;
    size_t len;
} name_key;

static bool name_matches(const void *ctx, uint32_t item, const void *key) {
    (void)ctx;
    const name_entry *e = name_at(item);
    const name_key *k = key;
    return e->len == k->len && memcmp(e->str, k->s, k->len) == 0;
}

/* The name's entry + 1, created if new; 0 for no name, or when out of memory (the sample goes unnamed). */
static uint32_t intern_name(const char *s) {
    if (s == NULL)
        return 0;
    name_key k = {s, strlen(s)};
    uint64_t h = hash_string(k.s, k.len);
    uint32_t i = dtable_find(&name_index, h, name_matches, NULL, &k);
    if (i != DTABLE_NONE)
        return i + 1;
    char *copy = own_alloc(k.len + 1);
    if (copy == NULL || (i = item_take(&names)) == DTABLE_NONE) {
        own_free(copy, k.len + 1);
        return 0;
    }
    if (!dtable_add(&name_index, h, i)) {
        own_free(copy, k.len + 1);
        name_at(i)->str = NULL;
        item_put(&names, i);
        return 0;
    }
    memcpy(copy, s, k.len + 1);
    *name_at(i) = (name_entry){.hash = h, .str = copy, .len = k.len};
    return i + 1;
}

/* Folds one record of a retiring name into its unnamed twin; false when out of memory. */
static bool fold_record(uint32_t r) {
    void *frames[MAX_FRAMES];
    const record *rec = record_at(r);
    memcpy(frames, rec->frames, rec->nframes * sizeof *frames);
    record_key k = {frames, rec->nframes, rec->size, rec->rate, 0};
    uint32_t twin = find_or_add_record(&k); /* may move the records */
    if (twin == DTABLE_NONE)
        return false;
    record_at(twin)->allocs += record_at(r)->allocs;
    record_at(twin)->frees += record_at(r)->frees;
    return true;
}

/* A name none of whose samples is live any more: its records join their unnamed twins, then it goes. Out
 * of memory, it stays (folded in part) until its next last free. */
static void retire_name(uint32_t n) {
    while (name_at(n - 1)->records != 0) {
        uint32_t r = name_at(n - 1)->records - 1;
        if (!fold_record(r))
            return;
        name_at(n - 1)->records = record_at(r)->link;
        record_release(r);
    }
    name_entry *e = name_at(n - 1);
    dtable_remove(&name_index, e->hash, n - 1);
    own_free(e->str, e->len + 1);
    e->str = NULL;
    item_put(&names, n - 1);
}

static void name_release_if_unused(uint32_t n) {
    if (n != 0 && name_at(n - 1)->live == 0)
        retire_name(n);
}

static bool live_matches(const void *ctx, uint32_t item, const void *key) {
    (void)ctx;
    return live_at(item)->p == key;
}

static bool live_insert(const void *p, uint64_t hash, uint32_t rec) {
    uint32_t i = item_take(&live);
    if (i == DTABLE_NONE)
        return false;
    if (!dtable_add(&live_index, hash, i)) {
        live_at(i)->p = NULL;
        item_put(&live, i);
        return false;
    }
    *live_at(i) = (live_entry){.p = p, .record = rec};
    filter_add(hash, +1);
    atomic_fetch_add_explicit(&live_samples, 1, memory_order_relaxed);
    return true;
}

/* Removes p's live sample; returns its record, or DTABLE_NONE when p was not sampled. */
static uint32_t live_remove(const void *p, uint64_t hash) {
    uint32_t i = dtable_find(&live_index, hash, live_matches, NULL, p);
    if (i == DTABLE_NONE)
        return DTABLE_NONE;
    uint32_t rec = live_at(i)->record;
    dtable_remove(&live_index, hash, i);
    live_at(i)->p = NULL;
    item_put(&live, i);
    filter_add(hash, -1);
    atomic_fetch_sub_explicit(&live_samples, 1, memory_order_relaxed);
    return rec;
}

/* A sampled block of record r is gone. */
static void note_sample_freed(uint32_t r) {
    record_at(r)->frees++;
    uint32_t n = record_at(r)->name;
    if (n != 0 && --name_at(n - 1)->live == 0)
        retire_name(n);
}

/* --------------------------------------------------------------------------------------------------------
 * The allocation hooks
 * -------------------------------------------------------------------------------------------------------- */

static void record_sample(const void *p, size_t size, const char *name, size_t rate, const void *caller) {
    /* Room for the frames dropped below. backtrace() may allocate (its first call loads the unwinder), so
     * it runs before the lock is taken. */
    void *frames[MAX_FRAMES + 16];
    int n = backtrace(frames, MAX_FRAMES + 16);
    unsigned first = 0;
    while (first < (unsigned)n && frames[first] != caller)
        first++; /* the profiler's own frames, and a sanitizer's around backtrace() */
    if (first == (unsigned)n)
        first = 0; /* the hook's caller not seen (an unwinder that skips frames): keep them all */
    unsigned count = (unsigned)n - first < MAX_FRAMES ? (unsigned)n - first : MAX_FRAMES;
    uint64_t h = mix64((uint64_t)(uintptr_t)p);

    pthread_mutex_lock(&prof_lock);
    uint32_t stale = live_remove(p, h); /* a block freed without a free passing here: count it gone */
    if (stale != DTABLE_NONE)
        note_sample_freed(stale);
    uint32_t nm = intern_name(name);
    record_key k = {frames + first, count, size, rate, nm};
    uint32_t r = find_or_add_record(&k);
    if (r != DTABLE_NONE) {
        record_at(r)->allocs++;
        if (!live_insert(p, h, r))
            record_at(r)->frees++; /* cannot follow it: count it as gone rather than in use forever */
        else if (nm != 0)
            name_at(nm - 1)->live++;
    }
    name_release_if_unused(nm);
    pthread_mutex_unlock(&prof_lock);
}

static void dump_note_alloc(size_t size);
static _Atomic bool dumps_armed; /* an interval or a signal is set up: allocations count for dumps */

void profile_note_alloc(const void *p, size_t size, const char *name) {
    if (p == NULL)
        return;
    size_t rate = atomic_load_explicit(&profile_rate, memory_order_relaxed);
    if (rate != 0 && should_sample(size, rate))
        record_sample(p, size, name, rate, __builtin_return_address(0));
    if (atomic_load_explicit(&dumps_armed, memory_order_relaxed))
        dump_note_alloc(size);
}

void profile_note_free(const void *p, size_t size) {
    (void)size;
    if (p == NULL || atomic_load_explicit(&live_samples, memory_order_relaxed) == 0)
        return;
    uint64_t h = mix64((uint64_t)(uintptr_t)p);
    if (atomic_load_explicit(filter_counter(h), memory_order_relaxed) == 0)
        return; /* not sampled: no lock, nothing written */
    pthread_mutex_lock(&prof_lock);
    uint32_t r = live_remove(p, h);
    if (r != DTABLE_NONE)
        note_sample_freed(r);
    pthread_mutex_unlock(&prof_lock);
}

/* --------------------------------------------------------------------------------------------------------
 * Snapshots for the writer
 * -------------------------------------------------------------------------------------------------------- */

int profile_snapshot_take(profile_snapshot *s) {
    *s = (profile_snapshot){.rate = atomic_load_explicit(&profile_rate, memory_order_relaxed)};
    pthread_mutex_lock(&prof_lock);
    size_t n = 0, name_bytes = 0;
    for (uint32_t i = 0; i < records.used; i++) {
        const record *r = record_at(i);
        if (r->nframes == FREE_RECORD)
            continue;
        n++;
        name_bytes += r->name ? name_at(r->name - 1)->len + 1 : 0;
    }
    s->recs = malloc((n ? n : 1) * sizeof *s->recs);
    s->names = malloc(name_bytes ? name_bytes : 1);
    if (s->recs == NULL || s->names == NULL) {
        pthread_mutex_unlock(&prof_lock);
        profile_snapshot_free(s);
        return -ENOMEM;
    }
    char *at = s->names;
    for (uint32_t i = 0; i < records.used; i++) {
        const record *r = record_at(i);
        if (r->nframes == FREE_RECORD)
            continue;
        sample_record *c = &s->recs[s->n++];
        *c = (sample_record){
            .size = r->size, .rate = r->rate, .allocs = r->allocs, .frees = r->frees, .nframes = r->nframes};
        memcpy(c->frames, r->frames, r->nframes * sizeof *r->frames);
        if (r->name) {
            const name_entry *e = name_at(r->name - 1);
            memcpy(at, e->str, e->len + 1);
            c->name = at;
            at += e->len + 1;
        }
    }
    pthread_mutex_unlock(&prof_lock);
    return 0;
}

void profile_snapshot_free(profile_snapshot *s) {
    free(s->recs);
    free(s->names);
    *s = (profile_snapshot){0};
}

size_t profile_record_count(void) {
    pthread_mutex_lock(&prof_lock);
    size_t n = record_index.count;
    pthread_mutex_unlock(&prof_lock);
    return n;
}

size_t profile_name_count(void) {
    pthread_mutex_lock(&prof_lock);
    size_t n = name_index.count;
    pthread_mutex_unlock(&prof_lock);
    return n;
}

/* --------------------------------------------------------------------------------------------------------
 * Dumps: every HMAP_HEAPPROFILE_INTERVAL bytes, and on HMAP_HEAPPROFILE_SIGNAL
 * -------------------------------------------------------------------------------------------------------- */

#define DUMP_FLUSH_BYTES ((uint64_t)64 << 10)

static char *dump_prefix;                        /* HMAP_HEAPPROFILE, own memory; NULL: none */
static uint64_t dump_interval;                   /* bytes; 0: none */
static _Atomic uint64_t dump_counted, dump_next; /* bytes counted so far; the next mark */
static _Atomic bool dump_requested;              /* set by the signal handler */
static _Atomic bool dump_running;
static _Atomic unsigned dump_seq;
static pid_t dump_child_pid;                 /* non-zero in a forked child: names carry it */
static _Thread_local uint64_t tls_unflushed; /* bytes this thread allocated, not yet counted */

_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "the signal handler's flag must be lock-free");

static void numbered_path(char *out, size_t size, unsigned seq) {
    if (dump_child_pid != 0)
        snprintf(out, size, "%s.%d.%04u.heap", dump_prefix, (int)dump_child_pid, seq);
    else
        snprintf(out, size, "%s.%04u.heap", dump_prefix, seq);
}

static void dump_now(void) {
    if (atomic_exchange_explicit(&dump_running, true, memory_order_acquire))
        return; /* another thread is writing one */
    char path[4096 + 32];
    numbered_path(path, sizeof path, atomic_fetch_add_explicit(&dump_seq, 1, memory_order_relaxed) + 1);
    int err = hmap_write_heap_profile(path);
    if (err != 0)
        fprintf(stderr, "hmap: cannot write heap profile %s: %s\n", path, strerror(-err));
    atomic_store_explicit(&dump_running, false, memory_order_release);
}

static void dump_note_alloc(size_t size) {
    if (dump_interval != 0) {
        tls_unflushed += size;
        uint64_t flush = dump_interval < DUMP_FLUSH_BYTES ? dump_interval : DUMP_FLUSH_BYTES;
        if (tls_unflushed >= flush) {
            uint64_t total =
                atomic_fetch_add_explicit(&dump_counted, tls_unflushed, memory_order_relaxed) + tls_unflushed;
            tls_unflushed = 0;
            uint64_t next = atomic_load_explicit(&dump_next, memory_order_relaxed);
            if (total >= next && atomic_compare_exchange_strong_explicit(
                                     &dump_next, &next, (total / dump_interval + 1) * dump_interval,
                                     memory_order_relaxed, memory_order_relaxed))
                dump_now();
        }
    }
    if (atomic_load_explicit(&dump_requested, memory_order_relaxed) &&
        atomic_exchange_explicit(&dump_requested, false, memory_order_relaxed))
        dump_now();
}

/* Async-signal-safe: one store to a lock-free atomic. */
static void on_dump_signal(int sig) {
    (void)sig;
    atomic_store_explicit(&dump_requested, true, memory_order_relaxed);
}

static int signal_number(const char *s) {
    static const struct {
        const char *name;
        int sig;
    } known[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP}};
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(s, known[i].name) == 0)
            return known[i].sig;
    char *end;
    long v = strtol(s, &end, 10);
    return *s != '\0' && *end == '\0' && v > 0 && v < NSIG ? (int)v : 0;
}

static void install_dump_signal(const char *spec) {
    int sig = signal_number(spec);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sig == 0 || sigaction(sig, &sa, NULL) != 0) {
        fprintf(stderr, "hmap: ignoring HMAP_HEAPPROFILE_SIGNAL=%s (not a signal that can be caught)\n",
                spec);
        return;
    }
    atomic_store_explicit(&dumps_armed, true, memory_order_relaxed);
}

/* --------------------------------------------------------------------------------------------------------
 * Fork and the environment
 * -------------------------------------------------------------------------------------------------------- */

/* Lock order: trace, then records, then small blocks (record_sample allocates names under prof_lock; the
 * trace filter is allocated under the trace lock; nothing takes trace or records under small blocks). */
static void fork_prepare(void) {
    trace_fork_prepare();
    pthread_mutex_lock(&prof_lock);
    own_fork_prepare();
}

static void fork_parent(void) {
    own_fork_release();
    pthread_mutex_unlock(&prof_lock);
    trace_fork_release();
}

static void fork_child(void) {
    fork_parent(); /* the forking thread owns the locks in the child too */
    atomic_store_explicit(&dump_running, false, memory_order_relaxed); /* its writer did not come along */
    if (dump_prefix != NULL) {
        dump_child_pid = getpid();
        atomic_store_explicit(&dump_seq, 0, memory_order_relaxed);
    }
}

static void write_exit_profile(void) {
    char path[4096 + 32];
    if (dump_child_pid != 0)
        snprintf(path, sizeof path, "%s.%d", dump_prefix, (int)dump_child_pid);
    else
        snprintf(path, sizeof path, "%s", dump_prefix);
    int err = hmap_write_heap_profile(path);
    if (err != 0)
        fprintf(stderr, "hmap: cannot write HMAP_HEAPPROFILE=%s: %s\n", path, strerror(-err));
}

/* A non-negative integer from the environment; false (with a message) when set but not a number. */
static bool env_number(const char *var, unsigned long long *out) {
    const char *v = getenv(var);
    if (v == NULL || *v == '\0')
        return false;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end != '\0') {
        fprintf(stderr, "hmap: ignoring %s=%s (not a number)\n", var, v);
        return false;
    }
    *out = n;
    return true;
}

static void read_dump_environment(void) {
    const char *path = getenv("HMAP_HEAPPROFILE");
    const char *sig = getenv("HMAP_HEAPPROFILE_SIGNAL");
    unsigned long long interval = 0;
    bool has_interval = env_number("HMAP_HEAPPROFILE_INTERVAL", &interval) && interval > 0;
    if (path == NULL || *path == '\0') {
        if (has_interval || (sig != NULL && *sig != '\0'))
            fprintf(stderr, "hmap: HMAP_HEAPPROFILE_INTERVAL and _SIGNAL need HMAP_HEAPPROFILE=prefix\n");
        return;
    }
    size_t len = strlen(path);
    if (len >= 4096 || (dump_prefix = own_alloc(len + 1)) == NULL)
        return;
    memcpy(dump_prefix, path, len + 1);
    atexit(write_exit_profile);
    if (has_interval) {
        dump_interval = interval;
        atomic_store_explicit(&dump_next, interval, memory_order_relaxed);
        atomic_store_explicit(&dumps_armed, true, memory_order_relaxed);
    }
    if (sig != NULL && *sig != '\0')
        install_dump_signal(sig);
}

__attribute__((constructor)) static void profile_read_environment(void) {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    unsigned long long rate;
    if (env_number("HMAP_PROFILE_RATE", &rate))
        hmap_set_profile_rate((size_t)rate);
    read_dump_environment();
}
