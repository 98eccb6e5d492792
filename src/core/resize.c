/* SPDX-License-Identifier: MIT */
/*
 * resize.c — growth, same-size growth, shrinking: all incremental, none ever an O(n) pause.
 *
 * A resize allocates the new array (O(1): large arrays are fresh, untouched OS pages, see alloc.c), makes
 * it `cur`, and keeps the previous one as `old`. From then on every write moves `evacuate_pace` old
 * buckets in index order (the `nevacuate` mark, as Go), until every old bucket is moved; then the old array
 * is freed (a large one is unmapped by a background thread, alloc.c). Reads and writes look in the old
 * bucket when it is not evacuated yet, so an entry is always in exactly one place. A shrink's or a
 * same-size growth's write first moves the old bucket its key maps to (several old buckets share its new
 * one); a growth's write does not, it writes in that old bucket: so a growth writes its new array only
 * behind the front, in order (see "Memory during a resize"). Only one resize runs at a time.
 *
 *   kind        when (checked by writes)                       new size        old bucket i goes to
 *   grow        an insert would exceed 6.5 entries/bucket      2^(B+1)         2i or 2i+1 (next hash bit)
 *   same-size   overflow buckets >= 2^B (Go: >= 2^min(B,15))   2^B             i (tombstones dropped)
 *   shrink      a delete leaves < shrink_line(B) (core.h)      about half full i >> (B - B')
 *
 * Pacing. Every write moves PACE = 1024 old buckets in index order, after its own in a shrink (old i to new
 * 2i and 2i+1 in a growth, to i >> (B - B') in a shrink: both arrays are walked in order). Go moves 1 per
 * insert, so its growth runs during ~15% of all inserts, each paying the random-access move of its own
 * old bucket and page faults in a new array not yet pre-faulted: that was the latency tail here too (p99
 * 3x and p99.9 5x abseil's while growing to 10Mi, whose rehash is one pause). At 1024 a doubling is done
 * within 2^B / 1025 writes, under 0.05% of a fill's inserts, so p99 and p99.9 are those of plain inserts,
 * and the total is the same work done in order. A write that moves 1024 buckets of a growth was measured
 * at 0.15-0.5 ms (the fastest of several runs, on a 2-core VM), most of it page faults in the new array:
 * that is now the p99.99 of a fill. No write moves more than 1025 (but see the shrink of a small array
 * below).
 *
 * Shrinking. A fresh map of c entries has the fewest buckets that hold c at 6.5 a bucket, so it halves
 * where c falls below a quarter of a 2^B array's limit (1.625 x 2^B). A shrink that started only there
 * would hold both arrays, 6x a fresh map of the survivors, until the writes that follow finish it — a
 * program that stops deleting just after that line keeps them. So the shrink line is a 64th of that
 * quarter higher (shrink_line): a shrink needs at most 2^B / 1025 writes, far fewer than the 2^B / 39
 * deletes left before the quarter, so it is over before a fresh map would halve; and the write that
 * starts it does its first 1024 buckets, which give back more old pages than they fill new ones. A shrink
 * whose new array comes from the allocator (below 256 KiB: not lazy, see below) is done within the write
 * that starts it (up to 2048 buckets of 8-byte keys and values). Wherever the deletes stop, the map holds
 * at most what an unshrunk array at that count holds: 2x a fresh map. (Deleting 99% of N u64 entries, N
 * every 1.3% from 1,000 to 3.5M: at most 2.01x, which is 2x and a mapped array's rounding to whole pages;
 * it was 5.1x at N = 665,000 when the line was the quarter and a shrink moved 64 buckets per write, and
 * 3.07x at N = 2,115 while an array's first overflow slab held eight buckets: see add_overflow_slab.)
 *
 * Memory during a resize. The new array of every resize that moves entries is lazy (see "lazy arrays"
 * below): it counts, and is backed by, only the pages written so far, while the old one gives back its
 * evacuated pages (release_evacuated). Deleting 99% of 1M and 10M u64 entries, bytes held and RSS never
 * rose during a shrink (1.00x the larger of before and after); counting the new array whole, bytes held
 * rose 1.47x. A growth's new array fills from the front, as the old one empties; only what any insert may
 * touch at once (its tophash words, chain heads and spare overflow buckets, an eighth of it) is counted
 * and pre-faulted at the start (hold_growth_index). Growing to 10M u64 entries (the lab's grow section,
 * hmap_get_stats read after every insert), bytes held stayed within 1.12x the larger of before and after
 * each growth (1.17x
 * while the old array kept its tophash words and chain heads to the end; 1.59x pre-faulting and counting
 * the new array whole; test_shrink.c holds a growth to 1.15x). What remains is the old array's overflow
 * buckets, held until it goes (its chains' overflow buckets lie anywhere): about a tenth of the new
 * array, as Go's 20.9% overflow buckets at load 6.5 predicts.
 *
 * Hysteresis. After a shrink the map is at most about half full (65/128 of the limit), and the next
 * shrink waits until the count falls to its shrink line: between two resizes the count must change by a
 * factor of 128/65 (nearly 2) at least, so N deletes followed by N inserts, or churn around any size,
 * cost O(1) amortized evacuation work per operation and never thrash.
 *
 * Evacuation of one old bucket never fails halfway: it first makes room in the destination chains (the
 * only allocation), then moves; so -ENOMEM leaves the map exactly as it was. Entries keep their relative
 * order: they are appended after the last used slot of the destination chain. Open iterations are told
 * where each chain position went (iter.c relies on it for keys with equal hashes).
 */
#include "core.h"

#include <errno.h>
#include <string.h>

#define PACE 1024

/* Each B's load limit and shrink line, for the tests every insert and every delete makes (over_load in
 * map.c, shrink_may_be_due); B = 0 never shrinks. */
#define SL4(L, B) L(B), L(B + 1), L(B + 2), L(B + 3)
#define SL16(L, B) SL4(L, B), SL4(L, B + 4), SL4(L, B + 8), SL4(L, B + 12)
#define FROM_B_1(L) SL16(L, 1), SL16(L, 17), SL16(L, 33)
const size_t load_limits[MAX_B + 1] = {LOAD_LIMIT(0), FROM_B_1(LOAD_LIMIT)};
const size_t shrink_lines[MAX_B + 1] = {0, FROM_B_1(SHRINK_LINE)};
_Static_assert(MAX_B == 48, "the tables have an entry for each B up to MAX_B");

