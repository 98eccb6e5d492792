/*
 * alloc.c — every byte the library takes goes through here.
 *
 * Two kinds of memory:
 *  - small objects (the map itself, its name, overflow buckets allocated one by one) come from the
 *    allocator hook (malloc/free when none is given);
 *  - bucket arrays. With the built-in allocator, arrays of MAP_THRESHOLD bytes or more are mapped straight
 *    from the OS: the pages arrive zeroed and are only backed by memory when first touched, so creating a
 *    new array costs O(1) here and the zeroing is spread over the inserts that touch it (Go allocates and
 *    zeroes the whole array inside the insert that starts a grow: a 170 ms insert at 10M entries). Unmapping
 *    gives the pages back to the OS, so RSS follows the map down. With a custom allocator, arrays come from
 *    the hook and only the part that must start zeroed is cleared here (a table's tophash words and chain
 *    heads: 16 bytes a bucket, 1/9 of a uint64 map's array) — O(buckets), the price of not owning the
 *    memory; slots are written before they are read.
 *
 * Accounting: each map keeps `bytes` (what it holds now); the process-wide counters behind
 * hmap_read_memstats are relaxed atomics, exact at any quiescent point. Every allocation and free is also
 * reported to the heap profiler (profile.c), which samples them.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Below this, an array comes from the allocator (and is zeroed here: under ~10 us); at or above it, from
 * mmap, whose page rounding then wastes under 1.6%. (At 64 KiB the rounding cost 4% and made a shrunk map
 * measurably more than twice a fresh one.) */
#define MAP_THRESHOLD ((size_t)256 << 10)

static _Atomic uint64_t live_bytes, total_bytes, peak_bytes, mallocs, frees;

void memstats_note_alloc(size_t size) {
    uint64_t live = atomic_fetch_add_explicit(&live_bytes, size, memory_order_relaxed) + size;
    atomic_fetch_add_explicit(&total_bytes, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
    uint64_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (live > peak &&
           !atomic_compare_exchange_weak_explicit(&peak_bytes, &peak, live, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
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

void *mem_alloc(hmap *m, size_t size) {
    void *p = m->alloc.alloc(size, m->alloc.ctx);
    if (!p)
        return NULL;
    m->bytes += size;
    memstats_note_alloc(size);
    profile_note_alloc(p, size, m->name);
    return p;
}

void mem_free(hmap *m, void *p, size_t size) {
    if (!p)
        return;
    m->bytes -= size;
    profile_note_free(p, size);
    memstats_note_free(size);
    m->alloc.free(p, size, m->alloc.ctx);
}

void *mem_alloc_array(hmap *m, size_t *size_io, size_t zero_prefix, bool *mapped) {
    *mapped = false;
    size_t size = *size_io;
    if (!m->custom_alloc && size >= MAP_THRESHOLD) {
        size = (size + page_size() - 1) & ~(page_size() - 1);
        *size_io = size;
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        *mapped = true;
        m->bytes += size;
        memstats_note_alloc(size);
        profile_note_alloc(p, size, m->name);
        return p;
    }
    void *p = mem_alloc(m, size);
    if (p)
        memset(p, 0, zero_prefix);
    return p;
}

void mem_free_array(hmap *m, void *p, size_t size, bool mapped) {
    if (!mapped) {
        mem_free(m, p, size);
        return;
    }
    mem_retire_array(m, p, size);
    mem_unmap_part(m, p, size);
}

void mem_retire_array(hmap *m, void *p, size_t size) {
    (void)m;
    profile_note_free(p, size);
    memstats_note_free_count();
}

void mem_unmap_part(hmap *m, void *p, size_t size) {
    munmap(p, size);
    m->bytes -= size;
    memstats_note_release(size);
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

size_t page_size(void) {
    static size_t cached;
    if (!cached)
        cached = (size_t)sysconf(_SC_PAGESIZE);
    return cached;
}
