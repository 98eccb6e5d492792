/* SPDX-License-Identifier: MIT */
/*
 * core/check.h — the map's consistency walker, for tests and debugging.
 *
 * map_check walks every bucket of both arrays and checks what the rest of the core relies on: the count
 * equals the live entries (in the current array, and in the old array's buckets not yet evacuated); each
 * array's tombstone and overflow-bucket counts are exact; every live entry sits in the bucket its hash
 * names, with the tophash its hash gives; EMPTY_REST appears only where nothing follows it in the chain;
 * an old bucket is either untouched or wholly marked evacuated, every bucket below nevacuate is evacuated,
 * and the evacuated count matches; the current array holds no evacuation marks. O(n): never on a hot path.
 */
#ifndef HMAP_CORE_CHECK_H
#define HMAP_CORE_CHECK_H

#include "hmap.h"

#include <stddef.h>

#define map_check hmap__map_check

/* 0 when consistent; else -1 and the first violation found, described in why. */
int map_check(const hmap *m, char *why, size_t why_size);

#endif /* HMAP_CORE_CHECK_H */
