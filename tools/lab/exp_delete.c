/* SPDX-License-Identifier: MIT */
/*
 * exp_delete.c — 2. delete: fill n, delete 99%, delete the rest, fill n again.
 *
 * The central complaint about Go's map: it keeps its memory after deletes. Three implementations, each
 * in its own process: Go's map (the Go companion), hmap with no_shrink (Go's behaviour, for comparison
 * inside one allocator) and hmap. At each step: the bytes held (hmap_get_stats().bytes; Go: HeapAlloc
 * after runtime.GC(), from before the map existed), RSS, and after the two delete steps RSS once memory
 * has been handed back explicitly (hmap_release_os_memory; Go: debug.FreeOSMemory). Then the remedies usually
 * given for Go: clear (the range-and-delete loop, which the compiler turns into mapclear), copying
 * into a new map made with the live count, and the same made with the old count.
 */
#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct c_arg {
    uint64_t n;
    bool no_shrink;
} c_arg;

typedef struct runner {
    hmap *m;
    FILE *out;
    uint64_t op, every, n;
    const char *impl;
} runner;

static void sample(runner *r) {
    hmap_stats st;
    hmap_get_stats(r->m, &st);
    lab_p(r->out, "bytes", (double)r->op, (double)st.bytes);
    lab_p(r->out, "rss", (double)r->op, (double)tc_rss_bytes());
}

static void tick(runner *r) {
    if (++r->op % r->every == 0) {
        sample(r);
        if (r->op % (r->n / 10 ? r->n / 10 : 1) == 0)
            lab_progress("delete: %s, %llu%% of the operations", r->impl,
                         (unsigned long long)(100 * r->op / (r->n * 3)));
    }
}

/* Sample each phase 100 times, however short (the last deletes are 1% of the operations). */
static void phase(runner *r, uint64_t ops) { r->every = ops / 100 ? ops / 100 : 1; }

static void step(runner *r, const char *name, bool release) {
    hmap_stats st;
    hmap_get_stats(r->m, &st);
    char key[64];
    uint64_t rss = tc_rss_bytes();
    lab_r(r->out, "step", "%s %zu %zu %llu %u", name, st.count, st.bytes, (unsigned long long)rss, st.B);
    snprintf(key, sizeof key, "%s.bytes", name), lab_m(r->out, key, (double)st.bytes);
    snprintf(key, sizeof key, "%s.rss", name), lab_m(r->out, key, (double)rss);
    snprintf(key, sizeof key, "%s.B", name), lab_m(r->out, key, st.B);
    snprintf(key, sizeof key, "%s.count", name), lab_m(r->out, key, (double)st.count);
    if (release) {
        lab_release();
        snprintf(key, sizeof key, "%s.rss_released", name), lab_m(r->out, key, (double)tc_rss_bytes());
    }
    sample(r);
}

static void c_delete(void *argp, FILE *out) {
    const c_arg *a = argp;
    runner r = {.m = lab_u64_map(0, a->no_shrink, a->no_shrink ? "no_shrink" : "hmap"),
                .out = out,
                .every = a->n / 100 ? a->n / 100 : 1,
                .n = a->n,
                .impl = a->no_shrink ? "no_shrink" : "hmap"};
    uint64_t survivors = (a->n + 99) / 100;
    step(&r, "empty", false);
    for (uint64_t i = 0; i < a->n; i++)
        lab_put(r.m, i), tick(&r);
    step(&r, "filled", false);
    phase(&r, a->n - survivors);
    for (uint64_t i = 0; i < a->n; i++)
        if (!lab_survives(i))
            lab_del(r.m, i), tick(&r);
    step(&r, "deleted99", true);
    phase(&r, survivors);
    for (uint64_t i = 0; i < a->n; i += 100)
        lab_del(r.m, i), tick(&r);
    step(&r, "deletedall", true);
    phase(&r, a->n);
    for (uint64_t i = 0; i < a->n; i++)
        lab_put(r.m, a->n + i), tick(&r);
    step(&r, "refilled", false);
    hmap_free(r.m);
    lab_m(out, "fresh.bytes", (double)lab_fresh_bytes(0, 100, (a->n + 99) / 100));
    /* what hmap_clear keeps: a full map, cleared */
    hmap *m = lab_u64_map(0, a->no_shrink, "clear");
    for (uint64_t i = 0; i < a->n; i++)
        lab_put(m, i);
    hmap_stats st;
    hmap_get_stats(m, &st);
    lab_m(out, "clear.bytes_before", (double)st.bytes);
    lab_m(out, "clear.B_before", st.B);
    hmap_clear(m);
    hmap_get_stats(m, &st);
    lab_m(out, "clear.bytes_after", (double)st.bytes);
    lab_m(out, "clear.B_after", st.B);
    hmap_free(m);
}

