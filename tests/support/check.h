/* SPDX-License-Identifier: MIT */
/*
 * check.h — how the test support code reports a failed check, without depending on a test framework.
 *
 * The support library (the reference model, the test allocator, the differential harness) is shared by
 * the cmocka tests and by the libFuzzer target. Neither framework can be assumed by the other, so every
 * failed check goes through check_fail(), which formats the message and hands it to the installed
 * handler. The default handler prints the message to stderr and calls abort(): what a fuzzer needs (the
 * crash is the report). The cmocka tests install a handler (tests/cmocka_check.c) that fails the running
 * test instead, so a divergence is one failed test with its message, not a dead test program.
 *
 * A handler must not return (cmocka's longjmps out of the test); if one does, check_fail aborts.
 *
 * Also here: allocation helpers for the harness's own bookkeeping, which abort on failure: running out
 * of memory in the test's model is not something the test can recover from or should report as a defect
 * of the map.
 */
#ifndef HMAP_TEST_CHECK_H
#define HMAP_TEST_CHECK_H

#include <stddef.h>

typedef void (*check_handler)(const char *file, int line, const char *message);

/* Installs the handler for failed checks; NULL restores the default (print, abort). */
void check_set_handler(check_handler handler);

_Noreturn void check_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define check_fail(...) check_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define check(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            check_fail(__VA_ARGS__);                                                                         \
    } while (0)

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);

#endif /* HMAP_TEST_CHECK_H */
