/* SPDX-License-Identifier: MIT */
/*
 * exp_pool.c — 8. pool: a request loop that needs a scratch map per request, with and without a pool.
 *
 * Each request takes a map, puts POOL_ENTRIES keys in it, looks each one up, and lets the map go. Without
 * a pool that is a new map and hmap_free every time; with hmap_pool it is hmap_pool_get and hmap_pool_put.
 * What a pooled map costs on reuse depends on how put resets it, so there are four pooled variants:
 *   - reset by hmap_clear: the map gives its arrays back, so the next request regrows them;
 *   - reset by hmap_reset: the entries go and the array stays (as Go's clear() does), overflow buckets
 *     too are freed, so the next request refills the same array: the reset a pool should use;
 *   - reset by deleting each entry (an iteration that deletes what it yields): the map shrinks as it
 *     empties, as every hmap does, and regrows too;
 *   - a no_shrink map reset by deleting each entry: the arrays stay, as in Go's pooled map after
 *     `for k := range m { delete(m, k) }`. Refilled with new keys on every reuse, such a map also keeps
 *     the overflow buckets it collects, so it holds more than a full new map; the claim says how much.
 * Each variant runs in its own process, on 1 worker thread, then on 2 (n requests split between them).
 * Figures from hmap_read_memstats: allocations per request (mallocs during the loop / requests), bytes the
 * library holds above the baseline (before the pool existed) once the load stops with the workers parked,
 * after one and after two hmap_pool_cycle calls, and after hmap_pool_free; the pool's counters (made =
 * misses, destroyed). Time per request is each worker's loop time summed over workers / requests. Doublings
 * per request (hmap_get_stats grows) are counted twice: all of them, and only those of reused maps
 * (regrows_per_req), which leaves out the first fill of a map the pool has just made.
 *
 * Go's side (the companion's `pool`): the same loop with a map[uint64]uint64 per request, with and without
 * sync.Pool; runtime.GC() twice plays the two cycles (the victim cache drops its objects at the second).
 */
#include "lab.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { POOL_ENTRIES = 1000, POOL_MAX_THREADS = 2 };

typedef enum { V_NONE, V_CLEAR, V_RESET, V_DELETE, V_KEEP, NVARIANTS } variant;

enum { NPOOLED = NVARIANTS - 1 }; /* every variant but the first uses a pool */

/* The implementations in the JSON: "hmap" is the loop without a pool. */
static const char *const variant_impl[NVARIANTS] = {"hmap", "pool_clear", "pool_reset", "pool_delete",
                                                    "pool_keep"};
static const char *const variant_title[NVARIANTS] = {"hmap, no pool", "hmap_pool + hmap_clear",
                                                     "hmap_pool + hmap_reset", "hmap_pool + delete each",
                                                     "hmap_pool + delete, no_shrink"};
/* Bar labels and colours of the pooled variants, in variant order from V_CLEAR. */
static const char *const pooled_label[NPOOLED] = {"hmap_pool, hmap_clear", "hmap_pool, hmap_reset",
                                                  "hmap_pool, delete each",
                                                  "hmap_pool, no_shrink + delete each"};
static const char *const pooled_colour[NPOOLED] = {LAB_C_HMAP, LAB_C_OTHER, "#aec7e8", LAB_C_NOSHRINK};

typedef struct pool_load {
    variant v;
    uint64_t requests;
    unsigned threads;
    hmap_pool *pool;
    pthread_barrier_t parked;   /* workers wait here after their loop, and again until the cycles are done */
    _Atomic size_t reset_bytes; /* what a pooled map held right after its last reset */
} pool_load;

typedef struct worker {
    pool_load *load;
    uint64_t first, count;
    uint64_t ns, grows, regrows, same_size_grows, sum; /* regrows: doublings of maps the pool reused */
    size_t full_bytes;
} worker;

static hmap *make_map(bool no_shrink) { return lab_u64_map(0, no_shrink, "pool-scratch"); }

/* Set by make(), which the pool calls in the thread whose hmap_pool_get missed: the request then fills a
 * new map, whose growth is not a regrowth. */
