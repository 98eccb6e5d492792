/* SPDX-License-Identifier: MIT */
/*
 * exp_sync.c — 9. sync: Go's sync.Map and hmap_sync, the concurrent maps, through fill n, delete 99%,
 * delete the rest, then two rounds of what a program still using the map does next: store a new key,
 * then look up keys that are absent (live + 1 of them).
 *
 * The question is the delete experiment's, asked of the concurrent maps: does the memory follow the live
 * keys down? Each map in its own process, one thread doing every operation in the same order on both
 * (no figure depends on how threads happened to interleave; the concurrent bench measures speed with
 * more threads).
 *   - hmap_sync: bytes from hmap_sync_get_stats (which counts frees still deferred for readers), the
 *     library's live bytes (hmap_read_memstats), RSS. After each delete step also the bytes once
 *     hmap_sync_reclaim has run the deferred frees, and RSS after hmap_release_os_memory.
 *   - sync.Map (the Go companion's `sync`): HeapAlloc after runtime.GC() above the heap before the map,
 *     RSS, RSS after debug.FreeOSMemory, and what its read map and dirty map hold (read through unsafe,
 *     after a check of the layout; on a runtime whose layout the companion does not know, those columns
 *     and the claim that needs them are left out).
 * The fresh map is the lab's one definition: hmap_sync made with the live count as its hint (a fixed
 * seed, as lab_fresh_bytes); sync.Map takes no size hint, so a new one with the survivors stored.
 */
#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const hmap_type u64_to_u64 = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};

typedef struct runner {
    hmap_sync *m;
    FILE *out;
    uint64_t op, every, live;
} runner;

static size_t sync_bytes(hmap_sync *m) {
    hmap_stats st;
    hmap_sync_get_stats(m, &st);
    return st.bytes;
}

static uint64_t library_live(void) {
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    return ms.live_bytes;
}

static void sample(runner *r) {
    lab_p(r->out, "bytes", (double)r->op, (double)sync_bytes(r->m));
    lab_p(r->out, "rss", (double)r->op, (double)tc_rss_bytes());
}

static void tick(runner *r) {
    if (++r->op % r->every == 0)
        sample(r);
}

/* Sample each phase 100 times, however short (the last deletes are 1% of the operations). */
static void phase(runner *r, uint64_t ops) { r->every = ops / 100 ? ops / 100 : 1; }

static void store(runner *r, uint64_t i) {
    uint64_t key = lab_key(i);
    int rc = hmap_sync_store(r->m, &key, &i);
    if (rc < 0) {
        fprintf(stderr, "hmap-lab: hmap_sync_store: %s\n", strerror(-rc));
        exit(1);
    }
    r->live++;
    tick(r);
}

static void del(runner *r, uint64_t i) {
    uint64_t key = lab_key(i);
    if (!hmap_sync_delete(r->m, &key)) {
        fprintf(stderr, "hmap-lab: hmap_sync_delete: key %llu missing (library bug?)\n",
                (unsigned long long)i);
        exit(1);
    }
    r->live--;
    tick(r);
}

/* The figures of one step under "<name>."; after a delete step also what hmap_sync_reclaim leaves and
 * RSS once memory is handed back. */
static void step(runner *r, const char *name, bool release) {
    char k[64];
#define M(what, v) (snprintf(k, sizeof k, "%s.%s", name, what), lab_m(r->out, k, (double)(v)))
    hmap_stats st;
    hmap_sync_get_stats(r->m, &st);
    M("bytes", st.bytes);
    M("live", library_live());
    M("rss", tc_rss_bytes());
    M("count", st.count);
    if (release) {
        M("deferred_left", hmap_sync_reclaim(r->m));
        M("reclaimed_bytes", sync_bytes(r->m));
        lab_release();
        M("rss_released", tc_rss_bytes());
    }
#undef M
    if (r->op) /* none for the empty map: its few bytes would stretch the log axis down by octaves */
        sample(r);
}

