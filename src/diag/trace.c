/*
 * trace.c — HMAP_TRACE=1: one line on stderr when a resize starts and one when it ends, like Go's
 * GODEBUG=gctrace=1 line for a collection.
 *
 * The lines (one resize of a map named "users" growing from B=10 to B=11):
 *
 *   hmap: resize start map=users kind=grow B=10->11 count=6657 bytes=196672->589888 @1.234567s
 *   hmap: resize end map=users kind=grow B=10->11 count=6700 bytes=196672->393280 ops=514 max_step=3.1us
 * @1.240021s
 *
 * where the fields are
 *   map=NAME        hmap_options.name, or "-" when the map has none
 *   kind=K          grow (B goes up: the map doubled), same-size (rebuilt at the same B to drop the
 *                   overflow chains left by deletes), or shrink (B goes down)
 *   B=X->Y          log2 of the bucket count before -> after the resize
 *   count=N         live entries when the line is printed
 *   bytes=X->Y      bytes the map held just before the resize started -> at the start, bytes it holds now,
 *                   both arrays (a large new array is mapped from the OS untouched, so RSS grows only as it
 *                   fills); at the end, bytes it holds once the old array is released
 *   ops=N           (end) the number of write operations the evacuation was spread over
 *   max_step=T      (end) the longest single evacuation step of this resize, in ns/us/ms
 *   @S.SSSSSSs      seconds since the library was loaded (for a program linked with it: since start)
 *
 * The environment is read once, by a constructor, when the library is loaded; a line is one fprintf,
 * so lines of different threads do not mix.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime */
#endif
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool tracing;
static uint64_t start_ns;

uint64_t trace_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((constructor)) static void trace_read_environment(void) {
    start_ns = trace_now_ns();
    const char *v = getenv("HMAP_TRACE");
    tracing = v != NULL && strcmp(v, "1") == 0;
}

bool trace_enabled(void) { return tracing; }

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

void trace_resize_line(const trace_resize *r) {
    if (!tracing)
        return;
    const char *name = r->name ? r->name : "-";
    if (!r->end) {
        fprintf(stderr, "hmap: resize start map=%s kind=%s B=%u->%u count=%zu bytes=%zu->%zu @%.6fs\n", name,
                r->kind, r->B_before, r->B_after, r->count, r->bytes_before, r->bytes_now,
                seconds_since_start());
        return;
    }
    char step[32];
    format_duration(r->max_step_ns, step, sizeof step);
    fprintf(stderr,
            "hmap: resize end map=%s kind=%s B=%u->%u count=%zu bytes=%zu->%zu ops=%llu max_step=%s @%.6fs\n",
            name, r->kind, r->B_before, r->B_after, r->count, r->bytes_before, r->bytes_now,
            (unsigned long long)r->ops, step, seconds_since_start());
}