static _Thread_local bool made_for_this_request;

static void *pool_make(void *ctx) {
    const pool_load *l = ctx;
    made_for_this_request = true;
    return make_map(l->v == V_KEEP);
}

static void delete_each(hmap *m) {
    hmap_iter it;
    void *k;
    for (hmap_iter_init(&it, m); hmap_iter_next(&it, &k, NULL);)
        hmap_del(m, k); /* a key the iteration yielded may be passed to a write */
}

static void pool_reset(void *obj, void *ctx) {
    pool_load *l = ctx;
    if (l->v == V_CLEAR)
        hmap_clear(obj);
    else if (l->v == V_RESET)
        hmap_reset(obj);
    else
        delete_each(obj);
    hmap_stats st;
    hmap_get_stats(obj, &st);
    atomic_store_explicit(&l->reset_bytes, st.bytes, memory_order_relaxed);
}

static void pool_destroy(void *obj, void *ctx) {
    (void)ctx;
    hmap_free(obj);
}

/* One request: a full scratch map, every key looked up, then the map let go. */
static void request(worker *w, uint64_t r) {
    pool_load *l = w->load;
    made_for_this_request = false;
    hmap *m = l->v == V_NONE ? make_map(false) : hmap_pool_get(l->pool);
    if (!m) {
        fprintf(stderr, "hmap-lab: no scratch map\n");
        exit(1);
    }
    hmap_stats st;
    hmap_get_stats(m, &st);
    uint64_t grows0 = st.grows, same0 = st.same_size_grows;
    for (uint64_t j = 0; j < POOL_ENTRIES; j++)
        lab_put(m, r * POOL_ENTRIES + j);
    for (uint64_t j = 0; j < POOL_ENTRIES; j++) {
        uint64_t key = lab_key(r * POOL_ENTRIES + j);
        const uint64_t *v = hmap_get(m, &key);
        w->sum += v ? *v : 0;
    }
    hmap_get_stats(m, &st);
    w->grows += st.grows - grows0;
    if (l->v != V_NONE && !made_for_this_request)
        w->regrows += st.grows - grows0;
    w->same_size_grows += st.same_size_grows - same0;
    w->full_bytes = st.bytes;
    if (l->v == V_NONE)
        hmap_free(m);
    else
        hmap_pool_put(l->pool, m);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    uint64_t t0 = tc_now_ns();
    for (uint64_t r = w->first; r < w->first + w->count; r++)
        request(w, r);
    w->ns = tc_now_ns() - t0;
    pthread_barrier_wait(&w->load->parked); /* the load has stopped */
    pthread_barrier_wait(&w->load->parked); /* the cycles are done: exit */
    return NULL;
}

static uint64_t live_now(void) {
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    return ms.live_bytes;
}

