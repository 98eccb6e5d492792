/* SPDX-License-Identifier: MIT */
/*
 * exp_signals.c — 6. signals: how a map that keeps memory shows itself.
 *
 * The three usual signals of a leak, on one program whose map keeps memory: 3 waves, each inserting n new
 * keys and deleting 99% of them, so the live count creeps up by 1% of n a wave. Run as a map that never
 * shrinks (Go's map; hmap with no_shrink) and as hmap.
 *   1. memstats over time: Go's HeapAlloc (runtime.ReadMemStats, no forced GC), hmap_read_memstats()'s
 *      live_bytes;
 *   2. a heap profile at the end, read by `go tool pprof -top` (both write pprof's format; both sample one
 *      allocation per 512 KiB on average by default);
 *   3. a trace line per event: GODEBUG=gctrace=1 (one per GC) and HMAP_TRACE=1 (one per resize start and
 *      end), captured from stderr;
 * and "unsafe.Sizeof vs real size": the handle against what the map holds. hmap reads HMAP_TRACE when the
 * library is loaded, so its runs are this program started again (hmap-lab __child signals N).
 */
#define _GNU_SOURCE

#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { WAVES = 3 };

/* Named and kept out of line so that the heap profile shows where the map's arrays were allocated. */
__attribute__((noinline)) static void session_cache_insert(hmap *m, uint64_t i) { lab_put(m, i); }

static void signals_child(uint64_t n, FILE *out) {
    bool no_shrink = getenv("LAB_SIGNALS_NO_SHRINK") != NULL;
    const char *profile = getenv("LAB_PROFILE_PATH");
    hmap *m = lab_u64_map(0, no_shrink, no_shrink ? "sessions-no-shrink" : "sessions");
    uint64_t every = n / 25 ? n / 25 : 1, op = 0;
    hmap_memstats ms;
    for (uint64_t w = 0; w < WAVES; w++) {
        uint64_t first = w * n;
        for (uint64_t i = first; i < first + n; i++) {
            session_cache_insert(m, i);
            if (++op % every == 0)
                hmap_read_memstats(&ms), lab_p(out, "heap", (double)op, (double)ms.live_bytes);
        }
        for (uint64_t i = first; i < first + n; i++)
            if (!lab_survives(i)) {
                lab_del(m, i);
                if (++op % every == 0)
                    hmap_read_memstats(&ms), lab_p(out, "heap", (double)op, (double)ms.live_bytes);
            }
    }
    hmap_stats st;
    hmap_get_stats(m, &st);
    lab_m(out, "count", (double)st.count);
    lab_m(out, "map_bytes", (double)st.bytes);
    lab_m(out, "sizeof", (double)sizeof m);
    lab_m(out, "resizes", (double)(st.grows + st.same_size_grows + st.shrinks));
    hmap_read_memstats(&ms);
    lab_m(out, "live_bytes", (double)ms.live_bytes);
    lab_m(out, "fresh_bytes", (double)lab_fresh_bytes(0, 100, st.count));
    if (profile && hmap_write_heap_profile(profile) == 0)
        lab_s(out, "profile", "%s", profile);
    hmap_free(m);
    fflush(out);
}

/* ---- reading the profile with go tool pprof ---- */

typedef struct lines {
    tc_buf text;
    size_t n;
} lines;

static void keep_line(void *ctx, char *line) {
    lines *l = ctx;
    if (!strncmp(line, "Build ID:", 9) || !strncmp(line, "Time:", 5)) /* noise in a report */
        return;
    if (l->n++ < 12)
        tc_buf_printf(&l->text, "%s\n", line);
}

