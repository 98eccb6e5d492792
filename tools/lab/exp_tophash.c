/* SPDX-License-Identifier: MIT */
/*
 * exp_tophash.c — 3. tophash: one bucket's eight tophash bytes through inserts and deletes.
 *
 * A widely copied snippet of mapdelete sets emptyOne and clears key and value. Go's real one (1.19) clears
 * the value always but the key only when it holds pointers, turns trailing emptyOne slots into emptyRest
 * so that lookups stop early, and re-draws the hash seed when the map becomes empty. The Go companion
 * shows each of these in a map's memory: 8 keys in a map of one bucket (B = 0), then deletes in slot order
 * 3, 7, 6, 5, 4 and one insert. hmap keeps the same slot states but shows them only through its public
 * statistics: `tombstones` counts emptyOne slots, so it rises at a delete in the middle and falls when
 * emptyOne slots become emptyRest. And hmap hands a deleted value to val_drop at once.
 */
#include "lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int delete_order[] = {3, 7, 6, 5, 4};
enum { NDEL = 5 };

static int drops;
static void count_drop(void *v) { (void)v, drops++; }

static void hmap_tophash(void *arg, FILE *out) {
    (void)arg;
    static const hmap_type type = {.key_size = 8, .val_size = 8, .val_drop = count_drop};
    hmap *m = hmap_new(&type, 0);
    hmap_stats st;
    for (uint64_t i = 0; i < 8; i++) {
        uint64_t k = lab_key(i), v = i + 1;
        hmap_put(m, &k, &v);
    }
    hmap_get_stats(m, &st);
    lab_r(out, "tophash", "0 %zu %zu %u", st.tombstones, st.count, st.B);
    for (int d = 0; d < NDEL; d++) {
        uint64_t k = lab_key((uint64_t)delete_order[d]);
        int before = drops;
        hmap_del(m, &k);
        hmap_get_stats(m, &st);
        lab_r(out, "tophash", "%d %zu %zu %u", d + 1, st.tombstones, st.count, st.B);
        if (d == 0)
            lab_m(out, "val_drop_calls_at_delete", drops - before);
    }
    uint64_t k = lab_key(100), v = 101;
    hmap_put(m, &k, &v);
    hmap_get_stats(m, &st);
    lab_r(out, "tophash", "%d %zu %zu %u", NDEL + 1, st.tombstones, st.count, st.B);
    hmap_free(m);
}

/* ---- the picture: one row of 8 cells per step ---- */

static const char *cell_colour(int th) {
    return th == 0 ? "#d9d9d9" : th == 1 ? "#f4a259" : th < 5 ? "#c9b" : "#8fc0e8";
}

