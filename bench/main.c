/* SPDX-License-Identifier: MIT */
/*
 * main.c — hmap-bench's driver: which implementations, key sets and sizes run, in what order, and where
 * the results go.
 *
 * For every key set and size it generates the keys once (keys.c), then for each repetition runs every
 * implementation once, in an order rotated by one each repetition, so that drift of this shared machine
 * hits all implementations alike. Each run is a worker process: a fork of this program for the C maps
 * and the machine floors (suite.c; the keys are inherited copy-on-write), or the Go program for Go's map
 * (it regenerates the same keys and proves it with a checksum). A worker writes result lines on a pipe
 * (protocol in bench.h); this process parses them into report.c, which prints the medians as a
 * Markdown table, writes results.json and draws the SVG chart. Running a worker and reading its lines is
 * tools/common's (tc_fork_lines, tc_spawn_lines), as in the lab.
 *
 * The key set "small" is the small-maps row: BENCH_SMALL_MAPS maps of 1..8 uint64 entries each
 * (suite_run_small), for the implementations that have it (hmap, abseil, boost, Go); it ignores BENCH_SIZES.
 *
 * `hmap-bench --concurrent` runs the concurrent maps instead (concurrent.c has its own options).
 * Otherwise it takes no arguments but --help (any other is an error): the run is set by the environment,
 * which `make bench` passes through. Environment: BENCH_QUICK=1 (1Mi uint64 keys and the small maps, one
 * repetition), BENCH_REPS, BENCH_SIZES (e.g. "1024,1048576"), BENCH_KEYS ("u64,str,small"), BENCH_IMPLS
 * (e.g. "hmap,abseil,go"), BENCH_SMALL_MAPS (default 1048576), BENCH_OUT_DIR (default: the directory of
 * this executable, i.e. build/bench).
 */
#define _GNU_SOURCE
#include "bench.h"
#include "concurrent.h"

#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define LOOKUP_CAP ((size_t)1 << 20)   /* lookups and churn steps per round, at most */
#define ROUND_TARGET ((size_t)1 << 20) /* small sizes are repeated to reach this many operations */
#define SMALL_MAPS ((size_t)1 << 20)   /* maps of the small-maps row */

typedef enum { RUN_ADAPTER, RUN_GO, RUN_LIMIT, RUN_NOISE } run_kind;

typedef struct impl {
    const char *name;
    run_kind kind;
    const adapter *a;
} impl;

/* Each adapter is compiled in when CMake found its library (BENCH_WITH_*). */
static const impl ALL_IMPLS[] = {
#ifdef BENCH_WITH_HMAP
    {"hmap", RUN_ADAPTER, &adapter_hmap},
    {"hmap_noshrink", RUN_ADAPTER, &adapter_hmap_noshrink},
#endif
#ifdef BENCH_WITH_ABSL
    {"abseil", RUN_ADAPTER, &adapter_absl},
#endif
#ifdef BENCH_WITH_BOOST
    {"boost", RUN_ADAPTER, &adapter_boost},
#endif
    {"go", RUN_GO, NULL},
#ifdef BENCH_WITH_GLIB
    {"glib", RUN_ADAPTER, &adapter_glib},
#endif
#ifdef BENCH_WITH_UTHASH
    {"uthash", RUN_ADAPTER, &adapter_uthash},
#endif
    {"limit", RUN_LIMIT, NULL},
    {"noise", RUN_NOISE, NULL},
};
#define NUM_IMPLS (sizeof ALL_IMPLS / sizeof ALL_IMPLS[0])

typedef struct config {
    int reps;
    size_t sizes[8];
    int nsizes;
    key_kind keys[3];
    int nkeys;
    size_t small_maps; /* maps of the small-maps row */
    const impl *impls[NUM_IMPLS];
    int nimpls;
    char out_dir[PATH_MAX];
    char go_path[PATH_MAX + 32];
    bool have_go;
} config;

/* ---- configuration ---- */

static bool listed(const char *list, const char *name) {
    if (!list)
        return true;
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len) {
        bool starts = p == list || p[-1] == ',';
        bool ends = p[len] == '\0' || p[len] == ',';
        if (starts && ends)
            return true;
    }
    return false;
}