/* A new key stored, then live + 1 lookups of keys never stored (the indices after it). */
static void store_and_miss(runner *r, const char *name, uint64_t i) {
    char k[48];
    store(r, i);
    snprintf(k, sizeof k, "%s_stored", name), step(r, k, false);
    for (uint64_t j = 0; j <= r->live; j++) {
        uint64_t key = lab_key(i + 1 + j);
        if (hmap_sync_load(r->m, &key, NULL)) {
            fprintf(stderr, "hmap-lab: hmap_sync_load found a key never stored (library bug?)\n");
            exit(1);
        }
        tick(r);
    }
    snprintf(k, sizeof k, "%s_missed", name), step(r, k, false);
}

static hmap_sync *new_sync(size_t hint, const hmap_options *opts) {
    hmap_sync *m = hmap_sync_new_opts(&u64_to_u64, hint, opts);
    if (!m) {
        perror("hmap-lab: hmap_sync_new_opts");
        exit(1);
    }
    return m;
}

/* The fresh hmap_sync of `count` survivors (indices 0, 100, 200, ...): see LAB_FRESH_MAP. */
static size_t fresh_sync_bytes(uint64_t count) {
    hmap_options opts = {.fixed_seed = true, .seed = 0x5eed, .name = "fresh"};
    hmap_sync *m = new_sync((size_t)count, &opts);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t key = lab_key(100 * i), v = 100 * i;
        if (hmap_sync_store(m, &key, &v) < 0) {
            fprintf(stderr, "hmap-lab: hmap_sync_store into the fresh map failed\n");
            exit(1);
        }
    }
    size_t bytes = sync_bytes(m);
    hmap_sync_free(m);
    return bytes;
}

static void c_sync(void *argp, FILE *out) {
    uint64_t n = *(const uint64_t *)argp, survivors = (n + 99) / 100;
    hmap_options opts = {.name = "hmap_sync"};
    runner r = {.m = new_sync(0, &opts), .out = out};
    lab_m(out, "shards", (double)hmap_sync_shards(r.m));
    step(&r, "empty", false);
    phase(&r, n);
    for (uint64_t i = 0; i < n; i++)
        store(&r, i);
    step(&r, "filled", false);
    phase(&r, n - survivors);
    for (uint64_t i = 0; i < n; i++)
        if (!lab_survives(i))
            del(&r, i);
    step(&r, "deleted99", true);
    phase(&r, survivors);
    for (uint64_t i = 0; i < n; i += 100)
        del(&r, i);
    step(&r, "deletedall", true);
    r.every = 1;
    store_and_miss(&r, "round1", 2 * n);
    store_and_miss(&r, "round2", 3 * n);
    hmap_sync_free(r.m);
    lab_m(out, "fresh.bytes", (double)fresh_sync_bytes(survivors));
}

/* ---- the section ---- */

static const char *const steps[] = {"empty",         "filled",        "deleted99",     "deletedall",
                                    "round1_stored", "round1_missed", "round2_stored", "round2_missed"};
static const char *const step_titles[] = {"new, empty",  "filled",           "99% deleted",
                                          "all deleted", "1 new key stored", "2 lookups missed",
                                          "another key", "3 lookups missed"};
enum { NSTEPS = 8 };

static double fig(const lab_data *d, const char *step, const char *what) {
    char key[64];
    snprintf(key, sizeof key, "%s.%s", step, what);
    return lab_num(d, key);
}

static const char *int_cell(double v, char buf[32]) {
    if (isnan(v) || v < 0)
        snprintf(buf, 32, "—");
    else
        snprintf(buf, 32, "%.0f", v);
    return buf;
}

static tc_table *steps_table(const lab_data *h, const lab_data *g) {
    static const char *const head[] = {"step",          "entries",       "hmap_sync bytes", "library live",
                                       "hmap_sync RSS", "sync.Map heap", "sync.Map RSS"};
    tc_table *t = tc_table_new("Bytes held and RSS at each step:", 7, head, "lrrrrrr");
    for (int s = 0; s < NSTEPS; s++) {
        char b[6][32];
        tc_table_addf(
            t, step_titles[s], lab_fmt_count(fig(h, steps[s], "count"), b[0]),
            lab_fmt_bytes(fig(h, steps[s], "bytes"), b[1]), lab_fmt_bytes(fig(h, steps[s], "live"), b[2]),
            lab_fmt_bytes(fig(h, steps[s], "rss"), b[3]), lab_fmt_bytes(fig(g, steps[s], "bytes"), b[4]),
            lab_fmt_bytes(fig(g, steps[s], "rss"), b[5]));
    }
    if (!g->ok)
        tc_table_hide(t, 5), tc_table_hide(t, 6);
    return t;
}

