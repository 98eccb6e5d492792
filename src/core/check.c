/* SPDX-License-Identifier: MIT */
/*
 * core/check.c — the consistency walker (what it checks: check.h).
 */
#include "check.h"

#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef NDEBUG
_Noreturn void concurrent_write_detected(void) {
    fprintf(stderr,
            "hmap: concurrent map writes (one thread at a time may write to an hmap; use hmap_sync)\n");
    abort();
}
#endif

static int fail(char *why, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

typedef struct table_tally {
    size_t live, tombstones, overflow, evacuated;
} table_tally;

/* Checks chain i of t; live entries of an evacuated bucket are not counted (they live in cur now). */
static int check_chain(const hmap *m, const table *t, bool is_old, size_t i, table_tally *tally, char *why,
                       size_t size) {
    bucket_ref b = table_bucket(m, t, i);
    bool evacuated = table_bucket_evacuated(t, i), rest_seen = false;
    if (evacuated && !is_old)
        return fail(why, size, "bucket %zu of the current array carries evacuation marks", i);
    tally->evacuated += evacuated;
    size_t k = 0;
    for_each_chain_bucket(m, b) {
        if (k++ > 0)
            tally->overflow++;
        for (unsigned s = 0; s < SLOTS_PER_BUCKET; s++) {
            uint8_t top = slot_top(&b, s);
            bool mark = top >= EVACUATED_X && top <= EVACUATED_EMPTY;
            if (mark != evacuated)
                return fail(why, size, "bucket %zu: slot %u is %s in a bucket that is %s", i, s,
                            mark ? "marked evacuated" : "not marked",
                            evacuated ? "evacuated" : "not evacuated");
            if (evacuated)
                continue;
            if (rest_seen && top != EMPTY_REST)
                return fail(why, size, "bucket %zu: a slot follows EMPTY_REST holding %u", i, top);
            if (top == EMPTY_REST) {
                rest_seen = true;
            } else if (top == EMPTY_ONE) {
                tally->tombstones++;
            } else {
                uint64_t hash = map_hash(m, slot_key(m, &b, s));
                if (stored_hash(m, &b, s) != hash)
                    return fail(why, size, "bucket %zu: slot %u stores a hash that is not its key's", i, s);
                if (bucket_index(hash, t->B) != i)
                    return fail(why, size, "bucket %zu holds an entry whose hash names bucket %zu", i,
                                bucket_index(hash, t->B));
                if (tophash_of(hash) != top)
                    return fail(why, size, "bucket %zu: slot %u has tophash %u, its hash gives %u", i, s, top,
                                tophash_of(hash));
                tally->live++;
            }
        }
    }
    return 0;
}

static int check_table(const hmap *m, const table *t, bool is_old, table_tally *tally, char *why,
                       size_t size) {
    *tally = (table_tally){0};
    if (t->nbuckets != (size_t)1 << t->B)
        return fail(why, size, "an array of B = %u has %zu buckets", (unsigned)t->B, t->nbuckets);
    /* The side record exists whenever something lives in it (core.h, table_ext). */
    if (!t->ext && (t->noverflow || t->mapped || t->lazy))
        return fail(why, size, "an array with %s has no side record",
                    t->noverflow ? "overflow buckets"
                    : t->lazy    ? "lazy pages"
                                 : "a mapping");
    if (t->lazy != (t->ext && t->ext->counted))
        return fail(why, size, "%s", t->lazy ? "a lazy array without page bits" : "page bits, but not lazy");
    /* A mapped old array has given back the tophash words and chain heads of the buckets below nevacuate
     * (release_evacuated), and with them the way to its overflow buckets: those are evacuated, unseen. */
    size_t unseen = is_old && t->mapped ? m->cold->nevacuate : 0;
    tally->evacuated = unseen;
    for (size_t i = unseen; i < t->nbuckets; i++)
        if (check_chain(m, t, is_old, i, tally, why, size) < 0)
            return -1;
    /* Tombstones of evacuated buckets were subtracted when they were marked. */
    if (tally->tombstones != t->tombstones)
        return fail(why, size, "%s array: %zu tombstones counted, %zu found", is_old ? "old" : "current",
                    t->tombstones, tally->tombstones);
    if (unseen ? tally->overflow > t->noverflow : tally->overflow != t->noverflow)
        return fail(why, size, "%s array: %zu overflow buckets counted, %zu found",
                    is_old ? "old" : "current", t->noverflow, tally->overflow);
    return 0;
}

int map_check(const hmap *m, char *why, size_t size) {
    if (!m->cur) {
        if (m->old || m->count)
            return fail(why, size, "no current array, but %s", m->old ? "an old one" : "entries");
        return 0;
    }
    table_tally cur, old = {0};
    if (check_table(m, m->cur, false, &cur, why, size) < 0)
        return -1;
    if (m->old) {
        if (map_phase(m) == HMAP_STEADY)
            return fail(why, size, "an old array while steady");
        if (check_table(m, m->old, true, &old, why, size) < 0)
            return -1;
        if (old.evacuated != m->cold->old_evacuated)
            return fail(why, size, "%zu old buckets counted evacuated, %zu found", m->cold->old_evacuated,
                        old.evacuated);
        for (size_t i = 0; !m->old->mapped && i < m->cold->nevacuate; i++) /* (a mapped one: unseen) */
            if (!table_bucket_evacuated(m->old, i))
                return fail(why, size, "old bucket %zu is below nevacuate (%zu) but not evacuated", i,
                            m->cold->nevacuate);
    } else if (map_phase(m) != HMAP_STEADY) {
        return fail(why, size, "phase %d without an old array", (int)map_phase(m));
    }
    if (cur.live + old.live != m->count)
        return fail(why, size, "count %zu, but %zu live entries found", m->count, cur.live + old.live);
    return 0;
}
