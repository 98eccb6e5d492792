/* SPDX-License-Identifier: MIT */
/*
 * check.c — failed checks go to the installed handler (see check.h); the default one aborts.
 */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_and_abort(const char *file, int line, const char *message) {
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, message);
    fflush(stderr);
    abort();
}

static check_handler handler = print_and_abort;

void check_set_handler(check_handler h) { handler = h ? h : print_and_abort; }

void check_fail_at(const char *file, int line, const char *fmt, ...) {
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    handler(file, line, message);
    abort(); /* a handler that returns has broken its contract */
}

static void *or_die(void *p, size_t size) {
    if (!p && size) {
        fprintf(stderr, "test support: out of memory (%zu bytes)\n", size);
        abort();
    }
    return p;
}

void *xmalloc(size_t size) { return or_die(malloc(size ? size : 1), size); }

void *xcalloc(size_t n, size_t size) { return or_die(calloc(n ? n : 1, size ? size : 1), n * size); }

void *xrealloc(void *p, size_t size) { return or_die(realloc(p, size ? size : 1), size); }

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}
