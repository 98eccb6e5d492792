/* SPDX-License-Identifier: MIT */
/*
 * exp_iterate.c — 5. iterate: deletes and inserts inside an iteration while the map grows and shrinks.
 *
 * The same program on both maps (the Go companion does it with range): n entries whose values are their
 * index; one iteration; for the first quarter of the entries it yields, each step inserts 4 new keys (the
 * map doubles under the iteration), after that each step deletes 4 keys: the inserted ones, then the
 * original ones whose index is not a multiple of 10 (hmap shrinks under the iteration; Go's map cannot).
 * Counted: survivors (original keys never deleted) yielded exactly once, missed or twice; deleted keys
 * yielded after their deletion; inserted keys yielded and yielded twice.
 *
 * And the C++ pitfall often shown beside it (erasing from a std::unordered_map while iterating): what the
 * standard says and what a real std::unordered_map does (iterate_cxx.cc).
 */
#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void hmap_iterate(void *arg, FILE *out) {
    uint64_t n = *(const uint64_t *)arg;
    hmap *m = lab_u64_map(0, false, "iterate");
    for (uint64_t i = 0; i < n; i++)
        lab_put(m, i);
    uint32_t *seen = calloc(2 * n, sizeof *seen);
    bool *deleted = calloc(2 * n, sizeof *deleted);
    if (!seen || !deleted)
        exit(1);
    uint64_t next = n, del_new = n, del_old = 0, steps = 0, del_before = 0, yield_after = 0;
    hmap_stats st0, st;
    hmap_get_stats(m, &st0);
    unsigned max_B = st0.B, min_B = st0.B;
    hmap_iter it;
    void *kp, *vp;
    for (hmap_iter_init(&it, m); hmap_iter_next(&it, &kp, &vp);) {
        uint64_t v = *(uint64_t *)vp;
        yield_after += deleted[v];
        seen[v]++;
        steps++;
        for (int k = 0; k < 4; k++) {
            if (steps <= n / 4) {
                lab_put(m, next++);
                continue;
            }
            uint64_t idx;
            if (del_new < next) {
                idx = del_new++;
            } else {
                while (del_old < n && del_old % 10 == 0)
                    del_old++;
                if (del_old >= n)
                    break;
                idx = del_old++;
            }
            if (!deleted[idx]) {
                deleted[idx] = true;
                del_before += seen[idx] == 0;
                lab_del(m, idx);
            }
        }
        if (steps % (n / 64 + 1) == 0) {
            hmap_get_stats(m, &st);
            lab_p(out, "B", (double)steps, st.B);
            max_B = st.B > max_B ? st.B : max_B;
            min_B = st.B < min_B ? st.B : min_B;
        }
    }
    hmap_iter_done(&it);
    hmap_get_stats(m, &st);
    uint64_t survivors = 0, once = 0, missed = 0, twice = 0, new_seen = 0, new_twice = 0;
    for (uint64_t i = 0; i < n; i++)
        if (!deleted[i]) {
            survivors++;
            once += seen[i] == 1, missed += seen[i] == 0, twice += seen[i] > 1;
        }
    for (uint64_t i = n; i < next; i++)
        new_seen += seen[i] > 0, new_twice += seen[i] > 1;
    lab_m(out, "survivors", (double)survivors);
    lab_m(out, "survivors_once", (double)once);
    lab_m(out, "survivors_missed", (double)missed);
    lab_m(out, "survivors_twice", (double)twice);
    lab_m(out, "deleted_before_yield", (double)del_before);
    lab_m(out, "yielded_after_delete", (double)yield_after);
    lab_m(out, "inserted", (double)(next - n));
    lab_m(out, "inserted_yielded", (double)new_seen);
    lab_m(out, "inserted_twice", (double)new_twice);
    lab_m(out, "steps", (double)steps);
    lab_m(out, "B_start", st0.B);
    lab_m(out, "B_max", max_B);
    lab_m(out, "B_end", st.B);
    lab_m(out, "grows", (double)(st.grows - st0.grows));
    lab_m(out, "shrinks", (double)(st.shrinks - st0.shrinks));
    lab_m(out, "count_end", (double)st.count);
    free(seen);
    free(deleted);
    hmap_free(m);
}