unsigned B_for_count(size_t count) {
    unsigned B = 0;
    while (B <= MAX_B && count > load_limit(B))
        B++;
    return B; /* MAX_B + 1 when no array can hold count */
}

/* ---------------------------------------------------------------- arrays */

/* The bytes of a 2^B array (tophash words, chain heads, slots, spare overflow buckets); false when they do
 * not fit in a size_t. */
static bool table_bytes(const hmap *m, unsigned B, size_t *slots_off_out, size_t *slots_bytes_out,
                        size_t *total_out) {
    if (B > MAX_B)
        return false;
    size_t nb = (size_t)1 << B, nspare = spare_buckets(B);
    /* The slots start on a cache line (from B = 2 on, the tophash words and chain heads fill whole lines);
     * the one or two buckets of B = 0 and 1 follow their heads directly: no padding line in a small map. */
    size_t slots_off = 2 * sizeof(uint64_t) * nb;
    _Static_assert(2 * sizeof(uint64_t) * 4 % 64 == 0, "from B = 2 on the slots start on a line");
    size_t slots_bytes, spare_bytes, total;
    if (__builtin_mul_overflow(nb, m->bucket_bytes, &slots_bytes) ||
        __builtin_mul_overflow(nspare, overflow_bucket_bytes(m), &spare_bytes) ||
        __builtin_add_overflow(slots_off, slots_bytes, &total) ||
        __builtin_add_overflow(total, spare_bytes, &total))
        return false;
    *slots_off_out = slots_off;
    *slots_bytes_out = slots_bytes;
    *total_out = total;
    return true;
}

/* ---- lazy arrays: counted as held page by page, as they are first written ----
 *
 * A resize's new array is mapped but not pre-faulted when it has entries to move: it fills only as fast
 * as the old one empties, and its pages are backed by memory only when first written. Counting it whole from
 * the start would say the map holds 1.5x what it does; so each page is counted the first time resize.c
 * lets anything write there: the destination chains of an evacuation, and the bucket chain of the key a
 * write is about to insert (resize_work runs before every insert and delete touches cur; deletes only write
 * where entries already are). Once the resize ends the array is counted whole: from then on inserts write
 * anywhere (and a fresh map's arrays are counted whole too). Reads of a page never written see the
 * kernel's shared zero page, which backs nothing. (This assumes 4 KiB faults: with transparent huge pages
 * set to "always", one write may back 2 MiB.) */

static size_t page_words(const table_ext *x) { return (x->mem_bytes / mem_page_size() + 63) / 64; }

/* Counts page p of a lazy array (side record x) if it is not counted yet: a bit test when it is. */
static inline __attribute__((always_inline)) void count_page(hmap *m, table_ext *x, size_t p) {
    uint64_t bit = (uint64_t)1 << (p % 64);
    if (!(x->counted[p / 64] & bit)) {
        x->counted[p / 64] |= bit;
        x->uncounted -= (size_t)1 << x->page_shift;
        mem_count_pages(&m->mem, (size_t)1 << x->page_shift);
    }
}

/* Counts the pages of [off, off + len) in the array not counted yet. */
static inline __attribute__((always_inline)) void count_range(hmap *m, table_ext *x, size_t off, size_t len) {
    for (size_t p = off >> x->page_shift, last = (off + len - 1) >> x->page_shift; p <= last; p++)
        count_page(m, x, p);
}

static void count_whole(hmap *m, table *t) {
    if (!t || !t->lazy)
        return;
    table_ext *x = t->ext;
    mem_count_pages(&m->mem, x->uncounted);
    x->uncounted = 0;
    mem_free(&m->mem, x->counted, page_words(x) * sizeof *x->counted);
    x->counted = NULL;
    t->lazy = false;
}

/* Where p lies in t's allocation (which starts at the tophash words). */
static inline size_t array_offset(const table *t, const void *p) {
    return (size_t)((const unsigned char *)p - (const unsigned char *)t->tophash);
}

/* Chain c of a lazy array may be written: its tophash word and chain head (aligned words: one page each)
 * and its slots. (Out of line: inlined into evacuation, which only a lazy array's needs, it took registers
 * from every evacuation.) */
static __attribute__((noinline)) void count_chain(hmap *m, table *t, size_t c) {
    table_ext *x = t->ext;
    count_page(m, x, array_offset(t, &t->tophash[c]) >> x->page_shift);
    count_page(m, x, array_offset(t, &t->overflow[c]) >> x->page_shift);
    count_range(m, x, array_offset(t, t->slots) + c * m->bucket_bytes, m->bucket_bytes);
}

/* Overflow buckets [from, to) of the spare area at `spare`, when that area is the array's own preallocated
 * one (a slab's is counted whole). chain_extend hands spares out in order. */
static void count_spares(hmap *m, table *t, const unsigned char *spare, size_t from, size_t to) {
    table_ext *x = t->ext;
    const unsigned char *base = (const unsigned char *)t->tophash;
    if (spare < base || spare >= base + x->mem_bytes || from >= to)
        return;
    size_t per = overflow_bucket_bytes(m);
    count_range(m, x, array_offset(t, spare) + from * per, (to - from) * per);
}

/* The spares handed out since (spare, used) was read, and the next one to go. */
static void count_spares_since(hmap *m, table *t, const unsigned char *spare, size_t used, size_t cap) {
    if (spare != t->ext->spare) /* a slab was added: the array's spares are all used */
        count_spares(m, t, spare, used, cap);
    else
        count_spares(m, t, spare, used, t->ext->spare_used < cap ? t->ext->spare_used + 1 : cap);
}

/* A write is about to look for (and maybe insert) a key hashing to `hash`: in a lazy cur, unless its old
 * bucket, not evacuated yet, is where it lives. */
static void count_write_target(hmap *m, uint64_t hash) {
    table *t = m->cur;
    if (!t->lazy || (m->old && !old_bucket_evacuated(m, bucket_index(hash, m->old->B))))
        return;
    count_chain(m, t, bucket_index(hash, t->B));
    count_spares_since(m, t, t->ext->spare, t->ext->spare_used, t->ext->spare_cap);
}

/* The bytes of t's allocation: a mapped one's as the OS rounded them, else table_bytes' own. */
static size_t array_bytes(const hmap *m, const table *t) {
    if (t->mapped)
        return t->ext->mem_bytes;
    size_t slots_off, slots_bytes, total = 0;
    table_bytes(m, t->B, &slots_off, &slots_bytes, &total); /* (true: it fitted when t was made) */
    return total;
}