/* The whole loop on `threads` workers, then the cycles; figures under "t<threads>.". */
static void run_load(variant v, uint64_t requests, unsigned threads, FILE *out) {
    pool_load l = {.v = v, .requests = requests, .threads = threads};
    char k[64];
#define M(name, value) (snprintf(k, sizeof k, "t%u.%s", threads, name), lab_m(out, k, (double)(value)))
    uint64_t base = live_now();
    hmap_pool_config cfg = {
        .make = pool_make, .reset = pool_reset, .destroy = pool_destroy, .ctx = &l, .name = "scratch maps"};
    if (v != V_NONE && !(l.pool = hmap_pool_new(&cfg))) {
        fprintf(stderr, "hmap-lab: hmap_pool_new failed\n");
        exit(1);
    }
    pthread_barrier_init(&l.parked, NULL, threads + 1);
    worker w[POOL_MAX_THREADS] = {{0}};
    pthread_t tid[POOL_MAX_THREADS];
    hmap_memstats m0, m1;
    hmap_read_memstats(&m0);
    for (unsigned i = 0; i < threads; i++) {
        w[i] = (worker){.load = &l,
                        .first = requests * i / threads,
                        .count = requests * (i + 1) / threads - requests * i / threads};
        if (pthread_create(&tid[i], NULL, worker_main, &w[i]) != 0)
            exit(1);
    }
    pthread_barrier_wait(&l.parked); /* every worker has finished its loop, and waits */
    hmap_read_memstats(&m1);
    uint64_t ns = 0, grows = 0, regrows = 0, same = 0;
    for (unsigned i = 0; i < threads; i++)
        ns += w[i].ns, grows += w[i].grows, regrows += w[i].regrows, same += w[i].same_size_grows;
    hmap_pool_stats ps;
    M("base.live", base);
    M("mallocs_per_req", (double)(m1.mallocs - m0.mallocs) / (double)requests);
    M("ns_per_req", (double)ns / (double)requests);
    M("grows_per_req", (double)grows / (double)requests);
    M("same_size_grows", same);
    M("full.map_bytes", w[0].full_bytes);
    M("held.bytes", m1.live_bytes - base);
    if (l.pool) {
        M("regrows_per_req", (double)regrows / (double)requests);
        M("reset.map_bytes", atomic_load(&l.reset_bytes));
        hmap_pool_get_stats(l.pool, &ps);
        M("held.idle", ps.idle + ps.victims);
    }
    for (int c = 1; c <= 2; c++) { /* the two "GC moments"; without a pool there is nothing to cycle */
        if (l.pool)
            hmap_pool_cycle(l.pool);
        M(c == 1 ? "cycle1.bytes" : "cycle2.bytes", live_now() - base);
        if (l.pool) {
            hmap_pool_get_stats(l.pool, &ps);
            M(c == 1 ? "cycle1.idle" : "cycle2.idle", ps.idle + ps.victims);
        }
    }
    if (l.pool) {
        M("made", ps.misses);
        M("destroyed", ps.destroyed);
        M("gets", ps.gets);
    }
    pthread_barrier_wait(&l.parked); /* let the workers exit */
    for (unsigned i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    hmap_pool_free(l.pool);
    M("freed.bytes", live_now() - base);
#undef M
    pthread_barrier_destroy(&l.parked);
}

typedef struct variant_arg {
    variant v;
    uint64_t n;
} variant_arg;

static void hmap_variant(void *arg, FILE *out) {
    const variant_arg *a = arg;
    for (unsigned t = 1; t <= POOL_MAX_THREADS; t++)
        run_load(a->v, a->n, t, out);
}

/* ---- the section ---- */

/* A figure of one loop: `pre` is "t1." for hmap's data, "t1.pool." for Go's. */
static double fig(const lab_data *d, const char *pre, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "%s%s", pre, key);
    return lab_num(d, k);
}

static const char *cell_num(double v, const char *fmt, char buf[32]) {
    if (isnan(v))
        snprintf(buf, 32, "—");
    else
        snprintf(buf, 32, fmt, v);
    return buf;
}

static void add_row(tc_table *t, const char *title, const lab_data *d, const char *pre, unsigned th) {
    char b[9][32], thr[8];
    snprintf(thr, sizeof thr, "%u", th);
    tc_table_addf(
        t, title, thr, cell_num(fig(d, pre, "mallocs_per_req"), "%.1f", b[0]),
        cell_num(fig(d, pre, "grows_per_req"), "%.1f", b[1]), tc_fmt_ns(fig(d, pre, "ns_per_req"), b[2]),
        lab_fmt_bytes(fig(d, pre, "held.bytes"), b[3]), lab_fmt_bytes(fig(d, pre, "cycle1.bytes"), b[4]),
        lab_fmt_bytes(fig(d, pre, "cycle2.bytes"), b[5]), cell_num(fig(d, pre, "made"), "%.0f", b[6]),
        cell_num(fig(d, pre, "destroyed"), "%.0f", b[7]));
}

