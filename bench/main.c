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
 * Markdown table, writes results.json and draws the SVG chart.
 *
 * `hmap-bench --concurrent` runs the concurrent maps instead (concurrent.c has its own options).
 * Otherwise it takes no arguments but --help (any other is an error): the run is set by the environment,
 * which `make bench` passes through. Environment: BENCH_QUICK=1 (1Mi uint64 keys, one repetition),
 * BENCH_REPS, BENCH_SIZES (e.g. "1024,1048576"), BENCH_KEYS ("u64,str"), BENCH_IMPLS (e.g. "hmap,abseil,go"),
 * BENCH_OUT_DIR (default: the directory of this executable, i.e. build/bench).
 */
#define _GNU_SOURCE
#include "bench.h"
#include "concurrent.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOOKUP_CAP ((size_t)1 << 20)   /* lookups and churn steps per round, at most */
#define ROUND_TARGET ((size_t)1 << 20) /* small sizes are repeated to reach this many operations */

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
    key_kind keys[2];
    int nkeys;
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
        keys = "u64";
    if (listed(keys, "u64"))
        c->keys[c->nkeys++] = KEYS_U64;
    if (listed(keys, "str"))
        c->keys[c->nkeys++] = KEYS_STR;

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

static void cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(buf, size, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

static void go_version(const config *c, char *buf, size_t size) {
    snprintf(buf, size, "not found (Go rows skipped)");
    if (!c->have_go)
        return;
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' -version", c->go_path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (fgets(buf, (int)size, p))
        buf[strcspn(buf, "\n")] = '\0';
    pclose(p);
}

/* The load average at start: on a shared machine it says how much the figures are disturbed. */
static void load_average(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    if (fgets(buf, (int)size, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

static void make_header(const config *c, char *h, size_t size) {
    char date[64], cpu[256], gov[128], sizes[128] = "", keys[32] = "", impls[256] = "", tmp[32], load[128];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    cpu_model(cpu, sizeof cpu);
    load_average(load, sizeof load);
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

/* In the child: measure, write the lines to fd, exit. Never returns. */
static void run_child(const config *c, const impl *im, const keyset *ks, const suite_config *cfg, int fd) {
    if (im->kind == RUN_GO) {
        char n[32], lookups[32], rounds[32], series[8], sum[32];
        snprintf(n, sizeof n, "%zu", cfg->n);
        snprintf(lookups, sizeof lookups, "%zu", cfg->lookups);
        snprintf(rounds, sizeof rounds, "%zu", cfg->rounds);
        snprintf(series, sizeof series, "%d", cfg->series ? 1 : 0);
        snprintf(sum, sizeof sum, "%llu", (unsigned long long)keyset_checksum(ks));
        dup2(fd, STDOUT_FILENO);
        execl(c->go_path, c->go_path, "-keys", key_kind_name(ks->kind), "-n", n, "-lookups", lookups,
              "-rounds", rounds, "-series", series, "-checksum", sum, (char *)NULL);
        fprintf(stderr, "hmap-bench: cannot run %s: %s\n", c->go_path, strerror(errno));
        _exit(127);
    }
    FILE *out = fdopen(fd, "w");
    if (!out)
        _exit(126);
    if (im->kind == RUN_ADAPTER)
        suite_run_map(im->a, ks, cfg, out);
    else if (im->kind == RUN_LIMIT)
        suite_run_limit(ks, cfg, out);
    else
        suite_run_noise(cfg, out);
    fclose(out);
    _exit(0);
}

static bool run_worker(const config *c, const impl *im, const keyset *ks, const suite_config *cfg) {
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    if (cfg->series) {
        series_reset(im->name, "lat");
        series_reset(im->name, "bytes");
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        close(fds[0]);
        run_child(c, im, ks, cfg, fds[1]);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char *line = NULL;
    size_t cap = 0;
    bool ok = in != NULL;
    while (in && getline(&line, &cap, in) > 0)
        if (!parse_line(im->name, ks->kind, cfg->n, line)) {
            fprintf(stderr, "hmap-bench: %s: unexpected line: %s\n", im->name, line);
            ok = false;
        }
    free(line);
    if (in)
        fclose(in);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "hmap-bench: %s worker failed (status %d)\n", im->name, status);
        ok = false;
    }
    return ok;
}

/* ---- main ---- */

static double seconds_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e9; }

/* ---- the command line: --help, nothing else ---- */

static const char USAGE[] =
    "usage: hmap-bench [--help]   or   hmap-bench --concurrent [options of concurrent.c]\n"
    "Runs every map implementation over every key set and size; prints a Markdown table on stdout,\n"
    "progress on stderr, and writes results.json and hmap-bench.svg into BENCH_OUT_DIR.\n"
    "Environment:\n"
    "  BENCH_QUICK=1      1Mi uint64 keys, one repetition\n"
    "  BENCH_REPS=N       repetitions (default 3)\n"
    "  BENCH_SIZES=N,...  entry counts (default 1024,1048576,10485760)\n"
    "  BENCH_KEYS=...     u64,str (default both)\n"
    "  BENCH_IMPLS=...    e.g. hmap,abseil,go (default all that were built)\n"
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
    uint64_t start = now_ns();
    for (int k = 0; k < c.nkeys; k++) {
        for (int s = 0; s < c.nsizes; s++) {
            size_t n = c.sizes[s];
            suite_config cfg = {
                .n = n,
                .lookups = n < LOOKUP_CAP ? n : LOOKUP_CAP,
                .rounds = n < ROUND_TARGET ? ROUND_TARGET / n : 1,
                .series = c.keys[k] == KEYS_U64 && n == largest,
            };
            keyset ks;
            keyset_make(&ks, c.keys[k], n + cfg.lookups);
            char nb[32];
            size_name(n, nb, sizeof nb);
            for (int r = 0; r < c.reps; r++) {
                for (int j = 0; j < c.nimpls; j++) {
                    const impl *im = c.impls[(j + r) % c.nimpls];
                    uint64_t t0 = now_ns();
                    bool ok = run_worker(&c, im, &ks, &cfg);
                    failures += !ok;
                    fprintf(stderr, "[%7.1f s] %-4s %-5s rep %d/%d %-14s %6.1f s%s\n", seconds_since(start),
                            key_kind_name(ks.kind), nb, r + 1, c.reps, im->name, seconds_since(t0),
                            ok ? "" : "  FAILED");
                }
            }
            keyset_free(&ks);
        }
    }

    char path[PATH_MAX + 32], title[128];
    report_markdown(stdout, header);
    printf("\nTotal run time: %.0f s%s\n", seconds_since(start), failures ? " (some workers FAILED)" : "");
    snprintf(path, sizeof path, "%s/results.json", c.out_dir);
    if (report_json(path) == 0)
        printf("JSON: %s\n", path);
    snprintf(path, sizeof path, "%s/hmap-bench.svg", c.out_dir);
    snprintf(title, sizeof title, "u64 keys, n = %zu", largest);
    if (report_svg(path, title, largest) == 0)
        printf("SVG: %s\n", path);
    return failures ? 1 : 0;
}
