/* SPDX-License-Identifier: MIT */
/*
 * typed_misuse.c — code the typed layer must reject at compile time (ctest typed_wrong_types, run by
 * cmake/expect_compile_errors.cmake).
 *
 * Compiled once as it is, which must succeed (so that a failure below is the misuse, not a broken
 * include path), then once with -DMISUSE_<case> for each case, which must fail with an error on the line
 * marked `MISUSE_<case>`. Every case compiles clean, and overflows or misreads at run time, with the raw
 * API's `const void *` parameters.
 */
#include <hmap.h>

#include <stdint.h>

typedef struct key16 {
    uint64_t hi, lo;
} key16;

HMAP_DEFINE(by_key16, key16, uint64_t);
HMAP_DEFINE(u64map, uint64_t, uint64_t);
HMAP_DEFINE(u32map, uint32_t, uint32_t);
HMAP_DEFINE_SET(u64set, uint64_t);
HMAP_DEFINE_STR(names, int);

int main(void) {
    by_key16 *m16 = by_key16_new(0);
    u64map *m64 = u64map_new(0);
    u32map *m32 = u32map_new(0);
    u64set *set = u64set_new(0);
    names *nm = names_new(0);
    uint32_t small = 4;
    key16 k = {1, 2};
    uint64_t *k64p, *v64p;
    int rc = by_key16_put(m16, k, 1) + u64map_put(m64, 1, 2) + u32map_put(m32, 3, 4) + u64set_put(set, 5) +
             names_put(nm, "six", 6);
#ifdef MISUSE_small_key_for_wide_map
    rc += by_key16_put(m16, small, 1); /* MISUSE_small_key_for_wide_map */
#endif
#ifdef MISUSE_other_map_type
    rc += u64map_put(m32, 1, 2); /* MISUSE_other_map_type */
#endif
#ifdef MISUSE_raw_map_for_typed
    rc += u64map_put(u64map_hmap(m64), 1, 2); /* MISUSE_raw_map_for_typed */
#endif
#ifdef MISUSE_value_pointer_of_other_type
    uint32_t *v32p;
    u64map_iter it;
    u64map_iter_init(&it, m64);
    rc += u64map_next(&it, &k64p, &v32p); /* MISUSE_value_pointer_of_other_type */
    u64map_iter_done(&it);
#endif
#ifdef MISUSE_string_for_integer_key
    rc += u64set_put(set, "5"); /* MISUSE_string_for_integer_key */
#endif
#ifdef MISUSE_integer_for_string_key
    rc += names_put(nm, 7, 7); /* MISUSE_integer_for_string_key */
#endif
#ifdef MISUSE_get_result_of_other_type
    uint32_t *wrong = u64map_get(m64, 1); /* MISUSE_get_result_of_other_type */
    rc += wrong != 0;
#endif
    u64map_iter it2;
    for (u64map_iter_init(&it2, m64); u64map_next(&it2, &k64p, &v64p);)
        rc += (int)(*k64p + *v64p + small);
    u64map_iter_done(&it2);
    by_key16_free(m16);
    u64map_free(m64);
    u32map_free(m32);
    u64set_free(set);
    names_free(nm);
    return rc < 0 ? 1 : 0;
}