static void table(lab_section *s, lab_data *const h[], const lab_data *g) {
    static const char *const head[] = {"loop",       "thr",        "allocs/req", "grows/req", "time/req",
                                       "after load", "cycle/GC 1", "cycle/GC 2", "made",      "destroyed"};
    tc_table *t =
        tc_table_new("A scratch map of 1000 entries per request; bytes above the baseline (hmap: live "
                     "bytes, Go: HeapAlloc):",
                     10, head, "lrrrrrrrrr");
    tc_table_wrap(t, 0);
    for (unsigned th = 1; th <= POOL_MAX_THREADS; th++) {
        char pre[24];
        snprintf(pre, sizeof pre, "t%u.", th);
        for (int v = 0; v < NVARIANTS; v++)
            add_row(t, variant_title[v], h[v], pre, th);
        if (!g->ok)
            continue;
        snprintf(pre, sizeof pre, "t%u.none.", th);
        add_row(t, "Go, no pool", g, pre, th);
        snprintf(pre, sizeof pre, "t%u.pool.", th);
        add_row(t, "Go, sync.Pool + range delete", g, pre, th);
    }
    lab_table(s, t, false);
}

/* Allocations per request as a bar label: "27.5", "0.03". */
static double rounded(double v) { return v >= 1 ? round(v * 10) / 10 : round(v * 100) / 100; }

/* Bytes above the baseline on a log axis: 0 has no bar. */
static double bar_value(double v) { return v > 0 ? v : NAN; }

static void plots(lab_section *s, lab_data *const h[], const lab_data *g) {
    enum { NMEM = NPOOLED + 2, NALLOC = NVARIANTS + 2 }; /* the pooled hmaps (or every hmap), then Go's two */
    static const char *const groups[] = {"load stopped", "after cycle / GC 1", "after cycle / GC 2"};
    static const char *const keys[] = {"t1.held.bytes", "t1.cycle1.bytes", "t1.cycle2.bytes"};
    static const char *const gkeys[] = {"held.bytes", "cycle1.bytes", "cycle2.bytes"};
    const char *labels[NALLOC], *colours[NALLOC];
    labels[0] = "hmap, no pool", colours[0] = "#7f7f7f";
    for (int v = V_CLEAR; v < NVARIANTS; v++)
        labels[v] = pooled_label[v - 1], colours[v] = pooled_colour[v - 1];
    labels[NVARIANTS] = "Go, no pool", colours[NVARIANTS] = "#98df8a";
    labels[NVARIANTS + 1] = "Go, sync.Pool", colours[NVARIANTS + 1] = LAB_C_GO;
    double mem[3 * NMEM];
    for (int i = 0; i < 3; i++) {
        for (int v = V_CLEAR; v < NVARIANTS; v++)
            mem[i * NMEM + v - 1] = bar_value(lab_num(h[v], keys[i]));
        mem[i * NMEM + NPOOLED] = bar_value(fig(g, "t1.none.", gkeys[i]));
        mem[i * NMEM + NPOOLED + 1] = bar_value(fig(g, "t1.pool.", gkeys[i]));
    }
    char title[160];
    snprintf(title, sizeof title,
             "%llu requests on 1 thread: bytes still held above the baseline once the load stops",
             (unsigned long long)s->n);
    tc_bars bc = {.title = title,
                  .groups = groups,
                  .ngroups = 3,
                  .labels = labels + 1, /* the pooled hmaps and Go: the unpooled hmap holds nothing */
                  .colours = colours + 1,
                  .nbars = NMEM,
                  .values = mem,
                  .y = {.label = "bytes (log scale)", .scale = TC_LOG, .unit = TC_BYTES},
                  .note =
                      "A missing bar is 0 bytes. hmap: live bytes of the library; Go: HeapAlloc (before the "
                      "first GC it still counts garbage)."};
    tc_buf svg = {0};
    tc_svg_bars(&svg, &bc);
    lab_plot(s, &svg,
             "What the pools hold after the load, and after each cycle (hmap_pool_cycle; Go: runtime.GC()).");

    static const char *const tgroups[] = {"1 thread", "2 threads"};
    double allocs[2 * NALLOC];
    for (unsigned t = 0; t < 2; t++) {
        char pre[24];
        snprintf(pre, sizeof pre, "t%u.", t + 1);
        for (int v = 0; v < NVARIANTS; v++)
            allocs[t * NALLOC + v] = rounded(fig(h[v], pre, "mallocs_per_req"));
        snprintf(pre, sizeof pre, "t%u.none.", t + 1);
        allocs[t * NALLOC + NVARIANTS] = rounded(fig(g, pre, "mallocs_per_req"));
        snprintf(pre, sizeof pre, "t%u.pool.", t + 1);
        allocs[t * NALLOC + NVARIANTS + 1] = rounded(fig(g, pre, "mallocs_per_req"));
    }
    tc_bars ac = {.title = "Allocations per request (hmap: hmap_read_memstats mallocs; Go: MemStats.Mallocs)",
                  .groups = tgroups,
                  .ngroups = 2,
                  .labels = labels,
                  .colours = colours,
                  .nbars = NALLOC,
                  .values = allocs,
                  .y = {.label = "allocations per request", .unit = TC_PLAIN},
                  .note = "A pooled hmap reset by hmap_clear, or one that shrinks as it empties, regrows its "
                          "arrays on every reuse; one reset by hmap_reset keeps them."};
    svg = (tc_buf){0};
    tc_svg_bars(&svg, &ac);
    lab_plot(s, &svg, "Allocations per request, with and without a pool.");
}

