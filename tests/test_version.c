/* SPDX-License-Identifier: MIT */
/*
 * test_version.c — the version macros of include/hmap_version.h against each other, against the library
 * (hmap_version()), and against the version CMake read for the project (HMAP_TEST_PROJECT_VERSION, passed
 * by tests/CMakeLists.txt), which is also the one in the soname and the package files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "hmap.h"

static void test_library_matches_headers(void **state) {
    (void)state;
    assert_int_equal(hmap_version(), HMAP_VERSION);
}

static void test_integer_packs_the_three_numbers(void **state) {
    (void)state;
    assert_int_equal(HMAP_VERSION / 10000, HMAP_VERSION_MAJOR);
    assert_int_equal(HMAP_VERSION / 100 % 100, HMAP_VERSION_MINOR);
    assert_int_equal(HMAP_VERSION % 100, HMAP_VERSION_PATCH);
#if HMAP_VERSION < 100 /* usable in #if: the header's first version is 0.1.0 */
#error "HMAP_VERSION is not a preprocessor constant >= 100"
#endif
}

static void test_string_spells_the_numbers(void **state) {
    (void)state;
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", HMAP_VERSION_MAJOR, HMAP_VERSION_MINOR, HMAP_VERSION_PATCH);
    assert_string_equal(HMAP_VERSION_STRING, expect);
    assert_string_equal(HMAP_VERSION_STRING, HMAP_TEST_PROJECT_VERSION);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_matches_headers),
        cmocka_unit_test(test_integer_packs_the_three_numbers),
        cmocka_unit_test(test_string_spells_the_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
