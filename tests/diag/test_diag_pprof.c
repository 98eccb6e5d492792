/* SPDX-License-Identifier: MIT */
/*
 * test_diag_pprof.c — the heap profiler and its pprof writer on their own, without any map.
 *
 * The tests call the allocation hooks of src/diag/profile.c directly (profile_note_alloc / profile_note_free,
 * as alloc.c does) from two functions of this program, write profiles, and read them back with
 * `go tool pprof`: exact values at rate 1 (and still after the rate is switched), frees leaving the in-use
 * figures, the "map" label, source lines (pprof's -list), the unsampling at a coarse rate landing near the
 * true total, several threads at once, and the environment variables (HMAP_PROFILE_RATE, HMAP_HEAPPROFILE
 * written at exit). Each test runs in a forked child so that its profile holds only its own samples
 * (records are process-wide, as Go's are).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "diag/profile.h"
#include "hmap.h"
#include "pprof_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { BIG_BLOCK = 1 << 20, BIG_COUNT = 40, SMALL_BLOCK = 160, SMALL_COUNT = 1000 };

static char big_blocks[BIG_COUNT][1]; /* only the addresses matter: the hooks never touch memory */
static char small_blocks[SMALL_COUNT][1];

static const int fake_big_line = __LINE__ + 3; /* the line of the profile_note_alloc call below */
__attribute__((noinline)) void fake_big_allocations(void) {
    for (int i = 0; i < BIG_COUNT; i++)
        profile_note_alloc(big_blocks[i], BIG_BLOCK, "fake-big");
}

__attribute__((noinline)) void fake_small_allocations(void) {
    for (int i = 0; i < SMALL_COUNT; i++)
        profile_note_alloc(small_blocks[i], SMALL_BLOCK, NULL);
}

static void free_big_half(void) {
    for (int i = 0; i < BIG_COUNT / 2; i++)
        profile_note_free(big_blocks[i], BIG_BLOCK);
}

/* Runs fn in a child process; asserts it exited with 0. */
static void in_child(int (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static char profile_path[512];

static const char *path_in_scratch(const char *name) {
    snprintf(profile_path, sizeof profile_path, "%s/%s", scratch_dir(), name);
    return profile_path;
}

static int child_rate1(void) {
    hmap_set_profile_rate(1);
    fake_big_allocations();
    fake_small_allocations();
    free_big_half();
    return hmap_write_heap_profile(path_in_scratch("rate1.pb.gz")) == 0 ? 0 : 1;
}

static void test_rate1_exact(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    in_child(child_rate1);
    const char *prof = path_in_scratch("rate1.pb.gz");

    char *top = pprof_top("/proc/self/exe", prof, "alloc_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_big_allocations"), (int64_t)BIG_BLOCK * BIG_COUNT);
    assert_int_equal(top_cum(top, "fake_small_allocations"), (int64_t)SMALL_BLOCK * SMALL_COUNT);
    assert_int_equal(top_cum(top, "profile_note_alloc"), -1); /* library frames are trimmed */
    free(top);

    top = pprof_top("/proc/self/exe", prof, "inuse_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_big_allocations"), (int64_t)BIG_BLOCK * (BIG_COUNT / 2));
    assert_int_equal(top_cum(top, "fake_small_allocations"), (int64_t)SMALL_BLOCK * SMALL_COUNT);
    free(top);

    top = pprof_top("/proc/self/exe", prof, "alloc_objects");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_small_allocations"), SMALL_COUNT);
    free(top);

    char *tags = pprof_run("-tags", "/proc/self/exe", prof);
    assert_non_null(tags);
    assert_non_null(strstr(tags, "map:"));
    assert_non_null(strstr(tags, "fake-big"));
    free(tags);

    char *raw = pprof_run("-raw", "/proc/self/exe", prof);
    assert_non_null(raw);
    assert_non_null(strstr(raw, "PeriodType: space bytes"));
    assert_non_null(strstr(raw, "Period: 1\n"));
    assert_non_null(
        strstr(raw, "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes"));
    free(raw);
}