static void go_claims(lab_section *s, const lab_data *g) {
    char m[700], b[8][32];
    double none1 = lab_num(g, "t1.none.mallocs_per_req"), pool1 = lab_num(g, "t1.pool.mallocs_per_req");
    double none2 = lab_num(g, "t2.none.mallocs_per_req"), pool2 = lab_num(g, "t2.pool.mallocs_per_req");
    snprintf(m, sizeof m,
             "Go, allocations per request without / with sync.Pool: %.1f / %.2f on 1 goroutine, %.1f / "
             "%.2f on 2; time per request %s / %s (1 goroutine); New calls: %.0f for %llu requests",
             none1, pool1, none2, pool2, tc_fmt_ns(lab_num(g, "t1.none.ns_per_req"), b[0]),
             tc_fmt_ns(lab_num(g, "t1.pool.ns_per_req"), b[1]), lab_num(g, "t1.pool.made"),
             (unsigned long long)s->n);
    const char *c1 =
        "sync.Pool lets each request reuse an expensive object (a whole map) instead of allocating one";
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, c1, m, "Go's map was not measured");
    else
        lab_claim_add(s,
                      pool1 <= none1 / 10 && pool2 <= none2 / 10 ? LAB_HOLDS
                      : pool1 < none1                            ? LAB_PARTLY
                                                                 : LAB_DOES_NOT_HOLD,
                      c1, m,
                      "the pooled map keeps its buckets through the range-delete reset: %.2f allocations per "
                      "request instead of %.1f",
                      pool1, none1);

    double full = lab_num(g, "map_bytes"), gc1[2], gc2[2];
    bool kept = true, freed = true;
    for (int t = 0; t < 2; t++) {
        char pre[16];
        snprintf(pre, sizeof pre, "t%d.pool.", t + 1);
        gc1[t] = fig(g, pre, "cycle1.bytes"), gc2[t] = fig(g, pre, "cycle2.bytes");
        kept = kept && gc1[t] >= full / 2; /* at least one idle map survived the first GC */
        freed = freed && gc2[t] < full / 4;
    }
    snprintf(m, sizeof m,
             "Go sync.Pool, HeapAlloc above the baseline when the load stopped / after one runtime.GC() / "
             "after two: %s / %s / %s on 1 goroutine, %s / %s / %s on 2; one full map's buckets: %s",
             lab_fmt_bytes(lab_num(g, "t1.pool.held.bytes"), b[0]), lab_fmt_bytes(gc1[0], b[1]),
             lab_fmt_bytes(gc2[0], b[2]), lab_fmt_bytes(lab_num(g, "t2.pool.held.bytes"), b[3]),
             lab_fmt_bytes(gc1[1], b[4]), lab_fmt_bytes(gc2[1], b[5]), lab_fmt_bytes(full, b[6]));
    const char *c2 =
        "Idle objects in a sync.Pool are not kept forever: they survive one GC (the victim cache) and "
        "are freed at the second";
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, c2, m, "Go's map was not measured");
    else
        lab_claim_add(s,
                      kept && freed ? LAB_HOLDS
                      : freed       ? LAB_PARTLY
                                    : LAB_DOES_NOT_HOLD,
                      c2, m, "%s: %s after the first GC, %s after the second (1 goroutine)",
                      kept && freed ? "the idle maps outlived one GC and went at the second"
                      : freed       ? "the idle maps went already at the first GC"
                                    : "idle maps were still held after the second GC",
                      lab_fmt_bytes(gc1[0], b[0]), lab_fmt_bytes(gc2[0], b[1]));
}

