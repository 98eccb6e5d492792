/* SPDX-License-Identifier: MIT */
/*
 * measure.c — the clock and the process's memory.
 *
 * RSS is what `ps` and `top` show and what the OS charges the process: /proc/self/statm's resident pages
 * times the page size. The mapped size (field 1) moves only when something is mapped or unmapped, which
 * makes it the cheap way to see an unmap finish. The CPU model and the load average go into a report's
 * header: a figure means little without the machine it was measured on and how busy it was.
 */
#include "tools_common.h"

#include <string.h>
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

void tc_cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *colon = strchr(line, ':');
            if (colon) {
                snprintf(buf, size, "%s", colon + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    fclose(f);
}

void tc_load_average(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    if (fgets(buf, (int)size, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}
