/* SPDX-License-Identifier: MIT */
/*
 * pool.c — hmap-bench-pool: hmap_pool's get+put pair beside malloc+free (glibc, jemalloc, mimalloc) and
 * Go's sync.Pool, whole hmaps made and freed beside hmaps reused from a pool, and how soon idle memory
 * goes back.
 *
 * One source, three executables (bench/CMakeLists.txt): hmap-bench-pool (the driver; its own malloc is
 * glibc's), hmap-bench-pool-jemalloc (linked with libjemalloc, which then is malloc) and
 * hmap-bench-pool-mimalloc (calls mi_malloc/mi_free). Go's sync.Pool is gopool/main.go. Every figure
 * comes from a fresh worker process (the driver re-executes itself, or a peer executable, with --worker),
 * so that no heap state carries over; the driver runs every implementation once per repetition, in an
 * order rotated each repetition, and shows the median.
 *
 * A pair is: take an object of `size` bytes (hmap_pool_get / malloc / sync.Pool.Get), write one byte of it
 * or all of it (memset), put it back (hmap_pool_put / free / Put). Each thread runs pairs for a fixed time
 * and times itself with its own CPU clock (CLOCK_THREAD_CPUTIME_ID, so that the time the shared
 * machine's other work preempts it is left out; the Go program reads the same clock of its locked OS
 * thread) around batches; with 2 threads both run at once (one pool shared) and the figure is their mean
 * ns per pair. The objects pass through an empty asm with a memory clobber,
 * so the compiler can neither drop the writes nor the malloc/free pair.
 *
 * Environment: BENCH_QUICK=1 (one repetition, shorter runs), BENCH_REPS (default 3).
 */
#define _GNU_SOURCE
#include "tools_common.h"
#include <hmap.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#define bench_malloc mi_malloc
#define bench_free mi_free
#elif defined(BENCH_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define bench_malloc malloc
#define bench_free free
#else
#define bench_malloc malloc
#define bench_free free
#endif

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The calling thread's CPU time (user + system): time spent preempted by the machine's other work is
 * not counted, page faults and syscalls are. */
static uint64_t cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static uint64_t run_ms(void) {
    const char *q = getenv("BENCH_QUICK");
    return q && strcmp(q, "0") != 0 ? 150 : 300;
}

/* ---- workers: pairs ------------------------------------------------------------------------------- */

typedef struct pair_job {
    bool pool; /* hmap_pool, else bench_malloc/bench_free */
    hmap_pool *p;
    size_t size;
    bool touch_all;
    pthread_barrier_t *start;
    double ns;
} pair_job;

static inline void touch(unsigned char *o, size_t size, bool all, unsigned i) {
    if (all)
        memset(o, (int)i, size);
    else
        o[0] = (unsigned char)i;
    escape(o);
}

/* Pairs run in batches between two reads of the CPU clock, which is a system call (~0.3 us): batches
 * double until one takes 200 us, so that the clock costs under 0.2% of what is measured. */
#define BATCH_NS 200000u

static void *pair_loop(void *arg) {
    pair_job *j = arg;
    uint64_t limit = run_ms() * 1000000u, n = 0, batch = 16;
    pthread_barrier_wait(j->start);
    uint64_t t0 = cpu_ns(), t = t0, prev;
    do {
        prev = t;
        if (j->pool)
            for (uint64_t i = 0; i < batch; i++) {
                unsigned char *o = hmap_pool_get(j->p);
                touch(o, j->size, j->touch_all, (unsigned)i);
                hmap_pool_put(j->p, o);
            }
        else
            for (uint64_t i = 0; i < batch; i++) {
                unsigned char *o = bench_malloc(j->size);
                touch(o, j->size, j->touch_all, (unsigned)i);
                bench_free(o);
            }
        n += batch;
        t = cpu_ns();
        if (t - prev < BATCH_NS)
            batch *= 2;
    } while (t - t0 < limit);
    j->ns = (double)(t - t0) / (double)n;
    return NULL;
}

static void *make_buffer(void *ctx) { return malloc(*(size_t *)ctx); }
static void destroy_buffer(void *obj, void *ctx) {
    (void)ctx;
    free(obj);
}