/* How one pooled reset fares on 1 thread, for a reason: "regrows (25.5 allocations, 8.0 doublings per
 * request)" or "keeps its arrays (0.05 allocations per request)". */
static const char *reuse_phrase(const lab_data *d, char buf[96]) {
    double a = lab_num(d, "t1.mallocs_per_req"), gr = lab_num(d, "t1.regrows_per_req");
    if (gr > 0)
        snprintf(buf, 96, "regrows (%.1f allocations, %.1f doublings per request)", a, gr);
    else
        snprintf(buf, 96, "keeps its arrays (%.2f allocations per request)", a);
    return buf;
}

/* A pooled variant saves what a pool should: at most a tenth of the unpooled loop's allocations, and no
 * doubling of a reused map, on 1 and on 2 threads. */
static bool saves(lab_data *const h[], variant v) {
    bool ok = true;
    for (unsigned t = 1; t <= POOL_MAX_THREADS; t++) {
        char pre[8];
        snprintf(pre, sizeof pre, "t%u.", t);
        ok = ok && fig(h[v], pre, "mallocs_per_req") <= fig(h[V_NONE], pre, "mallocs_per_req") / 10 &&
             fig(h[v], pre, "regrows_per_req") == 0;
    }
    return ok;
}

static void reuse_claim(lab_section *s, lab_data *const h[]) {
    char m[1200], b[12][32], p[2][96];
    double a[NVARIANTS], gr[NVARIANTS];
    /* doublings: of each new map without a pool, of reused maps with one */
    for (int v = 0; v < NVARIANTS; v++)
        a[v] = lab_num(h[v], "t1.mallocs_per_req"),
        gr[v] = lab_num(h[v], v == V_NONE ? "t1.grows_per_req" : "t1.regrows_per_req");
    double fresh = lab_num(h[V_NONE], "t1.full.map_bytes"), kept = lab_num(h[V_KEEP], "t1.reset.map_bytes"),
           reset = lab_num(h[V_RESET], "t1.reset.map_bytes");
    snprintf(
        m, sizeof m,
        "1 thread, allocations (doublings of a reused map; no pool: of the new map) per request: no pool "
        "%.1f (%.1f); pooled, reset by hmap_clear %.1f (%.1f), by hmap_reset %.2f (%.1f; 2 threads: "
        "%.2f (%.1f)), by deleting each entry %.1f (%.1f), a no_shrink map emptied by deletes %.2f (%.3f; "
        "%.0f same-size grows in %llu requests); time per request %s, %s, %s, %s, %s; a full new map holds "
        "%s; after the reset the pooled map holds %s / %s / %s / %s (hmap_reset: %s, no_shrink: %s a full "
        "new map)",
        a[V_NONE], gr[V_NONE], a[V_CLEAR], gr[V_CLEAR], a[V_RESET], gr[V_RESET],
        lab_num(h[V_RESET], "t2.mallocs_per_req"), lab_num(h[V_RESET], "t2.regrows_per_req"), a[V_DELETE],
        gr[V_DELETE], a[V_KEEP], gr[V_KEEP], lab_num(h[V_KEEP], "t1.same_size_grows"),
        (unsigned long long)s->n, tc_fmt_ns(lab_num(h[V_NONE], "t1.ns_per_req"), b[0]),
        tc_fmt_ns(lab_num(h[V_CLEAR], "t1.ns_per_req"), b[1]),
        tc_fmt_ns(lab_num(h[V_RESET], "t1.ns_per_req"), b[2]),
        tc_fmt_ns(lab_num(h[V_DELETE], "t1.ns_per_req"), b[3]),
        tc_fmt_ns(lab_num(h[V_KEEP], "t1.ns_per_req"), b[4]), lab_fmt_bytes(fresh, b[5]),
        lab_fmt_bytes(lab_num(h[V_CLEAR], "t1.reset.map_bytes"), b[6]), lab_fmt_bytes(reset, b[7]),
        lab_fmt_bytes(lab_num(h[V_DELETE], "t1.reset.map_bytes"), b[8]), lab_fmt_bytes(kept, b[9]),
        tc_fmt_ratio(reset / fresh, b[10]), tc_fmt_ratio(kept / fresh, b[11]));
    const char *claim = "hmap_pool: a request reuses a pooled map instead of allocating one";
    reuse_phrase(h[V_CLEAR], p[0]), reuse_phrase(h[V_DELETE], p[1]);
    if (saves(h, V_RESET))
        lab_claim_add(
            s, LAB_HOLDS, claim, m,
            "when the pool's reset is hmap_reset: %.2f allocations per request and no reused map "
            "doubled (1 and 2 threads), against %.1f without a pool, and the idle map holds %s (%s "
            "a full new map); do not reset with hmap_clear, which %s, nor by deleting each entry, which %s",
            a[V_RESET], a[V_NONE], b[7], b[10], p[0], p[1]);
    else if (saves(h, V_KEEP))
        lab_claim_add(
            s, LAB_PARTLY, claim, m,
            "hmap_reset did not keep the arrays (%.2f allocations, %.2f doublings per request); only "
            "a no_shrink map emptied by deletes did (%.2f allocations per request, %s held, %s a full "
            "new map); hmap_clear %s, against %.1f without a pool",
            a[V_RESET], gr[V_RESET], a[V_KEEP], b[9], b[11], p[0], a[V_NONE]);
    else
        lab_claim_add(
            s, LAB_DOES_NOT_HOLD, claim, m,
            "every pooled variant still allocates or regrows: %.1f / %.1f / %.1f / %.1f per request "
            "(hmap_clear, hmap_reset, delete each, no_shrink), against %.1f without a pool",
            a[V_CLEAR], a[V_RESET], a[V_DELETE], a[V_KEEP], a[V_NONE]);
}