/* What t holds now, as counted in the map's bytes: its header, side record and slabs, its allocation less
 * the pages given back or not counted yet, and a lazy array's page bits. */
static size_t table_held_bytes(const hmap *m, const table *t) {
    size_t held = sizeof *t + array_bytes(m, t);
    const table_ext *x = t->ext;
    if (x) {
        held += sizeof *x + x->slab_bytes - x->released_bytes - x->uncounted;
        if (x->counted)
            held += page_words(x) * sizeof *x->counted;
    }
    return held;
}

static size_t release_step(const table_ext *x);

/* A mapped array's side record: its rounded size, where its pages go back from, and for a lazy one
 * (whole: false) the bits of its pages counted. false on ENOMEM. */
static bool note_mapped(hmap *m, table *t, size_t total, size_t slots_off, bool whole) {
    table_ext *x = table_ext_get(m, t);
    if (!x)
        return false;
    x->mem_bytes = total;
    x->released_from = slots_off;
    x->tophash_released = 0;
    x->heads_released = t->nbuckets * sizeof *t->tophash;
    x->release_at = slots_off + release_step(x);
    if (whole)
        return true;
    x->uncounted = total;
    x->page_shift = (unsigned)__builtin_ctzll(mem_page_size());
    size_t words = page_words(x);
    x->counted = mem_alloc(&m->mem, words * sizeof *x->counted);
    if (x->counted) {
        memset(x->counted, 0, words * sizeof *x->counted);
        t->lazy = true;
    } else { /* no map of pages: counted whole */
        mem_count_pages(&m->mem, total);
        x->uncounted = 0;
    }
    return true;
}

/* An array that comes from the allocator (not mapped) carries its header at its end, in the same
 * allocation: a small map makes one allocation for its array, not two. (At the end, not the start: the
 * array keeps the allocator's alignment, and the header follows words and buckets of whole 8 bytes.) */
_Static_assert(_Alignof(table) <= 8, "a header after the array's 8-byte multiple of bytes is aligned");

/* Header t describes the 2^B-bucket array at base: tophash words, chain heads, then slots at slots_off. */
static void place_array(table *t, unsigned B, unsigned char *base, size_t slots_off) {
    size_t nb = (size_t)1 << B;
    t->B = (uint8_t)B;
    t->nbuckets = nb;
    t->tophash = (uint64_t *)base;
    t->overflow = (overflow_bucket **)(base + sizeof(uint64_t) * nb);
    t->slots = base + slots_off;
}

/* The bytes allocated for an array of `total` bytes: with its header, unless it is mapped. */
static size_t allocation_bytes(const hmap *m, size_t total) {
    return mem_array_maps(&m->mem, total) ? total : total + sizeof(table);
}

static table *table_new_with_header(hmap *m, unsigned B, size_t slots_off, size_t total) {
    if (total > SIZE_MAX - sizeof(table))
        return NULL;
    unsigned char *base = mem_alloc(&m->mem, allocation_bytes(m, total));
    if (!base)
        return NULL;
    memset(base, 0, slots_off); /* tophash words and chain heads */
    table *t = (table *)(base + total);
    memset(t, 0, sizeof *t);
    place_array(t, B, base, slots_off);
    t->embedded = true;
    return t;
}

table *table_new(hmap *m, unsigned B, bool populate) {
    size_t slots_off, slots_bytes, total;
    if (!table_bytes(m, B, &slots_off, &slots_bytes, &total))
        return NULL;
    if (!mem_array_maps(&m->mem, total))
        return table_new_with_header(m, B, slots_off, total);
    table *t = mem_alloc(&m->mem, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    bool whole = true, mapped; /* tophash, chain heads zeroed */
    unsigned char *base = populate ? mem_alloc_array(&m->mem, &total, slots_off, true, &mapped)
                                   : mem_alloc_array_lazy(&m->mem, &total, slots_off, &whole, &mapped);
    if (!base) {
        mem_free(&m->mem, t, sizeof *t);
        return NULL;
    }
    place_array(t, B, base, slots_off);
    t->mapped = mapped;
    if (mapped && !note_mapped(m, t, total, slots_off, whole)) {
        mem_free_array(&m->mem, base, total, whole ? 0 : total, mapped);
        mem_free(&m->mem, t, sizeof *t);
        return NULL;
    }
    return t;
}

static void drop_table_entries(hmap *m, table *t) {
    if (!has_key_drop(m) && !has_val_drop(m))
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        bucket_ref b = table_bucket(m, t, i);
        unsigned s;
        for_each_chain_bucket(m, b) {
            for_each_slot(s, live_slots(*b.tophash)) drop_entry(m, slot_key(m, &b, s), slot_val(m, &b, s));
        }
    }
}

void table_free(hmap *m, table *t, bool drop_entries) {
    if (drop_entries)
        drop_table_entries(m, t);
    size_t bytes = array_bytes(m, t), released = 0;
    table_ext *x = t->ext;
    if (x) {
        free_overflow(m, t);
        if (x->counted)
            mem_free(&m->mem, x->counted, page_words(x) * sizeof *x->counted);
        released = x->released_bytes + x->uncounted;
        mem_free(&m->mem, x, sizeof *x);
    }
    bool embedded = t->embedded; /* (then the header goes with the array) */
    mem_free_array(&m->mem, t->tophash, embedded ? allocation_bytes(m, bytes) : bytes, released, t->mapped);
    if (!embedded)
        mem_free(&m->mem, t, sizeof *t);
    note_moved(m); /* iterator caches may point into it */
}

/* Empties t in place, keeping its array (and its side record): entries dropped, overflow slabs freed, every
 * bucket empty again. O(buckets). */
void table_reset(hmap *m, table *t) {
    count_whole(m, t); /* the clearing below writes every chain head (callers end any resize first, which
                          counts cur whole already) */
    drop_table_entries(m, t);
    free_overflow(m, t);
    memset(t->tophash, 0, t->nbuckets * sizeof *t->tophash);
    memset(t->overflow, 0, t->nbuckets * sizeof *t->overflow);
    t->noverflow = t->tombstones = 0;
    note_moved(m);
}

/* A write may have been given pointers into this array (a key from an iteration, a value from hmap_get):
 * it stays allocated, unchanged, until the write returns. */
void table_retire(hmap *m, table *t) {
    t->next_retired = m->retired;
    m->retired = t;
    note_moved(m);
}

void free_retired_tables(hmap *m) {
    while (m->retired) {
        table *t = m->retired;
        m->retired = t->next_retired;
        table_free(m, t, false);
    }
}

