/* SPDX-License-Identifier: MIT */
/*
 * section.c — what one experiment shows, and its three renderings.
 *
 * An experiment adds items in order (paragraphs, tables, plots, preformatted lines) and claims with their
 * verdicts. The terminal rendering keeps to LAB_WIDTH columns: paragraphs are wrapped, tables wrap their
 * wrappable columns, plots and report-only notes are left to the HTML report (a line says so), and the
 * claims close the section. The JSON rendering adds every figure each implementation printed.
 */
#define _GNU_SOURCE /* vasprintf */

#include "lab.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *lab_verdict_name(lab_verdict v) {
    switch (v) {
    case LAB_HOLDS:
        return "holds";
    case LAB_DOES_NOT_HOLD:
        return "does not hold";
    case LAB_PARTLY:
        return "partly";
    case LAB_UNTESTED:
        return "not measured";
    }
    return "?";
}

static char *vformat(const char *fmt, va_list ap) {
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return s;
}

static lab_item *new_item(lab_section *s, lab_item_kind kind) {
    if (s->nitems == s->cap_items) {
        s->cap_items = s->cap_items ? 2 * s->cap_items : 16;
        s->items = tc_xrealloc(s->items, s->cap_items * sizeof *s->items);
    }
    lab_item *it = &s->items[s->nitems++];
    *it = (lab_item){.kind = kind};
    return it;
}

lab_data *lab_section_data(lab_section *s, const char *impl) {
    lab_data *d = tc_xrealloc(NULL, sizeof *d);
    *d = (lab_data){0};
    snprintf(d->impl, sizeof d->impl, "%s", impl);
    if (s->ndata < sizeof s->data / sizeof s->data[0])
        s->data[s->ndata++] = d;
    return d;
}

void lab_text(lab_section *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    new_item(s, LAB_ITEM_TEXT)->text = vformat(fmt, ap);
    va_end(ap);
}

void lab_note(lab_section *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    new_item(s, LAB_ITEM_NOTE)->text = vformat(fmt, ap);
    va_end(ap);
}

void lab_pre(lab_section *s, const char *caption, const char *lines) {
    lab_item *it = new_item(s, LAB_ITEM_PRE);
    it->text = tc_strdup(caption);
    it->body = tc_strdup(lines);
}

void lab_table(lab_section *s, tc_table *t, bool report_only) {
    lab_item *it = new_item(s, LAB_ITEM_TABLE);
    it->table = t;
    it->report_only = report_only;
}

void lab_plot(lab_section *s, tc_buf *svg, const char *caption) {
    lab_item *it = new_item(s, LAB_ITEM_PLOT);
    it->text = tc_strdup(caption);
    it->body = svg->p ? svg->p : tc_strdup("");
    *svg = (tc_buf){0};
}

void lab_memory_plot(lab_section *s, const lab_memory_line *lines, size_t nlines, const char *last_phase,
                     double last_ops, const char *title, const char *note, const char *caption) {
    enum { MAX_SERIES = 8 };
    tc_series ser[MAX_SERIES];
    double *x[MAX_SERIES], *y[MAX_SERIES];
    char labels[MAX_SERIES][80];
    size_t k = 0;
    for (size_t i = 0; i < nlines && k + 2 <= MAX_SERIES; i++)
        for (int rss = 0; rss < 2; rss++) {
            const lab_memory_line *l = &lines[i];
            size_t n = lab_series(l->data, rss ? "rss" : "bytes", &x[k], &y[k]);
            snprintf(labels[k], sizeof labels[k], "%s %s", l->name,
                     rss              ? "RSS"
                     : l->bytes_label ? l->bytes_label
                                      : "bytes held");
            ser[k] = (tc_series){.label = labels[k],
                                 .colour = l->colour,
                                 .dashed = rss,
                                 .dots = l->dots && !rss,
                                 .width = l->width,
                                 .n = n,
                                 .x = x[k],
                                 .y = y[k]};
            k++;
        }
    double n = (double)s->n, del = n - (double)((s->n + 99) / 100);
    tc_phase ph[4] = {{"fill", 0, n},
                      {"delete 99%", n, n + del},
                      {"delete the rest", n + del, 2 * n},
                      {last_phase, 2 * n, 2 * n + last_ops}};
    tc_chart c = {.title = title,
                  .height = 480,
                  .x = {.label = "operations (each phase drawn the same width; the boundaries give the real "
                                 "counts)",
                        .unit = TC_COUNT},
                  .y = {.label = "memory (log scale)", .scale = TC_LOG, .unit = TC_BYTES},
                  .series = ser,
                  .nseries = k,
                  .phases = ph,
                  .nphases = 4,
                  .equal_phases = true,
                  .note = note};
    tc_buf svg = {0};
    tc_svg_chart(&svg, &c);
    lab_plot(s, &svg, caption);
    for (size_t i = 0; i < k; i++)
        free(x[i]), free(y[i]);
}

