/* SPDX-License-Identifier: MIT */
/*
 * json.c — a streaming JSON writer: objects and arrays are opened and closed in order, commas and
 * escapes are its business. Numbers that are whole print without a fraction; NaN (a figure that was not
 * measured) prints as null.
 */
#include "tools_common.h"

#include <math.h>

static void raw_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void separator(tc_json *j, const char *key) {
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = false;
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->f);
    if (key) {
        raw_string(j->f, key);
        fputs(": ", j->f);
    }
}

static void start(tc_json *j, FILE *f, char open, char close) {
    *j = (tc_json){.f = f, .depth = 1, .outer = close};
    j->first[1] = true;
    fputc(open, f);
}

void tc_json_start(tc_json *j, FILE *f) { start(j, f, '{', '}'); }
void tc_json_start_array(tc_json *j, FILE *f) { start(j, f, '[', ']'); }

void tc_json_finish(tc_json *j) { fprintf(j->f, "\n%c\n", j->outer ? j->outer : '}'); }

static void open_container(tc_json *j, const char *key, char open) {
    separator(j, key);
    fputc(open, j->f);
    if (j->depth < 63)
        j->depth++;
    j->first[j->depth] = true;
}

void tc_json_object(tc_json *j, const char *key) { open_container(j, key, '{'); }
void tc_json_array(tc_json *j, const char *key) { open_container(j, key, '['); }

void tc_json_end(tc_json *j, char close) {
    bool empty = j->first[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (!empty) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    fputc(close, j->f);
}

void tc_json_num(tc_json *j, const char *key, double v) {
    separator(j, key);
    if (!isfinite(v))
        fputs("null", j->f);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(j->f, "%.0f", v);
    else
        fprintf(j->f, "%.6g", v);
}

void tc_json_str(tc_json *j, const char *key, const char *s) {
    separator(j, key);
    if (!s)
        fputs("null", j->f);
    else
        raw_string(j->f, s);
}

void tc_json_bool(tc_json *j, const char *key, bool v) {
    separator(j, key);
    fputs(v ? "true" : "false", j->f);
}