static tc_table *ratio_table(const lab_data *h, const lab_data *g) {
    static const char *const head[] = {
        "map",       "held after 99% deleted", "÷ fresh", "after reclaim", "÷ fresh", "fresh map",
        "RSS after", "RSS, handed back"};
    tc_table *t =
        tc_table_new("After deleting 99%, against a fresh map of the survivors:", 8, head, "lrrrrrrr");
    char b[8][32];
    double fresh = lab_num(h, "fresh.bytes"), held = lab_num(h, "deleted99.bytes"),
           rec = lab_num(h, "deleted99.reclaimed_bytes");
    tc_table_addf(t, "hmap_sync", lab_fmt_bytes(held, b[0]), tc_fmt_ratio(held / fresh, b[1]),
                  lab_fmt_bytes(rec, b[2]), tc_fmt_ratio(rec / fresh, b[3]), lab_fmt_bytes(fresh, b[4]),
                  lab_fmt_bytes(fig(h, "deleted99", "rss"), b[5]),
                  lab_fmt_bytes(fig(h, "deleted99", "rss_released"), b[6]));
    if (g->ok) {
        fresh = lab_num(g, "fresh.bytes"), held = lab_num(g, "deleted99.bytes");
        tc_table_addf(t, "sync.Map", lab_fmt_bytes(held, b[0]), tc_fmt_ratio(held / fresh, b[1]), "—", "—",
                      lab_fmt_bytes(fresh, b[4]), lab_fmt_bytes(fig(g, "deleted99", "rss"), b[5]),
                      lab_fmt_bytes(fig(g, "deleted99", "rss_released"), b[6]));
    }
    return t;
}

static bool inside_known(const lab_data *g) { return g->ok && lab_num(g, "inside") == 1; }

static tc_table *inside_table(const lab_data *g) {
    static const char *const head[] = {"step",     "read map",  "live",      "deleted", "expunged",
                                       "read's B", "dirty map", "dirty's B", "heap"};
    tc_table *t =
        tc_table_new("Inside sync.Map, read through unsafe: the entries of its read map and dirty map, "
                     "each map's B (—: no such map):",
                     9, head, "lrrrrrrrr");
    for (int s = 0; s < NSTEPS; s++) {
        char b[8][32];
        tc_table_addf(
            t, step_titles[s], int_cell(fig(g, steps[s], "read"), b[0]),
            int_cell(fig(g, steps[s], "read_live"), b[1]), int_cell(fig(g, steps[s], "read_deleted"), b[2]),
            int_cell(fig(g, steps[s], "read_expunged"), b[3]), int_cell(fig(g, steps[s], "read_B"), b[4]),
            int_cell(fig(g, steps[s], "dirty"), b[5]), int_cell(fig(g, steps[s], "dirty_B"), b[6]),
            lab_fmt_bytes(fig(g, steps[s], "bytes"), b[7]));
    }
    return t;
}

static void plot(lab_section *s, const lab_data *h, const lab_data *g) {
    const lab_memory_line lines[2] = {{.data = h, .name = "hmap_sync", .colour = LAB_C_HMAP},
                                      {.data = g,
                                       .name = "sync.Map",
                                       .colour = LAB_C_GO,
                                       .bytes_label = "heap (HeapAlloc after a GC)",
                                       .dots = true /* a point per GC: few of them */}};
    char title[128], b[32];
    snprintf(title, sizeof title,
             "sync.Map and hmap_sync: fill %s, delete 99%%, delete the rest, use it again",
             tc_fmt_count(s->n, b));
    lab_memory_plot(
        s, lines, 2, "new keys, missed lookups", 7, title,
        "The last phase: a new key stored, 2 lookups of absent keys, another key, 3 lookups. "
        "hmap_sync_reclaim() runs at the end of each delete phase.",
        "Memory of the two concurrent maps, on a log axis: a line that stays up after \"delete 99%\" is "
        "memory kept for entries that are gone.");
}