static void grid(lab_section *s, const lab_data *g, const lab_data *h) {
    const lab_row *rows[16], *hrows[16];
    size_t n = lab_rows(g, "tophash", rows, 16), hn = lab_rows(h, "tophash", hrows, 16);
    int cw = 52, ch = 34, x0 = 300, y0 = 70, width = 1000, height = y0 + (int)n * (ch + 10) + 60;
    tc_buf o = {0};
    tc_buf_printf(&o,
                  "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' "
                  "font-family='sans-serif'>\n<rect width='%d' height='%d' fill='white'/>\n",
                  width, height, width, height, width, height);
    tc_buf_put(&o,
               "<text x='20' y='24' font-size='15' font-weight='bold'>Go: the tophash bytes of a one-bucket "
               "map[uint64]uint64, step by step</text>\n");
    for (int i = 0; i < 8; i++)
        tc_buf_printf(&o, "<text x='%d' y='%d' font-size='11' text-anchor='middle'>slot %d</text>\n",
                      x0 + i * cw + cw / 2, y0 - 8, i);
    tc_buf_printf(&o, "<text x='%d' y='%d' font-size='11'>miss probes</text>", x0 + 8 * cw + 14, y0 - 8);
    tc_buf_printf(&o, "<text x='%d' y='%d' font-size='11'>hmap tombstones</text>\n", x0 + 8 * cw + 110,
                  y0 - 8);
    for (size_t r = 0; r < n; r++) {
        int y = y0 + (int)r * (ch + 10);
        tc_buf_printf(&o, "<text x='20' y='%d' font-size='12'>", y + ch / 2 + 4);
        tc_buf_html(&o, rows[r]->nf > 1 ? rows[r]->f[1] : "");
        tc_buf_put(&o, "</text>\n");
        char list[64];
        snprintf(list, sizeof list, "%s", rows[r]->nf > 2 ? rows[r]->f[2] : "");
        char *save = NULL, *tok = strtok_r(list, ",", &save);
        for (int i = 0; i < 8 && tok; i++, tok = strtok_r(NULL, ",", &save)) {
            int th = atoi(tok);
            tc_buf_printf(&o, "<rect x='%d' y='%d' width='%d' height='%d' fill='%s' stroke='#555'/>\n",
                          x0 + i * cw, y, cw - 2, ch, cell_colour(th));
            tc_buf_printf(&o, "<text x='%d' y='%d' font-size='12' text-anchor='middle'>%s</text>\n",
                          x0 + i * cw + cw / 2 - 1, y + ch / 2 + 4,
                          th == 0   ? "rest"
                          : th == 1 ? "one"
                                    : tok);
        }
        tc_buf_printf(&o, "<text x='%d' y='%d' font-size='13' text-anchor='middle'>%.0f</text>\n",
                      x0 + 8 * cw + 40, y + ch / 2 + 4, lab_fnum(rows[r], 3));
        if (r < hn)
            tc_buf_printf(&o, "<text x='%d' y='%d' font-size='13' text-anchor='middle'>%.0f</text>\n",
                          x0 + 8 * cw + 150, y + ch / 2 + 4, lab_fnum(hrows[r], 1));
    }
    int ly = height - 24;
    const char *labels[] = {"live (tophash ≥ 5: top byte of the hash)", "emptyOne (1): deleted",
                            "emptyRest (0): empty, nothing live after"};
    const int ths[] = {9, 1, 0};
    for (int i = 0; i < 3; i++) {
        tc_buf_printf(&o, "<rect x='%d' y='%d' width='16' height='14' fill='%s' stroke='#555'/>",
                      20 + i * 320, ly - 11, cell_colour(ths[i]));
        tc_buf_printf(&o, "<text x='%d' y='%d' font-size='12'>%s</text>\n", 42 + i * 320, ly, labels[i]);
    }
    tc_buf_put(&o, "</svg>\n");
    lab_plot(s, &o,
             "Go's bucket bytes read through unsafe after each step; \"miss probes\": slots a lookup of an "
             "absent key examines in runtime/map.go's generic loop over these bytes (it stops at the first "
             "emptyRest); hmap's tombstones from hmap_get_stats after the same steps.");
}

