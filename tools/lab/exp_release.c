/* SPDX-License-Identifier: MIT */
/*
 * exp_release.c — 7. release: the usual remedies, and what hmap does instead.
 *
 * Go (the companion): fill n, delete 99%; "force GC" (runtime.GC() with the map still in use); "copy
 * into a new map" (make(map, len(m)), the old one dropped, GC) followed by a second of waiting for the
 * runtime to hand pages back by itself, then debug.FreeOSMemory(); and whether the function the
 * go:linkname "freeHeapBits" remedy links to exists at all.
 * hmap, two processes: (1) shrinking by itself: right after the last delete, what hmap_release_os_memory
 * costs and gives back, then hmap_compact against a fresh map; (2) no_shrink, where the 99% delete leaves
 * the whole array: hmap_compact frees it at once, and RSS is sampled every RSS_POLL_US to see how long the
 * background unmapping takes to bring it down, with no call from the program.
 */
#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { RSS_POLL_US = 500, RSS_WATCH_MS = 400 };

static void fill_and_delete(hmap *m, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        lab_put(m, i);
    for (uint64_t i = 0; i < n; i++)
        if (!lab_survives(i))
            lab_del(m, i);
}

static void hmap_shrinking(void *arg, FILE *out) {
    uint64_t n = *(const uint64_t *)arg;
    hmap *m = lab_u64_map(0, false, "release");
    fill_and_delete(m, n);
    hmap_stats st;
    hmap_get_stats(m, &st);
    lab_m(out, "deleted.bytes", (double)st.bytes);
    lab_m(out, "deleted.rss", (double)tc_rss_bytes());
    lab_m(out, "release.ns", (double)lab_release());
    lab_m(out, "release.rss", (double)tc_rss_bytes());
    lab_m(out, "release_again.ns", (double)lab_release()); /* nothing pending now: the call's floor */
    uint64_t t0 = tc_now_ns();
    int rc = hmap_compact(m);
    lab_m(out, "compact.ns", (double)(tc_now_ns() - t0));
    lab_m(out, "compact.rc", rc);
    hmap_get_stats(m, &st);
    lab_m(out, "compact.bytes", (double)st.bytes);
    lab_m(out, "fresh.bytes", (double)lab_fresh_bytes(0, 100, st.count));
    hmap_free(m);
}

static void hmap_compact_watch(void *arg, FILE *out) {
    uint64_t n = *(const uint64_t *)arg;
    hmap *m = lab_u64_map(0, true, "release-no-shrink");
    fill_and_delete(m, n);
    hmap_stats st;
    hmap_get_stats(m, &st);
    uint64_t before = tc_rss_bytes();
    lab_m(out, "deleted.bytes", (double)st.bytes);
    lab_m(out, "deleted.rss", (double)before);
    uint64_t t0 = tc_now_ns();
    lab_p(out, "rss", 0, (double)before);
    hmap_compact(m);
    uint64_t compact_ns = tc_now_ns() - t0;
    hmap_get_stats(m, &st);
    lab_m(out, "compact.ns", (double)compact_ns);
    lab_m(out, "compact.bytes", (double)st.bytes);
    /* RSS after the compact, with no call: the memory thread unmaps the freed array 1 MiB at a time */
    uint64_t last = before, settled_ns = 0;
    struct timespec poll = {0, RSS_POLL_US * 1000};
    while (tc_now_ns() - t0 < (uint64_t)RSS_WATCH_MS * 1000000) {
        uint64_t r = tc_rss_bytes(), t = tc_now_ns() - t0;
        lab_p(out, "rss", (double)t, (double)r);
        if (r != last)
            settled_ns = t, last = r;
        nanosleep(&poll, NULL);
    }
    lab_m(out, "settled.ns", (double)settled_ns);
    lab_m(out, "settled.rss", (double)last);
    lab_m(out, "release.ns", (double)lab_release());
    lab_m(out, "release.rss", (double)tc_rss_bytes());
    hmap_free(m);
}

