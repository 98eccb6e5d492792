/* SPDX-License-Identifier: MIT */
/*
 * exp_values.c — 4. values: n values of 1 MiB owned by the map, then deleted.
 *
 * A popular example: 100,000 values of 1 MiB in a sync.Map stay after Delete. Scaled to n (default
 * 1,000), every page of every value written so it is resident. Go: a map[uint64]*[1 MiB]byte (delete, then
 * runtime.GC(): the values are garbage, the buckets stay), and sync.Map (Delete, then GC). hmap: a map of
 * pointers whose val_drop frees the block, so each value goes inside hmap_del, and the buckets follow with
 * the shrink. RSS after each step, and after memory is handed back (debug.FreeOSMemory;
 * hmap_release_os_memory).
 */
#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { VALUE_SIZE = 1 << 20 };

static void free_value(void *slot) { free(*(void **)slot); }

static void hmap_values(void *arg, FILE *out) {
    uint64_t n = *(const uint64_t *)arg;
    static const hmap_type type = {.key_size = 8, .val_size = sizeof(void *), .val_drop = free_value};
    hmap *m = hmap_new(&type, 0);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char *v = malloc(VALUE_SIZE);
        if (!v)
            exit(1);
        for (size_t p = 0; p < VALUE_SIZE; p += 4096)
            v[p] = (unsigned char)(i | 1);
        uint64_t k = lab_key(i);
        hmap_put(m, &k, &v);
    }
    hmap_stats st;
    hmap_get_stats(m, &st);
    lab_m(out, "filled.map_bytes", (double)st.bytes);
    lab_m(out, "filled.rss", (double)tc_rss_bytes());
    lab_m(out, "filled.B", st.B);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = lab_key(i);
        hmap_del(m, &k);
    }
    hmap_get_stats(m, &st);
    lab_m(out, "deleted.map_bytes", (double)st.bytes);
    lab_m(out, "deleted.rss", (double)tc_rss_bytes());
    lab_m(out, "deleted.B", st.B);
    lab_m(out, "released.ns", (double)lab_release());
    lab_m(out, "released.rss", (double)tc_rss_bytes());
    hmap_free(m);
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap"), *g = lab_section_data(s, "go");
    lab_progress("values: hmap, %llu values of 1 MiB", (unsigned long long)s->n);
    lab_run_c(h, "hmap", hmap_values, &s->n);
    lab_run_go(g, ctx, "values", s->n, NULL, NULL, false);
    lab_text(
        s,
        "%llu values of 1 MiB each (every page written), owned by the map, then all deleted. Go: "
        "map[uint64]*[1 MiB]byte and sync.Map, heap = HeapAlloc after runtime.GC(); hmap: a map of pointers "
        "whose val_drop frees each block. RSS as left after the step, then after memory is handed back "
        "(debug.FreeOSMemory(); hmap_release_os_memory()).",
        (unsigned long long)s->n);
    if (!g->ok)
        lab_go_missing(s, ctx, g);

    static const char *const head[] = {"step",         "Go map heap",    "Go map RSS", "sync.Map heap",
                                       "sync.Map RSS", "hmap map bytes", "hmap RSS"};
    tc_table *t =
        tc_table_new("Heap and RSS (Go: after runtime.GC(); the values are 1 MiB each):", 7, head, "lrrrrrr");
    static const char *const go_steps[] = {"filled", "deleted_gc", "released"};
    static const char *const h_steps[] = {"filled", "deleted", "released"};
    static const char *const titles[] = {"filled", "deleted (Go: + runtime.GC())", "memory handed back"};
    double bars[3 * 4];
    for (int i = 0; i < 3; i++) {
        char k[6][64], b[6][32];
        snprintf(k[0], 64, "map.%s.heap", go_steps[i]);
        snprintf(k[1], 64, "map.%s.rss", go_steps[i]);
        snprintf(k[2], 64, "sync.%s.heap", go_steps[i]);
        snprintf(k[3], 64, "sync.%s.rss", go_steps[i]);
        snprintf(k[4], 64, "%s.map_bytes", h_steps[i]);
        snprintf(k[5], 64, "%s.rss", h_steps[i]);
        double v[6] = {lab_num(g, k[0]), lab_num(g, k[1]), lab_num(g, k[2]),
                       lab_num(g, k[3]), lab_num(h, k[4]), lab_num(h, k[5])};
        for (int c = 0; c < 6; c++)
            isnan(v[c]) ? snprintf(b[c], 32, "—") : (void)lab_fmt_bytes(v[c], b[c]);
        tc_table_addf(t, titles[i], b[0], b[1], b[2], b[3], b[4], b[5]);
        bars[i * 4 + 0] = v[1], bars[i * 4 + 1] = v[3], bars[i * 4 + 2] = v[5], bars[i * 4 + 3] = v[0];
    }
    if (!g->ok)
        for (size_t c = 1; c <= 4; c++)
            tc_table_hide(t, c);
    lab_table(s, t, false);

    static const char *const groups[] = {"filled", "deleted (Go: + GC)", "memory handed back"};
    static const char *const labels[] = {"Go map RSS", "sync.Map RSS", "hmap RSS", "Go map heap"};
    static const char *const colours[] = {LAB_C_GO, LAB_C_OTHER, LAB_C_HMAP, "#98df8a"};
    char title[128];
    snprintf(title, sizeof title,
             "%llu values of 1 MiB: RSS after fill, after the deletes, after handing memory back",
             (unsigned long long)s->n);
    tc_bars bc = {
        .title = title,
        .groups = groups,
        .ngroups = 3,
        .labels = labels,
        .colours = colours,
        .nbars = 4,
        .values = bars,
        .y = {.label = "bytes (log scale)", .scale = TC_LOG, .unit = TC_BYTES},
        .note = "Go's heap falls at the GC after the deletes; its RSS only when the runtime hands the pages "
                "back (here: debug.FreeOSMemory)."};
    tc_buf svg = {0};
    tc_svg_bars(&svg, &bc);
    lab_plot(s, &svg, "RSS of the three maps of 1 MiB values, log axis.");

    char m[600], b[6][32];
    double gf = lab_num(g, "map.filled.heap"), gd = lab_num(g, "map.deleted_gc.heap");
    snprintf(m, sizeof m,
             "Go map of pointers: heap %s → %s after delete + GC, B %.0f → %.0f; RSS %s after the GC, "
             "%s after FreeOSMemory",
             lab_fmt_bytes(gf, b[0]), lab_fmt_bytes(gd, b[1]), lab_num(g, "map.filled.B"),
             lab_num(g, "map.deleted_gc.B"), lab_fmt_bytes(lab_num(g, "map.deleted_gc.rss"), b[2]),
             lab_fmt_bytes(lab_num(g, "map.released.rss"), b[3]));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "The GC cannot reclaim what a map holds for deleted entries", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, gd < gf / 100 ? LAB_PARTLY : LAB_HOLDS,
            "The GC cannot reclaim what a map holds for deleted entries", m,
            "the values went at the next GC (their slots were cleared); only the buckets stay, B %.0f",
            lab_num(g, "map.deleted_gc.B"));
    double sf = lab_num(g, "sync.filled.heap"), sd = lab_num(g, "sync.deleted_gc.heap");
    snprintf(m, sizeof m, "sync.Map: heap %s → %s after Delete + GC", lab_fmt_bytes(sf, b[0]),
             lab_fmt_bytes(sd, b[1]));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "sync.Map: the 1 MiB arrays stay after Delete", m,
                      "Go's map was not measured");
    else
        lab_claim_add(s, sd < sf / 100 ? LAB_DOES_NOT_HOLD : LAB_HOLDS,
                      "sync.Map: the 1 MiB arrays stay after Delete", m,
                      "Delete dropped the entries' pointers, and the next GC freed %s of arrays",
                      lab_fmt_bytes((sf - sd), b[2]));
    snprintf(m, sizeof m,
             "hmap: RSS %s filled, %s right after the deletes (map %s → %s), %s after "
             "hmap_release_os_memory (%s)",
             lab_fmt_bytes(lab_num(h, "filled.rss"), b[0]), lab_fmt_bytes(lab_num(h, "deleted.rss"), b[1]),
             lab_fmt_bytes(lab_num(h, "filled.map_bytes"), b[2]),
             lab_fmt_bytes(lab_num(h, "deleted.map_bytes"), b[3]),
             lab_fmt_bytes(lab_num(h, "released.rss"), b[4]), tc_fmt_ns(lab_num(h, "released.ns"), b[5]));
    lab_claim_add(s,
                  lab_num(h, "deleted.rss") < lab_num(h, "filled.rss") / 10 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                  "hmap with val_drop: the values go at the delete, the buckets with the shrink", m,
                  "each block was freed inside hmap_del, with no collector to wait for");
}

const lab_experiment lab_values = {
    .name = "values",
    .number = 4,
    .title = "values of 1 MiB owned by the map: what delete and the GC give back",
    .help = "n values of 1 MiB: Go map of pointers and sync.Map after delete + GC, hmap with val_drop",
    .default_n = 1000,
    .quick_n = 16,
    .n_means = "values of 1 MiB",
    .run = run,
};
