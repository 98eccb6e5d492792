/* SPDX-License-Identifier: MIT */
/*
 * measure.c — the clock and the process's memory.
 *
 * RSS is what `ps` and `top` show and what the OS charges the process: /proc/self/statm's resident pages
 * times the page size. The mapped size (field 1) moves only when something is mapped or unmapped, which
 * makes it the cheap way to see an unmap finish.
 */
#include "tools_common.h"

#include <time.h>
#include <unistd.h>

uint64_t tc_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Field `which` (0: size, 1: resident) of /proc/self/statm, in bytes; 0 when unreadable. */
static uint64_t statm_field(int which) {
    static long page;
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long v[2] = {0, 0};
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &v[0], &v[1]) != 2)
        v[0] = v[1] = 0;
    fclose(f);
    return (uint64_t)v[which] * (uint64_t)page;
}

uint64_t tc_rss_bytes(void) { return statm_field(1); }
uint64_t tc_vm_bytes(void) { return statm_field(0); }
