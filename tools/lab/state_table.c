/*
 * state_table.c — section 1: the article's state table, measured.
 *
 * The article (section 2.1) explains Go's map by its fields: B, buckets, oldbuckets, nevacuate, overflow
 * buckets, and how they change while the map grows. Here one hmap grows to n uint64 -> uint64 entries, and
 * a row is printed whenever a resize starts or ends (the phase, or the resize counters, changed since the
 * previous operation) and at a few fixed counts. Then 99% of the entries are deleted, printed the same way
 * while the map shrinks (Go's never does), and finally hmap_compact shrinks it to fit at once.
 *
 * Every insert and delete is also timed on its own, which gives the longest single operation: Go pays for
 * allocating and zeroing the whole new array inside the insert that starts a grow; hmap must not.
 * The whole section runs in a child process so that its RSS column is this map's alone.
 */
#define _GNU_SOURCE /* malloc_trim */

#include "lab.h"

#include <malloc.h>
#include <string.h>

/* What the table remembers between operations, and the longest operations seen. */
typedef struct watch {
    hmap *m;
    hmap_stats last;
    uint64_t resizes_seen;        /* grows + same-size grows + shrinks at the last row check */
    lab_hist lat;                  /* latencies of the current stage */
    uint64_t max_ns_count;         /* the count after the stage's longest operation, and its phase */
    hmap_phase max_ns_phase;
    uint64_t ops;
} watch;

static uint64_t resizes_of(const hmap_stats *st) { return st->grows + st->same_size_grows + st->shrinks; }

static void print_header(const char *title)
{
    printf("\n%s\n\n", title);
    printf("| event | count | B | buckets | old buckets | evacuated | overflow | tombstones | phase | bytes | bytes/entry "
           "| RSS |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n");
}

static void print_row(const char *event, const hmap_stats *st)
{
    char b1[32], b2[32], b3[32];
    char per_entry[32] = "-";
    if (st->count > 0)
        snprintf(per_entry, sizeof per_entry, "%.1f", (double)st->bytes / (double)st->count);
    printf("| %s | %s | %u | %zu | %zu | %zu | %zu | %zu | %s | %s | %s | %s |\n", event, lab_fmt_count(st->count, b1),
           st->B, st->buckets, st->old_buckets, st->evacuated, st->overflow_buckets, st->tombstones,
           lab_phase_name(st->phase),
           lab_fmt_bytes(st->bytes, b2), per_entry, lab_fmt_bytes(lab_rss_bytes(), b3));
}

/* The event a phase change (or a resize that began and ended within one operation) stands for. */
static const char *resize_event(const hmap_stats *before, const hmap_stats *now, bool started)
{
    bool ended = now->phase == HMAP_STEADY;
    hmap_phase kind = ended ? before->phase : now->phase;
    if (started && ended)
        return now->shrinks > before->shrinks ? "shrink start+end"
               : now->same_size_grows > before->same_size_grows ? "same-size grow start+end"
                                                                 : "grow start+end";
    switch (kind) {
    case HMAP_GROWING: return ended ? "grow end" : "grow start";
    case HMAP_SAME_SIZE_GROWING: return ended ? "same-size grow end" : "same-size grow start";
    case HMAP_SHRINKING: return ended ? "shrink end" : "shrink start";
    case HMAP_STEADY: break;
    }
    return "?";
}

/* After each operation: print a row if a resize started or ended, or the count is one of `marks`. */
static void check_row(watch *w, const uint64_t *marks, size_t nmarks)
{
    hmap_stats now;
    hmap_get_stats(w->m, &now);
    bool started = resizes_of(&now) != w->resizes_seen;
    bool phase_changed = now.phase != w->last.phase;
    if (started || phase_changed)
        print_row(resize_event(&w->last, &now, started), &now);
    for (size_t i = 0; i < nmarks; i++)
        if (now.count == marks[i] && now.count != w->last.count)
            print_row("at count", &now);
    w->last = now;
    w->resizes_seen = resizes_of(&now);
}

static void note_time(watch *w, uint64_t t0)
{
    uint64_t ns = lab_now_ns() - t0;
    w->ops++;
    if (ns > w->lat.max) {
        w->max_ns_count = hmap_len(w->m);
        hmap_stats st;
        hmap_get_stats(w->m, &st);
        w->max_ns_phase = st.phase;
    }
    lab_hist_add(&w->lat, ns);
}

static void reset_latency(watch *w)
{
    memset(&w->lat, 0, sizeof w->lat);
    w->max_ns_count = 0;
}

/* A fresh map holding just the survivors, built with their count as hint: the yardstick for "held". */
static size_t fresh_survivor_bytes(uint64_t n)
{
    hmap *fresh = lab_new_u64_map((size_t)(n / 100 + 1), false);
    for (uint64_t i = 0; i < n; i++)
        if (lab_survives(i))
            lab_put(fresh, i);
    hmap_stats st;
    hmap_get_stats(fresh, &st);
    hmap_free(fresh);
    return st.bytes;
}

static void print_latency_row(const char *what, const lab_hist *h, const char *where)
{
    printf("| %s | %.1f | %.1f | %.1f | %.1f | %.3f | %s |\n", what, (double)lab_hist_quantile(h, 0.5) / 1e3,
           (double)lab_hist_quantile(h, 0.99) / 1e3, (double)lab_hist_quantile(h, 0.999) / 1e3,
           (double)lab_hist_quantile(h, 0.9999) / 1e3, (double)h->max / 1e6, where);
}

