/* SPDX-License-Identifier: MIT */
/*
 * core/hash.c — the public face of the built-in hash and the string-key helpers.
 *
 * Seeds come from getrandom() (base/random.c): each map gets its own, and draws a new one whenever it
 * becomes empty, so that iteration order and collision patterns cannot be learned from one map and
 * replayed on another.
 */
#include "hash.h"
#include "hmap.h"

#include <string.h>

uint64_t hmap_hash_bytes(const void *data, size_t n, uint64_t seed) {
    return hash_bytes_inline(data, n, seed);
}

uint64_t hmap_hash_cstr(const void *key, uint64_t seed) {
    const char *s = *(const char *const *)key;
    return hash_bytes_inline(s, strlen(s), seed);
}

bool hmap_equal_cstr(const void *a, const void *b) { return equal_cstr_inline(a, b); }