/* ---------------------------------------------------------------- evacuation */

/* Linear position of the first EMPTY_REST slot of chain i in t: entries appended from there keep order.
 * Also reports the chain's last bucket and length, for extending it. */
static size_t chain_fill(const hmap *m, const table *t, size_t i, bucket_ref *last, size_t *nbuckets) {
    bucket_ref b = table_bucket(m, t, i);
    size_t k = 0, fill = SIZE_MAX;
    for_each_chain_bucket(m, b) {
        uint64_t rest = zero_bytes(*b.tophash);
        if (fill == SIZE_MAX && rest)
            fill = k * SLOTS_PER_BUCKET + first_slot(rest);
        k++;
    }
    *last = b;
    *nbuckets = k;
    return fill == SIZE_MAX ? k * SLOTS_PER_BUCKET : fill;
}

typedef struct destination {
    size_t chain;    /* bucket index in cur */
    size_t incoming; /* entries that will move there */
    size_t fill;     /* next linear position to write */
    bucket_ref at;   /* the bucket holding position fill */
} destination;

/* The common case, without walking: the destination chain is one bucket with room for the incoming entries
 * after its last one (growth always finds its destinations empty: a write touches cur only where the old
 * bucket is evacuated already). */
static inline __attribute__((always_inline)) bool single_bucket_destination(const hmap *m, destination *d) {
    bucket_ref head = table_bucket(m, m->cur, d->chain);
    if (*head.next)
        return false;
    uint64_t rest = zero_bytes(*head.tophash);
    size_t fill = rest ? first_slot(rest) : SLOTS_PER_BUCKET;
    if (fill + d->incoming > SLOTS_PER_BUCKET)
        return false;
    d->fill = fill;
    d->at = head;
    return true;
}

/* Makes room for the incoming entries at the end of each destination chain: the only allocation. */
static inline __attribute__((always_inline)) int prepare_destinations(hmap *m, destination *d, size_t ndest) {
    for (size_t k = 0; k < ndest; k++) {
        if (single_bucket_destination(m, &d[k]))
            continue;
        bucket_ref last;
        size_t nbuckets;
        d[k].fill = chain_fill(m, m->cur, d[k].chain, &last, &nbuckets);
        size_t capacity = nbuckets * SLOTS_PER_BUCKET;
        while (d[k].fill + d[k].incoming > capacity) {
            if (!chain_extend(m, m->cur, &last))
                return -ENOMEM; /* appended empty buckets are harmless: the map is unchanged */
            capacity += SLOTS_PER_BUCKET;
        }
        d[k].at = chain_at(m, m->cur, d[k].chain, d[k].fill);
    }
    return 0;
}

/* (The helpers below take the key kind as a constant: evacuate() is written once and inlined for each kind,
 * as the lookups are, so that the hash and the copy sizes are the kind's own.) */

/* Where a slot's key item and value sit, read from the map once per evacuated chain: the moves below
 * store through byte pointers, which may alias the map, so fields read from it inside the loop would be
 * read again after every copy. A (key, value) pair laid out without a gap is moved as one copy. */
typedef struct slot_layout {
    size_t key_stride, val_stride, vals_offset;
    size_t item, val; /* bytes of a key item and of a value (0: a set) */
    size_t pair;      /* bytes of a (key, value) pair moved at once, or 0 when they are apart */
    uint64_t seed;    /* the map's, and the destination array's B: what an entry's destination depends on */
    unsigned cur_B;
} slot_layout;

/* Does the map hold its slots as (key item, 8-byte value) pairs of a kind whose item has a constant size
 * (an 8-byte key; a C string's stored hash and pointer)? Then the evacuation code is inlined once more
 * with that layout as constants (`fixed`): its copies and strides need no register and no test. With the
 * hash's inputs held in the layout too (growth_dest), callgrind counts 6-7% fewer instructions in all
 * for filling 1Ki and 1Mi u64 maps, for emptying 1Ki ones, and for filling, reading and emptying 1Ki maps
 * of string keys. The map's own fields decide: a stride of the item and the value together is
 * set_layout's pair layout. */
static inline __attribute__((always_inline)) bool fixed_pairs(const hmap *m, key_kind kind) {
    size_t item = kind == KEYS_U64 ? 8 : 16;
    return kind != KEYS_GENERIC && m->val_size == 8 && m->key_stride == item + 8;
}

static inline __attribute__((always_inline)) slot_layout layout_of(const hmap *m, key_kind kind, bool fixed) {
    if (fixed) {
        size_t item = kind == KEYS_U64 ? 8 : 16;
        slot_layout P = {.key_stride = item + 8,
                         .val_stride = item + 8,
                         .vals_offset = item,
                         .item = item,
                         .val = 8,
                         .pair = item + 8,
                         .seed = m->seed,
                         .cur_B = m->cur->B};
        return P;
    }
    slot_layout L = {
        .key_stride = m->key_stride,
        .val_stride = m->val_stride,
        .vals_offset = m->vals_offset,
        .item = kind == KEYS_U64    ? 8
                : kind == KEYS_CSTR ? 16
                                    : key_item_size(m),
        .val = m->val_size,
        .seed = m->seed,
        .cur_B = m->cur->B,
    };
    if (L.val && L.vals_offset == L.item && L.key_stride == L.item + L.val && L.val_stride == L.key_stride)
        L.pair = L.key_stride;
    return L;
}

/* Which of a growth's two destinations (X: 0, Y: 1) the entry in slot s goes to: the next hash bit below
 * the old index. The hash comes from L where it can (an 8-byte key's seed, a stored hash's place), so that
 * the loop does not read the map's fields again after each copy. */
static inline __attribute__((always_inline)) size_t
growth_dest(const hmap *m, const slot_layout *L, const bucket_ref *b, unsigned s, key_kind kind) {
    const unsigned char *item = b->slots + s * L->key_stride;
    uint64_t h;
    if (kind == KEYS_U64) {
        memcpy(&h, item, 8);
        h = hash_u64_inline(h, L->seed);
    } else if (stores_hashes(m, kind)) {
        memcpy(&h, item, 8);
    } else {
        h = slot_hash(m, b, s, kind);
    }
    return bucket_index(h, L->cur_B) & 1;
}

/* Destinations of a chain's first 64 positions, one bit each (1: Y), so that growth hashes each key once;
 * positions beyond (long collision chains) are hashed again when moved. */
typedef struct dest_bits {
    uint64_t y;
} dest_bits;