static int child_rate_switch(void) {
    hmap_set_profile_rate(1);
    fake_big_allocations();
    fake_small_allocations();
    hmap_set_profile_rate(512 * 1024); /* nothing allocated after the switch */
    return hmap_write_heap_profile(path_in_scratch("switch.pb.gz")) == 0 ? 0 : 1;
}

/* Each sample is unsampled with the rate it was taken at: exact at rate 1, still exact after a switch. */
static void test_rate_switch_keeps_exact(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    in_child(child_rate_switch);
    const char *prof = path_in_scratch("switch.pb.gz");
    char *top = pprof_top("/proc/self/exe", prof, "alloc_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_big_allocations"), (int64_t)BIG_BLOCK * BIG_COUNT);
    assert_int_equal(top_cum(top, "fake_small_allocations"), (int64_t)SMALL_BLOCK * SMALL_COUNT);
    free(top);
    top = pprof_top("/proc/self/exe", prof, "alloc_objects");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_small_allocations"), SMALL_COUNT);
    free(top);
    char *raw = pprof_run("-raw", "/proc/self/exe", prof);
    assert_non_null(raw);
    assert_non_null(strstr(raw, "Period: 524288\n")); /* the period is the rate now */
    free(raw);
}

/* pprof symbolizes the locations from the binary (the mappings do not claim to be symbolized): `-list`
 * shows this file's source lines with their bytes, without -symbolize=force. */
static void test_source_lines(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    in_child(child_rate1);
    /* pprof looks for sources relative to its working directory after cutting their paths at that
     * directory's basename (here "diag", which this file's path also contains): point it at this file's. */
    char args[1024], dir[512];
    snprintf(dir, sizeof dir, "%s", strchr(__FILE__, '/') ? __FILE__ : "./x");
    *strrchr(dir, '/') = '\0';
    snprintf(args, sizeof args, "-list=fake_big_allocations -sample_index=alloc_space -source_path='%s'",
             dir);
    char *list = pprof_run(args, "/proc/self/exe", path_in_scratch("rate1.pb.gz"));
    assert_non_null(list);
    if (getenv("HMAP_DIAG_VERBOSE") != NULL)
        print_message("%s\n", list);
    assert_null(strstr(list, "No source information"));
    assert_non_null(strstr(list, "ROUTINE ======================== fake_big_allocations"));
    assert_non_null(strstr(list, "test_diag_pprof.c"));
    assert_non_null(strstr(list, "profile_note_alloc(big_blocks[i], BIG_BLOCK, \"fake-big\");"));
    assert_non_null(strstr(list, "40MB")); /* the line's bytes: 40 blocks of 1 MiB */
    free(list);
    char *lines =
        pprof_run("-top -lines -sample_index=alloc_space", "/proc/self/exe", path_in_scratch("rate1.pb.gz"));
    assert_non_null(lines);
    char where[64];
    snprintf(where, sizeof where, "test_diag_pprof.c:%d", fake_big_line);
    assert_non_null(strstr(lines, where)); /* -lines: a row per file:line */
    free(lines);
}

static int child_sampled(void) {
    hmap_set_profile_rate(20000); /* a small block is sampled with probability ~0.8% */
    for (int round = 0; round < 100; round++)
        fake_small_allocations();
    return hmap_write_heap_profile(path_in_scratch("sampled.pb.gz")) == 0 ? 0 : 1;
}

/* 100k blocks of 160 bytes at a mean of 20000 bytes between samples: ~800 samples, each scaled back up. */
static void test_unsampled_estimate(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    in_child(child_sampled);
    char *top = pprof_top("/proc/self/exe", path_in_scratch("sampled.pb.gz"), "alloc_space");
    assert_non_null(top);
    double truth = (double)SMALL_BLOCK * SMALL_COUNT * 100;
    double got = (double)top_cum(top, "fake_small_allocations");
    print_message("estimated %.0f bytes of %.0f (%.1f%%)\n", got, truth, 100.0 * got / truth);
    assert_true(got > 0.85 * truth && got < 1.15 * truth); /* ~3.5% standard deviation: a 4-sigma bound */
    free(top);
}