static void cxx_facts(void *arg, FILE *out) {
    lab_cxx_facts f;
    lab_cxx_unordered_map_facts(*(const uint64_t *)arg, &f);
    lab_m(out, "buckets_before_erase", (double)f.buckets_before_erase);
    lab_m(out, "buckets_after_erase", (double)f.buckets_after_erase);
    lab_m(out, "held_iterator_valid", f.held_iterator_valid);
    lab_m(out, "erase_loop_visited", (double)f.erase_returned_next);
    lab_m(out, "inserts_until_rehash", (double)f.inserts_until_rehash);
    lab_m(out, "buckets_before_rehash", (double)f.buckets_before_rehash);
    lab_m(out, "buckets_after_rehash", (double)f.buckets_after_rehash);
    lab_m(out, "max_load_factor", f.max_load_factor);
    lab_m(out, "iterator_bidirectional", f.iterator_bidirectional);
}

static void plot(lab_section *s, const lab_data *h, const lab_data *g) {
    tc_series ser[2];
    double *x[2], *y[2];
    size_t hn = lab_series(h, "B", &x[0], &y[0]), gn = lab_series(g, "B", &x[1], &y[1]);
    ser[0] = (tc_series){
        .label = "hmap B", .colour = LAB_C_HMAP, .step = true, .width = 3, .n = hn, .x = x[0], .y = y[0]};
    ser[1] = (tc_series){.label = "Go B",
                         .colour = LAB_C_GO,
                         .step = true,
                         .dashed = true,
                         .width = 3,
                         .n = gn,
                         .x = x[1],
                         .y = y[1]};
    double q = (double)(s->n / 4);
    double end = fmax(hn ? x[0][hn - 1] : q, gn ? x[1][gn - 1] : q);
    tc_phase ph[2] = {{"4 inserts per entry yielded", 0, q}, {"4 deletes per entry yielded", q, end}};
    tc_chart c = {
        .title = "B during one iteration that inserts, then deletes",
        .x = {.label = "entries yielded so far", .unit = TC_COUNT},
        .y = {.label = "B (log2 of the bucket count)", .unit = TC_PLAIN},
        .series = ser,
        .nseries = 2,
        .phases = ph,
        .nphases = 2,
        .note = "hmap grows and then shrinks under the open iteration; Go's map grows and never shrinks."};
    tc_buf svg = {0};
    tc_svg_chart(&svg, &c);
    lab_plot(s, &svg, "B while the iteration runs (linear axis: B is already a logarithm).");
    free(x[0]), free(y[0]), free(x[1]), free(y[1]);
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap"), *g = lab_section_data(s, "go"),
             *x = lab_section_data(s, "cxx");
    lab_run_c(h, "hmap", hmap_iterate, &s->n);
    lab_run_go(g, ctx, "iterate", s->n, NULL, NULL, false);
    lab_run_c(x, "cxx", cxx_facts, &s->n);
    char b[32];
    lab_text(
        s,
        "%s entries, one iteration. While it yields the first quarter, each step inserts 4 new keys; after "
        "that each step deletes 4: the inserted keys, then the original keys whose index is not a multiple "
        "of 10. Go does the same inside a range loop.",
        tc_fmt_count(s->n, b));
    if (!g->ok)
        lab_go_missing(s, ctx, g);
    static const char *const head[] = {"map",
                                       "B start → max → end",
                                       "survivors",
                                       "yielded once",
                                       "missed",
                                       "twice",
                                       "deleted, then yielded",
                                       "inserted: yielded / of"};
    tc_table *t = tc_table_new("Who was yielded:", 8, head, "lrrrrrrr");
    const lab_data *ds[2] = {h, g};
    const char *names[2] = {"hmap", "Go"};
    for (int i = 0; i < 2; i++) {
        if (!ds[i]->ok)
            continue;
        char c[7][48];
        snprintf(c[0], 48, "%.0f → %.0f → %.0f", lab_num(ds[i], "B_start"), lab_num(ds[i], "B_max"),
                 lab_num(ds[i], "B_end"));
        snprintf(c[1], 48, "%.0f", lab_num(ds[i], "survivors"));
        snprintf(c[2], 48, "%.0f", lab_num(ds[i], "survivors_once"));
        snprintf(c[3], 48, "%.0f", lab_num(ds[i], "survivors_missed"));
        snprintf(c[4], 48, "%.0f", lab_num(ds[i], "survivors_twice"));
        snprintf(c[5], 48, "%.0f", lab_num(ds[i], "yielded_after_delete"));
        snprintf(c[6], 48, "%.0f / %.0f", lab_num(ds[i], "inserted_yielded"), lab_num(ds[i], "inserted"));
        tc_table_addf(t, names[i], c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    }
    lab_table(s, t, false);
    plot(s, h, g);

    lab_text(
        s,
        "C++ std::unordered_map<uint64_t, uint64_t> with %s entries: erasing half of them with "
        "it = m.erase(it) visited %.0f elements, and bucket_count() stayed %.0f → %.0f; an iterator to a "
        "kept "
        "element still read it afterwards: %s. Inserting, %.0f inserts later bucket_count() went %.0f → %.0f "
        "(a rehash: max_load_factor %.1f), which invalidates every iterator. Its iterators are forward "
        "iterators (bidirectional: %s), so the often-shown fix `m.erase(it); it--;` does not compile.",
        tc_fmt_count(s->n, b), lab_num(x, "erase_loop_visited"), lab_num(x, "buckets_before_erase"),
        lab_num(x, "buckets_after_erase"), lab_num(x, "held_iterator_valid") == 1 ? "yes" : "no",
        lab_num(x, "inserts_until_rehash"), lab_num(x, "buckets_before_rehash"),
        lab_num(x, "buckets_after_rehash"), lab_num(x, "max_load_factor"),
        lab_num(x, "iterator_bidirectional") == 1 ? "yes" : "no");

    char m[600];
    double gs = lab_num(g, "survivors"), go_once = lab_num(g, "survivors_once");
    snprintf(m, sizeof m,
             "Go: %.0f of %.0f survivors yielded once, %.0f deleted keys yielded after their delete; B "
             "%.0f → %.0f during the range",
             go_once, gs, lab_num(g, "yielded_after_delete"), lab_num(g, "B_start"), lab_num(g, "B_max"));
    if (!g->ok)
        lab_claim_add(s, LAB_UNTESTED, "Go allows delete during range; each remaining key is seen once", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, go_once == gs && lab_num(g, "yielded_after_delete") == 0 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
            "Go allows delete during range; each remaining key is seen once", m,
            "every survivor came exactly once, and no deleted key after its delete, while the map grew");
    double hs = lab_num(h, "survivors"), ho = lab_num(h, "survivors_once");
    snprintf(m, sizeof m,
             "hmap: %.0f of %.0f survivors yielded once, %.0f deleted keys after their delete, inserted "
             "keys yielded twice: %.0f; %.0f grows and %.0f shrinks under the iteration",
             ho, hs, lab_num(h, "yielded_after_delete"), lab_num(h, "inserted_twice"), lab_num(h, "grows"),
             lab_num(h, "shrinks"));
    lab_claim_add(s,
                  ho == hs && lab_num(h, "yielded_after_delete") == 0 && lab_num(h, "inserted_twice") == 0 &&
                          lab_num(h, "shrinks") > 0
                      ? LAB_HOLDS
                      : LAB_DOES_NOT_HOLD,
                  "hmap keeps that guarantee across grow and shrink, with inserts", m,
                  "exactly once for every survivor while the map grew and shrank under the open iteration");
    snprintf(m, sizeof m,
             "bucket_count() %.0f before and %.0f after erasing half; held iterator valid: %s; rehash "
             "only on insert (after %.0f inserts)",
             lab_num(x, "buckets_before_erase"), lab_num(x, "buckets_after_erase"),
             lab_num(x, "held_iterator_valid") == 1 ? "yes" : "no", lab_num(x, "inserts_until_rehash"));
    lab_claim_add(
        s,
        lab_num(x, "buckets_before_erase") == lab_num(x, "buckets_after_erase") &&
                lab_num(x, "held_iterator_valid") == 1
            ? LAB_DOES_NOT_HOLD
            : LAB_PARTLY,
        "C++: unordered_map::erase(iterator) rehashes, invalidating all iterators", m,
        "the standard: erase invalidates only the erased element's iterators (use it = m.erase(it)); "
        "inserts that rehash invalidate all");
}

const lab_experiment lab_iterate = {
    .name = "iterate",
    .number = 5,
    .title = "deleting and inserting during an iteration while the map grows and shrinks",
    .help = "exactly-once iteration under grow and shrink; Go's range; C++ unordered_map erase",
    .default_n = 250000,
    .quick_n = 20000,
    .n_means = "entries",
    .run = run,
};