/* `go tool pprof -top` of a profile: its first lines, or why not. */
static char *pprof_top(const lab_ctx *ctx, const char *binary, const char *profile) {
    if (!*ctx->go_tool)
        return tc_strdup("(go tool pprof not run: go was not found when the lab was configured)");
    char tmp[4096], gocache[4200], home[4200], ptmp[4200];
    snprintf(tmp, sizeof tmp, "%s/pprof-home", ctx->out_dir);
    snprintf(gocache, sizeof gocache, "GOCACHE=%s/cache", tmp);
    snprintf(home, sizeof home, "HOME=%s", tmp);
    snprintf(ptmp, sizeof ptmp, "PPROF_TMPDIR=%s", tmp);
    char *env[] = {gocache, home, ptmp, "GOTOOLCHAIN=local", "GOPROXY=off", NULL};
    char *argv[] = {(char *)ctx->go_tool,        "tool",         "pprof",         "-top", "-nodecount=6",
                    "-sample_index=inuse_space", (char *)binary, (char *)profile, NULL};
    lines l = {0};
    char why[256];
    lab_progress("signals: go tool pprof -top %s", profile);
    bool ok = tc_spawn_lines(argv, env, true, keep_line, &l, why, sizeof why);
    lab_progress_done();
    if (!ok)
        tc_buf_printf(&l.text, "(go tool pprof failed: %s)\n", why);
    return l.text.p ? l.text.p : tc_strdup("");
}

/* ---- the section ---- */

static size_t count_raw(const lab_data *d, const char *prefix, tc_buf *sample, size_t keep) {
    size_t n = 0;
    for (size_t i = 0; i < d->nraw; i++)
        if (!strncmp(d->raw[i], prefix, strlen(prefix))) {
            if (n++ < keep && sample)
                tc_buf_printf(sample, "%s\n", d->raw[i]);
        }
    return n;
}