void lab_claim_add(lab_section *s, lab_verdict v, const char *text, const char *measured,
                   const char *reason_fmt, ...) {
    if (s->nclaims == s->cap_claims) {
        s->cap_claims = s->cap_claims ? 2 * s->cap_claims : 8;
        s->claims = tc_xrealloc(s->claims, s->cap_claims * sizeof *s->claims);
    }
    va_list ap;
    va_start(ap, reason_fmt);
    s->claims[s->nclaims++] = (lab_claim){tc_strdup(text), tc_strdup(measured), vformat(reason_fmt, ap), v};
    va_end(ap);
}

void lab_go_missing(lab_section *s, const lab_ctx *ctx, const lab_data *go) {
    lab_text(s,
             "Go's map was not measured (%s): hmap's columns alone; claims about Go's map are marked "
             "\"not measured\".",
             go && go->ran ? go->why : ctx->go_why);
}

/* ---- terminal ---- */

/* Prints text wrapped at spaces to `width` columns; the first line after `first`, the others after
 * `indent` spaces. */
static void print_wrapped_as(FILE *out, const char *text, size_t width, const char *first, int indent) {
    const char *p = text;
    bool at_first = true;
    while (*p) {
        size_t cols = 0, i = 0, cut = 0;
        for (; p[i] && p[i] != '\n'; i++) {
            if (((unsigned char)p[i] & 0xC0) == 0x80)
                continue;
            if (cols == width)
                break;
            if (p[i] == ' ')
                cut = i;
            cols++;
        }
        if (!p[i] || p[i] == '\n' || !cut)
            cut = i;
        if (at_first)
            fprintf(out, "%s%.*s\n", first, (int)cut, p);
        else
            fprintf(out, "%*s%.*s\n", indent, "", (int)cut, p);
        at_first = false;
        p += cut;
        while (*p == ' ' || *p == '\n')
            p++;
    }
}

static void print_wrapped(FILE *out, const char *text, size_t width, int indent) {
    print_wrapped_as(out, text, width, "", indent);
}

void lab_print_wrapped(FILE *out, const char *text) { print_wrapped(out, text, LAB_WIDTH, 0); }

void lab_section_print(const lab_section *s, FILE *out) {
    char title[256];
    snprintf(title, sizeof title, "%d. %s — %s", s->exp->number, s->exp->name, s->exp->title);
    fprintf(out, "\n%s\n", title);
    for (size_t i = 0, w = tc_text_width(title); i < w; i++)
        fputs("═", out);
    fputc('\n', out);
    size_t plots = 0;
    for (size_t i = 0; i < s->nitems; i++) {
        const lab_item *it = &s->items[i];
        switch (it->kind) {
        case LAB_ITEM_TEXT:
            fputc('\n', out);
            print_wrapped(out, it->text, LAB_WIDTH, 0);
            break;
        case LAB_ITEM_NOTE:
            break;
        case LAB_ITEM_PRE:
            fprintf(out, "\n%s\n", it->text);
            for (const char *p = it->body; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                fprintf(out, "  %.*s\n", (int)(len > LAB_WIDTH - 2 ? LAB_WIDTH - 2 : len), p);
                p += len + (nl != NULL);
            }
            break;
        case LAB_ITEM_TABLE:
            if (it->report_only)
                break;
            fputc('\n', out);
            tc_table_print(it->table, out, LAB_WIDTH);
            break;
        case LAB_ITEM_PLOT:
            plots++;
            break;
        }
    }
    if (plots)
        fprintf(out, "\n(%zu plot%s of this section in the report)\n", plots, plots > 1 ? "s" : "");
    if (s->nclaims) {
        fputs("\nClaims:\n", out);
        for (size_t i = 0; i < s->nclaims; i++) {
            char line[2048];
            snprintf(line, sizeof line, "%s → %s: %s", s->claims[i].text,
                     lab_verdict_name(s->claims[i].verdict), s->claims[i].reason);
            print_wrapped_as(out, line, LAB_WIDTH - 4, "  • ", 4);
        }
    }
    fprintf(out, "(%s took %.1f s)\n", s->exp->name, s->seconds);
}

/* ---- HTML ---- */

static const char *verdict_class(lab_verdict v) {
    switch (v) {
    case LAB_HOLDS:
        return "holds";
    case LAB_DOES_NOT_HOLD:
        return "nothold";
    case LAB_PARTLY:
        return "partly";
    case LAB_UNTESTED:
        return "untested";
    }
    return "";
}

