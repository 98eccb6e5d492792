/* profile.c — sampled heap profile and pprof writer (minimal first version; see issue 5). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, dladdr, backtrace */
#endif
#include "internal.h"

#include <errno.h>

void profile_note_alloc(const void *p, size_t size, const char *name)
{
    (void)p;
    (void)size;
    (void)name;
}

void profile_note_free(const void *p, size_t size)
{
    (void)p;
    (void)size;
}

void hmap_set_profile_rate(size_t bytes)
{
    (void)bytes;
}

int hmap_write_heap_profile(const char *path)
{
    (void)path;
    return -ENOSYS;
}
