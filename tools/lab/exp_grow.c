/* SPDX-License-Identifier: MIT */
/*
 * exp_grow.c — 1. grow: the state of both maps while they fill.
 *
 * Go's map is usually explained by its header (B, buckets, oldbuckets, nevacuate) and a three-row state
 * table, and says growth comes at load > 6.5, from overflow chains of 8 keys, and from delete + insert
 * ("fake growth"). Here both maps fill to n entries; a row is printed whenever a growth starts or ends:
 * for Go from its runtime header after every insert (the Go companion), for hmap from hmap_get_stats.
 * Every growth's trigger count is checked against the load rule, every write's evacuation work is counted
 * (Go: by scanning the old array for evacuated marks, on growths of up to 4096 old buckets; hmap: its
 * buckets_moved counter), and lookups are interleaved to see that they move nothing. Then the churn
 * behind "fake growth": 6656 entries at load 6.5 (B = 10), delete the oldest and insert a new key, 60
 * rounds of the whole map, count constant.
 */
#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { FAKE_SIZE = 6656, FAKE_ROUNDS = 60 };

static uint64_t resizes(const hmap_stats *st) { return st->grows + st->same_size_grows + st->shrinks; }

static void grow_row(FILE *out, const char *event, const hmap_stats *st) {
    lab_r(out, "grow", "%s %zu %u %zu %zu %zu %zu %s %zu %llu", event, st->count, st->B, st->buckets,
          st->old_buckets, st->evacuated, st->overflow_buckets, lab_phase_name(st->phase), st->bytes,
          (unsigned long long)tc_rss_bytes());
}

static void emit_hist(FILE *out, const char *name, const tc_hist *h) {
    char key[64];
    static const double qs[] = {0.5, 0.99, 0.999};
    static const char *const qn[] = {"p50_ns", "p99_ns", "p999_ns"};
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s.%s", name, qn[i]);
        lab_m(out, key, (double)tc_hist_quantile(h, qs[i]));
    }
    snprintf(key, sizeof key, "%s.max_ns", name);
    lab_m(out, key, (double)h->max);
    snprintf(key, sizeof key, "%s.ops", name);
    lab_m(out, key, (double)h->total);
    for (unsigned b = 0; b < TC_HIST_BINS; b++)
        if (h->bins[b])
            lab_p(out, name, (double)tc_hist_bin_low(b), (double)h->bins[b]);
}

static void hmap_fake_growth(FILE *out) {
    hmap *m = lab_u64_map(0, false, "fake-growth");
    for (uint64_t i = 0; i < FAKE_SIZE; i++)
        lab_put(m, i);
    hmap_stats st, start;
    hmap_get_stats(m, &start);
    size_t min_bytes = start.bytes, max_bytes = start.bytes, max_overflow = 0;
    for (uint64_t i = FAKE_SIZE; i < (uint64_t)FAKE_SIZE * (FAKE_ROUNDS + 1); i++) {
        lab_del(m, i - FAKE_SIZE);
        lab_put(m, i);
        hmap_get_stats(m, &st);
        min_bytes = st.bytes < min_bytes ? st.bytes : min_bytes;
        max_bytes = st.bytes > max_bytes ? st.bytes : max_bytes;
        max_overflow = st.overflow_buckets > max_overflow ? st.overflow_buckets : max_overflow;
        if (i % (FAKE_SIZE / 8) == 0)
            lab_p(out, "fake_overflow", (double)(i - FAKE_SIZE), (double)st.overflow_buckets);
    }
    lab_m(out, "fake.ops", 2.0 * FAKE_SIZE * FAKE_ROUNDS);
    lab_m(out, "fake.count", (double)st.count);
    lab_m(out, "fake.B_start", start.B);
    lab_m(out, "fake.B_end", st.B);
    lab_m(out, "fake.same_size_grows", (double)(st.same_size_grows - start.same_size_grows));
    lab_m(out, "fake.grows", (double)(st.grows - start.grows));
    lab_m(out, "fake.shrinks", (double)(st.shrinks - start.shrinks));
    lab_m(out, "fake.max_overflow", (double)max_overflow);
    lab_m(out, "fake.bytes_min", (double)min_bytes);
    lab_m(out, "fake.bytes_max", (double)max_bytes);
    hmap_free(m);
}