/* ---- the section ---- */

static const char *const steps[] = {"empty", "filled", "deleted99", "deletedall", "refilled"};
static const char *const step_titles[] = {"new, empty", "filled", "99% deleted", "all deleted", "refilled"};
enum { NSTEPS = 5 };

static const char *bytes_cell(const lab_data *d, const char *step, const char *what, char buf[32]) {
    char key[64];
    snprintf(key, sizeof key, "%s.%s", step, what);
    double v = lab_num(d, key);
    return isnan(v) ? "—" : lab_fmt_bytes(v, buf);
}

static tc_table *steps_table(const lab_data *h, const lab_data *ns, const lab_data *g, uint64_t n) {
    static const char *const head[] = {"step",     "entries",         "hmap bytes",
                                       "hmap RSS", "no_shrink bytes", "no_shrink RSS",
                                       "Go bytes", "Go RSS",          "Go B"};
    tc_table *t = tc_table_new("Bytes held and RSS at each step:", 9, head, "lrrrrrrrr");
    const uint64_t entries[] = {0, n, (n + 99) / 100, 0, n};
    for (int s = 0; s < NSTEPS; s++) {
        char b[8][32], key[64];
        snprintf(key, sizeof key, "%s.B", steps[s]);
        double B = lab_num(g, key);
        if (isnan(B))
            snprintf(b[7], 32, "—");
        else
            snprintf(b[7], 32, "%.0f", B);
        tc_table_addf(t, step_titles[s], tc_fmt_count(entries[s], b[0]),
                      bytes_cell(h, steps[s], "bytes", b[1]), bytes_cell(h, steps[s], "rss", b[2]),
                      bytes_cell(ns, steps[s], "bytes", b[3]), bytes_cell(ns, steps[s], "rss", b[4]),
                      bytes_cell(g, steps[s], "bytes", b[5]), bytes_cell(g, steps[s], "rss", b[6]), b[7]);
    }
    if (!g->ok)
        tc_table_hide(t, 6), tc_table_hide(t, 7), tc_table_hide(t, 8);
    return t;
}

static tc_table *ratio_table(const lab_data *ds[3], const char *const names[3]) {
    static const char *const head[] = {"map",       "held after 99% deleted", "fresh map", "held ÷ fresh",
                                       "RSS after", "RSS, memory handed back"};
    tc_table *t =
        tc_table_new("After deleting 99%, against a fresh map of the survivors:", 6, head, "lrrrrr");
    for (int i = 0; i < 3; i++) {
        char b[5][32];
        if (!ds[i]->ok)
            continue;
        double held = lab_num(ds[i], "deleted99.bytes"), fresh = lab_num(ds[i], "fresh.bytes");
        tc_table_addf(t, names[i], lab_fmt_bytes(held, b[0]), lab_fmt_bytes(fresh, b[1]),
                      tc_fmt_ratio(held / fresh, b[2]), bytes_cell(ds[i], "deleted99", "rss", b[3]),
                      bytes_cell(ds[i], "deleted99", "rss_released", b[4]));
    }
    return t;
}

