/* SPDX-License-Identifier: MIT */
/*
 * cmocka_check.c — linked into every cmocka test that uses the support library: a failed support check
 * (tests/support/check.h) fails the running cmocka test, with the check's message, instead of aborting
 * the whole program. Installed before main() by a constructor, so no test has to remember to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "check.h"

static void fail_cmocka_test(const char *file, int line, const char *message) {
    print_error("%s\n", message);
    _fail(file, line); /* longjmps out of the test */
}

__attribute__((constructor)) static void install_cmocka_handler(void) { check_set_handler(fail_cmocka_test); }