static inline __attribute__((always_inline)) size_t dest_at(const hmap *m, const slot_layout *L,
                                                            const bucket_ref *b, unsigned s, size_t pos,
                                                            size_t ndest, const dest_bits *bits,
                                                            key_kind kind) {
    if (ndest == 1)
        return 0;
    return pos < 64 ? (bits->y >> pos) & 1 : growth_dest(m, L, b, s, kind);
}

static inline __attribute__((always_inline)) void copy_bytes(unsigned char *dst, const unsigned char *src,
                                                             size_t n) {
    if (n == 16)
        __builtin_memcpy(dst, src, 16);
    else if (n == 8)
        __builtin_memcpy(dst, src, 8);
    else
        memcpy(dst, src, n);
}

static inline __attribute__((always_inline)) void
move_entry(hmap *m, const slot_layout *L, const bucket_ref *from, unsigned s, destination *d) {
    unsigned ts = (unsigned)(d->fill % SLOTS_PER_BUCKET);
    unsigned char *to = d->at.slots, *at = from->slots;
    if (L->pair) {
        copy_bytes(to + ts * L->pair, at + s * L->pair, L->pair);
    } else {
        copy_bytes(to + ts * L->key_stride, at + s * L->key_stride, L->item);
        if (L->val)
            copy_bytes(to + L->vals_offset + ts * L->val_stride, at + L->vals_offset + s * L->val_stride,
                       L->val);
    }
    set_slot_top(&d->at, ts, slot_top(from, s));
    if (++d->fill % SLOTS_PER_BUCKET == 0)
        bucket_ref_next(m, &d->at); /* room was made beforehand, except after the very last entry */
}

static void complete_resize(hmap *m);

/* A mapped old array gives its pages back as evacuation passes them, a 64th of the array at a time (at
 * most 256 KiB, at least a page: some 64 madvise calls for arrays up to 16 MiB, each under 2% of what both
 * arrays hold): the buckets below nevacuate are never read again (old_bucket_evacuated() knows them by
 * their index, locate() sends every lookup for them to cur, and iterators re-read after a move), so RSS
 * falls during a resize instead of holding both arrays whole until the end. Their slots go, and their
 * tophash words and chain heads too (a ninth of the array). Only the overflow buckets stay until the
 * array goes: a chain's lie anywhere in the slabs. The release waits for the end of the write
 * (end_write), as a freed array does: the write's arguments may point into those slots. (The arrays of an
 * optimistic hmap_sync map, whose readers peek at tophash words without a lock, come from its allocator
 * hook: they are never mapped, so nothing of them is given back early.) */
static size_t release_step(const table_ext *x) {
    size_t step = x->mem_bytes / 64, most = (size_t)256 << 10;
    return step < mem_page_size() ? mem_page_size() : step > most ? most : step;
}

static size_t evacuated_slots_end(const hmap *m, const table *o) {
    return array_offset(o, o->slots) + m->cold->nevacuate * m->bucket_bytes;
}

void release_evacuated(hmap *m) {
    m->release_due = false;
    table *o = m->old;
    if (!o || !o->mapped)
        return;
    table_ext *x = o->ext;
    size_t words = o->nbuckets * sizeof *o->tophash, passed = m->cold->nevacuate * sizeof *o->tophash;
    x->released_bytes +=
        mem_release_array_pages(&m->mem, o->tophash, &x->released_from, evacuated_slots_end(m, o), true);
    x->released_bytes += mem_release_array_pages(&m->mem, o->tophash, &x->tophash_released, passed, true);
    x->released_bytes +=
        mem_release_array_pages(&m->mem, o->tophash, &x->heads_released, words + passed, true);
    x->release_at = x->released_from + release_step(x);
}

/* Old bucket chain b has been evacuated: its marks are written. The counters, and the end of the resize
 * when it was the last. */
static inline void chain_evacuated(hmap *m, table *o) {
    map_cold *c = m->cold;
    note_moved(m);
    c->old_evacuated++;
    c->buckets_moved++;
    c->moved_this_op++;
    while (c->nevacuate < o->nbuckets && table_bucket_evacuated(o, c->nevacuate))
        c->nevacuate++;
    if (o->mapped && evacuated_slots_end(m, o) >= o->ext->release_at)
        m->release_due = true;
    if (c->old_evacuated == o->nbuckets)
        complete_resize(m);
}

/* The common case of every resize: each destination is one bucket with room after its last entry for all
 * the entries of old chain oi that go there (growth finds its two destinations empty: a write touches cur
 * only where the old bucket is evacuated already; a shrink or a same-size growth appends to a bucket that
 * earlier old buckets began to fill). The entries go in order, each destination's tophash word is built in
 * a register and stored once, and nothing is walked or allocated. A chain of more than one bucket (a fifth
 * of a growth's, which split 9 to 16 entries between X and Y) first sends each entry to X or Y, hashing
 * each key once, to know that they fit; a growth's single bucket asks for empty destinations (as they
 * always are) and is hashed as it moves. False (nothing done) when the room is not there. */