static tc_table *remedies_table(const lab_data *h, const lab_data *g, uint64_t n) {
    static const char *const head[] = {"remedy", "map", "bytes before", "bytes after", "B before → after"};
    tc_table *t = tc_table_new("Remedies:", 5, head, "llrrr");
    char b[4][32], BB[64], title[96];
    if (g->ok) {
        snprintf(BB, sizeof BB, "%.0f → %.0f", lab_num(g, "clear.B_before"), lab_num(g, "clear.B_after"));
        tc_table_addf(t, "clear: for k := range m { delete(m, k) } (mapclear)", "Go",
                      lab_fmt_bytes(lab_num(g, "clear.bytes_before"), b[0]),
                      lab_fmt_bytes(lab_num(g, "clear.bytes_after"), b[1]), BB);
        snprintf(BB, sizeof BB, "%.0f → %.0f", lab_num(g, "deleted99.B"), lab_num(g, "fresh.B"));
        snprintf(title, sizeof title, "copy the survivors into make(map, len(m))");
        tc_table_addf(t, title, "Go", lab_fmt_bytes(lab_num(g, "deleted99.bytes"), b[0]),
                      lab_fmt_bytes(lab_num(g, "fresh.bytes"), b[1]), BB);
        snprintf(BB, sizeof BB, "%.0f → %.0f", lab_num(g, "deleted99.B"), lab_num(g, "oldlen.B"));
        snprintf(title, sizeof title, "copy them into make(map, %s), the old len", tc_fmt_count(n, b[3]));
        tc_table_addf(t, title, "Go", lab_fmt_bytes(lab_num(g, "deleted99.bytes"), b[0]),
                      lab_fmt_bytes(lab_num(g, "oldlen.bytes"), b[1]), BB);
    }
    snprintf(BB, sizeof BB, "%.0f → %.0f", lab_num(h, "clear.B_before"), lab_num(h, "clear.B_after"));
    tc_table_addf(t, "hmap_clear", "hmap", lab_fmt_bytes(lab_num(h, "clear.bytes_before"), b[0]),
                  lab_fmt_bytes(lab_num(h, "clear.bytes_after"), b[1]), BB);
    tc_table_wrap(t, 0);
    return t;
}

static void plot(lab_section *s, const lab_data *ds[3], const char *const names[3]) {
    static const char *const colours[3] = {LAB_C_HMAP, LAB_C_NOSHRINK, LAB_C_GO};
    lab_memory_line lines[3];
    for (int i = 0; i < 3; i++)
        lines[i] =
            (lab_memory_line){.data = ds[i], .name = names[i], .colour = colours[i], .width = i == 1 ? 4 : 2};
    char title[128], b[32];
    snprintf(title, sizeof title, "Fill %s, delete 99%%, delete the rest, fill again: bytes held and RSS",
             tc_fmt_count(s->n, b));
    lab_memory_plot(
        s, lines, 3, "fill again", (double)s->n, title,
        "Go's bytes held here: its bucket arrays from the header (the table's figures are HeapAlloc "
        "after a GC).",
        "Memory through the four phases, on a log axis: a line that stays up after \"delete 99%\" "
        "is memory kept for entries that are gone.");
}