static void exe_dir(char *dir, size_t size) {
    char path[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
    if (len <= 0) {
        snprintf(dir, size, ".");
        return;
    }
    path[len] = '\0';
    snprintf(dir, size, "%s", dirname(path));
}

static void configure(config *c) {
    memset(c, 0, sizeof *c);
    bool quick = getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0") != 0;
    c->reps = quick ? 1 : 3;
    if (getenv("BENCH_REPS"))
        c->reps = atoi(getenv("BENCH_REPS"));
    if (c->reps < 1)
        c->reps = 1;

    const char *sizes = getenv("BENCH_SIZES");
    if (sizes) {
        for (char *end; *sizes && c->nsizes < 8; sizes = *end ? end + 1 : end) {
            c->sizes[c->nsizes++] = strtoull(sizes, &end, 10);
            if (end == sizes)
                break;
        }
    } else if (quick) {
        c->sizes[c->nsizes++] = (size_t)1 << 20;
    } else {
        c->sizes[c->nsizes++] = (size_t)1 << 10;
        c->sizes[c->nsizes++] = (size_t)1 << 20;
        c->sizes[c->nsizes++] = (size_t)10 << 20;
    }
    const char *keys = getenv("BENCH_KEYS");
    if (!keys && quick)
        keys = "u64,small";
    if (listed(keys, "u64"))
        c->keys[c->nkeys++] = KEYS_U64;
    if (listed(keys, "str"))
        c->keys[c->nkeys++] = KEYS_STR;
    c->small_maps = getenv("BENCH_SMALL_MAPS") ? strtoull(getenv("BENCH_SMALL_MAPS"), NULL, 10) : SMALL_MAPS;
    if (listed(keys, "small") && c->small_maps > 0)
        c->keys[c->nkeys++] = KEYS_SMALL;

    exe_dir(c->out_dir, sizeof c->out_dir);
    snprintf(c->go_path, sizeof c->go_path, "%s/hmap-bench-go", c->out_dir);
    c->have_go = access(c->go_path, X_OK) == 0;
    if (getenv("BENCH_OUT_DIR"))
        snprintf(c->out_dir, sizeof c->out_dir, "%s", getenv("BENCH_OUT_DIR"));

    for (size_t i = 0; i < NUM_IMPLS; i++) {
        if (!listed(getenv("BENCH_IMPLS"), ALL_IMPLS[i].name))
            continue;
        if (ALL_IMPLS[i].kind == RUN_GO && !c->have_go)
            continue;
        c->impls[c->nimpls++] = &ALL_IMPLS[i];
    }
}

static const char *size_name(size_t n, char *buf, size_t size) {
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(buf, size, "%zuMi", n >> 20);
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(buf, size, "%zuKi", n >> 10);
    else
        snprintf(buf, size, "%zu", n);
    return buf;
}

/* ---- the output header: what machine, when, with what ---- */

typedef struct text {
    char *buf;
    size_t size;
} text;

static void first_line(void *ctx, char *line) {
    text *t = ctx;
    if (*line && t->size) {
        snprintf(t->buf, t->size, "%s", line);
        t->size = 0; /* keep the first */
    }
}

static void go_version(const config *c, char *buf, size_t size) {
    snprintf(buf, size, "not found (Go rows skipped)");
    if (!c->have_go)
        return;
    char path[sizeof c->go_path], why[256];
    snprintf(path, sizeof path, "%s", c->go_path);
    char *argv[] = {path, "-version", NULL};
    text t = {buf, size};
    tc_spawn_lines(argv, NULL, false, first_line, &t, why, sizeof why);
}

static void make_header(const config *c, char *h, size_t size) {
    char date[64], cpu[256], gov[128], sizes[128] = "", keys[32] = "", impls[256] = "", tmp[32], load[128];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    tc_cpu_model(cpu, sizeof cpu);
    tc_load_average(load, sizeof load); /* on a shared machine: how much the figures are disturbed */
    go_version(c, gov, sizeof gov);
    struct utsname u;
    uname(&u);
    for (int i = 0; i < c->nsizes; i++)
        snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%s", i ? ", " : "",
                 size_name(c->sizes[i], tmp, sizeof tmp));
    for (int i = 0; i < c->nkeys; i++)
        snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", i ? ", " : "",
                 key_kind_name(c->keys[i]));
    for (int i = 0; i < c->nimpls; i++)
        snprintf(impls + strlen(impls), sizeof impls - strlen(impls), "%s%s", i ? ", " : "",
                 c->impls[i]->name);
    snprintf(h, size,
             "# hmap-bench\n\n"
             "- date: %s\n"
             "- machine: %ld online CPUs (nproc), %s; %s %s %s; /proc/loadavg at start: %s\n"
             "- compilers: C/C++ %s; Go: %s\n"
             "- latency clock: %s, %.3f ticks/ns; one timed empty region costs %.1f ns (included in every "
             "latency, not subtracted)\n"
             "- sizes: %s; keys: %s; implementations: %s; %d repetition%s, median shown, implementations "
             "interleaved (order rotated each repetition)\n"
             "- keys: u64 = splitmix64(i); str = 16-40 byte strings (shared arena, maps store pointers / "
             "string views / Go string headers, key bytes counted by none). Lookups and churn: up to %zu "
             "per round, hits spread evenly over the whole key set; sizes below 1Mi repeated to 1Mi "
             "operations\n",
             date, sysconf(_SC_NPROCESSORS_ONLN), cpu, u.sysname, u.release, u.machine, load, __VERSION__,
             gov, clock_name(), ticks_per_ns(), timer_cost_ns(), sizes, keys, impls, c->reps,
             c->reps == 1 ? "" : "s", LOOKUP_CAP);
    for (int i = 0; i < c->nkeys; i++)
        if (c->keys[i] == KEYS_SMALL)
            snprintf(
                h + strlen(h), size - strlen(h),
                "- small maps: %zu maps of 1-%d u64 entries (map j holds 1 + j %% %d), all alive at once; "
                "hmap, abseil, boost and go only\n",
                c->small_maps, SMALL_MAX_ENTRIES, SMALL_MAX_ENTRIES);
}