static inline __attribute__((always_inline)) bool evacuate_to_buckets(hmap *m, table *o, bucket_ref head,
                                                                      size_t first, size_t ndest,
                                                                      key_kind kind, bool fixed) {
    table *t = m->cur;
    slot_layout L = layout_of(m, kind, fixed);
    bool chain = *head.next != NULL;
    unsigned fill[2] = {0, 0}, incoming[2] = {0, 0}, s;
    uint64_t y = 0; /* a chain's entries sent to Y: bit 8 * (its bucket in the chain) + slot */
    bucket_ref b = head;
    if (!chain && ndest == 2) {
        incoming[0] = incoming[1] = SLOTS_PER_BUCKET; /* not counted: it fits empty destinations */
    } else {
        unsigned pos = 0;
        for_each_chain_bucket(m, b) {
            if (pos == 64)
                return false; /* a long chain: the whole way */
            uint64_t live = live_slots(*b.tophash);
            if (ndest == 1)
                incoming[0] += count_bytes(live);
            for_each_slot(s, ndest == 2 ? live : 0) {
                unsigned k = (unsigned)growth_dest(m, &L, &b, s, kind);
                incoming[k]++;
                y |= (uint64_t)k << (pos + s);
            }
            pos += SLOTS_PER_BUCKET;
        }
    }
    bucket_ref to[2];
    uint64_t tops[2] = {0, 0};
    for (size_t k = 0; k < ndest; k++) {
        to[k] = table_bucket(m, t, first + k);
        if (*to[k].next)
            return false;
        tops[k] = *to[k].tophash;
        uint64_t rest = zero_bytes(tops[k]); /* EMPTY_REST: this slot and all after it are free */
        fill[k] = rest ? first_slot(rest) : SLOTS_PER_BUCKET;
        if (fill[k] + incoming[k] > SLOTS_PER_BUCKET)
            return false;
    }
    for (size_t k = 0; k < ndest; k++)
        if (t->lazy)
            count_chain(m, t, first + k);
    size_t tombstones = 0;
    unsigned pos = 0;
    b = head;
    for_each_chain_bucket(m, b) {
        uint64_t w = *b.tophash, live = live_slots(w);
        uint64_t marks = ONES * EVACUATED_EMPTY - (live >> 7) * (EVACUATED_EMPTY - EVACUATED_X);
        for_each_slot(s, live) {
            size_t k = ndest == 1 ? 0 : chain ? (y >> (pos + s)) & 1 : growth_dest(m, &L, &b, s, kind);
            unsigned ts = fill[k]++;
            unsigned char *dst = to[k].slots, *src = b.slots;
            if (L.pair) {
                copy_bytes(dst + ts * L.pair, src + s * L.pair, L.pair);
            } else {
                copy_bytes(dst + ts * L.key_stride, src + s * L.key_stride, L.item);
                if (L.val)
                    copy_bytes(dst + L.vals_offset + ts * L.val_stride,
                               src + L.vals_offset + s * L.val_stride, L.val);
            }
            tops[k] |= (uint64_t)slot_top(&b, s) << (8 * ts);
            marks += (uint64_t)k << (8 * s); /* EVACUATED_Y is EVACUATED_X + 1 */
        }
        tombstones += count_bytes(zero_bytes(w ^ (ONES * EMPTY_ONE)));
        *b.tophash = marks;
        pos += SLOTS_PER_BUCKET;
    }
    for (size_t k = 0; k < ndest; k++)
        *to[k].tophash = tops[k];
    o->tombstones -= tombstones;
    chain_evacuated(m, o);
    return true;
}

/* Moves old chain oi (head is its first bucket) the whole way: counting, making room, moving. 0, or -ENOMEM
 * with nothing moved. */
static inline __attribute__((always_inline)) int evacuate_chain(hmap *m, size_t oi, bucket_ref head,
                                                                key_kind kind, bool fixed) {
    table *o = m->old;
    size_t ndest = m->cur->B > o->B ? 2 : 1;
    size_t first = m->cur->B > o->B ? oi << 1 : oi >> (o->B - m->cur->B);
    destination d[2] = {{.chain = first}, {.chain = first + 1}};
    slot_layout L = layout_of(m, kind, fixed);

    /* Pass 1: count what goes where (growth hashes each key once, remembering X or Y). */
    dest_bits bits = {0};
    size_t base = 0;
    unsigned s;
    bucket_ref b = head;
    for_each_chain_bucket(m, b) {
        uint64_t live = live_slots(*b.tophash);
        if (ndest == 1) {
            d[0].incoming += count_bytes(live);
        } else {
            for_each_slot(s, live) {
                size_t k = growth_dest(m, &L, &b, s, kind);
                d[k].incoming++;
                if (base + s < 64)
                    bits.y |= (uint64_t)k << (base + s);
            }
        }
        base += SLOTS_PER_BUCKET;
    }
    if (m->cur->lazy) {
        table *t = m->cur;
        const unsigned char *spare = t->ext->spare;
        size_t used = t->ext->spare_used, cap = t->ext->spare_cap;
        for (size_t k = 0; k < ndest; k++)
            count_chain(m, t, d[k].chain);
        int rc = prepare_destinations(m, d, ndest);
        if (t->ext->spare != spare || t->ext->spare_used != used)
            count_spares_since(m, t, spare, used, cap);
        if (rc < 0)
            return rc;
    } else if (prepare_destinations(m, d, ndest) < 0) {
        return -ENOMEM;
    }

    /* Pass 2: move, then mark every slot of the old chain evacuated (X, Y, or empty). */
    size_t tombstones = 0;
    base = 0;
    b = head;
    for_each_chain_bucket(m, b) {
        uint64_t w = *b.tophash, live = live_slots(w);
        uint64_t marks = ONES * EVACUATED_EMPTY - (live >> 7) * (EVACUATED_EMPTY - EVACUATED_X);
        for_each_slot(s, live) {
            size_t k = dest_at(m, &L, &b, s, base + s, ndest, &bits, kind);
            move_entry(m, &L, &b, s, &d[k]);
            marks += (uint64_t)k << (8 * s); /* EVACUATED_Y is EVACUATED_X + 1 */
        }
        tombstones += count_bytes(zero_bytes(w ^ (ONES * EMPTY_ONE)));
        *b.tophash = marks;
        base += SLOTS_PER_BUCKET;
    }
    o->tombstones -= tombstones;
    chain_evacuated(m, o);
    return 0;
}

/* (Out of line, one copy per kind: the fast paths below then keep a small frame.) */
static __attribute__((noinline)) int evacuate_chain_u64(hmap *m, size_t oi, bucket_ref head) {
    return fixed_pairs(m, KEYS_U64) ? evacuate_chain(m, oi, head, KEYS_U64, true)
                                    : evacuate_chain(m, oi, head, KEYS_U64, false);
}
static __attribute__((noinline)) int evacuate_chain_cstr(hmap *m, size_t oi, bucket_ref head) {
    return fixed_pairs(m, KEYS_CSTR) ? evacuate_chain(m, oi, head, KEYS_CSTR, true)
                                     : evacuate_chain(m, oi, head, KEYS_CSTR, false);
}
static __attribute__((noinline)) int evacuate_chain_generic(hmap *m, size_t oi, bucket_ref head) {
    return evacuate_chain(m, oi, head, KEYS_GENERIC, false);
}

/* Moves old bucket oi (its whole chain) into cur. 0, or -ENOMEM with nothing moved. An empty bucket or a
 * single bucket whose destinations have room is settled here; anything else goes the whole way. */
