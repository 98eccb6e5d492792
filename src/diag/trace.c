/* SPDX-License-Identifier: MIT */
/*
 * diag/trace.c — the resize trace: one line when a resize starts and one when it ends, like Go's
 * GODEBUG=gctrace=1 line for a collection.
 *
 * The two lines of one resize of a map named "db" growing from B=8 to B=9:
 *
 *   hmap: resize start map=db kind=grow B=8->9 count=1665 bytes=49216->147584 @1.234567s
 *   hmap: resize end map=db kind=grow B=8->9 count=1690 bytes=49216->98368 ops=129 max_step=2.1us @1.240021s
 *
 * where the fields are
 *   map=NAME        hmap_options.name, or "-" when the map has none (printed as given: a name with spaces
 *                   makes more fields)
 *   kind=K          grow (B goes up: the map doubled), same-size (rebuilt at the same B to drop the
 *                   overflow chains left by deletes), or shrink (B goes down)
 *   B=X->Y          log2 of the bucket count before -> after the resize
 *   count=N         live entries when the line is printed
 *   bytes=X->Y      X: bytes the map held just before the resize started (the same on both lines); Y: at
 *                   the start, bytes it holds now, both arrays (a large new array is mapped from the OS
 *                   untouched, so RSS grows only as it fills); at the end, bytes it holds once the old
 *                   array is released
 *   ops=N           (end) the number of write operations the evacuation was spread over
 *   max_step=T      (end) the longest single evacuation step of this resize, in ns/us/ms
 *   @S.SSSSSSs      seconds since the library was loaded (for a program linked with it: since start)
 * Fields may be added before the @ field in later versions; parse by name.
 *
 * What is traced:
 *   HMAP_TRACE=1 (or *)        every map
 *   HMAP_TRACE=name1,name2     only maps of those names; "-" in the list stands for maps without a name
 *   HMAP_TRACE=0 or unset      none
 *   HMAP_TRACE_MIN_BYTES=N     only resizes of maps that held at least N bytes when the resize started
 *                              (bytes=X with X >= N), so both lines of a resize print or neither
 *   HMAP_TRACE_FILE=path       lines are appended to that file instead of stderr (created if needed)
 * The environment is read once, by a constructor, when the library is loaded; hmap_set_trace(spec) then
 * changes the selection at run time with the same syntax as HMAP_TRACE (NULL: none), from any thread.
 * A resize under way when the selection changes prints only the line that comes after the change.
 *
 * A line is formatted whole and written with one call (write(2) on the file, opened O_APPEND, so that
 * lines of threads and processes do not mix; one fputs on stderr). The selection is kept under a lock
 * taken only when a resize starts or ends while some tracing is on; when none is, the core's check
 * (trace_enabled) is one relaxed atomic load.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime */
#endif
#include "trace.h"

#include "diag.h"
#include "hmap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic bool tracing; /* some map is selected */
static uint64_t start_ns;

/* The selection, under trace_lock. */
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static bool select_all;
static char *select_names; /* own memory: the spec's names, each followed by '\0', then one more '\0' */
static size_t select_bytes;
static size_t min_bytes;  /* HMAP_TRACE_MIN_BYTES */
static int trace_fd = -1; /* HMAP_TRACE_FILE, or -1: stderr */

uint64_t trace_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool trace_enabled(void) { return atomic_load_explicit(&tracing, memory_order_relaxed); }

void trace_fork_prepare(void) { pthread_mutex_lock(&trace_lock); }
void trace_fork_release(void) { pthread_mutex_unlock(&trace_lock); }

/* ---- the selection ------------------------------------------------------------------------------------- */

static bool spec_is_off(const char *spec) {
    return spec == NULL || spec[0] == '\0' || strcmp(spec, "0") == 0;
}

/* The names of a spec, split at commas into '\0'-terminated strings ending with an empty one; sets *all
 * when one of them is "*" (or the whole spec is "1"). NULL when out of memory. */
static char *parse_names(const char *spec, size_t *bytes, bool *all) {
    *all = strcmp(spec, "1") == 0;
    *bytes = strlen(spec) + 2;
    char *names = own_alloc(*bytes);
    if (names == NULL)
        return NULL;
    char *out = names;
    for (const char *s = spec;; s++) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 1 && s[0] == '*')
            *all = true;
        if (len > 0) {
            memcpy(out, s, len);
            out[len] = '\0';
            out += len + 1;
        }
        if (end == NULL)
            break;
        s = end;
    }
    *out = '\0';
    return names;
}