/* ---- workers ---- */

/* Parses one protocol line of a worker into the results. Returns false on a malformed line. */
static bool parse_line(const char *impl, key_kind keys, size_t n, char *line) {
    char metric[64], unit[32], x[64];
    double value, y;
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == 'R' && sscanf(line, "R %63s %lf %31s", metric, &value, unit) == 3) {
        results_add(impl, keys, n, metric, unit, value);
        return true;
    }
    if (line[0] == 'S' && sscanf(line, "S %63s %63s %lf", metric, x, &y) == 3) {
        series_add_point(impl, metric, strcmp(x, "max") == 0 ? -1.0 : atof(x), y);
        return true;
    }
    if (line[0] == 'I')
        return true;
    return false;
}

/* What a worker measures, and where its lines go. */
typedef struct worker {
    const impl *im;
    const keyset *ks;
    const suite_config *cfg;
    bool ok; /* every line parsed */
} worker;

/* In the forked child: measure, writing the protocol lines to out. */
static void worker_body(void *arg, FILE *out) {
    const worker *w = arg;
    if (w->ks->kind == KEYS_SMALL)
        suite_run_small(w->im->a, w->ks, w->cfg, out);
    else if (w->im->kind == RUN_ADAPTER)
        suite_run_map(w->im->a, w->ks, w->cfg, out);
    else if (w->im->kind == RUN_LIMIT)
        suite_run_limit(w->ks, w->cfg, out);
    else
        suite_run_noise(w->cfg, out);
}

static void worker_line(void *ctx, char *line) {
    worker *w = ctx;
    if (!parse_line(w->im->name, w->ks->kind, w->cfg->n, line)) {
        fprintf(stderr, "hmap-bench: %s: unexpected line: %s\n", w->im->name, line);
        w->ok = false;
    }
}

/* The Go program, given the same run on its command line. */
static bool run_go(const config *c, worker *w, char *why, size_t why_size) {
    char n[32], lookups[32], rounds[32], series[8], sum[32], path[sizeof c->go_path];
    snprintf(path, sizeof path, "%s", c->go_path);
    snprintf(n, sizeof n, "%zu", w->cfg->n);
    snprintf(lookups, sizeof lookups, "%zu", w->cfg->lookups);
    snprintf(rounds, sizeof rounds, "%zu", w->cfg->rounds);
    snprintf(series, sizeof series, "%d", w->cfg->series ? 1 : 0);
    snprintf(sum, sizeof sum, "%llu", (unsigned long long)keyset_checksum(w->ks));
    char keys[16];
    snprintf(keys, sizeof keys, "%s", key_kind_name(w->ks->kind));
    char *argv[] = {path,      "-keys", keys,      "-n",   n,           "-lookups", lookups,
                    "-rounds", rounds,  "-series", series, "-checksum", sum,        NULL};
    return tc_spawn_lines(argv, NULL, false, worker_line, w, why, why_size);
}

static bool run_worker(const config *c, const impl *im, const keyset *ks, const suite_config *cfg) {
    if (cfg->series) {
        series_reset(im->name, "lat");
        series_reset(im->name, "bytes");
    }
    worker w = {im, ks, cfg, true};
    char why[512] = "";
    bool exited = im->kind == RUN_GO ? run_go(c, &w, why, sizeof why)
                                     : tc_fork_lines(worker_body, &w, worker_line, &w, why, sizeof why);
    if (!exited)
        fprintf(stderr, "hmap-bench: %s worker failed: %s\n", im->name, why);
    return exited && w.ok;
}

/* Whether im takes part in the rows of key set `keys`: the small-maps row has its own list. */
static bool runs_on(const impl *im, key_kind keys) {
    if (keys != KEYS_SMALL)
        return true;
    return im->kind == RUN_GO || (im->kind == RUN_ADAPTER && im->a->small);
}

/* ---- main ---- */

static double seconds_since(uint64_t t0) { return (double)(tc_now_ns() - t0) / 1e9; }