/* ---- claims ---- */

static void go_memory_claim(lab_section *s, const lab_data *g) {
    char m[600], b[8][32];
    double filled = fig(g, "filled", "bytes"), d99 = fig(g, "deleted99", "bytes"),
           all = fig(g, "deletedall", "bytes"), fresh = lab_num(g, "fresh.bytes");
    snprintf(
        m, sizeof m,
        "sync.Map's heap: %s filled, %s after 99%% deleted (%s a fresh sync.Map of the survivors, %s), %s "
        "after all deleted; then %s once a new key was stored, %s after 2 missed lookups, %s after "
        "another key and 3",
        lab_fmt_bytes(filled, b[0]), lab_fmt_bytes(d99, b[1]), tc_fmt_ratio(d99 / fresh, b[2]),
        lab_fmt_bytes(fresh, b[3]), lab_fmt_bytes(all, b[4]),
        lab_fmt_bytes(fig(g, "round1_stored", "bytes"), b[5]),
        lab_fmt_bytes(fig(g, "round1_missed", "bytes"), b[6]),
        lab_fmt_bytes(fig(g, "round2_missed", "bytes"), b[7]));
    const char *claim = "sync.Map gives memory back after Delete";
    if (!g->ok) {
        lab_claim_add(s, LAB_UNTESTED, claim, m, "Go's sync.Map was not measured");
        return;
    }
    double last = fig(g, "round2_missed", "bytes");
    char later[96];
    if (last < all / 2)
        snprintf(later, sizeof later, "it came down to %s only after later stores and lookups", b[7]);
    else
        snprintf(later, sizeof later, "later stores and lookups left %s", b[7]);
    if (d99 <= 2 * fresh)
        lab_claim_add(s, LAB_HOLDS, claim, m, "after the deletes it held %s of a fresh sync.Map's bytes",
                      b[2]);
    else if (all < filled / 2)
        lab_claim_add(
            s, LAB_PARTLY, claim, m,
            "with every key deleted it held %.0f%% of its filled heap (%s), but %s a fresh map after "
            "99%%; %s",
            100 * all / filled, b[4], b[2], later);
    else
        lab_claim_add(s, LAB_DOES_NOT_HOLD, claim, m,
                      "with every key deleted it still held %.0f%% of its filled heap (%s); %s",
                      100 * all / filled, b[4], later);
}

/* What the states read inside sync.Map show (inside_known only). */
typedef struct inside_seen {
    bool kept;     /* with every key deleted, the read map still held them all, as deleted entries */
    bool expunged; /* storing a new key marked those expunged and built a dirty map of that key alone */
    bool sized;    /* that dirty map of one entry was made for the read map's entries (its B > 0) */
    bool promoted; /* the missed lookups made that the read map, and the heap fell, twice */
} inside_seen;

static inside_seen inside_of(const lab_data *g) {
    double all_read = fig(g, "deletedall", "read"), all_nil = fig(g, "deletedall", "read_deleted");
    double h_all = fig(g, "deletedall", "bytes"), h_m1 = fig(g, "round1_missed", "bytes"),
           h_m2 = fig(g, "round2_missed", "bytes");
    return (inside_seen){.kept =
                             all_read > 0 && all_nil == all_read && h_all >= fig(g, "filled", "bytes") / 2,
                         .expunged = fig(g, "round1_stored", "read_expunged") == all_nil &&
                                     fig(g, "round1_stored", "dirty") == 1,
                         .sized = fig(g, "round1_stored", "dirty_B") > 0,
                         .promoted = fig(g, "round1_missed", "read") == 1 && h_m1 < h_all && h_m2 < h_m1};
}

