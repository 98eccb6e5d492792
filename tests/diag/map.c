/* SPDX-License-Identifier: MIT */
/*
 * map.c — a program's own file that happens to share its name with one of the library's. Heap profiles
 * must keep its functions, static ones included: the library's frames are told apart by the library's
 * symbols (its public hmap_ functions), never by file names. Used by test_diag_trim.c.
 */
#include "hmap.h"

#include <stdint.h>
#include <stdlib.h>

/* Static, in a file called map.c, allocating through hmap_put: the frame a profile must show. */
__attribute__((noinline)) static void fill_in_user_map_c(hmap *m, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = (i + 1) * 0x9E3779B97F4A7C15u;
        if (hmap_put(m, &k, &i) != 1)
            abort();
    }
}

static uint64_t allocated_total(void) {
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    return ms.total_bytes;
}

/* Builds a map of n entries through hmap_new (which calls hmap_new_opts: two API frames on one stack) and
 * fill_in_user_map_c; *fill_bytes receives what the fill allocated. */
hmap *user_map_c_build(uint64_t n, uint64_t *fill_bytes) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap *m = hmap_new(&type, 0);
    if (m == NULL)
        abort();
    uint64_t before = allocated_total();
    fill_in_user_map_c(m, n);
    *fill_bytes = allocated_total() - before;
    return m;
}
