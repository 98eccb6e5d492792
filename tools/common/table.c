/* SPDX-License-Identifier: MIT */
/*
 * table.c — one table, three renderings: aligned text for a terminal, HTML, JSON.
 *
 * The terminal rendering must fit a width (the lab uses 120 columns): columns marked wrappable give up
 * width first, the widest first, down to WRAP_MIN, and their cells continue on the following lines, broken
 * at spaces. Columns marked report-only (long detail) appear only in HTML and JSON. Widths are counted in
 * code points, so "µs" and "×" count as one column each.
 */
#include "tools_common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { WRAP_MIN = 12, GAP = 2 };

struct tc_table {
    char *title;
    size_t ncols, nrows, cap;
    char **headers;
    char *align;
    bool *wrap, *report_only, *hidden;
    char ***rows;
};

tc_table *tc_table_new(const char *title, size_t ncols, const char *const headers[], const char *align) {
    tc_table *t = tc_xrealloc(NULL, sizeof *t);
    *t = (tc_table){.title = tc_strdup(title ? title : ""), .ncols = ncols};
    t->headers = tc_xrealloc(NULL, ncols * sizeof *t->headers);
    t->align = tc_xrealloc(NULL, ncols + 1);
    t->wrap = tc_xrealloc(NULL, ncols * sizeof *t->wrap);
    t->report_only = tc_xrealloc(NULL, ncols * sizeof *t->report_only);
    t->hidden = tc_xrealloc(NULL, ncols * sizeof *t->hidden);
    for (size_t c = 0; c < ncols; c++) {
        t->headers[c] = tc_strdup(headers[c]);
        t->align[c] = align && strlen(align) > c ? align[c] : 'l';
        t->wrap[c] = t->report_only[c] = t->hidden[c] = false;
    }
    t->align[ncols] = '\0';
    return t;
}

void tc_table_wrap(tc_table *t, size_t col) {
    if (col < t->ncols)
        t->wrap[col] = true;
}

void tc_table_report_only(tc_table *t, size_t col) {
    if (col < t->ncols)
        t->report_only[col] = true;
}

void tc_table_hide(tc_table *t, size_t col) {
    if (col < t->ncols)
        t->hidden[col] = t->report_only[col] = true;
}

void tc_table_add(tc_table *t, const char *const cells[]) {
    if (t->nrows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->rows = tc_xrealloc(t->rows, t->cap * sizeof *t->rows);
    }
    char **row = tc_xrealloc(NULL, t->ncols * sizeof *row);
    for (size_t c = 0; c < t->ncols; c++)
        row[c] = tc_strdup(cells[c] ? cells[c] : "");
    t->rows[t->nrows++] = row;
}

void tc_table_addf(tc_table *t, ...) {
    const char *cells[64];
    va_list ap;
    va_start(ap, t);
    for (size_t c = 0; c < t->ncols && c < 64; c++)
        cells[c] = va_arg(ap, const char *);
    va_end(ap);
    tc_table_add(t, cells);
}

size_t tc_table_rows(const tc_table *t) { return t->nrows; }
const char *tc_table_title(const tc_table *t) { return t->title; }

/* ---- terminal ---- */

/* Byte length of the longest prefix of s, ending at a space when possible, that fits `width` columns;
 * *next is where the following line starts. */
static size_t wrap_line(const char *s, size_t width, const char **next) {
    size_t cols = 0, last_space = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) == 0x80)
            continue;
        if (cols == width)
            break;
        if (s[i] == ' ')
            last_space = i;
        cols++;
    }
    if (!s[i]) {
        *next = s + i;
        return i;
    }
    size_t end = last_space ? last_space : i;
    *next = s + end + (last_space ? 1 : 0);
    return end;
}

static void print_padded(FILE *out, const char *s, size_t bytes, size_t width, char align) {
    char tmp[1024];
    size_t n = bytes < sizeof tmp - 1 ? bytes : sizeof tmp - 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    size_t w = tc_text_width(tmp);
    size_t pad = width > w ? width - w : 0;
    if (align == 'r')
        fprintf(out, "%*s%s", (int)pad, "", tmp);
    else
        fprintf(out, "%s%*s", tmp, (int)pad, "");
}

