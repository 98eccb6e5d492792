/*
 * test_diag_trace.c — HMAP_TRACE=1 resize lines, parsed and checked against the maps' own counts.
 *
 * HMAP_TRACE is read once when the library loads, so the test runs this same program again as a child
 * (`test_diag_trace --child`) with HMAP_TRACE=1 in its environment and its stderr in a file. The child
 * grows a named map to 100k entries, deletes down to 100 (shrinks), grows it again, and grows an unnamed
 * map; it prints each map's hmap_get_stats counts on stdout. The parent parses every trace line and checks:
 * per map and kind, the start lines equal the stats' grows / same_size_grows / shrinks, every finished
 * resize has its end line, B moves the way the kind says, and the fields are well formed.
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
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the child ---------------------------------------------------------------------------------------- */

static void put_range(hmap *m, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        uint64_t k = i * 0x9E3779B97F4A7C15u;
        if (hmap_put(m, &k, &i) < 0)
            exit(3);
    }
}

static void del_range(hmap *m, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        uint64_t k = i * 0x9E3779B97F4A7C15u;
        if (!hmap_del(m, &k))
            exit(4);
    }
}

static void print_stats(const char *label, const hmap *m)
{
    hmap_stats st;
    hmap_get_stats(m, &st);
    printf("%s %llu %llu %llu %d\n", label, (unsigned long long)st.grows, (unsigned long long)st.same_size_grows,
           (unsigned long long)st.shrinks, (int)st.phase);
}

static int child(void)
{
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap_options opts = {.name = "traced"};
    hmap *named = hmap_new_opts(&type, 0, &opts);
    hmap *unnamed = hmap_new(&type, 0);
    if (named == NULL || unnamed == NULL)
        return 2;
    put_range(named, 0, 100000);
    del_range(named, 100, 100000);
    put_range(named, 100, 50000);
    put_range(unnamed, 0, 20000);
    print_stats("traced", named);
    print_stats("-", unnamed);
    fflush(stdout);
    fputs("-- stats printed\n", stderr); /* lines after this (from hmap_free) are not counted */
    hmap_free(named);
    hmap_free(unnamed);
    return 0;
}

/* ---- the parent --------------------------------------------------------------------------------------- */

enum { KIND_GROW, KIND_SAME, KIND_SHRINK, NKINDS };
static const char *const kind_names[NKINDS] = {"grow", "same-size", "shrink"};

typedef struct map_trace {
    char name[64];
    unsigned long long starts[NKINDS], ends[NKINDS];
    unsigned long long grows, same, shrinks;
    int phase;
} map_trace;

static map_trace maps[2];
static int nmaps;

static map_trace *map_named(const char *name)
{
    for (int i = 0; i < nmaps; i++)
        if (strcmp(maps[i].name, name) == 0)
            return &maps[i];
    assert_true(nmaps < 2);
    snprintf(maps[nmaps].name, sizeof maps[nmaps].name, "%s", name);
    return &maps[nmaps++];
}

static int kind_of(const char *name)
{
    for (int k = 0; k < NKINDS; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    fail_msg("unknown kind %s", name);
    return -1;
}

/* One trace line: checks its fields, counts it. */
static void parse_line(const char *line)
{
    char what[8], name[64], kind[16];
    unsigned b0, b1;
    unsigned long long count, bytes0, bytes1;
    int n = sscanf(line, "hmap: resize %7s map=%63s kind=%15s B=%u->%u count=%llu bytes=%llu->%llu", what, name,
                   kind, &b0, &b1, &count, &bytes0, &bytes1);
    assert_int_equal(n, 8);
    const char *at = strstr(line, " @");
    assert_non_null(at);
    double seconds = -1;
    assert_int_equal(sscanf(at, " @%lfs", &seconds), 1);
    assert_true(seconds >= 0);

    map_trace *m = map_named(name);
    int k = kind_of(kind);
    if (k == KIND_GROW)
        assert_true(b1 > b0);
    else if (k == KIND_SAME)
        assert_true(b1 == b0);
    else
        assert_true(b1 < b0);
    if (strcmp(what, "start") == 0) {
        m->starts[k]++;
    } else {
        assert_string_equal(what, "end");
        unsigned long long ops;
        char step[32];
        const char *tail = strstr(line, " ops=");
        assert_non_null(tail);
        assert_int_equal(sscanf(tail, " ops=%llu max_step=%31s", &ops, step), 2);
        assert_true(strstr(step, "s") != NULL); /* a unit: ns, us or ms */
        m->ends[k]++;
    }
}

static void test_trace_lines_match_stats(void **state)
{
    (void)state;
    char out_path[512], err_path[512], cmd[2048];
    snprintf(out_path, sizeof out_path, "%s/trace.out", scratch_dir());
    snprintf(err_path, sizeof err_path, "%s/trace.err", scratch_dir());
    char self[512];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    snprintf(cmd, sizeof cmd, "HMAP_TRACE=1 '%s' --child >'%s' 2>'%s'", self, out_path, err_path);
    assert_int_equal(system(cmd), 0);

    FILE *out = fopen(out_path, "r");
    assert_non_null(out);
    char label[64];
    unsigned long long g, s, k;
    int phase;
    while (fscanf(out, "%63s %llu %llu %llu %d", label, &g, &s, &k, &phase) == 5) {
        map_trace *m = map_named(label);
        m->grows = g, m->same = s, m->shrinks = k, m->phase = phase;
    }
    fclose(out);

    FILE *err = fopen(err_path, "r");
    assert_non_null(err);
    char line[1024];
    int lines = 0;
    while (fgets(line, sizeof line, err) != NULL && strncmp(line, "-- stats printed", 16) != 0) {
        if (strncmp(line, "hmap: resize ", 13) != 0)
            continue;
        if (lines < 6)
            print_message("%s", line);
        parse_line(line);
        lines++;
    }
    fclose(err);
    print_message("%d trace lines\n", lines);

    assert_int_equal(nmaps, 2);
    for (int i = 0; i < nmaps; i++) {
        map_trace *m = &maps[i];
        print_message("map %s: grows %llu/%llu same-size %llu/%llu shrinks %llu/%llu (stats/trace starts)\n",
                      m->name, m->grows, m->starts[KIND_GROW], m->same, m->starts[KIND_SAME], m->shrinks,
                      m->starts[KIND_SHRINK]);
        assert_int_equal(m->starts[KIND_GROW], m->grows);
        assert_int_equal(m->starts[KIND_SAME], m->same);
        assert_int_equal(m->starts[KIND_SHRINK], m->shrinks);
        /* Every resize ended, except one still under way when the child printed its stats. */
        int open_kind = m->phase == HMAP_GROWING ? KIND_GROW
                      : m->phase == HMAP_SAME_SIZE_GROWING ? KIND_SAME
                      : m->phase == HMAP_SHRINKING ? KIND_SHRINK : -1;
        for (int kk = 0; kk < NKINDS; kk++)
            assert_int_equal(m->ends[kk], m->starts[kk] - (kk == open_kind ? 1 : 0));
    }
    assert_true(maps[0].grows > 0 || maps[1].grows > 0);
    assert_true(maps[0].shrinks > 0 || maps[1].shrinks > 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_lines_match_stats),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return failed;
}