static void claims(lab_section *s, const lab_data *h, const lab_data *ns, const lab_data *g) {
    char m[512], b[4][32];
    bool go = g->ok;
    double gf = lab_num(g, "filled.bytes"), gd = lab_num(g, "deleted99.bytes"),
           ga = lab_num(g, "deletedall.bytes");
    snprintf(m, sizeof m,
             "Go's heap: %s filled, %s after 99%% deleted, %s after all deleted (after runtime.GC())",
             lab_fmt_bytes(gf, b[0]), lab_fmt_bytes(gd, b[1]), lab_fmt_bytes(ga, b[2]));
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "Delete only clears the slot; the memory stays", m,
                      "Go's map was not measured");
    else
        lab_claim_add(s, gd >= 0.95 * gf ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                      "Delete only clears the slot; the memory stays", m,
                      "deleting every entry left %.0f%% of the filled map's bytes on the heap",
                      100 * ga / gf);

    double B0 = lab_num(g, "filled.B"), B1 = lab_num(g, "deleted99.B"), B2 = lab_num(g, "deletedall.B"),
           B3 = lab_num(g, "refilled.B");
    snprintf(m, sizeof m,
             "Go's B: %.0f filled, %.0f after 99%% deleted, %.0f empty, %.0f refilled; hmap's B: %.0f, "
             "%.0f, %.0f, %.0f",
             B0, B1, B2, B3, lab_num(h, "filled.B"), lab_num(h, "deleted99.B"), lab_num(h, "deletedall.B"),
             lab_num(h, "refilled.B"));
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "B never decreases", m, "Go's map was not measured");
    else
        lab_claim_add(s, B0 == B1 && B1 == B2 && B3 >= B2 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                      "B never decreases", m,
                      "Go's B stayed %.0f with no entry left; nothing in runtime/map.go lowers it", B2);

    snprintf(m, sizeof m, "Go: clear of %s entries kept %s and B %.0f → %.0f; hmap_clear: %s → %s",
             tc_fmt_count(s->n, b[0]), lab_fmt_bytes(lab_num(g, "clear.bytes_after"), b[1]),
             lab_num(g, "clear.B_before"), lab_num(g, "clear.B_after"),
             lab_fmt_bytes(lab_num(h, "clear.bytes_before"), b[2]),
             lab_fmt_bytes(lab_num(h, "clear.bytes_after"), b[3]));
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "clear() keeps the array", m, "Go's map was not measured");
    else
        lab_claim_add(
            s,
            lab_num(g, "clear.bytes_after") >= 0.95 * lab_num(g, "clear.bytes_before") ? LAB_HOLDS
                                                                                       : LAB_DOES_NOT_HOLD,
            "clear() keeps the array", m,
            "mapclear zeroes the buckets in place (Go 1.19 has no clear builtin: the range-delete loop "
            "compiles to it)");

    double fresh = lab_num(g, "fresh.bytes"), old = lab_num(g, "oldlen.bytes");
    snprintf(m, sizeof m,
             "Go: survivors copied into make(map, len(m)): %s (B %.0f); into make(map, %s): %s (B %.0f)",
             lab_fmt_bytes(fresh, b[0]), lab_num(g, "fresh.B"), tc_fmt_count(s->n, b[1]),
             lab_fmt_bytes(old, b[2]), lab_num(g, "oldlen.B"));
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "Copying into a new map is the only way back", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, fresh < gd / 10 && old > gd / 2 ? LAB_HOLDS : LAB_PARTLY,
            "Copying into a new map is the only way back", m,
            "for Go's map: a map made for the live count held %s of the old one's bytes; made with the "
            "old len it keeps them",
            tc_fmt_ratio(fresh / gd, b[3]));

    double hf = lab_num(h, "filled.bytes"), hd = lab_num(h, "deleted99.bytes"),
           hfresh = lab_num(h, "fresh.bytes");
    double nf = lab_num(ns, "filled.bytes"), nd = lab_num(ns, "deleted99.bytes");
    snprintf(m, sizeof m, "hmap: %s → %s (%s a fresh map); no_shrink: %s → %s", lab_fmt_bytes(hf, b[0]),
             lab_fmt_bytes(hd, b[1]), tc_fmt_ratio(hd / hfresh, b[2]), lab_fmt_bytes(nf, b[3]),
             lab_fmt_bytes(nd, b[0]));
    lab_claim_add(s, hd <= 2 * hfresh && nd >= nf ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                  "hmap's memory follows the live count down; no_shrink keeps it, as Go does", m,
                  "after the deletes hmap held %s of a fresh map's bytes, no_shrink all of its peak",
                  tc_fmt_ratio(hd / hfresh, b[1]));
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap"), *ns = lab_section_data(s, "no_shrink"),
             *g = lab_section_data(s, "go");
    c_arg a1 = {s->n, false}, a2 = {s->n, true};
    lab_run_c(h, "hmap", c_delete, &a1);
    lab_run_c(ns, "no_shrink", c_delete, &a2);
    lab_run_go(g, ctx, "delete", s->n, NULL, NULL, false);
    char b[32];
    lab_text(
        s,
        "Fill %s uint64 → uint64 entries, delete 99%% of them (every index not divisible by 100), delete "
        "the rest, fill again. Each map in its own process. Go's bytes: HeapAlloc after runtime.GC() minus "
        "the heap before the map; RSS handed back: after hmap_release_os_memory() (C) or "
        "debug.FreeOSMemory() (Go).",
        tc_fmt_count(s->n, b));
    if (!g->ok)
        lab_go_missing(s, ctx, g);
    const lab_data *ds[3] = {h, ns, g};
    const char *const names[3] = {"hmap", "hmap no_shrink", "Go map"};
    lab_table(s, steps_table(h, ns, g, s->n), false);
    lab_table(s, ratio_table(ds, names), false);
    lab_table(s, remedies_table(h, g, s->n), false);
    plot(s, ds, names);
    claims(s, h, ns, g);
}

const lab_experiment lab_delete = {
    .name = "delete",
    .number = 2,
    .title = "fill, delete 99%, delete all, refill: does memory come back?",
    .help = "bytes held and RSS at each step: Go's map, hmap no_shrink, hmap; clear and rebuild",
    .default_n = 1000000,
    .quick_n = 20000,
    .n_means = "entries",
    .run = run,
};