static int child_off(void) {
    hmap_set_profile_rate(0);
    fake_big_allocations();
    return hmap_write_heap_profile(path_in_scratch("off.pb.gz")) == 0 ? 0 : 1;
}

static void test_rate0_records_nothing(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    in_child(child_off);
    char *top = pprof_top("/proc/self/exe", path_in_scratch("off.pb.gz"), "alloc_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_big_allocations"), -1);
    free(top);
}

enum { THREADS = 4, THREAD_BLOCKS = 20000 };
static char thread_blocks[THREADS][THREAD_BLOCKS];

/* Each thread allocates its blocks, frees every other one, writing profiles meanwhile from thread 0. */
__attribute__((noinline)) void *fake_thread_allocations(void *arg) {
    char *blocks = arg;
    for (int i = 0; i < THREAD_BLOCKS; i++)
        profile_note_alloc(&blocks[i], 64, "threads");
    for (int i = 0; i < THREAD_BLOCKS; i += 2)
        profile_note_free(&blocks[i], 64);
    if (blocks == thread_blocks[0])
        for (int k = 0; k < 3; k++)
            if (hmap_write_heap_profile(path_in_scratch("threads-mid.pb.gz")) != 0)
                return arg;
    return NULL;
}

static int child_threads(void) {
    hmap_set_profile_rate(1);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, fake_thread_allocations, thread_blocks[i]) != 0)
            return 1;
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        failed |= ret != NULL;
    }
    return failed || hmap_write_heap_profile(path_in_scratch("threads.pb.gz")) != 0;
}

/* Several threads sampling and freeing at once (rate 1): every allocation and free is accounted. */
static void test_threads(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    in_child(child_threads);
    char *top = pprof_top("/proc/self/exe", path_in_scratch("threads.pb.gz"), "alloc_objects");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_thread_allocations"), THREADS * THREAD_BLOCKS);
    free(top);
    top = pprof_top("/proc/self/exe", path_in_scratch("threads.pb.gz"), "inuse_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_thread_allocations"), THREADS * THREAD_BLOCKS / 2 * 64);
    free(top);
}

/* HMAP_PROFILE_RATE and HMAP_HEAPPROFILE, read when the library loads: this program run again with both
 * set (rate 1) makes the fake allocations and exits without writing anything itself. */
static void test_environment(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    char self[512], cmd[2048];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    const char *prof = path_in_scratch("atexit.pb.gz");
    snprintf(cmd, sizeof cmd, "HMAP_PROFILE_RATE=1 HMAP_HEAPPROFILE='%s' '%s' --env-child", prof, self);
    assert_int_equal(system(cmd), 0);
    char *top = pprof_top(self, prof, "alloc_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "fake_big_allocations"), (int64_t)BIG_BLOCK * BIG_COUNT);
    assert_int_equal(top_cum(top, "fake_small_allocations"), (int64_t)SMALL_BLOCK * SMALL_COUNT);
    free(top);
}

static void test_write_errors(void **state) {
    (void)state;
    assert_int_equal(hmap_write_heap_profile(NULL), -EINVAL);
    assert_true(hmap_write_heap_profile("/nonexistent-dir/x.pb.gz") < 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--env-child") == 0) {
        fake_big_allocations();
        fake_small_allocations();
        return 0; /* the profile is written at exit */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate1_exact),           cmocka_unit_test(test_rate_switch_keeps_exact),
        cmocka_unit_test(test_source_lines),          cmocka_unit_test(test_unsampled_estimate),
        cmocka_unit_test(test_rate0_records_nothing), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_environment),           cmocka_unit_test(test_write_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return failed;
}