void hmap_set_trace(const char *spec) {
    bool all = false;
    size_t bytes = 0;
    char *names = NULL;
    if (!spec_is_off(spec) && (names = parse_names(spec, &bytes, &all)) == NULL)
        return; /* out of memory: the selection stays as it was */
    pthread_mutex_lock(&trace_lock);
    char *old = select_names;
    size_t old_bytes = select_bytes;
    select_names = names;
    select_bytes = bytes;
    select_all = all;
    atomic_store_explicit(&tracing, names != NULL && (all || names[0] != '\0'), memory_order_relaxed);
    pthread_mutex_unlock(&trace_lock);
    own_free(old, old_bytes);
}

/* Under trace_lock. */
static bool selected(const trace_resize *r) {
    if (r->bytes_before < min_bytes || select_names == NULL)
        return false;
    if (select_all)
        return true;
    const char *want = r->name ? r->name : "-";
    for (const char *s = select_names; *s != '\0'; s += strlen(s) + 1)
        if (strcmp(s, want) == 0)
            return true;
    return false;
}

/* ---- the lines ----------------------------------------------------------------------------------------- */

static double seconds_since_start(void) { return (double)(trace_now_ns() - start_ns) / 1e9; }

/* Writes a duration with a unit that keeps it readable: 850ns, 3.1us, 12.4ms. */
static void format_duration(uint64_t ns, char *out, size_t size) {
    if (ns < 1000)
        snprintf(out, size, "%lluns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(out, size, "%.1fus", (double)ns / 1e3);
    else
        snprintf(out, size, "%.1fms", (double)ns / 1e6);
}

static size_t format_line(const trace_resize *r, char *line, size_t size) {
    const char *name = r->name ? r->name : "-";
    int n;
    if (!r->end) {
        n = snprintf(
            line, size, "hmap: resize start map=%s kind=%s B=%u->%u count=%zu bytes=%zu->%zu @%.6fs\n", name,
            r->kind, r->B_before, r->B_after, r->count, r->bytes_before, r->bytes_now, seconds_since_start());
    } else {
        char step[32];
        format_duration(r->max_step_ns, step, sizeof step);
        n = snprintf(line, size,
                     "hmap: resize end map=%s kind=%s B=%u->%u count=%zu bytes=%zu->%zu ops=%llu max_step=%s "
                     "@%.6fs\n",
                     name, r->kind, r->B_before, r->B_after, r->count, r->bytes_before, r->bytes_now,
                     (unsigned long long)r->ops, step, seconds_since_start());
    }
    if (n < 0)
        return 0;
    if ((size_t)n >= size) { /* a very long name: the line is cut, and still ends the line */
        line[size - 2] = '\n';
        return size - 1;
    }
    return (size_t)n;
}

void trace_resize_line(const trace_resize *r) {
    if (!trace_enabled())
        return;
    pthread_mutex_lock(&trace_lock);
    if (selected(r)) {
        char line[1024];
        size_t len = format_line(r, line, sizeof line);
        if (trace_fd >= 0) {
            if (write(trace_fd, line, len) < 0) {
                /* nothing to do: a trace line is not worth failing a map operation */
            }
        } else {
            fputs(line, stderr);
        }
    }
    pthread_mutex_unlock(&trace_lock);
}

/* ---- the environment ----------------------------------------------------------------------------------- */

static void open_trace_file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        fprintf(stderr, "hmap: cannot open HMAP_TRACE_FILE=%s (%s): tracing to stderr\n", path,
                strerror(errno));
    trace_fd = fd;
}

__attribute__((constructor)) static void trace_read_environment(void) {
    start_ns = trace_now_ns();
    const char *bytes = getenv("HMAP_TRACE_MIN_BYTES");
    if (bytes != NULL && *bytes != '\0') {
        char *end;
        unsigned long long v = strtoull(bytes, &end, 10);
        if (*end == '\0')
            min_bytes = (size_t)v;
        else
            fprintf(stderr, "hmap: ignoring HMAP_TRACE_MIN_BYTES=%s (not a number)\n", bytes);
    }
    const char *file = getenv("HMAP_TRACE_FILE");
    if (file != NULL && *file != '\0')
        open_trace_file(file);
    hmap_set_trace(getenv("HMAP_TRACE"));
}