static inline __attribute__((always_inline)) int evacuate_kind(hmap *m, size_t oi, key_kind kind,
                                                               bool fixed) {
    table *o = m->old;
    bucket_ref head = table_bucket(m, o, oi);
    if (!*head.next &&
        !live_slots(*head.tophash)) { /* an empty bucket (a fifth of them when a shrink starts) */
        o->tombstones -= count_bytes(zero_bytes(*head.tophash ^ (ONES * EMPTY_ONE)));
        *head.tophash = ONES * EVACUATED_EMPTY;
        chain_evacuated(m, o);
        return 0;
    }
    bool grow = m->cur->B > o->B; /* (two calls: each inlined copy knows its number of destinations) */
    if (grow ? evacuate_to_buckets(m, o, head, oi << 1, 2, kind, fixed)
             : evacuate_to_buckets(m, o, head, oi >> (o->B - m->cur->B), 1, kind, fixed))
        return 0;
    switch (kind) {
    case KEYS_U64:
        return evacuate_chain_u64(m, oi, head);
    case KEYS_CSTR:
        return evacuate_chain_cstr(m, oi, head);
    default:
        return evacuate_chain_generic(m, oi, head);
    }
}

static __attribute__((noinline)) int evacuate_u64(hmap *m, size_t oi) {
    return fixed_pairs(m, KEYS_U64) ? evacuate_kind(m, oi, KEYS_U64, true)
                                    : evacuate_kind(m, oi, KEYS_U64, false);
}
static __attribute__((noinline)) int evacuate_cstr(hmap *m, size_t oi) {
    return fixed_pairs(m, KEYS_CSTR) ? evacuate_kind(m, oi, KEYS_CSTR, true)
                                     : evacuate_kind(m, oi, KEYS_CSTR, false);
}
static __attribute__((noinline)) int evacuate_generic(hmap *m, size_t oi) {
    return evacuate_kind(m, oi, KEYS_GENERIC, false);
}

static int evacuate(hmap *m, size_t oi) {
    if (old_bucket_evacuated(m, oi))
        return 0;
    switch (m->kind) {
    case KEYS_U64:
        return evacuate_u64(m, oi);
    case KEYS_CSTR:
        return evacuate_cstr(m, oi);
    default:
        return evacuate_generic(m, oi);
    }
}

static const char *phase_name(hmap_phase phase) {
    return phase == HMAP_GROWING ? "grow" : phase == HMAP_SAME_SIZE_GROWING ? "same-size" : "shrink";
}

/* One HMAP_TRACE line: the start of the resize just set up, or the end of the one whose old array is about
 * to go (its bytes are left out of bytes_now). */
static void trace_resize_event(const hmap *m, bool end) {
    trace_resize r = {
        .name = m->mem.src->name,
        .kind = phase_name(m->cold->phase),
        .end = end,
        .B_before = m->cold->resize_B_before,
        .B_after = m->cur ? m->cur->B : m->cold->resize_B_before,
        .count = m->count,
        .bytes_before = m->cold->resize_bytes_before,
        .bytes_now = m->mem.bytes,
        .ops = m->cold->resize_ops,
        .max_step_ns = m->cold->resize_max_step_ns,
    };
    if (end) {
        size_t old = table_held_bytes(m, m->old);
        r.bytes_now = r.bytes_now > old ? r.bytes_now - old : 0;
    }
    trace_resize_line(&r);
}

/* The one way a resize ends, whether evacuation finished, the map became empty, or it is cleared or
 * freed: the trace's end line, then the old array goes — dropping its entries first if they are still its
 * own (clear, free), else retired until the current write returns. */
void end_resize(hmap *m, bool drop_entries) {
    if (trace_enabled())
        trace_resize_event(m, true);
    table *o = m->old;
    m->old = NULL;
    m->cold->phase = HMAP_STEADY;
    count_whole(m, m->cur);
    m->cold->nevacuate = m->cold->old_evacuated = 0;
    if (drop_entries)
        table_free(m, o, true);
    else
        table_retire(m, o);
}

static void complete_resize(hmap *m) { end_resize(m, false); }

/* The most old buckets one write has moved (the O(1) writes' evacuation: resize_work, a shrink's start). */
static void note_write_moves(map_cold *c) {
    if (c->moved_this_op > c->max_moved_per_op)
        c->max_moved_per_op = c->moved_this_op;
}

int resize_work(hmap *m, uint64_t hash) {
    uint64_t t0 = trace_enabled() ? trace_now_ns() : 0;
    map_cold *c = m->cold; /* (kept while the map lives: ending the resize does not free it) */
    c->resize_ops++;
    /* A growth leaves the key's old bucket where it is (the write goes there: locate), so that it writes
     * the new array only behind the evacuation front; the other resizes move it first. */
    int rc = c->phase == HMAP_GROWING ? 0 : evacuate(m, bucket_index(hash, m->old->B));
    for (size_t k = 0; rc == 0 && k < c->evacuate_pace && m->old; k++) {
        if (c->nevacuate < m->old->nbuckets && evacuate(m, c->nevacuate) < 0)
            break; /* background progress may fail; the next write tries again */
    }
    count_write_target(m, hash);
    note_write_moves(c);
    if (t0) {
        uint64_t dt = trace_now_ns() - t0;
        if (dt > c->resize_max_step_ns)
            c->resize_max_step_ns = dt;
    }
    return rc;
}

/* Only for calls that take no key or value (reserve, compact): arrays are freed as they are finished. */
int finish_resize(hmap *m) {
    while (m->old) {
        if (evacuate(m, m->cold->nevacuate) < 0)
            return -ENOMEM;
    }
    free_retired_tables(m);
    return 0;
}

/* ---------------------------------------------------------------- starting a resize */

map_cold *map_cold_get(hmap *m) {
    if (!m->cold) {
        m->cold = mem_alloc(&m->mem, sizeof *m->cold);
        if (m->cold)
            memset(m->cold, 0, sizeof *m->cold);
    }
    return m->cold;
}

/* A growth's new array fills behind the evacuation front, page by page (it is lazy), except for what any
 * chain may touch at any time: the tophash words and chain heads, and the spare overflow buckets. Those
 * are counted whole now and faulted in by the memory thread, so that no insert after the growth pays a
 * page fault there; they are an eighth of the array. */
static void hold_growth_index(hmap *m, table *t) {
    table_ext *x = t->ext;
    size_t slots_off = array_offset(t, t->slots), spares_off = slots_off + t->nbuckets * m->bucket_bytes;
    count_range(m, x, 0, slots_off);
    mem_prefault(t->tophash, slots_off);
    if (x->mem_bytes > spares_off) {
        count_range(m, x, spares_off, x->mem_bytes - spares_off);
        mem_prefault((unsigned char *)t->tophash + spares_off, x->mem_bytes - spares_off);
    }
}

