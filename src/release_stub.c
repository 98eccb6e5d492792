/*
 * release_stub.c — hmap_release_os_memory, a STAND-IN until src/alloc.c implements it (then delete this
 * file and its line in CMakeLists.txt).
 *
 * The real function belongs beside the memory thread in alloc.c: wait (on a condition variable the thread
 * signals when its unmap queue is empty and it is not in the middle of a job) until every freed array is
 * unmapped, then malloc_trim(0). This file cannot see that queue, so it trims the heap and then watches
 * the process's mapped and resident sizes until neither has moved for SETTLE_NS (polling every POLL_NS,
 * at most LIMIT_NS): the unmapping thread works 1 MiB at a time, well under a millisecond a step, so
 * 20 ms without a change means it is done or idle. The stand-in therefore costs at least 20 ms a call,
 * which the real one will not.
 */
#define _GNU_SOURCE /* malloc_trim, nanosleep */

#include "hmap.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define SETTLE_NS (20 * 1000 * 1000ull)
#define POLL_NS (1000 * 1000ull)
#define LIMIT_NS (2000 * 1000 * 1000ull)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Mapped and resident pages, from /proc/self/statm; false when unreadable. */
static int read_statm(unsigned long *size, unsigned long *resident)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int ok = fscanf(f, "%lu %lu", size, resident) == 2;
    fclose(f);
    return ok;
}

int hmap_release_os_memory(void)
{
    malloc_trim(0);
    unsigned long size = 0, resident = 0;
    if (!read_statm(&size, &resident))
        return 0; /* nothing to watch: the trim is all that can be done */
    uint64_t start = now_ns(), last_change = start;
    struct timespec poll = {0, (long)POLL_NS};
    while (now_ns() - last_change < SETTLE_NS && now_ns() - start < LIMIT_NS) {
        nanosleep(&poll, NULL);
        unsigned long s, r;
        if (!read_statm(&s, &r))
            break;
        if (s != size || r != resident) {
            size = s;
            resident = r;
            last_change = now_ns();
        }
    }
    malloc_trim(0); /* what the unmapped arrays' neighbours left free */
    return 0;
}
