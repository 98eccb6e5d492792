/* SPDX-License-Identifier: MIT */
/*
 * mem/alloc.c — the allocator hook, accounting by owner, mapped arrays, memstats (see mem.h).
 *
 * Mapped arrays: the pages arrive zeroed and are only backed by memory when first touched, so creating a
 * new array costs O(1) here and the zeroing is spread over the inserts that touch it (Go allocates and
 * zeroes the whole array inside the insert that starts a grow: a 170 ms insert at 10M entries). The
 * memory thread (memthread.c) pre-faults them and unmaps them when freed, so RSS follows the map down
 * without the writes paying for either. With a user hook, only the part of an array that must start
 * zeroed is cleared here (a table's tophash words and chain heads: 16 bytes a bucket, 1/9 of a uint64
 * map's array) — O(buckets), the price of not owning the memory; slots are written before they are read.
 *
 * Lazy arrays (mem_alloc_array_lazy): a mapped array that fills only as fast as another empties (a
 * resize's new array) is not pre-faulted, but for the parts its user asks for (mem_prefault), and counts as
 * held page by page, as its user first writes each page (mem_count_pages): the process holds only those;
 * untouched pages read as the kernel's zero page.
 *
 * Accounting: each owner keeps `bytes` (what it holds now); the process-wide counters behind
 * hmap_read_memstats are relaxed atomics, exact at any quiescent point. Every allocation and free is also
 * reported to the heap profiler (diag/profile.c), which samples them.
 */
#include "mem.h"

#include "../diag/profile.h"
#include "memthread.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Below this, an array comes from the allocator (and is zeroed here: under ~10 us); at or above it, from
 * mmap, whose page rounding then wastes under 1.6%. (At 64 KiB the rounding cost 4% and made a shrunk map
 * measurably more than twice a fresh one.) */

static _Atomic uint64_t live_bytes, total_bytes, peak_bytes, mallocs, frees;

/* live_bytes grows by size: the peak follows. */
static void memstats_note_live(size_t size) {
    uint64_t live = atomic_fetch_add_explicit(&live_bytes, size, memory_order_relaxed) + size;
    uint64_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak_explicit(
                              &peak_bytes, &peak, live, memory_order_relaxed, memory_order_relaxed)) {
    }
}

void memstats_note_alloc(size_t size) {
    atomic_fetch_add_explicit(&total_bytes, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
    memstats_note_live(size);
}

static void memstats_note_release(size_t size) {
    atomic_fetch_sub_explicit(&live_bytes, size, memory_order_relaxed);
}

static void memstats_note_free_count(void) { atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed); }

void memstats_note_free(size_t size) {
    memstats_note_release(size);
    memstats_note_free_count();
}

void hmap_read_memstats(hmap_memstats *ms) {
    if (!ms)
        return;
    memset(ms, 0, sizeof *ms);
    ms->live_bytes = atomic_load_explicit(&live_bytes, memory_order_relaxed);
    ms->total_bytes = atomic_load_explicit(&total_bytes, memory_order_relaxed);
    ms->peak_bytes = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    ms->mallocs = atomic_load_explicit(&mallocs, memory_order_relaxed);
    ms->frees = atomic_load_explicit(&frees, memory_order_relaxed);
}

void *mem_raw_alloc(const hmap_allocator *a, size_t size) {
    void *p = a->alloc(size, a->ctx);
    if (p) {
        memstats_note_alloc(size);
        profile_note_alloc(p, size, NULL);
    }
    return p;
}

void mem_raw_free(const hmap_allocator *a, void *p, size_t size) {
    if (!p)
        return;
    profile_note_free(p, size);
    memstats_note_free(size);
    a->free(p, size, a->ctx);
}

void *mem_alloc(mem_owner *o, size_t size) {
    void *p = o->src->alloc.alloc(size, o->src->alloc.ctx);
    if (!p)
        return NULL;
    o->bytes += size;
    memstats_note_alloc(size);
    profile_note_alloc(p, size, o->src->name);
    return p;
}

void mem_free(mem_owner *o, void *p, size_t size) {
    if (!p)
        return;
    o->bytes -= size;
    profile_note_free(p, size);
    memstats_note_free(size);
    o->src->alloc.free(p, size, o->src->alloc.ctx);
}

