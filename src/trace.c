/* trace.c — HMAP_TRACE=1 resize lines (minimal first version; see issue 5). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, dladdr, backtrace */
#endif
#include "internal.h"

#include <time.h>

bool trace_enabled(void)
{
    return false;
}

uint64_t trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void trace_resize_begin(const hmap *m)
{
    (void)m;
}

void trace_resize_end(const hmap *m)
{
    (void)m;
}