void lab_section_html(const lab_section *s, tc_buf *o) {
    tc_buf_printf(o, "<section id='%s'>\n<h2>%d. %s — ", s->exp->name, s->exp->number, s->exp->name);
    tc_buf_html(o, s->exp->title);
    tc_buf_printf(o, "</h2>\n<p class='meta'>n = %llu %s; %.1f s</p>\n", (unsigned long long)s->n,
                  s->exp->n_means, s->seconds);
    for (size_t i = 0; i < s->nitems; i++) {
        const lab_item *it = &s->items[i];
        switch (it->kind) {
        case LAB_ITEM_TEXT:
        case LAB_ITEM_NOTE:
            tc_buf_put(o, "<p>");
            tc_buf_html(o, it->text);
            tc_buf_put(o, "</p>\n");
            break;
        case LAB_ITEM_PRE:
            tc_buf_put(o, "<p class='cap'>");
            tc_buf_html(o, it->text);
            tc_buf_put(o, "</p>\n<pre>");
            tc_buf_html(o, it->body);
            tc_buf_put(o, "</pre>\n");
            break;
        case LAB_ITEM_TABLE:
            if (it->report_only) { /* long detail: folded, one click away */
                tc_buf_put(o, "<details><summary>");
                tc_buf_html(o, tc_table_title(it->table));
                tc_buf_put(o, "</summary>\n");
            }
            tc_table_html(it->table, o);
            if (it->report_only)
                tc_buf_put(o, "</details>\n");
            break;
        case LAB_ITEM_PLOT:
            tc_buf_put(o, "<figure>\n");
            tc_buf_put(o, it->body);
            tc_buf_put(o, "<figcaption>");
            tc_buf_html(o, it->text);
            tc_buf_put(o, "</figcaption>\n</figure>\n");
            break;
        }
    }
    if (s->nclaims) {
        tc_buf_put(o,
                   "<table class='claims'><caption>Claims</caption><thead><tr><th>claim</th><th>measured</th>"
                   "<th>verdict</th><th>why</th></tr></thead><tbody>\n");
        for (size_t i = 0; i < s->nclaims; i++) {
            const lab_claim *c = &s->claims[i];
            tc_buf_put(o, "<tr><td>");
            tc_buf_html(o, c->text);
            tc_buf_put(o, "</td><td>");
            tc_buf_html(o, c->measured);
            tc_buf_printf(o, "</td><td class='v %s'>%s</td><td>", verdict_class(c->verdict),
                          lab_verdict_name(c->verdict));
            tc_buf_html(o, c->reason);
            tc_buf_put(o, "</td></tr>\n");
        }
        tc_buf_put(o, "</tbody></table>\n");
    }
    tc_buf_put(o, "</section>\n");
}

/* ---- JSON ---- */

static void data_json(const lab_data *d, tc_json *j) {
    tc_json_object(j, d->impl);
    tc_json_bool(j, "ran", d->ran);
    tc_json_bool(j, "ok", d->ok);
    tc_json_str(j, "why", d->ok ? NULL : d->why);
    tc_json_object(j, "metrics");
    for (size_t i = 0; i < d->nkv; i++)
        if (!d->kv[i].s)
            tc_json_num(j, d->kv[i].key, d->kv[i].v);
    tc_json_end(j, '}');
    tc_json_object(j, "strings");
    for (size_t i = 0; i < d->nkv; i++)
        if (d->kv[i].s)
            tc_json_str(j, d->kv[i].key, d->kv[i].s);
    tc_json_end(j, '}');
    tc_json_end(j, '}');
}

void lab_section_json(const lab_section *s, tc_json *j, const char *key) {
    tc_json_object(j, key);
    tc_json_str(j, "experiment", s->exp->name);
    tc_json_num(j, "number", s->exp->number);
    tc_json_str(j, "title", s->exp->title);
    tc_json_num(j, "n", (double)s->n);
    tc_json_num(j, "seconds", s->seconds);
    tc_json_object(j, "implementations");
    for (size_t i = 0; i < s->ndata; i++)
        data_json(s->data[i], j);
    tc_json_end(j, '}');
    tc_json_array(j, "claims");
    for (size_t i = 0; i < s->nclaims; i++) {
        tc_json_object(j, NULL);
        tc_json_str(j, "claim", s->claims[i].text);
        tc_json_str(j, "measured", s->claims[i].measured);
        tc_json_str(j, "verdict", lab_verdict_name(s->claims[i].verdict));
        tc_json_str(j, "reason", s->claims[i].reason);
        tc_json_end(j, '}');
    }
    tc_json_end(j, ']');
    tc_json_array(j, "tables");
    for (size_t i = 0; i < s->nitems; i++)
        if (s->items[i].kind == LAB_ITEM_TABLE)
            tc_table_json(s->items[i].table, j, NULL);
    tc_json_end(j, ']');
    size_t plots = 0;
    for (size_t i = 0; i < s->nitems; i++)
        plots += s->items[i].kind == LAB_ITEM_PLOT;
    tc_json_num(j, "plots", (double)plots);
    tc_json_end(j, '}');
}

void lab_section_free(lab_section *s) {
    for (size_t i = 0; i < s->nitems; i++) {
        free(s->items[i].text);
        free(s->items[i].body);
        tc_table_free(s->items[i].table);
    }
    for (size_t i = 0; i < s->nclaims; i++) {
        free(s->claims[i].text);
        free(s->claims[i].measured);
        free(s->claims[i].reason);
    }
    for (size_t i = 0; i < s->ndata; i++)
        lab_data_free(s->data[i]);
    free(s->items);
    free(s->claims);
    free(s);
}