/* Every repetition of every implementation on one key set of `count` keys; returns the failures. */
static int run_keyset(const config *c, const suite_config *cfg, key_kind kind, size_t count, uint64_t start) {
    keyset ks;
    keyset_make(&ks, kind, count);
    char nb[32];
    size_name(cfg->n, nb, sizeof nb);
    int failures = 0;
    for (int r = 0; r < c->reps; r++) {
        for (int j = 0; j < c->nimpls; j++) {
            const impl *im = c->impls[(j + r) % c->nimpls];
            if (!runs_on(im, kind))
                continue;
            uint64_t t0 = tc_now_ns();
            bool ok = run_worker(c, im, &ks, cfg);
            failures += !ok;
            fprintf(stderr, "[%7.1f s] %-5s %-5s rep %d/%d %-14s %6.1f s%s\n", seconds_since(start),
                    key_kind_name(kind), nb, r + 1, c->reps, im->name, seconds_since(t0),
                    ok ? "" : "  FAILED");
        }
    }
    keyset_free(&ks);
    return failures;
}

/* ---- the command line: --help, nothing else ---- */

static const char USAGE[] =
    "usage: hmap-bench [--help]   or   hmap-bench --concurrent [options of concurrent.c]\n"
    "Runs every map implementation over every key set and size; prints a Markdown table on stdout,\n"
    "progress on stderr, and writes results.json and hmap-bench.svg into BENCH_OUT_DIR.\n"
    "Environment:\n"
    "  BENCH_QUICK=1      1Mi uint64 keys and the small maps, one repetition\n"
    "  BENCH_REPS=N       repetitions (default 3)\n"
    "  BENCH_SIZES=N,...  entry counts (default 1024,1048576,10485760)\n"
    "  BENCH_KEYS=...     u64,str,small (default all; small = the small-maps row)\n"
    "  BENCH_IMPLS=...    e.g. hmap,abseil,go (default all that were built)\n"
    "  BENCH_SMALL_MAPS=N maps of 1-8 entries in the small-maps row (default 1048576)\n"
    "  BENCH_OUT_DIR=DIR  where the JSON and SVG files go (default: this program's directory)\n";

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            exit(0);
        }
        fprintf(stderr, "hmap-bench: unknown option '%s' (it takes no arguments; see --help)\n", argv[i]);
        exit(2);
    }
}

int main(int argc, char **argv) {
#ifdef BENCH_WITH_HMAP
    if (argc > 1 && strcmp(argv[1], "--concurrent") == 0)
        return concurrent_main(argc - 1, argv + 1); /* the concurrent maps: concurrent.c */
#endif
    parse_args(argc, argv);
    config c;
    configure(&c);
    clock_init();
    static char header[4096];
    make_header(&c, header, sizeof header);
    fprintf(stderr, "%s\n", header);

    size_t largest = 0;
    for (int i = 0; i < c.nsizes; i++)
        if (c.sizes[i] > largest)
            largest = c.sizes[i];

    int failures = 0;
    uint64_t start = tc_now_ns();
    for (int k = 0; k < c.nkeys; k++) {
        if (c.keys[k] == KEYS_SMALL) {
            suite_config cfg = {.n = c.small_maps, .rounds = 1};
            failures += run_keyset(&c, &cfg, KEYS_SMALL, small_total(c.small_maps, SMALL_MAX_ENTRIES), start);
            continue;
        }
        for (int s = 0; s < c.nsizes; s++) {
            size_t n = c.sizes[s];
            suite_config cfg = {
                .n = n,
                .lookups = n < LOOKUP_CAP ? n : LOOKUP_CAP,
                .rounds = n < ROUND_TARGET ? ROUND_TARGET / n : 1,
                .series = c.keys[k] == KEYS_U64 && n == largest,
            };
            failures += run_keyset(&c, &cfg, c.keys[k], n + cfg.lookups, start);
        }
    }

    char path[PATH_MAX + 32], title[128];
    report_markdown(stdout, header);
    printf("\nTotal run time: %.0f s%s\n", seconds_since(start), failures ? " (some workers FAILED)" : "");
    snprintf(path, sizeof path, "%s/results.json", c.out_dir);
    if (report_json(path) == 0)
        printf("JSON: %s\n", path);
    bool charted = false; /* the chart's series come from the u64 rows at the largest size */
    for (int k = 0; k < c.nkeys; k++)
        charted |= c.keys[k] == KEYS_U64;
    snprintf(path, sizeof path, "%s/hmap-bench.svg", c.out_dir);
    snprintf(title, sizeof title, "u64 keys, n = %zu", largest);
    if (charted && report_svg(path, title, largest) == 0)
        printf("SVG: %s\n", path);
    return failures ? 1 : 0;
}
