/* SPDX-License-Identifier: MIT */
/*
 * test_diag_profile.c — heap profiles of real maps, read with `go tool pprof`.
 *
 * The scenario: a big map (1M uint64 -> uint64) built in one function, a small one (200k) in
 * another. A forked child (so that each profile holds only its own samples) sets the rate, builds both,
 * writes a profile, frees the big map and writes a second one, and reports hmap_get_stats().bytes of
 * each map and the bytes the library allocated while building each (hmap_read_memstats). The parent then
 * reads the profiles with `go tool pprof -top` and checks, per function:
 *   rate 1:        inuse_space == the map's bytes, alloc_space == what building it allocated, exactly;
 *   default rate:  the big map's within 10%, the small map named (see check_profiles);
 *   after free:    the big map's in-use share is gone, its allocations are still counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hmap.h"
#include "pprof_util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { BIG_ENTRIES = 1000000, SMALL_ENTRIES = 200000 };
#define DEFAULT_RATE (512u * 1024u)

static hmap *new_u64_map(const char *name) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap_options opts = {.name = name};
    return hmap_new_opts(&type, 0, &opts);
}

static void fill(hmap *m, uint64_t n, uint64_t salt) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = (i + salt) * 0x9E3779B97F4A7C15u, v = i;
        if (hmap_put(m, &k, &v) != 1)
            abort();
    }
}

/* The two call sites the profile must tell apart. External and noinline so they keep their names. */
__attribute__((noinline)) hmap *build_big_map(void) {
    hmap *m = new_u64_map("big");
    fill(m, BIG_ENTRIES, 1);
    return m;
}

__attribute__((noinline)) hmap *build_small_map(void) {
    hmap *m = new_u64_map("small");
    fill(m, SMALL_ENTRIES, 1u << 30);
    return m;
}

/* What the child measured, written to <scratch>/<tag>.facts for the parent. */
typedef struct facts {
    unsigned long long big_bytes, small_bytes; /* hmap_get_stats().bytes */
    unsigned long long big_alloc, small_alloc; /* memstats total_bytes allocated while building */
} facts;

static char path_buf[4][512];

static const char *scratch_file(int slot, const char *tag, const char *suffix) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s%s", scratch_dir(), tag, suffix);
    return path_buf[slot];
}

static uint64_t allocated_total(void) {
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    return ms.total_bytes;
}

static int profile_child(size_t rate, const char *tag) {
    hmap_set_profile_rate(rate);
    facts f;
    uint64_t before = allocated_total();
    hmap *big = build_big_map();
    f.big_alloc = allocated_total() - before;
    before = allocated_total();
    hmap *small = build_small_map();
    f.small_alloc = allocated_total() - before;
    hmap_stats st;
    hmap_get_stats(big, &st);
    f.big_bytes = st.bytes;
    hmap_get_stats(small, &st);
    f.small_bytes = st.bytes;
    if (hmap_write_heap_profile(scratch_file(0, tag, "-live.pb.gz")) != 0)
        return 1;
    hmap_free(big);
    if (hmap_write_heap_profile(scratch_file(0, tag, "-freed.pb.gz")) != 0)
        return 2;
    hmap_free(small);
    FILE *out = fopen(scratch_file(0, tag, ".facts"), "w");
    if (out == NULL)
        return 3;
    fprintf(out, "%llu %llu %llu %llu\n", f.big_bytes, f.small_bytes, f.big_alloc, f.small_alloc);
    return fclose(out) == 0 ? 0 : 4;
}

/* Runs profile_child(rate, tag) in a fork and reads back its facts. */
static facts run_profile_child(size_t rate, const char *tag) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(profile_child(rate, tag));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    facts f;
    FILE *in = fopen(scratch_file(1, tag, ".facts"), "r");
    assert_non_null(in);
    assert_int_equal(
        fscanf(in, "%llu %llu %llu %llu", &f.big_bytes, &f.small_bytes, &f.big_alloc, &f.small_alloc), 4);
    fclose(in);
    print_message("%s: big map %llu bytes (allocated %llu), small map %llu bytes (allocated %llu)\n", tag,
                  f.big_bytes, f.big_alloc, f.small_bytes, f.small_alloc);
    return f;
}

