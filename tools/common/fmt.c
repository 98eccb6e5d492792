/* SPDX-License-Identifier: MIT */
/*
 * fmt.c — numbers in the units people read, and a growable string buffer.
 *
 * Sizes are binary (KiB, MiB: what the kernel and Go's runtime count in), counts decimal ("10M" is ten
 * million inserts), times in the unit that gives one to three digits before the point.
 */
#include "tools_common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *tc_fmt_bytes(uint64_t bytes, char buf[32]) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, 32, v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

const char *tc_fmt_count(uint64_t n, char buf[32]) {
    if (n >= 1000000 && n % 100000 == 0)
        snprintf(buf, 32, n % 1000000 ? "%.1fM" : "%.0fM", (double)n / 1e6);
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, 32, "%lluk", (unsigned long long)(n / 1000));
    else
        snprintf(buf, 32, "%llu", (unsigned long long)n);
    return buf;
}

const char *tc_fmt_ns(double ns, char buf[32]) {
    if (ns != ns)
        snprintf(buf, 32, "—");
    else if (ns < 1e3)
        snprintf(buf, 32, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, 32, ns < 1e4 ? "%.1f µs" : "%.0f µs", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, 32, ns < 1e8 ? "%.2f ms" : "%.0f ms", ns / 1e6);
    else
        snprintf(buf, 32, "%.2f s", ns / 1e9);
    return buf;
}

const char *tc_fmt_ratio(double r, char buf[32]) {
    if (r != r)
        snprintf(buf, 32, "—");
    else
        snprintf(buf, 32, r < 10 ? "%.2f×" : r < 100 ? "%.1f×" : "%.0f×", r);
    return buf;
}

void *tc_xrealloc(void *p, size_t size) {
    void *q = realloc(p, size ? size : 1);
    if (!q) {
        fprintf(stderr, "out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return q;
}

char *tc_strdup(const char *s) {
    size_t n = strlen(s ? s : "") + 1;
    char *d = tc_xrealloc(NULL, n);
    memcpy(d, s ? s : "", n);
    return d;
}

static void buf_reserve(tc_buf *b, size_t more) {
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = tc_xrealloc(b->p, cap);
    b->cap = cap;
}

void tc_buf_printf(tc_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tc_buf_put(tc_buf *b, const char *s) {
    size_t n = strlen(s);
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void tc_buf_html(tc_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            tc_buf_put(b, "&amp;");
            break;
        case '<':
            tc_buf_put(b, "&lt;");
            break;
        case '>':
            tc_buf_put(b, "&gt;");
            break;
        case '"':
            tc_buf_put(b, "&quot;");
            break;
        case '\'':
            tc_buf_put(b, "&#39;");
            break;
        default: {
            char c[2] = {*s, 0};
            tc_buf_put(b, c);
        }
        }
    }
}

void tc_buf_free(tc_buf *b) {
    free(b->p);
    *b = (tc_buf){0};
}

size_t tc_text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}