/* Prints one row (headers or cells), as many lines as its wrapped cells need. */
static size_t print_row(FILE *out, const tc_table *t, char *const cells[], const size_t widths[]) {
    const char *rest[64];
    size_t widest = 0;
    for (size_t c = 0; c < t->ncols && c < 64; c++)
        rest[c] = cells[c];
    for (bool more = true; more;) {
        more = false;
        size_t line = 0, last = 0;
        for (size_t c = 0; c < t->ncols; c++)
            if (!t->report_only[c])
                last = c;
        for (size_t c = 0; c < t->ncols && c < 64; c++) {
            if (t->report_only[c])
                continue;
            const char *next;
            size_t bytes = wrap_line(rest[c], widths[c], &next);
            bool final = c == last && t->align[c] != 'r';
            print_padded(out, rest[c], bytes, final ? 0 : widths[c], t->align[c]);
            line += widths[c];
            if (c != last) {
                fputs("  ", out);
                line += GAP;
            }
            rest[c] = next;
            more |= *next != '\0';
        }
        fputc('\n', out);
        widest = line > widest ? line : widest;
    }
    return widest;
}

size_t tc_table_print(const tc_table *t, FILE *out, size_t max_width) {
    size_t widths[64] = {0}, total = 0, visible = 0;
    for (size_t c = 0; c < t->ncols && c < 64; c++) {
        if (t->report_only[c])
            continue;
        widths[c] = tc_text_width(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = tc_text_width(t->rows[r][c]);
            widths[c] = w > widths[c] ? w : widths[c];
        }
        total += widths[c];
        visible++;
    }
    total += visible > 1 ? GAP * (visible - 1) : 0;
    while (total > max_width) { /* narrow the widest wrappable column by one */
        size_t best = SIZE_MAX;
        for (size_t c = 0; c < t->ncols && c < 64; c++)
            if (!t->report_only[c] && t->wrap[c] && widths[c] > WRAP_MIN &&
                (best == SIZE_MAX || widths[c] > widths[best]))
                best = c;
        if (best == SIZE_MAX)
            break;
        widths[best]--;
        total--;
    }
    if (*t->title)
        fprintf(out, "%s\n", t->title);
    size_t widest = print_row(out, t, t->headers, widths);
    for (size_t c = 0, first = 1; c < t->ncols && c < 64; c++) {
        if (t->report_only[c])
            continue;
        if (!first)
            fputs("  ", out);
        for (size_t i = 0; i < widths[c]; i++)
            fputs("─", out);
        first = 0;
    }
    fputc('\n', out);
    for (size_t r = 0; r < t->nrows; r++) {
        size_t w = print_row(out, t, t->rows[r], widths);
        widest = w > widest ? w : widest;
    }
    return widest > total ? widest : total;
}

/* ---- HTML and JSON ---- */

void tc_table_html(const tc_table *t, tc_buf *out) {
    tc_buf_put(out, "<table>\n");
    if (*t->title) {
        tc_buf_put(out, "<caption>");
        tc_buf_html(out, t->title);
        tc_buf_put(out, "</caption>\n");
    }
    tc_buf_put(out, "<thead><tr>");
    for (size_t c = 0; c < t->ncols; c++) {
        if (t->hidden[c])
            continue;
        tc_buf_put(out, t->align[c] == 'r' ? "<th class='r'>" : "<th>");
        tc_buf_html(out, t->headers[c]);
        tc_buf_put(out, "</th>");
    }
    tc_buf_put(out, "</tr></thead>\n<tbody>\n");
    for (size_t r = 0; r < t->nrows; r++) {
        tc_buf_put(out, "<tr>");
        for (size_t c = 0; c < t->ncols; c++) {
            if (t->hidden[c])
                continue;
            tc_buf_put(out, t->align[c] == 'r' ? "<td class='r'>" : "<td>");
            tc_buf_html(out, t->rows[r][c]);
            tc_buf_put(out, "</td>");
        }
        tc_buf_put(out, "</tr>\n");
    }
    tc_buf_put(out, "</tbody></table>\n");
}

void tc_table_json(const tc_table *t, tc_json *j, const char *key) {
    tc_json_object(j, key);
    tc_json_str(j, "title", t->title);
    tc_json_array(j, "columns");
    for (size_t c = 0; c < t->ncols; c++)
        if (!t->hidden[c])
            tc_json_str(j, NULL, t->headers[c]);
    tc_json_end(j, ']');
    tc_json_array(j, "rows");
    for (size_t r = 0; r < t->nrows; r++) {
        tc_json_array(j, NULL);
        for (size_t c = 0; c < t->ncols; c++)
            if (!t->hidden[c])
                tc_json_str(j, NULL, t->rows[r][c]);
        tc_json_end(j, ']');
    }
    tc_json_end(j, ']');
    tc_json_end(j, '}');
}

void tc_table_free(tc_table *t) {
    if (!t)
        return;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    for (size_t c = 0; c < t->ncols; c++)
        free(t->headers[c]);
    free(t->rows);
    free(t->headers);
    free(t->align);
    free(t->wrap);
    free(t->report_only);
    free(t->hidden);
    free(t->title);
    free(t);
}