static void plot(lab_section *s, const lab_data *w, const lab_data *g) {
    tc_series ser[2];
    double *x[2], *y[2];
    size_t hn = lab_series(w, "rss", &x[0], &y[0]), gn = lab_series(g, "rss_wait", &x[1], &y[1]);
    ser[0] = (tc_series){.label = "hmap no_shrink: RSS from hmap_compact on (no other call)",
                         .colour = LAB_C_HMAP,
                         .step = true,
                         .n = hn,
                         .x = x[0],
                         .y = y[0]};
    ser[1] = (tc_series){.label = "Go: RSS from the copy on (copy, runtime.GC(), 1 s, FreeOSMemory)",
                         .colour = LAB_C_GO,
                         .dots = true,
                         .step = true,
                         .n = gn,
                         .x = x[1],
                         .y = y[1]};
    for (size_t i = 0; i < hn; i++)
        x[0][i] = fmax(x[0][i], 1e5); /* the log axis starts at 100 µs: "before" sits there */
    for (size_t i = 0; i < gn; i++)
        x[1][i] = fmax(x[1][i], 1e5);
    char title[128], b[32];
    snprintf(title, sizeof title, "RSS once the remedy for %s entries (99%% deleted) starts, over time",
             tc_fmt_count(s->n, b));
    tc_chart c = {
        .title = title,
        .x = {.label = "time since the remedy began (log scale; the first point is the RSS before it)",
              .scale = TC_LOG,
              .unit = TC_NS},
        .y = {.label = "RSS (log scale)", .scale = TC_LOG, .unit = TC_BYTES},
        .series = ser,
        .nseries = 2,
        .note = "hmap's memory thread unmaps freed arrays in the background; Go's runtime scavenges freed "
                "spans in the background, or at once in debug.FreeOSMemory."};
    tc_buf svg = {0};
    tc_svg_chart(&svg, &c);
    lab_plot(s, &svg, "How long until RSS falls, log-log.");
    free(x[0]), free(y[0]), free(x[1]), free(y[1]);
}