static bool inside_shown(const lab_data *g) {
    if (!inside_known(g))
        return false;
    inside_seen v = inside_of(g);
    return v.kept && v.expunged && v.sized && v.promoted;
}

/* The internals claim: its reason states the mechanism only when the measured states show it. */
static void go_inside_claim(lab_section *s, const lab_data *g) {
    const char *claim = "sync.Map: deleted entries stay in its read map until a new key is stored and missed "
                        "lookups promote the dirty map";
    if (!inside_known(g)) {
        const char *why = lab_str(g, "inside_missing");
        lab_claim_add(s, LAB_UNTESTED, claim, "—", "%s",
                      g->ok ? (why ? why : "sync.Map's inside was not read")
                            : "Go's sync.Map was not measured");
        return;
    }
    char m[800], b[4][32];
    double all_nil = fig(g, "deletedall", "read_deleted"), readB1 = fig(g, "round1_missed", "read_B");
    snprintf(
        m, sizeof m,
        "read map: %.0f entries after 99%% deleted (the deletes promoted the dirty map once), %.0f after "
        "all deleted, %.0f of them deleted; a new key stored: %.0f expunged, a dirty map of %.0f entry "
        "with B %.0f, heap %s → %s; 2 missed lookups: read map of %.0f entry, B %.0f, heap %s; another "
        "key and 3 missed lookups: B %.0f, heap %s",
        fig(g, "deleted99", "read"), fig(g, "deletedall", "read"), all_nil,
        fig(g, "round1_stored", "read_expunged"), fig(g, "round1_stored", "dirty"),
        fig(g, "round1_stored", "dirty_B"), lab_fmt_bytes(fig(g, "deletedall", "bytes"), b[0]),
        lab_fmt_bytes(fig(g, "round1_stored", "bytes"), b[1]), fig(g, "round1_missed", "read"), readB1,
        lab_fmt_bytes(fig(g, "round1_missed", "bytes"), b[2]), fig(g, "round2_missed", "read_B"),
        lab_fmt_bytes(fig(g, "round2_missed", "bytes"), b[3]));
    inside_seen v = inside_of(g);
    if (v.kept && v.expunged && v.sized && v.promoted)
        lab_claim_add(
            s, LAB_HOLDS, claim, m,
            "%.0f deleted entries stayed until a store marked them expunged; the promotion dropped them "
            "(heap %s → %s) but kept a map sized for them (B %.0f), gone only at the next promotion (%s)",
            all_nil, b[1], b[2], readB1, b[3]);
    else
        lab_claim_add(
            s, v.kept || v.expunged || v.promoted ? LAB_PARTLY : LAB_DOES_NOT_HOLD, claim, m,
            "the states read show it only in part: deleted entries %s, expunged at the store: %s, memory "
            "back at the promotions: %s",
            v.kept ? "stayed" : "did not stay", v.expunged ? "yes" : "no", v.promoted ? "yes" : "no");
}