static int worker_pairs(bool pool, size_t size, int threads, bool touch_all) {
    hmap_pool_config cfg = {.make = make_buffer, .destroy = destroy_buffer, .ctx = &size, .name = "bench"};
    hmap_pool *p = pool ? hmap_pool_new(&cfg) : NULL;
    if (pool && !p)
        return 1;
    /* The pool's objects from a malloc in the state the malloc+free loop runs in: glibc maps the first
     * 1 MiB block and, once it is freed, serves that size from the heap. */
    free(malloc(size));
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    pair_job jobs[8];
    pthread_t tids[8];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (pair_job){pool, p, size, touch_all, &start, 0};
        if (i > 0 && pthread_create(&tids[i], NULL, pair_loop, &jobs[i]) != 0)
            return 1;
    }
    pair_loop(&jobs[0]);
    double sum = jobs[0].ns;
    for (int i = 1; i < threads; i++) {
        pthread_join(tids[i], NULL);
        sum += jobs[i].ns;
    }
    printf("R %.3f\n", sum / threads);
    hmap_pool_free(p);
    return 0;
}

#ifdef BENCH_DRIVER
/* ---- workers: whole maps ------------------------------------------------------------------------- */

#define MAP_ENTRIES 1000

static const hmap_type u64_type = {.key_size = 8, .val_size = 8};

static void fill_map(hmap *m) {
    for (uint64_t i = 0; i < MAP_ENTRIES; i++) {
        uint64_t k = (i + 1) * 0x9E3779B97F4A7C15ull, v = i;
        if (hmap_put(m, &k, &v) < 0)
            exit(3);
    }
}

static void *make_map(void *ctx) {
    const hmap_options *o = ctx;
    return hmap_new_opts(&u64_type, 0, o);
}

static void destroy_map(void *obj, void *ctx) {
    (void)ctx;
    hmap_free(obj);
}

static void clear_map(void *obj, void *ctx) {
    (void)ctx;
    hmap_clear(obj); /* drops the entries and gives the arrays back */
}

/* Deletes every entry and keeps the arrays (the maps are no_shrink): the next fill allocates nothing. */
static void empty_map(void *obj, void *ctx) {
    (void)ctx;
    hmap_iter it;
    void *key;
    hmap_iter_init(&it, obj);
    while (hmap_iter_next(&it, &key, NULL)) {
        uint64_t k;
        memcpy(&k, key, sizeof k);
        hmap_del(obj, &k);
    }
    hmap_iter_done(&it);
}

/* kind: make_free (hmap_new, fill, hmap_free), pool_clear (reset = hmap_clear), pool_keep (no_shrink maps,
 * reset = delete every entry). Prints ns per map. */
static int worker_maps(const char *kind) {
    static hmap_options keep = {.no_shrink = true, .name = "pooled"};
    static hmap_options plain = {.name = "pooled"};
    bool is_pool = strcmp(kind, "make_free") != 0, is_keep = strcmp(kind, "pool_keep") == 0;
    hmap_pool_config cfg = {.make = make_map,
                            .reset = is_keep ? empty_map : clear_map,
                            .destroy = destroy_map,
                            .ctx = is_keep ? &keep : &plain,
                            .name = "maps"};
    hmap_pool *p = is_pool ? hmap_pool_new(&cfg) : NULL;
    uint64_t limit = run_ms() * 1000000u, n = 0, t0 = cpu_ns(), t;
    do {
        for (int i = 0; i < 16; i++) {
            hmap *m = is_pool ? hmap_pool_get(p) : hmap_new(&u64_type, 0);
            if (!m)
                return 1;
            fill_map(m);
            escape(m);
            if (is_pool)
                hmap_pool_put(p, m);
            else
                hmap_free(m);
        }
        n += 16;
    } while ((t = cpu_ns()) - t0 < limit);
    printf("R %.1f\n", (double)(t - t0) / (double)n);
    hmap_pool_free(p);
    return 0;
}

/* ---- worker: idle memory going back ----------------------------------------------------------------- */

static double rss_mib(void) { return (double)tc_rss_bytes() / (1024.0 * 1024.0); }

static double live_mib(void) {
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    return (double)ms.live_bytes / (1024.0 * 1024.0);
}

/* Fills a pool with `n` objects from `get`, puts them back, cycles twice; prints the measure after each
 * step and the objects destroyed. */
static void release_steps(const char *name, hmap_pool *p, int n, double (*measure)(void),
                          void (*use)(void *)) {
    void *held[256];
    double before = measure();
    for (int i = 0; i < n; i++) {
        held[i] = hmap_pool_get(p);
        use(held[i]);
    }
    for (int i = 0; i < n; i++)
        hmap_pool_put(p, held[i]);
    double idle = measure();
    hmap_pool_cycle(p);
    double one = measure();
    hmap_pool_cycle(p);
    hmap_release_os_memory();
    double two = measure();
    hmap_pool_stats st;
    hmap_pool_get_stats(p, &st);
    printf("R %s %.2f %.2f %.2f %.2f %llu\n", name, before, idle, one, two, (unsigned long long)st.destroyed);
}

