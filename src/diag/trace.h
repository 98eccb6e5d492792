/* SPDX-License-Identifier: MIT */
/*
 * diag/trace.h — the resize trace (HMAP_TRACE, hmap_set_trace): what the core reports, as plain values.
 *
 * The core fills a trace_resize record when a resize starts and when it ends; trace.c decides whether the
 * map is selected (by name, by size) and formats the line. The record carries values, not the map, so
 * that this layer knows nothing of the map's insides.
 */
#ifndef HMAP_DIAG_TRACE_H
#define HMAP_DIAG_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define trace_enabled hmap__trace_enabled
#define trace_now_ns hmap__trace_now_ns
#define trace_resize_line hmap__trace_resize_line

typedef struct trace_resize {
    const char *name; /* the map's label, or NULL */
    const char *kind; /* "grow", "same-size", "shrink" */
    bool end;         /* false: the resize starts; true: it ends */
    unsigned B_before, B_after;
    size_t count; /* live entries now */
    size_t bytes_before, bytes_now;
    uint64_t ops;         /* (end) writes the evacuation was spread over */
    uint64_t max_step_ns; /* (end) longest single evacuation step */
} trace_resize;

bool trace_enabled(void); /* some map is traced (one relaxed load): worth filling a record */
uint64_t trace_now_ns(void);
void trace_resize_line(const trace_resize *r);

#endif /* HMAP_DIAG_TRACE_H */