static void hmap_grow(void *arg, FILE *out) {
    uint64_t n = *(const uint64_t *)arg;
    hmap *m = lab_u64_map(0, false, "grow");
    hmap_stats prev, st;
    hmap_get_stats(m, &prev);
    grow_row(out, "new", &prev);
    tc_hist lat = {0};
    uint64_t growths = 0, load_ok = 0, lookup_moves = 0, max_moved = 0;
    size_t held_before = 0, held_peak = 0; /* the bytes held when the running growth began, its highest */
    double worst_held = 0;                 /* highest / larger of before and after, growths past 2 MiB */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = tc_now_ns();
        lab_put(m, i);
        tc_hist_add(&lat, tc_now_ns() - t0);
        hmap_get_stats(m, &st);
        uint64_t moved = st.buckets_moved - prev.buckets_moved;
        max_moved = moved > max_moved ? moved : max_moved;
        if (st.grows != prev.grows) {
            growths++;
            double limit = fmax(8, 6.5 * (double)(1ull << prev.B));
            load_ok += st.count == (uint64_t)floor(limit) + 1;
            lab_r(out, "trigger", "%zu %u %zu", st.count, prev.B, prev.overflow_buckets);
        }
        if (st.phase == HMAP_GROWING) {
            if (prev.phase != HMAP_GROWING)
                held_before = prev.bytes, held_peak = 0;
            held_peak = st.bytes > held_peak ? st.bytes : held_peak;
        } else if (prev.phase == HMAP_GROWING && st.bytes >= ((size_t)2 << 20)) {
            double r = (double)held_peak / (double)(held_before > st.bytes ? held_before : st.bytes);
            worst_held = r > worst_held ? r : worst_held;
        }
        if (resizes(&st) != resizes(&prev) || st.phase != prev.phase) {
            const char *ev = st.phase != HMAP_STEADY     ? "grow-start"
                             : prev.phase == HMAP_STEADY ? "grow-start+end"
                                                         : "grow-end";
            grow_row(out, ev, &st);
        }
        if (st.phase != HMAP_STEADY) { /* a lookup while growing: does it move anything? */
            uint64_t k = lab_key(i / 2);
            hmap_stats after;
            (void)hmap_get(m, &k);
            hmap_get_stats(m, &after);
            lookup_moves += after.buckets_moved - st.buckets_moved;
        }
        if (i + 1 == 1000 || i + 1 == 10000 || i + 1 == 100000 || i + 1 == n)
            grow_row(out, "at-count", &st);
        if ((i & 0xffff) == 0)
            lab_progress("grow: hmap %llu%%", (unsigned long long)(100 * i / n));
        prev = st;
    }
    lab_m(out, "grow.growths", (double)growths);
    lab_m(out, "grow.load_rule_ok", (double)load_ok);
    lab_m(out, "grow.max_evacuated_per_write", (double)max_moved);
    lab_m(out, "grow.moved_per_write", (double)st.buckets_moved / (double)n);
    lab_m(out, "grow.lookup_evacuations", (double)lookup_moves);
    lab_m(out, "grow.final_B", st.B);
    lab_m(out, "grow.bytes", (double)st.bytes);
    lab_m(out, "grow.held_peak_ratio", worst_held);
    emit_hist(out, "insert", &lat);
    hmap_free(m);
    hmap_fake_growth(out);
}

/* ---- the section ---- */

static void add_rows(tc_table *t, const char *label, const lab_data *d, size_t from) {
    const lab_row *rows[256];
    size_t n = lab_rows(d, "grow", rows, 256);
    char b[3][32];
    for (size_t i = from; i < n; i++) {
        const lab_row *r = rows[i];
        if (r->nf < 10)
            continue;
        tc_table_addf(t, label, r->f[0], r->f[1], r->f[2], r->f[3], r->f[4], r->f[5], r->f[6], r->f[7],
                      lab_fmt_bytes(lab_fnum(r, 8), b[0]), lab_fmt_bytes(lab_fnum(r, 9), b[1]));
    }
}

/* Index of the first row of the last `growths` growths (so the terminal shows the end of the fill). */
static size_t tail_from(const lab_data *d, int growths) {
    const lab_row *rows[256];
    size_t n = lab_rows(d, "grow", rows, 256);
    for (size_t i = n; i-- > 0;)
        if (!strcmp(rows[i]->f[0], "grow-start") && --growths == 0)
            return i;
    return 0;
}

