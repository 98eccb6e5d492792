/* SPDX-License-Identifier: MIT */
/*
 * test_diag_trace.c — the resize trace's lines, parsed and checked against the maps' own counts, and how
 * they are selected and where they go.
 *
 * The environment is read once when the library loads, so each test runs this same program again as a
 * child (`test_diag_trace --child`) with the variables set and its stdout and stderr in files. The child
 * grows a named map ("traced") to 100k entries, deletes down to 100 (shrinks), grows it again, and grows
 * an unnamed map; it prints each map's hmap_get_stats counts on stdout. The parent parses every line:
 *   HMAP_TRACE=1              per map and kind, the start lines equal the stats' grows / same_size_grows /
 *                             shrinks, every finished resize has its end line, B moves the way the kind
 *                             says, and the fields are well formed
 *   HMAP_TRACE_FILE           the same lines in the file, none on stderr
 *   HMAP_TRACE=other,traced   only (and all) of traced's lines; HMAP_TRACE=- only the unnamed map's
 *   HMAP_TRACE_MIN_BYTES      exactly the lines whose bytes_before reaches the threshold, both of each
 *   hmap_set_trace            switched on, off and to another map at run time (`--runtime-child`) */
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

static void put_range(hmap *m, uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; i++) {
        uint64_t k = i * 0x9E3779B97F4A7C15u;
        if (hmap_put(m, &k, &i) < 0)
            exit(3);
    }
}

static void del_range(hmap *m, uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; i++) {
        uint64_t k = i * 0x9E3779B97F4A7C15u;
        if (!hmap_del(m, &k))
            exit(4);
    }
}

static void print_stats(const char *label, const hmap *m) {
    hmap_stats st;
    hmap_get_stats(m, &st);
    printf("%s %llu %llu %llu %d\n", label, (unsigned long long)st.grows,
           (unsigned long long)st.same_size_grows, (unsigned long long)st.shrinks, (int)st.phase);
}

