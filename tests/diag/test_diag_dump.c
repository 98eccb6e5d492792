/* SPDX-License-Identifier: MIT */
/*
 * test_diag_dump.c — heap profiles written while a program runs: every HMAP_HEAPPROFILE_INTERVAL bytes,
 * and after HMAP_HEAPPROFILE_SIGNAL.
 *
 * The environment is read when the library loads, so each case runs this program again with the
 * variables set (`test_diag_dump --interval` / `--signal`); the child feeds the allocation hook directly
 * (profile_note_alloc, as the memory layer does) so that the bytes are known exactly, at rate 1.
 *
 *   interval  40 blocks of 1 MiB with an interval of 4 MiB: exactly the files prefix.0001.heap ...
 *             prefix.0010.heap, the k-th holding the first 4k MiB (a dump is written by the allocation that
 *             crosses its mark, after that allocation is counted), and the exit profile at prefix itself
 *   signal    after raise(SIGUSR2) no file appears until the next allocation (the handler only sets a
 *             flag), which writes prefix.0001.heap; a second signal, prefix.0002.heap; in a forked child,
 *             prefix.<pid>.0001.heap
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "diag/profile.h"
#include "hmap.h"
#include "pprof_util.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MIB = 1 << 20, BLOCKS = 40, INTERVAL = 4 * MIB };

static char blocks[BLOCKS][1]; /* only the addresses matter: the hook never touches memory */

__attribute__((noinline)) void fake_mib_allocations(void) {
    for (int i = 0; i < BLOCKS; i++)
        profile_note_alloc(blocks[i], MIB, NULL);
}

static char small_block[1];

__attribute__((noinline)) void one_small_allocation(void) {
    profile_note_alloc(small_block, 100, NULL);
    profile_note_free(small_block, 100);
}

/* ---- the children -------------------------------------------------------------------------------------- */

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* Raises the signal, checks that nothing was written yet, allocates once, checks the file is there. */
static int signal_then_allocate(const char *expected) {
    raise(SIGUSR2);
    if (exists(expected))
        return 10; /* the handler must not write */
    one_small_allocation();
    return exists(expected) ? 0 : 11;
}

static int signal_child(const char *prefix) {
    char path[600];
    snprintf(path, sizeof path, "%s.0001.heap", prefix);
    int rc = signal_then_allocate(path);
    snprintf(path, sizeof path, "%s.0002.heap", prefix);
    if (rc == 0)
        rc = signal_then_allocate(path);
    if (rc != 0)
        return rc;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 20;
    if (pid == 0) {
        snprintf(path, sizeof path, "%s.%d.0001.heap", prefix, (int)getpid());
        _exit(signal_then_allocate(path));
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 21;
    return WEXITSTATUS(status);
}

/* ---- the parent ---------------------------------------------------------------------------------------- */

static void run_self(const char *env, const char *mode) {
    char self[512], cmd[2048];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    snprintf(cmd, sizeof cmd, "%s '%s' %s", env, self, mode);
    int status = system(cmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int64_t alloc_space_of(const char *profile, const char *function) {
    char *top = pprof_top("/proc/self/exe", profile, "alloc_space");
    assert_non_null(top);
    int64_t v = top_cum(top, function);
    free(top);
    return v;
}

static void test_interval(void **state) {
    (void)state;
    char prefix[512], env[1024], path[600];
    snprintf(prefix, sizeof prefix, "%s/interval", scratch_dir());
    snprintf(env, sizeof env, "HMAP_PROFILE_RATE=1 HMAP_HEAPPROFILE='%s' HMAP_HEAPPROFILE_INTERVAL=%d",
             prefix, INTERVAL);
    run_self(env, "--interval");
    for (int k = 1; k <= BLOCKS * MIB / INTERVAL; k++) {
        snprintf(path, sizeof path, "%s.%04d.heap", prefix, k);
        if (!exists(path))
            fail_msg("%s is missing", path);
    }
    snprintf(path, sizeof path, "%s.%04d.heap", prefix, BLOCKS * MIB / INTERVAL + 1);
    assert_false(exists(path));
    assert_true(exists(prefix)); /* at exit */
    if (!go_available()) {
        print_message("SKIPPED (contents): `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        return;
    }
    snprintf(path, sizeof path, "%s.0001.heap", prefix);
    assert_int_equal(alloc_space_of(path, "fake_mib_allocations"), INTERVAL);
    snprintf(path, sizeof path, "%s.0010.heap", prefix);
    assert_int_equal(alloc_space_of(path, "fake_mib_allocations"), 10 * (int64_t)INTERVAL);
    assert_int_equal(alloc_space_of(prefix, "fake_mib_allocations"), (int64_t)BLOCKS * MIB);
}

static void test_signal(void **state) {
    (void)state;
    char prefix[512], env[1024], path[600];
    snprintf(prefix, sizeof prefix, "%s/signal", scratch_dir());
    snprintf(env, sizeof env, "HMAP_PROFILE_RATE=1 HMAP_HEAPPROFILE='%s' HMAP_HEAPPROFILE_SIGNAL=USR2",
             prefix);
    run_self(env, "--signal");
    snprintf(path, sizeof path, "%s.0003.heap", prefix);
    assert_false(exists(path)); /* two signals, two dumps */
    if (!go_available()) {
        print_message("SKIPPED (contents): `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        return;
    }
    snprintf(path, sizeof path, "%s.0002.heap", prefix);
    assert_int_equal(alloc_space_of(path, "one_small_allocation"), 200); /* both allocations, each 100 B */
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--interval") == 0) {
        fake_mib_allocations();
        return 0; /* exit writes the profile at the prefix itself */
    }
    if (argc > 1 && strcmp(argv[1], "--signal") == 0) {
        const char *prefix = getenv("HMAP_HEAPPROFILE");
        return prefix ? signal_child(prefix) : 30;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval),
        cmocka_unit_test(test_signal),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return failed;
}
