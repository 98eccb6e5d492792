/* SPDX-License-Identifier: MIT */
/*
 * diag/profile.h — what the memory layer tells the heap profiler (diag/profile.c).
 *
 * Every allocation and free the library makes is reported here by the memory layer (mem/alloc.c), with
 * the label of the part that owns the memory (a map's name, a pool's name, or NULL). The profiler samples
 * them; hmap_write_heap_profile (public) writes what it sampled in pprof's format.
 */
#ifndef HMAP_DIAG_PROFILE_H
#define HMAP_DIAG_PROFILE_H

#include <stddef.h>

#define profile_note_alloc hmap__profile_note_alloc
#define profile_note_free hmap__profile_note_free

void profile_note_alloc(const void *p, size_t size, const char *name);
void profile_note_free(const void *p, size_t size);

#endif /* HMAP_DIAG_PROFILE_H */