static void run(lab_section *s, const lab_ctx *ctx) {
    lab_data *h = lab_section_data(s, "hmap"), *g = lab_section_data(s, "go");
    lab_run_c(h, "hmap", hmap_tophash, NULL);
    lab_run_go(g, ctx, "tophash", s->n, NULL, NULL, false);
    bool go = g->ok && !lab_str(g, "header_missing");
    lab_text(
        s,
        "A map made without a size hint has one bucket (B = 0) for its first 8 keys. 8 keys go in, then "
        "the keys in slots 3, 7, 6, 5 and 4 are deleted and one new key inserted. Go's bytes are read from "
        "the bucket itself; hmap shows the same states through hmap_get_stats().tombstones (emptyOne "
        "slots).");
    if (!go)
        lab_go_missing(s, ctx, g);
    static const char *const head[] = {"step",     "Go tophash[0..7]", "miss probes",
                                       "Go count", "hmap tombstones",  "hmap count"};
    tc_table *t = tc_table_new("The bucket after each step (0 = emptyRest, 1 = emptyOne, ≥ 5 = live):", 6,
                               head, "llrrrr");
    const lab_row *gr[16], *hr[16];
    size_t gn = lab_rows(g, "tophash", gr, 16), hn = lab_rows(h, "tophash", hr, 16);
    static const char *const hsteps[] = {"8-keys-inserted", "delete-slot-3", "delete-slot-7", "delete-slot-6",
                                         "delete-slot-5",   "delete-slot-4", "insert-new-key"};
    for (size_t i = 0; i < hn || i < gn; i++) {
        const lab_row *a = i < gn ? gr[i] : NULL, *b = i < hn ? hr[i] : NULL;
        tc_table_addf(t,
                      a       ? a->f[1]
                      : i < 7 ? hsteps[i]
                              : "",
                      a ? a->f[2] : "—", a ? a->f[3] : "—", a ? a->f[4] : "—", b ? b->f[1] : "—",
                      b ? b->f[2] : "—");
    }
    if (!go)
        tc_table_hide(t, 1), tc_table_hide(t, 2), tc_table_hide(t, 3);
    lab_table(s, t, false);
    grid(s, g, h);

    char m[600];
    snprintf(m, sizeof m,
             "Go 1.19, deleting from a map[uint64]uint64: slot → emptyOne %s; key bytes still in the "
             "bucket: %s; value bytes: %s. From a map[string]uint64: key pointer cleared: %s (length "
             "left: %.0f). Trailing emptyOne → emptyRest: see the table. Hash seed re-drawn when the "
             "map became empty: %s",
             go ? "yes" : "?", lab_num(g, "u64.deleted_key_still_there") == 1 ? "yes" : "no",
             lab_num(g, "u64.deleted_value") == 0 ? "zeroed" : "kept",
             lab_num(g, "str.deleted_key_pointer_cleared") == 1 ? "yes" : "no",
             lab_num(g, "str.deleted_key_length"), lab_num(g, "hash0_changed_at_empty") == 1 ? "yes" : "no");
    if (!go)
        lab_claim_add(s, LAB_UNTESTED,
                      "The popular mapdelete snippet: emptyOne, then memclr of key and value", m,
                      "Go's map was not measured");
    else
        lab_claim_add(
            s, LAB_PARTLY, "The popular mapdelete snippet: emptyOne, then memclr of key and value", m,
            "emptyOne and a cleared value, yes; but Go clears a key only if it holds pointers, turns "
            "trailing emptyOne into emptyRest, and re-seeds an emptied map — the snippet is not Go's code");

    const lab_row *last_del = gn > NDEL ? gr[NDEL] : NULL;
    snprintf(m, sizeof m,
             "a missing key's lookup examined %s slots of 8 once slots 3-7 were emptyRest (generic "
             "path); hmap's tombstones went 0 → 1 (slot 3 deleted) → 0 when slot 4 went and slots 3-7 "
             "became emptyRest",
             last_del ? last_del->f[3] : "?");
    if (!go)
        lab_claim_add(s, LAB_UNTESTED, "emptyRest lets lookups stop early", m, "Go's map was not measured");
    else
        lab_claim_add(s, LAB_HOLDS, "emptyRest lets lookups stop early", m,
                      "the generic and string lookups stop at the first emptyRest (so do assign and delete); "
                      "only the uint64/uint32 fast lookups look at all 8 slots");
    snprintf(m, sizeof m, "val_drop calls during the hmap_del of one entry: %.0f",
             lab_num(h, "val_drop_calls_at_delete"));
    lab_claim_add(s, lab_num(h, "val_drop_calls_at_delete") == 1 ? LAB_HOLDS : LAB_DOES_NOT_HOLD,
                  "hmap releases a deleted value at once (val_drop)", m,
                  "the value was handed to val_drop inside hmap_del");
}

const lab_experiment lab_tophash = {
    .name = "tophash",
    .number = 3,
    .title = "one bucket's tophash bytes: emptyOne, emptyRest, and what delete clears",
    .help = "a one-bucket map's 8 tophash bytes through deletes; Go's mapdelete against the popular snippet",
    .default_n = 8,
    .quick_n = 8,
    .n_means = "keys (one bucket: always 8)",
    .run = run,
};