static int child(void) {
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

/* Inserts keys [from, to), then more until no resize is under way, so that none straddles a switch of the
 * trace. Returns the next key. */
static uint64_t grow_steady(hmap *m, uint64_t from, uint64_t to) {
    put_range(m, from, to);
    hmap_stats st;
    for (hmap_get_stats(m, &st); st.phase != HMAP_STEADY; hmap_get_stats(m, &st))
        put_range(m, to, to + 1), to++;
    return to;
}

/* Phases, marked on stderr: 0 nothing traced (map a grows); 1 hmap_set_trace("b") (a and b grow: only b
 * prints); 2 hmap_set_trace(NULL) (b grows: nothing); 3 hmap_set_trace("x,c") (c grows). */
static int runtime_child(void) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap *m[3];
    for (int i = 0; i < 3; i++) {
        hmap_options opts = {.name = i == 0 ? "a" : i == 1 ? "b" : "c"};
        if ((m[i] = hmap_new_opts(&type, 0, &opts)) == NULL)
            return 2;
    }
    uint64_t next_a = grow_steady(m[0], 0, 20000);
    fputs("-- phase 1\n", stderr);
    hmap_set_trace("b");
    grow_steady(m[0], next_a, 50000);
    uint64_t next_b = grow_steady(m[1], 0, 20000);
    fputs("-- phase 2\n", stderr);
    hmap_set_trace(NULL);
    grow_steady(m[1], next_b, 50000);
    fputs("-- phase 3\n", stderr);
    hmap_set_trace("x,c");
    grow_steady(m[2], 0, 20000);
    hmap_set_trace("0");
    for (int i = 0; i < 3; i++)
        hmap_free(m[i]);
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

static map_trace *map_named(const char *name) {
    for (int i = 0; i < nmaps; i++)
        if (strcmp(maps[i].name, name) == 0)
            return &maps[i];
    assert_true(nmaps < 2);
    snprintf(maps[nmaps].name, sizeof maps[nmaps].name, "%s", name);
    return &maps[nmaps++];
}

static int kind_of(const char *name) {
    for (int k = 0; k < NKINDS; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    fail_msg("unknown kind %s", name);
    return -1;
}

/* One trace line, as parsed. */
typedef struct trace_line {
    char what[8], name[64];
    int kind;
    unsigned long long bytes_before;
} trace_line;

/* One trace line: checks its fields, counts it in its map's trace. */
static trace_line parse_line(const char *line) {
    trace_line t;
    char kind[16];
    unsigned b0, b1;
    unsigned long long count, bytes1;
    int n = sscanf(line, "hmap: resize %7s map=%63s kind=%15s B=%u->%u count=%llu bytes=%llu->%llu", t.what,
                   t.name, kind, &b0, &b1, &count, &t.bytes_before, &bytes1);
    assert_int_equal(n, 8);
    const char *at = strstr(line, " @");
    assert_non_null(at);
    double seconds = -1;
    assert_int_equal(sscanf(at, " @%lfs", &seconds), 1);
    assert_true(seconds >= 0);

    map_trace *m = map_named(t.name);
    int k = t.kind = kind_of(kind);
    if (k == KIND_GROW)
        assert_true(b1 > b0);
    else if (k == KIND_SAME)
        assert_true(b1 == b0);
    else
        assert_true(b1 < b0);
    if (strcmp(t.what, "start") == 0) {
        m->starts[k]++;
    } else {
        assert_string_equal(t.what, "end");
        unsigned long long ops;
        char step[32];
        const char *tail = strstr(line, " ops=");
        assert_non_null(tail);
        assert_int_equal(sscanf(tail, " ops=%llu max_step=%31s", &ops, step), 2);
        assert_true(strstr(step, "s") != NULL); /* a unit: ns, us or ms */
        m->ends[k]++;
    }
    return t;
}

static char out_path[512], err_path[512], log_path[512];

/* Runs this program again as `mode` with `env` set, stdout and stderr to files of the scratch directory. */
static void run_child(const char *env, const char *mode) {
    snprintf(out_path, sizeof out_path, "%s/trace.out", scratch_dir());
    snprintf(err_path, sizeof err_path, "%s/trace.err", scratch_dir());
    snprintf(log_path, sizeof log_path, "%s/trace.log", scratch_dir());
    remove(log_path);
    char self[512], cmd[2048];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    snprintf(cmd, sizeof cmd, "%s '%s' %s >'%s' 2>'%s'", env, self, mode, out_path, err_path);
    assert_int_equal(system(cmd), 0);
    nmaps = 0;
    memset(maps, 0, sizeof maps);
}

enum { MAX_LINES = 4096 };
static trace_line lines[MAX_LINES];

/* Parses the trace lines of `path` up to a line starting with `stop` (NULL: to the end); returns how many.
 * Lines that are not trace lines (the markers) are skipped. */
static int read_trace(const char *path, const char *stop) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL && (stop == NULL || strncmp(line, stop, strlen(stop)) != 0)) {
        if (strncmp(line, "hmap: resize ", 13) != 0)
            continue;
        assert_true(n < MAX_LINES);
        lines[n++] = parse_line(line);
    }
    fclose(f);
    return n;
}

/* Reads the stats the child printed and checks the counted lines against them. */
static void check_against_stats(void) {
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
        int open_kind = m->phase == HMAP_GROWING             ? KIND_GROW
                        : m->phase == HMAP_SAME_SIZE_GROWING ? KIND_SAME
                        : m->phase == HMAP_SHRINKING         ? KIND_SHRINK
                                                             : -1;
        for (int kk = 0; kk < NKINDS; kk++)
            assert_int_equal(m->ends[kk], m->starts[kk] - (kk == open_kind ? 1 : 0));
    }
    assert_true(maps[0].grows > 0 || maps[1].grows > 0);
    assert_true(maps[0].shrinks > 0 || maps[1].shrinks > 0);
}

static void test_trace_lines_match_stats(void **state) {
    (void)state;
    run_child("HMAP_TRACE=1", "--child");
    int n = read_trace(err_path, "-- stats printed");
    for (int i = 0; i < n && i < 6; i++)
        print_message("%s %s kind=%s\n", lines[i].what, lines[i].name, kind_names[lines[i].kind]);
    print_message("%d trace lines\n", n);
    check_against_stats();
}

/* HMAP_TRACE_FILE: the same lines, appended to the file; none on stderr. */
static void test_trace_file(void **state) {
    (void)state;
    char env[1024];
    snprintf(env, sizeof env, "HMAP_TRACE=1 HMAP_TRACE_FILE='%s/trace.log'", scratch_dir());
    run_child(env, "--child");
    assert_int_equal(read_trace(err_path, NULL), 0);
    nmaps = 0;
    memset(maps, 0, sizeof maps);
    /* The file has no marker; the child's hmap_free may add lines after its stats: count only starts. */
    int n = read_trace(log_path, NULL);
    print_message("%d lines in HMAP_TRACE_FILE\n", n);
    assert_true(n > 0);
    FILE *out = fopen(out_path, "r");
    assert_non_null(out);
    char label[64];
    unsigned long long g, s, k;
    int phase;
    while (fscanf(out, "%63s %llu %llu %llu %d", label, &g, &s, &k, &phase) == 5) {
        map_trace *m = map_named(label);
        assert_int_equal(m->starts[KIND_GROW], g);
        assert_int_equal(m->starts[KIND_SAME], s);
        assert_int_equal(m->starts[KIND_SHRINK], k);
    }
    fclose(out);
}