static tc_table *state_table(const char *title, const lab_data *h, const lab_data *g, int last_growths) {
    static const char *const head[] = {"map",       "event",    "count", "B",     "buckets", "old buckets",
                                       "nevacuate", "overflow", "phase", "bytes", "RSS"};
    tc_table *t = tc_table_new(title, 11, head, "llrrrrrrlrr");
    add_rows(t, "Go", g, last_growths ? tail_from(g, last_growths) : 0);
    add_rows(t, "hmap", h, last_growths ? tail_from(h, last_growths) : 0);
    return t;
}

/* The nevacuate each Go growth ended with, against its old bucket count. */
static bool nevacuate_at_end(const lab_data *g, char *msg, size_t size) {
    const lab_row *rows[256];
    size_t n = lab_rows(g, "grow", rows, 256), ends = 0, equal_old = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i]->f[0], "grow-end")) {
            ends++;
            equal_old += lab_fnum(rows[i], 5) * 2 == lab_fnum(rows[i], 3);
        }
    snprintf(msg, size,
             "in %zu of %zu growths Go's nevacuate ended at 2^(B-1), the old bucket count, not 2^B",
             equal_old, ends);
    return ends > 0 && equal_old == ends;
}

static void plots(lab_section *s, const lab_data *h, const lab_data *g) {
    tc_series ser[4];
    double *x[4], *y[4];
    size_t k = 0;
    const lab_data *ds[2] = {g, h};
    const char *names[2] = {"Go map[uint64]uint64", "hmap"}, *colours[2] = {LAB_C_GO, LAB_C_HMAP};
    for (int i = 0; i < 2; i++) {
        size_t n = lab_series(ds[i], "insert", &x[k], &y[k]);
        ser[k] =
            (tc_series){.label = names[i], .colour = colours[i], .step = true, .n = n, .x = x[k], .y = y[k]};
        k++;
    }
    tc_buf svg = {0};
    char title[128], b[32];
    snprintf(title, sizeof title, "Latency of each insert while growing to %s entries",
             tc_fmt_count(s->n, b));
    tc_chart c = {.title = title,
                  .x = {.label = "latency of one insert (bins of ±12%)", .scale = TC_LOG, .unit = TC_NS},
                  .y = {.label = "inserts", .scale = TC_LOG, .unit = TC_COUNT},
                  .series = ser,
                  .nseries = k,
                  .note =
                      "The right end of each line is the longest insert. Go allocates and clears each new "
                      "array inside the insert that starts a growth; on a shared machine other processes add "
                      "a tail too."};
    tc_svg_chart(&svg, &c);
    lab_plot(s, &svg, "Insert latency histograms, log-log.");
    for (size_t i = 0; i < k; i++)
        free(x[i]), free(y[i]);

    /* bytes held against the count, from the state rows */
    k = 0;
    for (int i = 0; i < 2; i++) {
        const lab_row *rows[256];
        size_t n = lab_rows(ds[i], "grow", rows, 256), m = 0;
        x[k] = tc_xrealloc(NULL, (n + 1) * sizeof(double));
        y[k] = tc_xrealloc(NULL, (n + 1) * sizeof(double));
        for (size_t r = 0; r < n; r++)
            if (lab_fnum(rows[r], 1) > 0)
                x[k][m] = lab_fnum(rows[r], 1), y[k][m++] = lab_fnum(rows[r], 8);
        ser[k] = (tc_series){.label = names[i],
                             .colour = colours[i],
                             .dots = true,
                             .width = i == 0 ? 5 : 2,
                             .n = m,
                             .x = x[k],
                             .y = y[k]};
        k++;
    }
    tc_series swap = ser[0]; /* hmap drawn over Go's wider line: the two coincide but for the smallest maps */
    ser[0] = ser[1], ser[1] = swap;
    tc_chart c2 = {.title = "Bytes of the bucket arrays at each growth start and end",
                   .x = {.label = "entries", .scale = TC_LOG, .unit = TC_COUNT},
                   .y = {.label = "bytes", .scale = TC_LOG, .unit = TC_BYTES},
                   .series = ser,
                   .nseries = k,
                   .note = "Go: estimated from the header (2^B + old buckets + overflow, 144 B each); hmap: "
                           "hmap_get_stats().bytes. While a growth runs both arrays are held."};
    tc_svg_chart(&svg, &c2);
    lab_plot(s, &svg, "Memory as the maps fill (log-log).");
    for (size_t i = 0; i < k; i++)
        free(x[i]), free(y[i]);
}