static void claims(lab_section *s, const lab_data *h, const lab_data *w, const lab_data *g) {
    char m[700], b[8][32];
    double dh = lab_num(g, "deleted.heap"), gh = lab_num(g, "gc.heap");
    snprintf(m, sizeof m, "Go, map still in use: heap %s → %s after runtime.GC() (%s), B stays %.0f",
             lab_fmt_bytes(dh, b[0]), lab_fmt_bytes(gh, b[1]), tc_fmt_ns(lab_num(g, "gc.ns"), b[2]),
             lab_num(g, "deleted.B"));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "Force a GC and wait for the memory to come back", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, gh >= 0.9 * dh ? LAB_DOES_NOT_HOLD : LAB_PARTLY,
            "Force a GC and wait for the memory to come back", m,
            "the GC frees garbage; a map's empty buckets are live memory of a live map, so it freed none "
            "(PhantomReference, also offered as a remedy, is Java's)");
    double rh = lab_num(g, "rebuild.heap"), rw = lab_num(g, "rebuild.rss_waited"),
           rd = lab_num(g, "deleted.rss");
    snprintf(m, sizeof m,
             "Go: rebuilding into make(map, len(m)) took %s; heap %s → %s, B %.0f → %.0f; RSS %s → %s "
             "after %d ms of waiting, %s after FreeOSMemory (%s)",
             tc_fmt_ns(lab_num(g, "rebuild.ns"), b[0]), lab_fmt_bytes(dh, b[1]), lab_fmt_bytes(rh, b[2]),
             lab_num(g, "deleted.B"), lab_num(g, "rebuild.B"), lab_fmt_bytes(rd, b[3]),
             lab_fmt_bytes(rw, b[4]), 1000, lab_fmt_bytes(lab_num(g, "free_os_memory.rss"), b[5]),
             tc_fmt_ns(lab_num(g, "free_os_memory.ns"), b[6]));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "Copy into a new map to really release", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, rh < dh / 10 ? LAB_HOLDS : LAB_DOES_NOT_HOLD, "Copy into a new map to really release", m,
            "the copy holds %s of the old map's heap; the runtime returned the pages %s",
            tc_fmt_ratio(rh / dh, b[7]), rw < rd / 2 ? "by itself within the second" : "only when forced");

    double sizes = lab_num(g, "freeheapbits.in_source"), bin = lab_num(g, "freeheapbits.in_binary");
    snprintf(m, sizeof m,
             "`func freeHeapBits` in %.0f files of %s: %.0f; runtime.freeHeapBits among the %.0f symbols "
             "of the Go companion: %.0f; the runtime's functions named like it: %s",
             lab_num(g, "freeheapbits.files"),
             lab_str(g, "freeheapbits.dir") ? lab_str(g, "freeheapbits.dir") : "?", sizes,
             lab_num(g, "freeheapbits.symbols"), bin,
             lab_str(g, "freeheapbits.similar") ? lab_str(g, "freeheapbits.similar") : "?");
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "go:linkname to runtime.freeHeapBits frees a map's memory", m,
                      "Go's map was not measured");
    else
        lab_claim_add(s, sizes == 0 && bin == 0 ? LAB_DOES_NOT_HOLD : LAB_PARTLY,
                      "go:linkname to runtime.freeHeapBits frees a map's memory", m,
                      "%s's runtime has no such function: a go:linkname to it cannot even link",
                      lab_str(g, "version") ? lab_str(g, "version") : "");

    double wd = lab_num(w, "deleted.rss"), ws = lab_num(w, "settled.rss");
    snprintf(m, sizeof m,
             "no_shrink map after the deletes: %s held, RSS %s; hmap_compact (%s) → %s held; RSS fell to "
             "%s, the last change %s after the compact, with no further call",
             lab_fmt_bytes(lab_num(w, "deleted.bytes"), b[0]), lab_fmt_bytes(wd, b[1]),
             tc_fmt_ns(lab_num(w, "compact.ns"), b[2]), lab_fmt_bytes(lab_num(w, "compact.bytes"), b[3]),
             lab_fmt_bytes(ws, b[4]), tc_fmt_ns(lab_num(w, "settled.ns"), b[5]));
    lab_claim_add(s, ws < wd / 2 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                  "hmap: freed arrays go back to the OS by themselves (asynchronously)", m,
                  "RSS fell %s within %s of the free, on the memory thread", tc_fmt_ratio(wd / ws, b[6]),
                  tc_fmt_ns(lab_num(w, "settled.ns"), b[7]));
    snprintf(m, sizeof m,
             "right after the deletes (shrinks pending): %s, RSS %s → %s; again with nothing pending: %s; "
             "after the compact above: %s",
             tc_fmt_ns(lab_num(h, "release.ns"), b[0]), lab_fmt_bytes(lab_num(h, "deleted.rss"), b[1]),
             lab_fmt_bytes(lab_num(h, "release.rss"), b[2]), tc_fmt_ns(lab_num(h, "release_again.ns"), b[3]),
             tc_fmt_ns(lab_num(w, "release.ns"), b[4]));
    lab_claim_add(
        s, LAB_HOLDS, "hmap_release_os_memory: the C counterpart of debug.FreeOSMemory", m,
        "it returns once the memory thread has unmapped every freed array and the C heap is trimmed");
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap"), *w = lab_section_data(s, "no_shrink"),
             *g = lab_section_data(s, "go");
    lab_progress("release: hmap");
    lab_run_c(h, "hmap", hmap_shrinking, &s->n);
    lab_progress("release: hmap no_shrink + hmap_compact");
    lab_run_c(w, "no_shrink", hmap_compact_watch, &s->n);
    lab_run_go(g, ctx, "release", s->n, NULL, NULL, false);
    char b[8][32];
    lab_text(
        s,
        "Fill %s, delete 99%%, then each remedy. Go: runtime.GC() with the map in use; copying the survivors "
        "into make(map, len(m)) and dropping the old map; waiting; debug.FreeOSMemory(). hmap: it shrinks by "
        "itself; hmap_compact shrinks to fit now; hmap_release_os_memory() returns once freed memory is back "
        "with the OS.",
        tc_fmt_count(s->n, b[0]));
    if (!g->ok)
        lab_go_missing(s, ctx, g);
    static const char *const head[] = {"remedy", "map", "time", "bytes held after", "RSS after"};
    tc_table *t = tc_table_new("Remedies after deleting 99%:", 5, head, "llrrr");
    tc_table_wrap(t, 0);
    if (g->ok) {
        tc_table_addf(t, "(after the deletes)", "Go", "", lab_fmt_bytes(lab_num(g, "deleted.heap"), b[0]),
                      lab_fmt_bytes(lab_num(g, "deleted.rss"), b[1]));
        tc_table_addf(t, "runtime.GC()", "Go", tc_fmt_ns(lab_num(g, "gc.ns"), b[2]),
                      lab_fmt_bytes(lab_num(g, "gc.heap"), b[0]), lab_fmt_bytes(lab_num(g, "gc.rss"), b[1]));
        tc_table_addf(t, "copy into make(map, len(m)) + GC, then wait 1 s", "Go",
                      tc_fmt_ns(lab_num(g, "rebuild.ns"), b[2]),
                      lab_fmt_bytes(lab_num(g, "rebuild.heap"), b[0]),
                      lab_fmt_bytes(lab_num(g, "rebuild.rss_waited"), b[1]));
        tc_table_addf(t, "debug.FreeOSMemory()", "Go", tc_fmt_ns(lab_num(g, "free_os_memory.ns"), b[2]),
                      lab_fmt_bytes(lab_num(g, "rebuild.heap"), b[0]),
                      lab_fmt_bytes(lab_num(g, "free_os_memory.rss"), b[1]));
    }
    tc_table_addf(t, "(after the deletes: shrunk by itself)", "hmap", "",
                  lab_fmt_bytes(lab_num(h, "deleted.bytes"), b[0]),
                  lab_fmt_bytes(lab_num(h, "deleted.rss"), b[1]));
    tc_table_addf(t, "hmap_release_os_memory()", "hmap", tc_fmt_ns(lab_num(h, "release.ns"), b[2]),
                  lab_fmt_bytes(lab_num(h, "deleted.bytes"), b[0]),
                  lab_fmt_bytes(lab_num(h, "release.rss"), b[1]));
    snprintf(b[7], 32, "%s", tc_fmt_ratio(lab_num(h, "compact.bytes") / lab_num(h, "fresh.bytes"), b[6]));
    char what[96];
    snprintf(what, sizeof what, "hmap_compact() (%s a fresh map)", b[7]);
    tc_table_addf(t, what, "hmap", tc_fmt_ns(lab_num(h, "compact.ns"), b[2]),
                  lab_fmt_bytes(lab_num(h, "compact.bytes"), b[0]), "");
    tc_table_addf(t, "(after the deletes)", "no_shrink", "", lab_fmt_bytes(lab_num(w, "deleted.bytes"), b[0]),
                  lab_fmt_bytes(lab_num(w, "deleted.rss"), b[1]));
    tc_table_addf(t, "hmap_compact(), RSS once the unmapping settled", "no_shrink",
                  tc_fmt_ns(lab_num(w, "compact.ns"), b[2]), lab_fmt_bytes(lab_num(w, "compact.bytes"), b[0]),
                  lab_fmt_bytes(lab_num(w, "settled.rss"), b[1]));
    lab_table(s, t, false);
    plot(s, w, g);
    claims(s, h, w, g);
}

const lab_experiment lab_release_exp = {
    .name = "release",
    .number = 7,
    .title = "the remedies: rebuild, force a GC, FreeOSMemory, freeHeapBits; hmap_compact and the OS",
    .help = "rebuild vs hmap_compact, runtime.GC + FreeOSMemory vs async unmapping, freeHeapBits",
    .default_n = 1000000,
    .quick_n = 20000,
    .n_means = "entries",
    .run = run,
};