static void hmap_sync_claim(lab_section *s, const lab_data *h) {
    char m[700], b[10][32];
    double filled = fig(h, "filled", "bytes"), d99 = fig(h, "deleted99", "bytes"),
           rec = fig(h, "deleted99", "reclaimed_bytes"), fresh = lab_num(h, "fresh.bytes"),
           all = fig(h, "deletedall", "bytes");
    snprintf(m, sizeof m,
             "hmap_sync (%.0f shards): %s filled; after 99%% deleted %s (%s a fresh hmap_sync of the "
             "survivors, %s), %s after hmap_sync_reclaim (%s, %.0f deferred frees left); %s after all "
             "deleted; RSS %s filled, %s after the deletes, %s with memory handed back",
             lab_num(h, "shards"), lab_fmt_bytes(filled, b[0]), lab_fmt_bytes(d99, b[1]),
             tc_fmt_ratio(d99 / fresh, b[2]), lab_fmt_bytes(fresh, b[3]), lab_fmt_bytes(rec, b[4]),
             tc_fmt_ratio(rec / fresh, b[5]), fig(h, "deleted99", "deferred_left"), lab_fmt_bytes(all, b[6]),
             lab_fmt_bytes(fig(h, "filled", "rss"), b[7]), lab_fmt_bytes(fig(h, "deleted99", "rss"), b[8]),
             lab_fmt_bytes(fig(h, "deleted99", "rss_released"), b[9]));
    const char *claim = "hmap_sync's bytes after deleting 99% are ≤ 2× a fresh hmap_sync of the survivors";
    if (d99 <= 2 * fresh)
        lab_claim_add(s, LAB_HOLDS, claim, m,
                      "right after the deletes it held %s of a fresh hmap_sync's bytes "
                      "(%s after hmap_sync_reclaim)",
                      b[2], b[5]);
    else if (rec <= 2 * fresh)
        lab_claim_add(s, LAB_PARTLY, claim, m,
                      "%s right after the deletes, with frees still deferred; %s once "
                      "hmap_sync_reclaim had run them",
                      b[2], b[5]);
    else
        lab_claim_add(s, LAB_DOES_NOT_HOLD, claim, m,
                      "it held %s of a fresh hmap_sync's bytes, %s after "
                      "hmap_sync_reclaim",
                      b[2], b[5]);
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap_sync"), *g = lab_section_data(s, "go");
    lab_progress("sync: hmap_sync");
    lab_run_c(h, "hmap_sync", c_sync, &s->n);
    lab_run_go(g, ctx, "sync", s->n, NULL, NULL, false);
    char b[32];
    lab_text(
        s,
        "Fill %s uint64 → uint64 keys, delete 99%% of them (every index not divisible by 100), delete the "
        "rest, then use the map again: store a new key and look up 2 absent keys, store another and look "
        "up 3. Each map in its own process, one thread doing every operation in the same order. hmap_sync: "
        "hmap_sync_get_stats().bytes (frees deferred for readers included), the library's live bytes "
        "(hmap_read_memstats), RSS; \"after reclaim\": once hmap_sync_reclaim() has run the deferred frees. "
        "sync.Map: HeapAlloc after runtime.GC() minus the heap before the map; its fresh map is a new "
        "sync.Map with the survivors stored (it takes no size hint). RSS handed back: after "
        "hmap_release_os_memory() (C) or debug.FreeOSMemory() (Go).",
        tc_fmt_count(s->n, b));
    if (!g->ok)
        lab_go_missing(s, ctx, g);
    lab_table(s, steps_table(h, g), false);
    lab_text(
        s, "library live (hmap_read_memstats) counts a block as freed when the map frees it; hmap_sync bytes "
           "also count the blocks whose free still waits until no reader can see them. After each delete "
           "step hmap_sync_reclaim() runs those frees, so the next step starts without them.");
    lab_table(s, ratio_table(h, g), false);
    if (inside_known(g))
        lab_table(s, inside_table(g), false);
    if (inside_shown(g))
        lab_text(
            s, "sync.Map's read map is read without a lock; the dirty map, behind a mutex, holds what the "
               "read map lacks. As measured above: Delete of a key in the read map only sets the entry's "
               "pointer to nil, and the entry stays; storing a new key builds a dirty map from the read "
               "map's live entries, sized for all of its entries, and marks the deleted ones expunged; once "
               "lookups have missed as often as the dirty map has entries, it becomes the read map and the "
               "old one is garbage.");
    else if (g->ok && !inside_known(g)) {
        const char *why = lab_str(g, "inside_missing");
        lab_text(s, "sync.Map's read map and dirty map were not read: %s.", why ? why : "unknown layout");
    }
    plot(s, h, g);
    go_memory_claim(s, g);
    go_inside_claim(s, g);
    hmap_sync_claim(s, h);
}

const lab_experiment lab_sync = {
    .name = "sync",
    .number = 9,
    .title = "the concurrent maps after deleting 99%: sync.Map and hmap_sync",
    .help = "sync.Map vs hmap_sync: fill, delete 99%, delete all, use again; bytes held, RSS",
    .default_n = 1000000,
    .quick_n = 20000,
    .n_means = "keys",
    .run = run,
};