int start_resize(hmap *m, unsigned new_B, hmap_phase phase) {
    bool moves = m->cur && m->count > 0;
    if (moves && !map_cold_get(m)) /* (made before anything else: a failure leaves the map as it was) */
        return -ENOMEM;
    size_t bytes_before = m->mem.bytes;
    table *t = table_new(m, new_B, phase == HMAP_GROWING && !moves);
    if (!t)
        return -ENOMEM;
    if (!moves) { /* nothing to move: just install the new array */
        count_whole(m, t);
        if (m->cur)
            table_retire(m, m->cur);
        m->cur = t;
        return 0;
    }
    m->cold->resize_B_before = m->cur->B;
    m->cold->resize_bytes_before = bytes_before;
    m->cold->resize_ops = 0;
    m->cold->resize_max_step_ns = 0;
    if (phase == HMAP_GROWING && t->lazy)
        hold_growth_index(m, t);
    m->old = m->cur;
    m->cur = t;
    note_moved(m); /* where entries are looked for changed: iterator caches re-read */
    m->cold->phase = phase;
    m->cold->nevacuate = m->cold->old_evacuated = 0;
    m->cold->evacuate_pace = PACE; /* see "Pacing" above */
    if (phase == HMAP_GROWING)
        m->cold->grows++;
    else if (phase == HMAP_SAME_SIZE_GROWING)
        m->cold->same_size_grows++;
    else
        m->cold->shrinks++;
    if (trace_enabled())
        trace_resize_event(m, false);
    return 0;
}

/* The size a shrink goes to: the smallest whose own shrink line is above the count (about half full after
 * the shrink: hysteresis), and no smaller than a reservation still being filled. */
static unsigned shrink_target(const hmap *m) {
    unsigned target = 0;
    while (target < MAX_B && shrink_line(target + 1) <= m->count)
        target++;
    unsigned floor = B_for_count(map_reserved(m));
    return target < floor ? floor : target;
}

void maybe_start_shrink(hmap *m) {
    if (map_class_of(m)->no_shrink || !shrink_may_be_due(m))
        return;
    unsigned target = shrink_target(m);
    if (target >= m->cur->B || start_resize(m, target, HMAP_SHRINKING) < 0)
        return; /* on ENOMEM the map stays larger: still correct */
    /* The write that starts a shrink does its first step; one whose new array is small and comes from the
     * allocator (below MAP_THRESHOLD, so not lazy: counted whole) is done at once, never held twice. (A
     * user hook's larger arrays are counted whole too, and paced.) */
    bool small = !m->cur->mapped && array_bytes(m, m->cur) < MAP_THRESHOLD;
    size_t steps = small ? m->old->nbuckets : m->cold->evacuate_pace;
    for (size_t k = 0; k < steps && m->old; k++)
        if (evacuate(m, m->cold->nevacuate) < 0)
            break;
    note_write_moves(m->cold);
}

/* Gives both arrays back; only for a map with no entries. */
static void release_arrays(hmap *m) {
    if (m->old)
        end_resize(m, false);
    if (m->cur) {
        table_retire(m, m->cur);
        m->cur = NULL;
    }
}

void map_became_empty(hmap *m) {
    m->equal_hashes = false; /* no two keys are left to share a hash */
    if (!map_class_of(m)->fixed_seed) {
        m->seed = random_seed(); /* as Go: a fresh seed whenever the map is empty */
        end_iterations(m);       /* open iterations' cursors were in the old seed's hash space */
    }
    if (!map_class_of(m)->no_shrink && !m->reserving)
        release_arrays(m);
}

/* ---------------------------------------------------------------- O(n) calls */

/* Grows the arrays to 2^target buckets, finishing every resize on the way. */
static int grow_to(hmap *m, unsigned target) {
    if (finish_resize(m) < 0)
        return -ENOMEM;
    if (!m->cur || m->count == 0)
        return (m->cur && m->cur->B >= target) ? 0 : start_resize(m, target, HMAP_GROWING);
    while (m->cur->B < target) { /* one doubling at a time: evacuation splits a bucket in two */
        if (start_resize(m, m->cur->B + 1, HMAP_GROWING) < 0 || finish_resize(m) < 0)
            return -ENOMEM;
    }
    return 0;
}

int hmap_reserve(hmap *m, size_t n) {
    if (!m)
        return -EINVAL;
    unsigned target = B_for_count(n);
    size_t slots_off, slots_bytes, total;
    if (!table_bytes(m, target, &slots_off, &slots_bytes, &total))
        return -ENOMEM;
    /* A reservation that cannot be met fails before it builds anything: the final array is asked for (and
     * given back untouched) first. */
    if ((!m->cur || m->cur->B < target) && !mem_probe_array(&m->mem, allocation_bytes(m, total)))
        return -ENOMEM;
    if (n > m->count && !map_cold_get(m))
        return -ENOMEM;
    size_t previous = map_reserved(m);
    if (n > m->count)
        set_reserved(m, n); /* set first: no shrink may start between the doublings */
    if (grow_to(m, target) < 0) {
        /* The entries are as they were; doublings done before the failure are undone by a shrink. */
        set_reserved(m, previous);
        if (m->count == 0)
            map_became_empty(m);
        else
            maybe_start_shrink(m);
        free_retired_tables(m);
        return -ENOMEM;
    }
    free_retired_tables(m);
    return 0;
}

/* Rebuilds the arrays at the size that fits the count, without tombstones or extra overflow buckets. */
static int rebuild_to_fit(hmap *m) {
    if (finish_resize(m) < 0)
        return -ENOMEM;
    if (m->count == 0) {
        release_arrays(m); /* an explicit compact gives the memory back, no_shrink or not */
        return 0;
    }
    unsigned target = B_for_count(m->count);
    if (target >= m->cur->B && !(m->cur->ext && m->cur->ext->slabs) && !m->cur->tombstones)
        return 0; /* already a fresh map's shape */
    if (target > m->cur->B)
        target = m->cur->B;
    hmap_phase phase = target < m->cur->B ? HMAP_SHRINKING : HMAP_SAME_SIZE_GROWING;
    if (start_resize(m, target, phase) < 0 || finish_resize(m) < 0)
        return -ENOMEM;
    return 0;
}

int hmap_compact(hmap *m) {
    if (!m)
        return -EINVAL;
    size_t previous = map_reserved(m);
    set_reserved(m, 0); /* compacting ends any reservation, once it succeeds */
    int rc = rebuild_to_fit(m);
    if (rc < 0)
        set_reserved(m, previous);
    free_retired_tables(m);
    return rc;
}