/* Insert and delete latencies beside the machine's own noise floor (as many busy-waits as inserts, each
 * as long as the mean insert, measured right after): a tail the noise floor matches is the machine (other
 * processes, the scheduler), not the map. */
static void print_latencies(const watch *grow, const watch *shrink, uint64_t n)
{
    char where[96], b1[32], b2[32];
    lab_hist noise = {0};
    lab_noise_floor(&noise, n, grow->lat.sum / (grow->lat.total ? grow->lat.total : 1));
    printf("\nSingle-operation latency (histogram bins ±19%%; p-values in µs, max in ms):\n\n");
    printf("| operation | p50 µs | p99 µs | p99.9 µs | p99.99 µs | max ms | longest at |\n");
    printf("|---|---:|---:|---:|---:|---:|---|\n");
    snprintf(where, sizeof where, "count %s, %s", lab_fmt_count(grow->max_ns_count, b1),
             lab_phase_name(grow->max_ns_phase));
    snprintf(b2, sizeof b2, "%s inserts (growing)", lab_fmt_count(grow->lat.total, b1));
    print_latency_row(b2, &grow->lat, where);
    snprintf(where, sizeof where, "count %s, %s", lab_fmt_count(shrink->max_ns_count, b1),
             lab_phase_name(shrink->max_ns_phase));
    snprintf(b2, sizeof b2, "%s deletes (shrinking)", lab_fmt_count(shrink->lat.total, b1));
    print_latency_row(b2, &shrink->lat, where);
    snprintf(b2, sizeof b2, "%s busy-waits", lab_fmt_count(noise.total, b1));
    print_latency_row(b2, &noise, "noise floor: waits as long as the mean insert, no map");
}

static void run_state_table(void *arg, void *out)
{
    uint64_t n = *(const uint64_t *)arg;
    (void)out;
    watch w = {.m = lab_new_u64_map(0, false)};
    hmap_get_stats(w.m, &w.last);
    char b1[32], b2[32];

    const uint64_t grow_marks[] = {1000, 10000, 100000, n};
    printf("\n## 1. The article's state table, measured: growing to %s uint64->uint64 entries\n",
           lab_fmt_count(n, b1));
    print_header("One row at each resize start and end (and at a few counts). `evacuated` is Go's nevacuate; "
                 "`tombstones` are emptyOne slots; bytes is hmap_get_stats().bytes, RSS the whole process's "
                 "(/proc/self/statm).");
    print_row("new", &w.last);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = lab_now_ns();
        lab_put(w.m, i);
        note_time(&w, t0);
        check_row(&w, grow_marks, 4);
    }
    watch grow = w;
    hmap_stats full;
    hmap_get_stats(w.m, &full);

    reset_latency(&w);
    const uint64_t shrink_marks[] = {n / 2, n / 10};
    print_header("Deleting 99% (keys i with i % 100 != 0): Go's map keeps B; hmap shrinks as it goes.");
    for (uint64_t i = 0; i < n; i++) {
        if (lab_survives(i))
            continue;
        uint64_t t0 = lab_now_ns();
        lab_del(w.m, i);
        note_time(&w, t0);
        check_row(&w, shrink_marks, 2);
    }
    hmap_stats after_delete;
    hmap_get_stats(w.m, &after_delete);
    print_row("after the deletes", &after_delete);
    malloc_trim(0);
    print_row("same, after malloc_trim(0)", &after_delete);

    uint64_t t0 = lab_now_ns();
    int rc = hmap_compact(w.m);
    uint64_t compact_ns = lab_now_ns() - t0;
    hmap_stats compacted;
    hmap_get_stats(w.m, &compacted);
    char title[96];
    snprintf(title, sizeof title, "Then `hmap_compact` (O(n) by contract; rc %d, %.3f ms):", rc, (double)compact_ns / 1e6);
    print_header(title);
    print_row("compacted", &compacted);
    malloc_trim(0);
    print_row("same, after malloc_trim(0)", &compacted);

    size_t fresh = fresh_survivor_bytes(n);
    printf("\n| measure | value | note |\n|---|---:|---|\n");
    printf("| bytes at %s entries | %s | %.1f bytes/entry |\n", lab_fmt_count(n, b1), lab_fmt_bytes(full.bytes, b2),
           (double)full.bytes / (double)n);
    printf("| fresh map of the %s survivors | %s | hmap_new(hint = survivors) + inserts |\n",
           lab_fmt_count(after_delete.count, b1), lab_fmt_bytes(fresh, b2));
    printf("| held right after the deletes ÷ fresh | %.2f× | issue 3 asks ≤ 2× |\n",
           (double)after_delete.bytes / (double)fresh);
    printf("| held after hmap_compact ÷ fresh | %.2f× | issue 3 asks ≤ 1.1× |\n", (double)compacted.bytes / (double)fresh);
    printf("| resizes | %llu grows, %llu same-size grows, %llu shrinks | |\n", (unsigned long long)compacted.grows,
           (unsigned long long)compacted.same_size_grows, (unsigned long long)compacted.shrinks);
    printf("| old buckets moved per write | %.3f average, %llu at most in one call | %llu moved in %llu writes"
           " (before compaction) |\n",
           (double)after_delete.buckets_moved / (double)w.ops, (unsigned long long)after_delete.max_moved_per_op,
           (unsigned long long)after_delete.buckets_moved, (unsigned long long)w.ops);
    print_latencies(&grow, &w, n);
    hmap_free(w.m);
}

void lab_state_table(uint64_t n)
{
    int unused = 0;
    if (!lab_run_in_child(run_state_table, &n, &unused, sizeof unused))
        printf("\n(section 1 failed: see stderr)\n");
}