static size_t release_buffer_size = (size_t)1 << 20;
static void use_buffer(void *b) { memset(b, 1, release_buffer_size); }
static void use_map(void *m) { fill_map(m); }

static int worker_release(void) {
    hmap_pool_config bufs = {
        .make = make_buffer, .destroy = destroy_buffer, .ctx = &release_buffer_size, .name = "buffers"};
    hmap_pool *p = hmap_pool_new(&bufs);
    release_steps("buffers_1MiB_x64_rss_MiB", p, 64, rss_mib, use_buffer);
    hmap_pool_free(p);
    static hmap_options keep = {.no_shrink = true};
    hmap_pool_config maps = {
        .make = make_map, .reset = empty_map, .destroy = destroy_map, .ctx = &keep, .name = "maps"};
    p = hmap_pool_new(&maps);
    release_steps("hmaps_1k_x256_memstats_MiB", p, 256, live_mib, use_map);
    hmap_pool_free(p);
    return 0;
}

/* ---- the driver ------------------------------------------------------------------------------------ */

enum { IMPL_POOL, IMPL_GLIBC, IMPL_JEMALLOC, IMPL_MIMALLOC, IMPL_GO, NIMPLS };
static const char *const impl_name[NIMPLS] = {"hmap_pool", "glibc", "jemalloc", "mimalloc", "go_sync_pool"};
static char exe_dir[PATH_MAX];

typedef struct r_lines {
    double last; /* the number on the last "R" line */
    char *lines; /* NULL, or where every "R" line's text after the "R " goes, one a line */
    size_t size;
} r_lines;

static void r_line(void *ctx, char *line) {
    r_lines *r = ctx;
    if (line[0] != 'R' || line[1] != ' ')
        return;
    r->last = atof(line + 2);
    if (r->lines)
        snprintf(r->lines + strlen(r->lines), r->size - strlen(r->lines), "%s\n", line + 2);
}

/* Runs argv (tools/common's tc_spawn_lines); returns the number on its last "R" line, or -1 when it failed
 * or is missing (a peer that was not built). With `lines`, every "R" line's text after the "R " is appended
 * there. */
static double run(char *const argv[], char *lines, size_t lines_size) {
    if (access(argv[0], X_OK) != 0)
        return -1;
    r_lines r = {-1, lines, lines_size};
    char why[256];
    return tc_spawn_lines(argv, NULL, false, r_line, &r, why, sizeof why) ? r.last : -1;
}