/* HMAP_TRACE=name: that map's lines only, all of them; "-" selects the unnamed map. */
static void test_trace_filter_by_name(void **state) {
    (void)state;
    run_child("HMAP_TRACE=other,traced", "--child");
    int n = read_trace(err_path, "-- stats printed");
    assert_true(n > 0);
    for (int i = 0; i < n; i++)
        assert_string_equal(lines[i].name, "traced");
    map_trace traced = *map_named("traced");
    run_child("HMAP_TRACE=-", "--child");
    n = read_trace(err_path, "-- stats printed");
    assert_true(n > 0);
    for (int i = 0; i < n; i++)
        assert_string_equal(lines[i].name, "-");
    print_message("HMAP_TRACE=other,traced: %llu grow starts of traced; HMAP_TRACE=-: %d lines of the "
                  "unnamed map\n",
                  traced.starts[KIND_GROW], n);
    run_child("HMAP_TRACE=1", "--child"); /* the same child traced whole: the filtered lines were all of it */
    read_trace(err_path, "-- stats printed");
    for (int k = 0; k < NKINDS; k++)
        assert_int_equal(map_named("traced")->starts[k], traced.starts[k]);
}

/* HMAP_TRACE_MIN_BYTES: only resizes of maps that held that much when they started, both lines of each. */
static void test_trace_min_bytes(void **state) {
    (void)state;
    run_child("HMAP_TRACE=1", "--child");
    int all = read_trace(err_path, "-- stats printed");
    int over = 0;
    for (int i = 0; i < all; i++)
        over += lines[i].bytes_before >= 1000000;
    run_child("HMAP_TRACE=1 HMAP_TRACE_MIN_BYTES=1000000", "--child");
    int n = read_trace(err_path, "-- stats printed");
    print_message("%d lines, %d of maps that held >= 1000000 bytes; with HMAP_TRACE_MIN_BYTES=1000000: %d\n",
                  all, over, n);
    assert_true(n > 0 && n < all);
    assert_int_equal(n, over);
    for (int i = 0; i < n; i++)
        assert_true(lines[i].bytes_before >= 1000000);
    for (int i = 0; i < nmaps; i++) /* each resize printed both its lines (one may still be under way) */
        for (int k = 0; k < NKINDS; k++)
            assert_true(maps[i].starts[k] - maps[i].ends[k] <= 1);
}

/* hmap_set_trace at run time: see runtime_child for the phases. */
static void test_set_trace_at_run_time(void **state) {
    (void)state;
    run_child("", "--runtime-child");
    static const char *const expect[] = {NULL, "b", NULL, "c"}; /* the only map traced in each phase */
    FILE *f = fopen(err_path, "r");
    assert_non_null(f);
    char line[1024];
    int phase = 0, counts[4] = {0};
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "-- phase ", 9) == 0) {
            phase = atoi(line + 9);
            continue;
        }
        if (strncmp(line, "hmap: resize ", 13) != 0)
            continue;
        trace_line t = parse_line(line);
        if (expect[phase] == NULL || strcmp(t.name, expect[phase]) != 0)
            fail_msg("phase %d: unexpected line %s", phase, line);
        counts[phase]++;
    }
    fclose(f);
    print_message("lines per phase: %d %d %d %d\n", counts[0], counts[1], counts[2], counts[3]);
    assert_int_equal(phase, 3);
    assert_true(counts[1] > 0 && counts[3] > 0);
    for (int i = 0; i < nmaps; i++) /* resizes do not straddle a switch: every start has its end */
        for (int k = 0; k < NKINDS; k++)
            assert_int_equal(maps[i].starts[k], maps[i].ends[k]);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child();
    if (argc > 1 && strcmp(argv[1], "--runtime-child") == 0)
        return runtime_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_lines_match_stats), cmocka_unit_test(test_trace_file),
        cmocka_unit_test(test_trace_filter_by_name),    cmocka_unit_test(test_trace_min_bytes),
        cmocka_unit_test(test_set_trace_at_run_time),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return failed;
}
