/* SPDX-License-Identifier: MIT */
/*
 * test_diag_trim.c — where heap profile stacks are cut: exactly at the library's public API.
 *
 * A forked child at rate 1 builds a map through user_map_c_build (in this program's own map.c), which
 * creates it with hmap_new (public, calling hmap_new_opts, public too) and fills it from a static
 * function of that map.c. The profile, read with `go tool pprof -top`, must:
 *   - keep the static function of the program's map.c, with exactly the bytes its hmap_put calls
 *     allocated (a rule by file name would take it for the library's and cut it);
 *   - keep user_map_c_build, holding everything;
 *   - show none of the library's functions (hmap_put, hmap_new, hmap_new_opts, the memory layer's, the
 *     profiler's), since each stack starts at the caller of the API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hmap.h"
#include "pprof_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

hmap *user_map_c_build(uint64_t n, uint64_t *fill_bytes); /* map.c */

enum { ENTRIES = 200000 };

static char profile[512], facts[512];

static int child(void) {
    hmap_set_profile_rate(1);
    uint64_t fill_bytes = 0;
    hmap *m = user_map_c_build(ENTRIES, &fill_bytes);
    hmap_stats st;
    hmap_get_stats(m, &st);
    if (hmap_write_heap_profile(profile) != 0)
        return 1;
    FILE *f = fopen(facts, "w");
    if (f == NULL)
        return 2;
    fprintf(f, "%llu %llu\n", (unsigned long long)fill_bytes, (unsigned long long)st.bytes);
    hmap_free(m);
    return fclose(f) == 0 ? 0 : 3;
}

static void test_user_map_c_kept(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    snprintf(profile, sizeof profile, "%s/trim.pb.gz", scratch_dir());
    snprintf(facts, sizeof facts, "%s/trim.facts", scratch_dir());
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    unsigned long long fill_bytes, map_bytes;
    FILE *f = fopen(facts, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu %llu", &fill_bytes, &map_bytes), 2);
    fclose(f);

    char *top = pprof_top("/proc/self/exe", profile, "alloc_space");
    assert_non_null(top);
    if (getenv("HMAP_DIAG_VERBOSE") != NULL)
        print_message("%s\n", top);
    int64_t fill = top_cum(top, "fill_in_user_map_c");
    print_message("fill_in_user_map_c (static, in the program's map.c): %lld bytes, %llu allocated by it\n",
                  (long long)fill, fill_bytes);
    assert_int_equal(fill, (int64_t)fill_bytes);
    assert_true(top_cum(top, "user_map_c_build") > fill);
    static const char *const library[] = {"hmap_put",           "hmap_new",        "hmap_new_opts",
                                          "mem_alloc",          "mem_alloc_array", "mem_raw_alloc",
                                          "profile_note_alloc", "record_sample"};
    for (size_t i = 0; i < sizeof library / sizeof *library; i++)
        if (top_cum(top, library[i]) != -1)
            fail_msg("library function %s in the profile:\n%s", library[i], top);
    assert_null(strstr(top, "hmap__")); /* no internal function either */
    free(top);

    top = pprof_top("/proc/self/exe", profile, "inuse_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "user_map_c_build"), (int64_t)map_bytes);
    free(top);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_map_c_kept),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return failed;
}
