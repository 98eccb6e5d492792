/*
 * churn.c — section 4: does the map thrash? Resizes and evacuation work under churn.
 *
 * The article's "delete + insert causes fake growth" (2.1), and the worry that keeps Go's map from
 * shrinking (golang/go#20135): a map that shrinks after deletes might grow again at once when the
 * inserts come back, and pay for both, forever. Three patterns, each starting from a map of SIZE entries:
 *
 *   sliding window    delete the oldest key, insert a new one (a cache): count stays at SIZE
 *   clear and refill  delete all SIZE keys, insert SIZE new ones; ROUNDS times
 *   waves at a limit  the map sits exactly at a growth limit (6.5 · 2^B); waves of WAVE inserts then
 *                     WAVE deletes cross it back and forth
 *
 * For each: the resizes started, the old buckets evacuated per operation (average, and the most in one
 * call, measured from hmap_get_stats().buckets_moved around every call), the bytes held, and the longest
 * single operation. Last, what hmap_clear gives back (Go's clear keeps the arrays).
 */
#include "lab.h"

#include <string.h>

enum { SIZE = 100000, WINDOW_OPS = 1000000, ROUNDS = 5, WAVES = 200, WAVE = 1000 };

typedef struct churn_result {
    uint64_t ops, resizes_before, moved_before;
    uint64_t max_moved, max_ns;
    size_t bytes_min, bytes_max;
    hmap_stats end;
} churn_result;

/* One measured write: op is a put (insert = true) or a delete of key i. */
static void measured_op(hmap *m, churn_result *r, uint64_t i, bool insert)
{
    hmap_stats before, after;
    hmap_get_stats(m, &before);
    uint64_t t0 = lab_now_ns();
    if (insert)
        lab_put(m, i);
    else
        lab_del(m, i);
    uint64_t ns = lab_now_ns() - t0;
    hmap_get_stats(m, &after);
    uint64_t moved = after.buckets_moved - before.buckets_moved;
    r->ops++;
    r->max_moved = moved > r->max_moved ? moved : r->max_moved;
    r->max_ns = ns > r->max_ns ? ns : r->max_ns;
    r->bytes_min = after.bytes < r->bytes_min ? after.bytes : r->bytes_min;
    r->bytes_max = after.bytes > r->bytes_max ? after.bytes : r->bytes_max;
}

static void begin(hmap *m, churn_result *r)
{
    memset(r, 0, sizeof *r);
    hmap_get_stats(m, &r->end);
    r->resizes_before = r->end.grows + r->end.same_size_grows + r->end.shrinks;
    r->moved_before = r->end.buckets_moved;
    r->bytes_min = SIZE_MAX;
}

static void print_result(const char *pattern, hmap *m, churn_result *r)
{
    char b1[32], b2[32], b3[32];
    hmap_get_stats(m, &r->end);
    uint64_t resizes = r->end.grows + r->end.same_size_grows + r->end.shrinks - r->resizes_before;
    printf("| %s | %s | %llu (now %llu grows, %llu same-size, %llu shrinks) | %.3f | %llu | %s – %s | %.3f ms |\n",
           pattern, lab_fmt_count(r->ops, b1), (unsigned long long)resizes, (unsigned long long)r->end.grows,
           (unsigned long long)r->end.same_size_grows, (unsigned long long)r->end.shrinks,
           (double)(r->end.buckets_moved - r->moved_before) / (double)r->ops, (unsigned long long)r->max_moved,
           lab_fmt_bytes(r->bytes_min, b2), lab_fmt_bytes(r->bytes_max, b3), (double)r->max_ns / 1e6);
}

static hmap *filled_map(uint64_t count)
{
    hmap *m = lab_new_u64_map(0, false);
    for (uint64_t i = 0; i < count; i++)
        lab_put(m, i);
    return m;
}

static void sliding_window(void)
{
    hmap *m = filled_map(SIZE);
    churn_result r;
    begin(m, &r);
    for (uint64_t i = SIZE; i < SIZE + WINDOW_OPS / 2; i++) {
        measured_op(m, &r, i - SIZE, false);
        measured_op(m, &r, i, true);
    }
    print_result("sliding window of 100k", m, &r);
    hmap_free(m);
}

static void clear_and_refill(void)
{
    hmap *m = filled_map(SIZE);
    churn_result r;
    begin(m, &r);
    for (uint64_t round = 0; round < ROUNDS; round++) {
        uint64_t first = round * SIZE;
        for (uint64_t i = first; i < first + SIZE; i++)
            measured_op(m, &r, i, false);
        for (uint64_t i = first + SIZE; i < first + 2 * SIZE; i++)
            measured_op(m, &r, i, true);
    }
    print_result("clear and refill 100k, 5 rounds", m, &r);
    hmap_free(m);
}

static void waves_at_limit(void)
{
    const uint64_t limit = 13 * (1u << 14) / 2; /* 6.5 · 2^14: one more insert starts a grow */
    hmap *m = filled_map(limit);
    churn_result r;
    begin(m, &r);
    for (uint64_t w = 0; w < WAVES; w++) {
        uint64_t first = limit + w * WAVE;
        for (uint64_t i = first; i < first + WAVE; i++)
            measured_op(m, &r, i, true);
        for (uint64_t i = first; i < first + WAVE; i++)
            measured_op(m, &r, i, false);
    }
    print_result("waves of ±1k at 6.5·2^14", m, &r);
    hmap_free(m);
}

/* hmap_clear gives the arrays back; Go's clear (and the delete-all loop it compiles from) keeps and zeroes
 * them — section 2's "all deleted" row shows what Go keeps. */
static void clear_gives_back(void)
{
    char b1[32], b2[32], b3[32], b4[32];
    hmap *m = filled_map(10 * SIZE);
    hmap_stats full, cleared;
    hmap_get_stats(m, &full);
    uint64_t rss_full = lab_rss_bytes(), t0 = lab_now_ns();
    hmap_clear(m);
    uint64_t ns = lab_now_ns() - t0;
    hmap_get_stats(m, &cleared);
    printf("\n| hmap_clear of 1M entries | bytes held | RSS |\n|---|---:|---:|\n");
    printf("| before | %s | %s |\n| after (%.3f ms, O(n) by contract) | %s | %s |\n", lab_fmt_bytes(full.bytes, b1),
           lab_fmt_bytes(rss_full, b2), (double)ns / 1e6, lab_fmt_bytes(cleared.bytes, b3),
           lab_fmt_bytes(lab_rss_bytes(), b4));
    hmap_free(m);
}

static void run_churn(void *arg, void *out)
{
    (void)arg;
    (void)out;
    printf("\n## 4. Churn: does the map thrash between growing and shrinking?\n\n");
    printf("| pattern | writes | resizes during the pattern | old buckets moved per write | most moved by one write |"
           " bytes held (min – max) | longest write |\n");
    printf("|---|---:|---|---:|---:|---:|---:|\n");
    sliding_window();
    clear_and_refill();
    waves_at_limit();
    clear_gives_back();
}

void lab_churn(void)
{
    int unused = 0;
    if (!lab_run_in_child(run_churn, NULL, &unused, sizeof unused))
        printf("\n(section 4 failed: see stderr)\n");
}
