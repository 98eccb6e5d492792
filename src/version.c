/* SPDX-License-Identifier: MIT */
/*
 * version.c — hmap_version(): the version this library was built as.
 *
 * A function rather than a macro, so that a program linked against a shared libhmap learns the version
 * of the library it runs with, not only that of the headers it was compiled against (HMAP_VERSION).
 */
#include "hmap.h"

_Static_assert(HMAP_VERSION_MINOR < 100 && HMAP_VERSION_PATCH < 100,
               "HMAP_VERSION packs minor and patch into two decimal digits each");

int hmap_version(void) { return HMAP_VERSION; }