static double run_pair(int impl, size_t size, int threads, bool all) {
    char exe[PATH_MAX + 64], sz[32], th[16];
    snprintf(sz, sizeof sz, "%zu", size);
    snprintf(th, sizeof th, "%d", threads);
    const char *touch = all ? "all" : "one";
    if (impl == IMPL_GO) {
        snprintf(exe, sizeof exe, "%s/hmap-bench-pool-go", exe_dir);
        char *argv[] = {exe, "-size", sz, "-threads", th, "-touch", (char *)touch, NULL};
        return run(argv, NULL, 0);
    }
    const char *suffix = impl == IMPL_JEMALLOC ? "-jemalloc" : impl == IMPL_MIMALLOC ? "-mimalloc" : "";
    snprintf(exe, sizeof exe, "%s/hmap-bench-pool%s", exe_dir, suffix);
    char *argv[] = {exe, "--worker", impl == IMPL_POOL ? "pool" : "malloc", sz, th, (char *)touch, NULL};
    return run(argv, NULL, 0);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the successful runs; -1 when none. */
static double median(double *v, int n) {
    double ok[16];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (v[i] >= 0)
            ok[m++] = v[i];
    if (m == 0)
        return -1;
    qsort(ok, (size_t)m, sizeof *ok, cmp_double);
    return ok[m / 2];
}

static void cell(double v) {
    if (v < 0)
        printf(" — |");
    else if (v >= 100)
        printf(" %.0f |", v);
    else
        printf(" %.2f |", v);
}

static const char *size_label(size_t s) { return s == 64 ? "64 B" : s == 4096 ? "4 KiB" : "1 MiB"; }

int main(int argc, char **argv) {
    if (argc >= 6 && strcmp(argv[1], "--worker") == 0)
        return worker_pairs(strcmp(argv[2], "pool") == 0, strtoull(argv[3], NULL, 10), atoi(argv[4]),
                            strcmp(argv[5], "all") == 0);
    if (argc >= 3 && strcmp(argv[1], "--maps") == 0)
        return worker_maps(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "--release") == 0)
        return worker_release();

    ssize_t len = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    if (len <= 0)
        return 1;
    exe_dir[len] = '\0';
    *strrchr(exe_dir, '/') = '\0';
    const char *q = getenv("BENCH_QUICK");
    int reps = q && strcmp(q, "0") != 0 ? 1 : 3;
    if (getenv("BENCH_REPS"))
        reps = atoi(getenv("BENCH_REPS"));
    if (reps < 1 || reps > 15)
        reps = 3;
    char load[128];
    tc_load_average(load, sizeof load);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    printf("# hmap-bench-pool\n\n- date: %s; %ld online CPUs; /proc/loadavg at start: %s\n"
           "- %d repetition%s, median shown, implementations interleaved (order rotated each repetition); "
           "%llu ms of pairs per thread per run\n\n",
           date, sysconf(_SC_NPROCESSORS_ONLN), load, reps, reps == 1 ? "" : "s",
           (unsigned long long)run_ms());

    static const size_t sizes[] = {64, 4096, (size_t)1 << 20};
    printf("ns per get+put pair (malloc+free, Get+Put); lower is better\n\n| size | threads | touched |");
    for (int k = 0; k < NIMPLS; k++)
        printf(" %s |", impl_name[k]);
    printf(" best peer / hmap_pool |\n|---|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for (int all = 0; all <= 1; all++)
        for (int threads = 1; threads <= 2; threads++)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                double v[NIMPLS][16];
                for (int r = 0; r < reps; r++)
                    for (int k = 0; k < NIMPLS; k++) {
                        int impl = (k + r) % NIMPLS;
                        v[impl][r] = run_pair(impl, sizes[s], threads, all);
                    }
                printf("| %s | %d | %s |", size_label(sizes[s]), threads, all ? "all" : "1 byte");
                double med[NIMPLS], best = -1;
                for (int k = 0; k < NIMPLS; k++) {
                    med[k] = median(v[k], reps);
                    cell(med[k]);
                    if (k != IMPL_POOL && med[k] >= 0 && (best < 0 || med[k] < best))
                        best = med[k];
                }
                cell(best >= 0 && med[IMPL_POOL] > 0 ? best / med[IMPL_POOL] : -1);
                printf("\n");
                fflush(stdout);
            }

    static const char *const map_kinds[] = {"make_free", "pool_clear", "pool_keep"};
    printf("\nns per 1000-entry u64 hmap: make (or get) + 1000 inserts + free (or put)\n\n"
           "| hmap_new + hmap_free | pool, reset = hmap_clear | pool, no_shrink maps, reset = delete all |\n"
           "|---:|---:|---:|\n|");
    char exe[PATH_MAX + 32];
    snprintf(exe, sizeof exe, "%s/hmap-bench-pool", exe_dir);
    for (int k = 0; k < 3; k++) {
        double v[16];
        for (int r = 0; r < reps; r++) {
            char *av[] = {exe, "--maps", (char *)map_kinds[k], NULL};
            v[r] = run(av, NULL, 0);
        }
        cell(median(v, reps));
    }

    printf("\n\nIdle memory going back: n objects got, used, put back, then two hmap_pool_cycle calls "
           "(the second followed by hmap_release_os_memory)\n\n"
           "| objects | measure | before | idle in pool | after cycle 1 | after cycle 2 | destroyed |\n"
           "|---|---|---:|---:|---:|---:|---:|\n");
    char lines[1024] = "";
    char *av[] = {exe, "--release", NULL};
    if (run(av, lines, sizeof lines) < 0)
        printf("| (the worker failed) |\n");
    for (char *l = strtok(lines, "\n"); l; l = strtok(NULL, "\n")) {
        char name[128];
        double before, idle, one, two;
        unsigned long long destroyed;
        if (sscanf(l, "%127s %lf %lf %lf %lf %llu", name, &before, &idle, &one, &two, &destroyed) != 6)
            continue;
        char *measure = strrchr(name, '_');
        *measure = '\0';
        measure = strrchr(name, '_');
        *measure++ = '\0';
        printf("| %s | %s MiB | %.2f | %.2f | %.2f | %.2f | %llu |\n", name, measure, before, idle, one, two,
               destroyed);
    }
    return 0;
}
#else
int main(int argc, char **argv) {
    if (argc >= 6 && strcmp(argv[1], "--worker") == 0 && strcmp(argv[2], "malloc") == 0)
        return worker_pairs(false, strtoull(argv[3], NULL, 10), atoi(argv[4]), strcmp(argv[5], "all") == 0);
    fprintf(stderr, "%s: a worker of hmap-bench-pool (--worker malloc SIZE THREADS one|all)\n", argv[0]);
    return 2;
}
#endif