/* Threads making their first mapped array at once may both store it: the same value, atomically. */
size_t mem_page_size(void) {
    static _Atomic size_t cached;
    size_t size = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!size) {
        size = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&cached, size, memory_order_relaxed);
    }
    return size;
}

bool mem_array_maps(const mem_owner *o, size_t size) {
    return !o->src->custom_alloc && size >= MAP_THRESHOLD;
}

void *mem_alloc_array(mem_owner *o, size_t *size_io, size_t zero_prefix, bool populate, bool *mapped) {
    *mapped = false;
    size_t size = *size_io;
    if (mem_array_maps(o, size)) {
        size = (size + mem_page_size() - 1) & ~(mem_page_size() - 1);
        *size_io = size;
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        *mapped = true;
        if (populate)
            populate_in_background(p, size);
        o->bytes += size;
        memstats_note_alloc(size);
        profile_note_alloc(p, size, o->src->name);
        return p;
    }
    void *p = mem_alloc(o, size);
    if (p)
        memset(p, 0, zero_prefix);
    return p;
}

void *mem_alloc_array_lazy(mem_owner *o, size_t *size_io, size_t zero_prefix, bool *counted_whole,
                           bool *mapped) {
    *counted_whole = true;
    if (!mem_array_maps(o, *size_io))
        return mem_alloc_array(o, size_io, zero_prefix, false, mapped);
    *mapped = false;
    size_t size = (*size_io + mem_page_size() - 1) & ~(mem_page_size() - 1);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    *size_io = size;
    *mapped = true;
    *counted_whole = false;
    atomic_fetch_add_explicit(&total_bytes, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed); /* live only as written: mem_count_pages */
    profile_note_alloc(p, size, o->src->name);
    return p;
}

void mem_count_pages(mem_owner *o, size_t bytes) {
    o->bytes += bytes;
    memstats_note_live(bytes);
}

void mem_free_array(mem_owner *o, void *p, size_t size, size_t released, bool mapped) {
    if (!mapped) {
        mem_free(o, p, size);
        return;
    }
    o->bytes -= size - released;
    profile_note_free(p, size);
    memstats_note_release(size - released);
    memstats_note_free_count();
    unmap_in_background(p, size);
}

void mem_prefault(void *p, size_t size) {
    uintptr_t page = mem_page_size(), start = (uintptr_t)p & ~(page - 1);
    uintptr_t end = ((uintptr_t)p + size + page - 1) & ~(page - 1);
    if (size)
        populate_in_background((void *)start, end - start);
}

size_t mem_release_array_pages(mem_owner *o, void *p, size_t *from, size_t to, bool mapped) {
    size_t page = mem_page_size();
    size_t start = (*from + page - 1) & ~(page - 1), end = to & ~(page - 1);
    if (!mapped || end <= start)
        return 0;
    if (madvise((unsigned char *)p + start, end - start, MADV_DONTNEED) != 0)
        return 0; /* the pages stay: still correct, only not given back */
    *from = end;
    o->bytes -= end - start;
    memstats_note_release(end - start);
    return end - start;
}

/* The built-in allocator hook. */
static void *default_alloc(size_t size, void *ctx) {
    (void)ctx;
    return malloc(size);
}

static void default_free(void *p, size_t size, void *ctx) {
    (void)ctx;
    (void)size;
    free(p);
}

const hmap_allocator default_allocator = {default_alloc, default_free, NULL};

bool mem_probe_array(mem_owner *o, size_t size) {
    if (!o->src->custom_alloc && size >= MAP_THRESHOLD) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return false;
        munmap(p, size); /* never touched: nothing to give back but the address range */
        return true;
    }
    /* Through the hook, so memstats see it as the hook does: one allocation and one free. */
    void *p = o->src->alloc.alloc(size, o->src->alloc.ctx);
    if (!p)
        return false;
    memstats_note_alloc(size);
    memstats_note_free(size);
    o->src->alloc.free(p, size, o->src->alloc.ctx);
    return true;
}

int hmap_release_os_memory(void) {
    memthread_drain();
    malloc_trim(0);
    return 0;
}
