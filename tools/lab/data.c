/* SPDX-License-Identifier: MIT */
/*
 * data.c — measuring processes and what they print.
 *
 * A measurement runs in a process of its own (see lab.h) and prints the line protocol; this file starts
 * those processes, parses their lines into a lab_data, and answers the experiments' questions about it
 * (a figure by key, a series of points, the rows of a table). It also draws the progress line.
 */
#define _GNU_SOURCE /* vasprintf */

#include "lab.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- parsing ---- */

static void add_kv(lab_data *d, const char *key, double v, const char *s) {
    for (size_t i = 0; i < d->nkv; i++) /* a later figure with the same key replaces the earlier one */
        if (!strcmp(d->kv[i].key, key)) {
            free(d->kv[i].s);
            d->kv[i].v = v;
            d->kv[i].s = s ? tc_strdup(s) : NULL;
            return;
        }
    if (d->nkv == d->cap_kv) {
        d->cap_kv = d->cap_kv ? 2 * d->cap_kv : 64;
        d->kv = tc_xrealloc(d->kv, d->cap_kv * sizeof *d->kv);
    }
    lab_kv *kv = &d->kv[d->nkv++];
    snprintf(kv->key, sizeof kv->key, "%s", key);
    kv->v = v;
    kv->s = s ? tc_strdup(s) : NULL;
}

static void add_row(lab_data *d, char *rest) {
    char *save = NULL, *table = strtok_r(rest, " ", &save);
    if (!table)
        return;
    if (d->nrows == d->cap_rows) {
        d->cap_rows = d->cap_rows ? 2 * d->cap_rows : 64;
        d->rows = tc_xrealloc(d->rows, d->cap_rows * sizeof *d->rows);
    }
    lab_row *r = &d->rows[d->nrows++];
    *r = (lab_row){0};
    snprintf(r->table, sizeof r->table, "%s", table);
    for (char *f = strtok_r(NULL, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
        r->f = tc_xrealloc(r->f, (r->nf + 1) * sizeof *r->f);
        r->f[r->nf++] = tc_strdup(f);
    }
}

static void add_point(lab_data *d, const char *series, double x, double y) {
    if (d->npts == d->cap_pts) {
        d->cap_pts = d->cap_pts ? 2 * d->cap_pts : 256;
        d->pts = tc_xrealloc(d->pts, d->cap_pts * sizeof *d->pts);
    }
    lab_point *p = &d->pts[d->npts++];
    snprintf(p->series, sizeof p->series, "%s", series);
    p->x = x;
    p->y = y;
}

static void add_raw(lab_data *d, const char *line) {
    if (d->nraw == d->cap_raw) {
        d->cap_raw = d->cap_raw ? 2 * d->cap_raw : 32;
        d->raw = tc_xrealloc(d->raw, d->cap_raw * sizeof *d->raw);
    }
    d->raw[d->nraw++] = tc_strdup(line);
}

static void parse_line(void *ctx, char *line) {
    lab_data *d = ctx;
    char key[64], series[40];
    double x, y;
    int used = 0;
    if (line[0] && line[1] == ' ') {
        switch (line[0]) {
        case 'm':
            if (sscanf(line + 2, "%63s %lf%n", key, &x, &used) == 2)
                return add_kv(d, key, x, NULL);
            break;
        case 's':
            if (sscanf(line + 2, "%63s%n", key, &used) == 1)
                return add_kv(d, key, NAN, line[2 + used] ? line + 3 + used : "");
            break;
        case 'r':
            return add_row(d, line + 2);
        case 'p':
            if (sscanf(line + 2, "%39s %lf %lf", series, &x, &y) == 3)
                return add_point(d, series, x, y);
            break;
        default:
            break;
        }
    }
    add_raw(d, line);
}

/* ---- questions ---- */

double lab_num(const lab_data *d, const char *key) {
    if (!d || !d->ok)
        return NAN;
    for (size_t i = 0; i < d->nkv; i++)
        if (!strcmp(d->kv[i].key, key))
            return d->kv[i].v;
    return NAN;
}

const char *lab_str(const lab_data *d, const char *key) {
    if (!d || !d->ok)
        return NULL;
    for (size_t i = 0; i < d->nkv; i++)
        if (!strcmp(d->kv[i].key, key))
            return d->kv[i].s;
    return NULL;
}

size_t lab_series(const lab_data *d, const char *series, double **x, double **y) {
    size_t n = 0;
    *x = *y = NULL;
    if (!d || !d->ok)
        return 0;
    for (size_t i = 0; i < d->npts; i++)
        n += !strcmp(d->pts[i].series, series);
    *x = tc_xrealloc(NULL, (n ? n : 1) * sizeof **x);
    *y = tc_xrealloc(NULL, (n ? n : 1) * sizeof **y);
    for (size_t i = 0, k = 0; i < d->npts; i++)
        if (!strcmp(d->pts[i].series, series)) {
            (*x)[k] = d->pts[i].x;
            (*y)[k++] = d->pts[i].y;
        }
    return n;
}

size_t lab_rows(const lab_data *d, const char *table, const lab_row **out, size_t max) {
    size_t n = 0;
    if (!d || !d->ok)
        return 0;
    for (size_t i = 0; i < d->nrows; i++)
        if (!strcmp(d->rows[i].table, table)) {
            if (n < max)
                out[n] = &d->rows[i];
            n++;
        }
    return n < max ? n : max;
}

double lab_fnum(const lab_row *r, size_t i) {
    if (!r || i >= r->nf)
        return NAN;
    char *end;
    double v = strtod(r->f[i], &end);
    return end != r->f[i] ? v : NAN;
}

void lab_data_free(lab_data *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->nkv; i++)
        free(d->kv[i].s);
    for (size_t i = 0; i < d->nrows; i++) {
        for (size_t k = 0; k < d->rows[i].nf; k++)
            free(d->rows[i].f[k]);
        free(d->rows[i].f);
    }
    for (size_t i = 0; i < d->nraw; i++)
        free(d->raw[i]);
    free(d->kv);
    free(d->rows);
    free(d->pts);
    free(d->raw);
    free(d);
}