static void plot(lab_section *s, const lab_data *h, const lab_data *ns, const lab_data *g) {
    tc_series ser[3];
    double *x[3], *y[3];
    const lab_data *ds[3] = {h, ns, g};
    const char *names[3] = {"hmap: hmap_read_memstats live_bytes", "hmap no_shrink: live_bytes",
                            "Go: HeapAlloc (ReadMemStats, no forced GC)"};
    const char *colours[3] = {LAB_C_HMAP, LAB_C_NOSHRINK, LAB_C_GO};
    for (int i = 0; i < 3; i++) {
        size_t n = lab_series(ds[i], "heap", &x[i], &y[i]);
        ser[i] = (tc_series){
            .label = names[i], .colour = colours[i], .n = n, .x = x[i], .y = y[i], .width = i == 1 ? 4 : 2};
    }
    double n = (double)s->n, d = n - (double)((s->n + 99) / 100);
    tc_phase ph[2 * WAVES];
    static const char *const labels[] = {"insert", "delete 99%"};
    for (int w = 0; w < WAVES; w++) {
        ph[2 * w] = (tc_phase){labels[0], w * (n + d), w * (n + d) + n};
        ph[2 * w + 1] = (tc_phase){labels[1], w * (n + d) + n, (w + 1) * (n + d)};
    }
    tc_chart c = {
        .title = "Signal 1: memory statistics over time, three waves of insert n / delete 99%",
        .width = 1000,
        .height = 440,
        .x = {.label = "operations", .unit = TC_COUNT},
        .y = {.label = "bytes (log scale)", .scale = TC_LOG, .unit = TC_BYTES},
        .series = ser,
        .nseries = 3,
        .phases = ph,
        .nphases = 2 * WAVES,
        .note =
            "A leak's signature: the live count grows by 1% a wave, the memory statistics stay at the peak."};
    tc_buf svg = {0};
    tc_svg_chart(&svg, &c);
    lab_plot(s, &svg, "Memory statistics while the program runs (log axis).");
    for (int i = 0; i < 3; i++)
        free(x[i]), free(y[i]);
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap"), *ns = lab_section_data(s, "no_shrink"),
             *g = lab_section_data(s, "go");
    char hprof[4200], nprof[4200], gprof[4200], penv[4300], npenv[4300];
    snprintf(hprof, sizeof hprof, "%s/signals-hmap.pb.gz", ctx->out_dir);
    snprintf(nprof, sizeof nprof, "%s/signals-no-shrink.pb.gz", ctx->out_dir);
    snprintf(gprof, sizeof gprof, "%s/signals-go.pb.gz", ctx->out_dir);
    snprintf(penv, sizeof penv, "LAB_PROFILE_PATH=%s", hprof);
    snprintf(npenv, sizeof npenv, "LAB_PROFILE_PATH=%s", nprof);
    char *henv[] = {"HMAP_TRACE=1", penv, NULL};
    char *nenv[] = {"HMAP_TRACE=1", npenv, "LAB_SIGNALS_NO_SHRINK=1", NULL};
    lab_progress("signals: hmap");
    lab_run_self(h, "hmap", "signals", s->n, henv);
    lab_progress("signals: hmap no_shrink");
    lab_run_self(ns, "no_shrink", "signals", s->n, nenv);
    const char *gargs[] = {"-profile", gprof, NULL};
    char *genv[] = {"GODEBUG=gctrace=1", NULL};
    lab_run_go(g, ctx, "signals", s->n, gargs, genv, true);

    char b[6][32];
    lab_text(
        s,
        "The program: %d waves, each inserting %s new keys and deleting 99%% of them. Run as Go's map, as "
        "hmap with no_shrink (both keep their peak arrays) and as hmap.",
        WAVES, tc_fmt_count(s->n, b[0]));
    if (!g->ok)
        lab_go_missing(s, ctx, g);
    plot(s, h, ns, g);

    static const char *const head[] = {"map",       "live entries", "bytes held",
                                       "fresh map", "held ÷ fresh", "sizeof handle"};
    tc_table *t = tc_table_new("At the end, and \"unsafe.Sizeof vs real size\":", 6, head, "lrrrrr");
    const lab_data *ds[3] = {h, ns, g};
    const char *names[3] = {"hmap", "hmap no_shrink", "Go"};
    for (int i = 0; i < 3; i++) {
        if (!ds[i]->ok)
            continue;
        double held = lab_num(ds[i], "map_bytes"), fresh = lab_num(ds[i], "fresh_bytes");
        snprintf(b[5], 32, "%.0f B", lab_num(ds[i], "sizeof"));
        tc_table_addf(t, names[i], lab_fmt_count(lab_num(ds[i], "count"), b[0]), lab_fmt_bytes(held, b[1]),
                      lab_fmt_bytes(fresh, b[2]), tc_fmt_ratio(held / fresh, b[3]), b[5]);
    }
    lab_table(s, t, false);

    /* signal 2: heap profiles */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    const lab_data *pd[3] = {ns, h, g};
    const char *pbin[3] = {self, self, ctx->go_binary}, *pname[3] = {"hmap no_shrink", "hmap", "Go"};
    for (int i = 0; i < 3; i++) {
        const char *path = lab_str(pd[i], "profile");
        if (!path)
            continue;
        char *top = pprof_top(ctx, pbin[i], path), cap[256];
        snprintf(cap, sizeof cap,
                 "Signal 2: go tool pprof -top -sample_index=inuse_space, %s's profile:", pname[i]);
        lab_pre(s, cap, top);
        free(top);
    }

    lab_text(
        s, "A profile samples one allocation per 512 KiB allocated on average, weighted back up by pprof: a "
           "map that holds less than that at the end may show no sample at all, as hmap's may here.");

    /* signal 3: trace lines */
    tc_buf hs = {0}, gs = {0};
    size_t hstart = count_raw(h, "hmap: resize start", NULL, 0),
           hlines = count_raw(h, "hmap: resize", &hs, 4);
    size_t glines = count_raw(g, "gc ", &gs, 4);
    char cap[256];
    snprintf(cap, sizeof cap, "Signal 3: HMAP_TRACE=1, the first of %zu lines (hmap):", hlines);
    lab_pre(s, cap, hs.p ? hs.p : "(none)");
    snprintf(cap, sizeof cap, "GODEBUG=gctrace=1, the first of %zu lines (Go):", glines);
    if (g->ok)
        lab_pre(s, cap, gs.p ? gs.p : "(none)");
    tc_buf_free(&hs);
    tc_buf_free(&gs);

    char m[600];
    double gheld = lab_num(g, "map_bytes"), gfresh = lab_num(g, "fresh_bytes"),
           nheld = lab_num(ns, "map_bytes");
    snprintf(m, sizeof m,
             "after the waves, %s live entries: Go's HeapAlloc %s (a fresh map: %s), no_shrink's "
             "live_bytes %s, hmap's %s",
             lab_fmt_count(lab_num(h, "count"), b[0]), lab_fmt_bytes(gheld, b[1]),
             lab_fmt_bytes(gfresh, b[2]), lab_fmt_bytes(nheld, b[3]),
             lab_fmt_bytes(lab_num(h, "map_bytes"), b[4]));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "Signal 1: memstats show the map's memory staying up", m,
                      "Go's map was not measured");
    else
        lab_claim_add(s, gheld > 10 * gfresh ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                      "Signal 1: memstats show the map's memory staying up", m,
                      "HeapAlloc stayed at %s the live entries' need while the count fell",
                      tc_fmt_ratio(gheld / gfresh, b[5]));
    snprintf(m, sizeof m,
             "Go's MemProfileRate: %.0f bytes; profiles written: Go %s, hmap %s, no_shrink %s; read "
             "by go tool pprof above",
             lab_num(g, "mem_profile_rate"), lab_str(g, "profile") ? "yes" : "no",
             lab_str(h, "profile") ? "yes" : "no", lab_str(ns, "profile") ? "yes" : "no");
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "Signal 2: pprof heap profiles, sampled every 512 KiB", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, lab_num(g, "mem_profile_rate") == 512 * 1024 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
            "Signal 2: pprof heap profiles, sampled every 512 KiB", m,
            "runtime.MemProfileRate is 524288; the profile names the function that allocated the arrays");
    snprintf(m, sizeof m,
             "Go: %zu gctrace lines, NumGC %.0f; hmap: %zu HMAP_TRACE lines, %zu resize starts for %.0f "
             "resizes",
             glines, lab_num(g, "num_gc"), hlines, hstart, lab_num(h, "resizes"));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "Signal 3: GODEBUG=gctrace=1 prints one line per GC", m,
                      "Go's map was not measured");
    else
        lab_claim_add(s, (double)glines == lab_num(g, "num_gc") ? LAB_HOLDS : LAB_PARTLY,
                      "Signal 3: GODEBUG=gctrace=1 prints one line per GC", m,
                      "one line per collection; it shows heap sizes, not which map holds them (HMAP_TRACE "
                      "names the map)");
    snprintf(m, sizeof m,
             "Go: unsafe.Sizeof(m) = %.0f B, the map holds %s; hmap: sizeof(hmap *) = %.0f B, "
             "hmap_get_stats().bytes = %s",
             lab_num(g, "sizeof"), lab_fmt_bytes(gheld, b[0]), lab_num(h, "sizeof"),
             lab_fmt_bytes(lab_num(h, "map_bytes"), b[1]));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "unsafe.Sizeof(m) is not the map's real size", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, lab_num(g, "sizeof") < gheld ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
            "unsafe.Sizeof(m) is not the map's real size", m,
            "a map value is one pointer to its header; hmap_get_stats().bytes counts every byte behind it");
}

const lab_experiment lab_signals = {
    .name = "signals",
    .number = 6,
    .title = "the three signals of a map that keeps memory: memstats, heap profile, trace",
    .help = "memstats over time, a heap profile read by go tool pprof, trace lines, Sizeof vs real",
    .default_n = 300000,
    .quick_n = 10000,
    .n_means = "keys per wave",
    .run = run,
    .child = signals_child,
};