static int64_t cum_of(const char *profile, const char *index, const char *function) {
    char *top = pprof_top("/proc/self/exe", profile, index);
    assert_non_null(top);
    if (getenv("HMAP_DIAG_VERBOSE") != NULL)
        print_message("%s\n", top ? top : "");
    int64_t v = top_cum(top, function);
    free(top);
    return v;
}

/* The library's frames are trimmed: each stack starts at the caller of the public API. */
static void assert_library_trimmed(const char *profile) {
    static const char *const library[] = {"hmap_put",        "hmap_new_opts", "mem_alloc",
                                          "mem_alloc_array", "mem_raw_alloc", "profile_note_alloc"};
    char *top = pprof_top("/proc/self/exe", profile, "alloc_space");
    assert_non_null(top);
    for (size_t i = 0; i < sizeof library / sizeof *library; i++)
        if (top_cum(top, library[i]) != -1)
            fail_msg("library function %s in the profile:\n%s", library[i], top);
    free(top);
}

static void assert_near(int64_t got, unsigned long long want, double tolerance, const char *what) {
    double ratio = want ? (double)got / (double)want : 0;
    print_message("  %-34s profile %lld, truth %llu (%.2f%%)\n", what, (long long)got, want, 100 * ratio);
    if (tolerance == 0)
        assert_int_equal(got, (int64_t)want);
    else
        assert_true(fabs(ratio - 1) <= tolerance);
}

/*
 * Checks one run's two profiles. `tolerance` bounds the big map's figures (0: exact). The small map is held
 * to `small_tolerance`, or, when that is negative, only has to be named: at the default rate its estimate
 * is inherently coarse. Its in-use bytes are one 5 MB array (sampled almost surely) plus ~3300 separately
 * allocated 160-byte overflow buckets (~530 KB), of which about one is sampled and then stands for
 * 512 KiB: the estimate moves in 512 KiB steps, ~10% of the map each.
 */
static void check_profiles(const char *tag, facts f, double tolerance, double small_tolerance) {
    const char *live = scratch_file(2, tag, "-live.pb.gz"), *freed = scratch_file(3, tag, "-freed.pb.gz");
    assert_library_trimmed(live);
    assert_near(cum_of(live, "inuse_space", "build_big_map"), f.big_bytes, tolerance,
                "inuse_space build_big_map");
    assert_near(cum_of(live, "alloc_space", "build_big_map"), f.big_alloc, tolerance,
                "alloc_space build_big_map");
    int64_t small_inuse = cum_of(live, "inuse_space", "build_small_map");
    int64_t small_alloc = cum_of(live, "alloc_space", "build_small_map");
    if (small_tolerance >= 0) {
        assert_near(small_inuse, f.small_bytes, small_tolerance, "inuse_space build_small_map");
        assert_near(small_alloc, f.small_alloc, small_tolerance, "alloc_space build_small_map");
    } else {
        print_message("  inuse_space build_small_map        profile %lld, truth %llu (named only)\n",
                      (long long)small_inuse, f.small_bytes);
        assert_true(small_inuse > 0 && small_alloc > 0);
    }

    /* After hmap_free(big): nothing of it is in use any more, its allocations still count. */
    int64_t big_inuse = cum_of(freed, "inuse_space", "build_big_map");
    print_message("  inuse_space build_big_map (freed)  profile %lld\n", (long long)big_inuse);
    assert_true(big_inuse == -1 || big_inuse == 0);
    assert_near(cum_of(freed, "alloc_space", "build_big_map"), f.big_alloc, tolerance,
                "alloc_space build_big_map (freed)");
    assert_int_equal(cum_of(freed, "inuse_space", "build_small_map"), small_inuse);
}

static void test_rate1_exact(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    check_profiles("rate1", run_profile_child(1, "rate1"), 0, 0);
}

static void test_default_rate_within_10_percent(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    check_profiles("default", run_profile_child(DEFAULT_RATE, "default"), 0.10, -1);
}

/* The map's name is the "map" label of its samples. */
static void test_map_label(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    char *tags = pprof_run("-tags", "/proc/self/exe", scratch_file(2, "rate1", "-live.pb.gz"));
    assert_non_null(tags);
    assert_non_null(strstr(tags, "map:"));
    assert_non_null(strstr(tags, "big"));
    assert_non_null(strstr(tags, "small"));
    free(tags);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate1_exact),
        cmocka_unit_test(test_default_rate_within_10_percent),
        cmocka_unit_test(test_map_label),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return failed;
}