/* The trigger row of Go's last growth with an exact overflow count (B < 16: noverflow is exact there). */
static const lab_row *last_exact_trigger(const lab_data *g) {
    const lab_row *rows[64], *best = NULL;
    size_t n = lab_rows(g, "trigger", rows, 64);
    for (size_t i = 0; i < n; i++)
        if (lab_fnum(rows[i], 1) < 16)
            best = rows[i];
    return best;
}

static void claims(lab_section *s, const lab_data *h, const lab_data *g) {
    char m[512], b1[32], b2[32];
    bool go = g->ok && !lab_str(g, "header_missing");
    double gg = lab_num(g, "grow.growths"), gok = lab_num(g, "grow.load_rule_ok");
    double hg = lab_num(h, "grow.growths"), hok = lab_num(h, "grow.load_rule_ok");
    snprintf(m, sizeof m,
             "Go: %.0f of %.0f growths started at the insert that made count > max(8, 6.5·2^B); "
             "hmap: %.0f of %.0f",
             gok, gg, hok, hg);
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "Growth is triggered by load > 6.5", m, "Go's map was not measured");
    else
        lab_claim_add(s, gok == gg && gg > 0 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                      "Growth is triggered by load > 6.5", m,
                      "every growth of Go's map started exactly when count first exceeded 6.5 × 2^B (and 8)");

    const lab_row *tr = last_exact_trigger(g);
    snprintf(m, sizeof m,
             "Go, when growth started at B=%.0f: %.0f overflow buckets already existed (each one a "
             "bucket chain of more than 8 keys); the overflow rule needs noverflow ≥ 2^min(B,15) = "
             "%.0f; max seen with no growth under way: %.0f at B=%.0f",
             lab_fnum(tr, 1), lab_fnum(tr, 2), pow(2, fmin(lab_fnum(tr, 1), 15)),
             lab_num(g, "grow.max_overflow_steady"), lab_num(g, "grow.max_overflow_steady_B"));
    if (!go || !tr)
        lab_claim_add(s, LAB_UNTESTED, "Overflow chains of ≥ 8 keys trigger growth", m,
                      "Go's map was not measured");
    else
        lab_claim_add(s, lab_fnum(tr, 2) > 0 ? LAB_DOES_NOT_HOLD : LAB_PARTLY,
                      "Overflow chains of ≥ 8 keys trigger growth", m,
                      "%.0f chains of more than 8 keys did not start a growth: Go counts overflow buckets "
                      "(same-size growth at ≥ 2^min(B,15) of them), not chain lengths",
                      lab_fnum(tr, 2));

    double ss = lab_num(g, "fake.same_size_grows"), hs = lab_num(h, "fake.same_size_grows");
    snprintf(m, sizeof m,
             "%.0fk writes of delete-oldest + insert at a constant %d entries (load 6.5, B=10): Go "
             "%.0f same-size growths, %.0f growths, B %.0f → %.0f, arrays %s – %s; hmap %.0f same-size, "
             "%.0f growths, %.0f shrinks",
             lab_num(g, "fake.ops") / 1e3, FAKE_SIZE, ss, lab_num(g, "fake.grows"),
             lab_num(g, "fake.B_start"), lab_num(g, "fake.B_end"),
             lab_fmt_bytes(lab_num(g, "fake.bytes_min"), b1), lab_fmt_bytes(lab_num(g, "fake.bytes_max"), b2),
             hs, lab_num(h, "fake.grows"), lab_num(h, "fake.shrinks"));
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "Delete + insert causes fake growth", m, "Go's map was not measured");
    else
        lab_claim_add(
            s, ss > 0 && lab_num(g, "fake.grows") == 0 ? LAB_PARTLY : LAB_DOES_NOT_HOLD,
            "Delete + insert causes fake growth", m,
            "churn at a constant count started %.0f same-size growths: a rehash at the same B that drops "
            "overflow buckets, not growth (B stayed %.0f)",
            ss, lab_num(g, "fake.B_end"));

    double ge = lab_num(g, "grow.max_evacuated_per_write"), gl = lab_num(g, "grow.lookup_evacuations");
    snprintf(m, sizeof m,
             "Go: at most %.0f old buckets evacuated by one write (%.0f writes scanned), %.0f by "
             "%.0f lookups; hmap: at most %.0f per write (%.3f on average), %.0f by lookups",
             ge, lab_num(g, "grow.writes_scanned"), gl, lab_num(g, "grow.lookups_scanned"),
             lab_num(h, "grow.max_evacuated_per_write"), lab_num(h, "grow.moved_per_write"),
             lab_num(h, "grow.lookup_evacuations"));
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "Growth is incremental: ≤ 2 old buckets per write, none on lookups", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, ge <= 2 && gl == 0 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
            "Growth is incremental: ≤ 2 old buckets per write, none on lookups", m,
            "each write evacuated its own old bucket and the next at nevacuate; lookups moved nothing");

    bool ok = nevacuate_at_end(g, m, sizeof m);
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "State table: when growth completes, nevacuate = 2^B", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, ok ? LAB_DOES_NOT_HOLD : LAB_PARTLY, "State table: when growth completes, nevacuate = 2^B", m,
            "nevacuate counts old buckets, so it ends at 2^(B-1), when oldbuckets goes back to nil");
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap");
    lab_data *g = lab_section_data(s, "go");
    lab_run_c(h, "hmap", hmap_grow, &s->n);
    lab_run_go(g, ctx, "grow", s->n, NULL, NULL, false);
    char b[32];
    lab_text(
        s,
        "Both maps fill to %s uint64 → uint64 entries. Go's columns are read from its runtime header "
        "(count, flags, B, noverflow, buckets, oldbuckets, nevacuate) after every insert; hmap's from "
        "hmap_get_stats. \"old buckets\" is the array being evacuated, \"nevacuate\" how many of them are "
        "done, \"overflow\" the overflow buckets (Go's noverflow, exact below B = 16).",
        tc_fmt_count(s->n, b));
    if (!g->ok || lab_str(g, "header_missing"))
        lab_go_missing(s, ctx, g);
    lab_table(s, state_table("The last two growths of each map (every row is in the report):", h, g, 2),
              false);
    lab_table(s, state_table("Every growth start and end:", h, g, 0), true);

    static const char *const lh[] = {"map", "inserts", "p50", "p99", "p99.9", "longest"};
    tc_table *lt = tc_table_new("Single-insert latency while growing:", 6, lh, "lrrrrr");
    const lab_data *ds[2] = {g, h};
    const char *nm[2] = {"Go", "hmap"};
    for (int i = 0; i < 2; i++) {
        char c[5][32];
        if (!ds[i]->ok)
            continue;
        tc_table_addf(lt, nm[i], lab_fmt_count(lab_num(ds[i], "insert.ops"), c[0]),
                      tc_fmt_ns(lab_num(ds[i], "insert.p50_ns"), c[1]),
                      tc_fmt_ns(lab_num(ds[i], "insert.p99_ns"), c[2]),
                      tc_fmt_ns(lab_num(ds[i], "insert.p999_ns"), c[3]),
                      tc_fmt_ns(lab_num(ds[i], "insert.max_ns"), c[4]));
    }
    lab_table(s, lt, false);
    if (lab_num(h, "grow.held_peak_ratio") > 0)
        lab_text(
            s,
            "hmap's bytes held while a growth ran (hmap_get_stats after every insert; growths past "
            "2 MiB): at most %.3f× the larger of the bytes before and after it. The old array gives "
            "back its evacuated buckets as evacuation passes them; its overflow buckets stay to the end.",
            lab_num(h, "grow.held_peak_ratio"));
    plots(s, h, g);
    claims(s, h, g);
}

const lab_experiment lab_grow = {
    .name = "grow",
    .number = 1,
    .title = "the state table as the maps fill: when growth starts, runs and ends",
    .help = "B, buckets, old buckets, nevacuate, overflow at every growth; what triggers one",
    .default_n = 1000000,
    .quick_n = 20000,
    .n_means = "entries",
    .run = run,
};