/* ---- running ---- */

bool lab_run_c(lab_data *d, const char *impl, void (*body)(void *arg, FILE *out), void *arg) {
    snprintf(d->impl, sizeof d->impl, "%s", impl);
    d->ran = true;
    d->ok = tc_fork_lines(body, arg, parse_line, d, d->why, sizeof d->why);
    lab_progress_done();
    if (!d->ok)
        fprintf(stderr, "hmap-lab: %s: %s\n", impl, d->why);
    return d->ok;
}

bool lab_run_go(lab_data *d, const lab_ctx *ctx, const char *subcommand, uint64_t n,
                const char *const extra[], char *const env[], bool merge_stderr) {
    snprintf(d->impl, sizeof d->impl, "go");
    if (!ctx->go_ok) {
        snprintf(d->why, sizeof d->why, "%s", ctx->go_why);
        return false;
    }
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%llu", (unsigned long long)n);
    const char *argv[24] = {ctx->go_binary, subcommand, "-n", nbuf};
    size_t argc = 4;
    for (size_t i = 0; extra && extra[i] && argc < 22; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    lab_progress("%s: Go's map (%s)…", subcommand, ctx->go_version);
    d->ran = true;
    d->ok = tc_spawn_lines((char *const *)argv, env, merge_stderr, parse_line, d, d->why, sizeof d->why);
    lab_progress_done();
    if (!d->ok)
        fprintf(stderr, "hmap-lab: Go companion %s: %s\n", subcommand, d->why);
    return d->ok;
}

bool lab_run_self(lab_data *d, const char *impl, const char *child, uint64_t n, char *const env[]) {
    char self[4096], nbuf[32];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    snprintf(d->impl, sizeof d->impl, "%s", impl);
    d->ran = true;
    if (len <= 0) {
        snprintf(d->why, sizeof d->why, "cannot find this program (/proc/self/exe)");
        return d->ok = false;
    }
    self[len] = '\0';
    snprintf(nbuf, sizeof nbuf, "%llu", (unsigned long long)n);
    char *argv[] = {self, "__child", (char *)child, nbuf, NULL};
    d->ok = tc_spawn_lines(argv, env, true, parse_line, d, d->why, sizeof d->why);
    lab_progress_done();
    return d->ok;
}

/* ---- emitting ---- */

void lab_m(FILE *out, const char *key, double v) {
    if (v == floor(v) && fabs(v) < 1e18)
        fprintf(out, "m %s %.0f\n", key, v);
    else
        fprintf(out, "m %s %.9g\n", key, v);
}

void lab_s(FILE *out, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(out, "s %s ", key);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    va_end(ap);
}

void lab_r(FILE *out, const char *table, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(out, "r %s ", table);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    va_end(ap);
}

void lab_p(FILE *out, const char *series, double x, double y) {
    fprintf(out, "p %s %.9g %.9g\n", series, x, y);
}

/* ---- progress ---- */

static bool progress_on;

void lab_progress_enable(bool on) { progress_on = on; }

void lab_progress(const char *fmt, ...) {
    if (!progress_on)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K  … ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

void lab_progress_done(void) {
    if (progress_on) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}