static void release_claim(lab_section *s, lab_data *const h[]) {
    char m[1000], b[8][32];
    bool all_ok = true;
    double worst = 0, worst_freed = 0;
    char runs[400] = "";
    size_t len = 0;
    for (int v = V_CLEAR; v < NVARIANTS; v++)
        for (unsigned t = 1; t <= POOL_MAX_THREADS; t++) {
            char pre[8];
            snprintf(pre, sizeof pre, "t%u.", t);
            double made = fig(h[v], pre, "made"), destroyed = fig(h[v], pre, "destroyed"),
                   idle = fig(h[v], pre, "cycle2.idle"), c2 = fig(h[v], pre, "cycle2.bytes"),
                   full = fig(h[v], pre, "full.map_bytes"), freed = fig(h[v], pre, "freed.bytes");
            all_ok = all_ok && made == destroyed && idle == 0 && c2 < full && freed == 0;
            worst = fmax(worst, c2), worst_freed = fmax(worst_freed, freed);
            if (len < sizeof runs - 40)
                len += (size_t)snprintf(runs + len, sizeof runs - len, "%s%.0f/%.0f", len ? ", " : "", made,
                                        destroyed);
        }
    const lab_data *r = h[V_RESET];
    bool survived = lab_num(r, "t1.cycle1.bytes") >= lab_num(r, "t1.full.map_bytes") / 2;
    snprintf(m, sizeof m,
             "%d pooled variants × 1 and 2 threads, maps made/destroyed: %s; above the baseline: hmap_reset "
             "pool, 1 thread, %s when the load stopped, %s after one hmap_pool_cycle, %s after two; at most "
             "%s after two in any run, %s after hmap_pool_free",
             NPOOLED, runs, lab_fmt_bytes(lab_num(r, "t1.held.bytes"), b[0]),
             lab_fmt_bytes(lab_num(r, "t1.cycle1.bytes"), b[1]),
             lab_fmt_bytes(lab_num(r, "t1.cycle2.bytes"), b[2]), lab_fmt_bytes(worst, b[3]),
             lab_fmt_bytes(worst_freed, b[4]));
    const char *claim = "hmap_pool: idle maps go within two cycles, and the memory returns to the baseline";
    if (all_ok)
        lab_claim_add(
            s, LAB_HOLDS, claim, m,
            "made = destroyed in all %d runs; the idle map an hmap_reset pool keeps with its array "
            "(%s when the load stopped) %s, so call hmap_pool_cycle when a load ends; the %s left is "
            "the pool's own, 0 B after hmap_pool_free",
            NPOOLED * POOL_MAX_THREADS, b[0],
            survived ? "survives one hmap_pool_cycle and goes at the second"
                     : "goes at the first hmap_pool_cycle",
            lab_fmt_bytes(worst, b[5]));
    else
        lab_claim_add(
            s, LAB_DOES_NOT_HOLD, claim, m,
            "a map outlived two cycles, or bytes stayed above the baseline (%s after two cycles, %s "
            "after hmap_pool_free)",
            lab_fmt_bytes(worst, b[5]), lab_fmt_bytes(worst_freed, b[6]));
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h[NVARIANTS];
    variant_arg args[NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++) {
        h[v] = lab_section_data(s, variant_impl[v]);
        args[v] = (variant_arg){.v = (variant)v, .n = s->n};
        lab_progress("pool: %s", variant_title[v]);
        lab_run_c(h[v], variant_impl[v], hmap_variant, &args[v]);
    }
    lab_data *g = lab_section_data(s, "go");
    lab_run_go(g, ctx, "pool", s->n, NULL, NULL, false);
    char b[32];
    lab_text(
        s,
        "%s requests, each needing a scratch map of %d entries (filled, every key looked up, let go), on 1 "
        "worker thread and then 2. Without a pool each request makes and frees a map; with hmap_pool it gets "
        "one and puts it back, and the pool's reset empties it: by hmap_clear (which gives the arrays back), "
        "by hmap_reset (which keeps the array, as Go's clear() does), by deleting each entry (the map "
        "shrinks as it empties), or by deleting each entry of a no_shrink map (the arrays stay, as in Go). "
        "When the load stops (the workers parked), hmap_pool_cycle runs twice; Go does the same loop with "
        "sync.Pool and runtime.GC() twice.",
        tc_fmt_count(s->n, b), POOL_ENTRIES);
    if (!g->ok)
        lab_go_missing(s, ctx, g);
    table(s, h, g);
    lab_text(
        s,
        "made = the pool's misses (make() calls; Go: New calls); destroyed = maps the pool destroyed. "
        "Baseline = the library's live bytes before the pool was made (Go: HeapAlloc after runtime.GC()); "
        "Go's \"after load\" is before any GC, so the unpooled loop's garbage still counts. grows/req = the "
        "map's doublings during a request, per request: 0.0 when every reused map kept its arrays (the first "
        "fill of a map the pool has just made counts too; the JSON's regrows_per_req leaves it out). Go's "
        "reset is `for k := range m { delete(m, k) }`, which the compiler turns into one call that keeps the "
        "buckets.");
    plots(s, h, g);
    go_claims(s, g);
    reuse_claim(s, h);
    release_claim(s, h);
}

const lab_experiment lab_pool = {
    .name = "pool",
    .number = 8,
    .title = "a scratch map per request, with and without a pool: hmap_pool and sync.Pool",
    .help = "a scratch map per request: no pool, hmap_pool (4 resets), sync.Pool; then two cycles",
    .default_n = 4000,
    .quick_n = 400,
    .n_means = "requests",
    .run = run,
};
