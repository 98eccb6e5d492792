/*
 * release.c — section 2: the article's central experiment. Does memory come back after deletes?
 *
 * Fill n uint64 -> uint64 entries, delete 99% of them, then delete the rest; after each step record the
 * bytes the map holds and the process's RSS. Three implementations, each in its own process:
 *
 *   hmap             the library as shipped (incremental shrink, arrays unmapped)
 *   hmap no_shrink   hmap_options.no_shrink: Go's behaviour (arrays stay at their peak size)
 *   Go map           Go's own map[uint64]uint64, run by the Go program built from tools/lab/go/
 *
 * "Bytes held" is hmap_get_stats().bytes for hmap, and HeapAlloc after runtime.GC() (minus the heap before
 * the map existed) for Go. Beside RSS at each step, the table shows RSS once free memory has been handed
 * back explicitly — malloc_trim(0) for C, debug.FreeOSMemory() for Go — and, for C, once hmap's background
 * unmapper has had SETTLE_US to finish: that separates "the map still holds it" from "the allocator (or
 * the unmapper) has not given it back yet". Handing back changes what later steps measure, so it is done only
 * at the two delete steps: the RSS after the 99% delete is what a program that never calls either sees.
 *
 * While running, each process also samples bytes and RSS every n/SAMPLES_PER_N operations for the plot of
 * section 3 (svg.c). The keys and the 99% rule are the same in C and Go (lab_key, lab_survives).
 */
#define _GNU_SOURCE /* popen, malloc_trim */

#include "lab.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LAB_GO_BINARY
#define LAB_GO_BINARY ""
#endif
#ifndef LAB_GO_MISSING
#define LAB_GO_MISSING "the Go program was not built"
#endif

enum { SAMPLES_PER_N = 100 };
/* How long the "settled" RSS waits for hmap's unmapper thread (we measured ~100 ms to unmap the arrays of
 * a 10M map on a loaded 2-core machine, and no visible wait on an idle one). */
enum { SETTLE_US = 200 * 1000 };

typedef struct c_run_arg {
    uint64_t n;
    bool no_shrink;
} c_run_arg;

/* ---- the C implementations (run in a forked child) ---- */

typedef struct c_runner {
    hmap *m;
    lab_run *run;
    uint64_t op, every;
} c_runner;

static void add_sample(lab_run *run, uint64_t op, uint64_t bytes, uint64_t rss)
{
    if (run->nsamples < LAB_MAX_SAMPLES)
        run->samples[run->nsamples++] = (lab_sample){op, bytes, rss};
}

static void sample_now(c_runner *r)
{
    hmap_stats st;
    hmap_get_stats(r->m, &st);
    add_sample(r->run, r->op, st.bytes, lab_rss_bytes());
}

/* Counts one operation; samples every `every` of them. */
static void tick(c_runner *r)
{
    if (++r->op % r->every == 0)
        sample_now(r);
}

static void record_step(c_runner *r, const char *name, bool release)
{
    hmap_stats st;
    hmap_get_stats(r->m, &st);
    lab_step *s = &r->run->steps[r->run->nsteps++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->count = st.count;
    s->bytes = st.bytes;
    s->rss = lab_rss_bytes();
    if (release) {
        malloc_trim(0);
        usleep(SETTLE_US); /* hmap unmaps freed arrays on a background thread: let it finish */
        s->rss_released = lab_rss_bytes();
    }
    sample_now(r);
}

static uint64_t fresh_survivor_bytes(uint64_t n)
{
    hmap *fresh = lab_new_u64_map((size_t)(n / 100 + 1), false);
    for (uint64_t i = 0; i < n; i += 100)
        lab_put(fresh, i);
    hmap_stats st;
    hmap_get_stats(fresh, &st);
    hmap_free(fresh);
    return st.bytes;
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

static void run_c_map(void *argp, void *out)
{
    const c_run_arg *arg = argp;
    lab_run *run = out;
    uint64_t start = lab_now_ns();
    c_runner r = {.run = run, .every = arg->n / SAMPLES_PER_N ? arg->n / SAMPLES_PER_N : 1};
    r.m = lab_new_u64_map(0, arg->no_shrink);
    record_step(&r, "empty", false);

    for (uint64_t i = 0; i < arg->n; i++) {
        uint64_t t0 = lab_now_ns();
        lab_put(r.m, i);
        run->max_insert_ns = max_u64(run->max_insert_ns, lab_now_ns() - t0);
        tick(&r);
    }
    record_step(&r, "filled", false);

    for (uint64_t i = 0; i < arg->n; i++) {
        if (lab_survives(i))
            continue;
        uint64_t t0 = lab_now_ns();
        lab_del(r.m, i);
        run->max_delete_ns = max_u64(run->max_delete_ns, lab_now_ns() - t0);
        tick(&r);
    }
    record_step(&r, "deleted-99%", true);
    run->fresh_bytes = fresh_survivor_bytes(arg->n);
    if (!arg->no_shrink) { /* what hmap_compact adds, before the last deletes */
        hmap_compact(r.m);
        hmap_stats st;
        hmap_get_stats(r.m, &st);
        malloc_trim(0);
        usleep(SETTLE_US);
        run->compact_bytes = st.bytes;
        run->compact_rss = lab_rss_bytes();
    }

    for (uint64_t i = 0; i < arg->n; i += 100) {
        lab_del(r.m, i);
        tick(&r);
    }
    record_step(&r, "deleted-all", true);
    hmap_free(r.m);
    run->elapsed_ns = lab_now_ns() - start;
    run->ok = true;
}

static void measure_c_map(lab_run *run, uint64_t n, bool no_shrink)
{
    c_run_arg arg = {n, no_shrink};
    memset(run, 0, sizeof *run);
    if (!lab_run_in_child(run_c_map, &arg, run, sizeof *run)) {
        memset(run, 0, sizeof *run);
        snprintf(run->why, sizeof run->why, "the measuring process failed (see stderr)");
    }
    snprintf(run->label, sizeof run->label, no_shrink ? "hmap no_shrink" : "hmap");
}

/* ---- Go's map (the Go program, parsed) ---- */

static const char *go_binary(void)
{
    const char *env = getenv("LAB_GO");
    return env && *env ? env : LAB_GO_BINARY;
}

static void parse_go_line(lab_run *run, const char *line)
{
    char name[24];
    uint64_t a, b, c, d, e;
    if (sscanf(line, "sample %" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c) == 3) {
        add_sample(run, a, b, c);
    } else if (sscanf(line, "step %23s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, name, &a, &b, &c,
                      &d, &e) == 6 &&
               run->nsteps < LAB_STEPS) {
        run->steps[run->nsteps++] =
            (lab_step){.count = a, .bytes = b, .bytes_inuse = c, .rss = d, .rss_released = e};
        snprintf(run->steps[run->nsteps - 1].name, sizeof run->steps[0].name, "%s", name);
    } else if (sscanf(line, "fresh %" SCNu64, &a) == 1) {
        run->fresh_bytes = a;
    } else if (sscanf(line, "version %31s", run->version) == 1) {
        /* stored */
    } else if (sscanf(line, "maxop %" SCNu64 " %" SCNu64, &a, &b) == 2) {
        run->max_insert_ns = a;
        run->max_delete_ns = b;
    }
}

static void measure_go_map(lab_run *run, uint64_t n)
{
    memset(run, 0, sizeof *run);
    snprintf(run->label, sizeof run->label, "Go map");
    const char *bin = go_binary();
    if (!*bin) {
        snprintf(run->why, sizeof run->why, "%s", LAB_GO_MISSING);
        return;
    }
    if (access(bin, X_OK) != 0) {
        snprintf(run->why, sizeof run->why, "%s is missing (%s)", bin, LAB_GO_MISSING);
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' -n %" PRIu64 " -samples %d", bin, n, SAMPLES_PER_N);
    uint64_t start = lab_now_ns();
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(run->why, sizeof run->why, "cannot run %s", bin);
        return;
    }
    char line[256];
    while (fgets(line, sizeof line, p))
        parse_go_line(run, line);
    int status = pclose(p);
    run->elapsed_ns = lab_now_ns() - start;
    run->ok = status == 0 && run->nsteps == LAB_STEPS;
    if (!run->ok)
        snprintf(run->why, sizeof run->why, "%s failed (status %d, %zu steps)", bin, status, run->nsteps);
}

/* ---- printing ---- */

static const char *cell(const lab_run *run, size_t step, int which, char buf[32])
{
    if (!run->ok || step >= run->nsteps)
        return "—";
    const lab_step *s = &run->steps[step];
    uint64_t v = which == 0 ? s->bytes : which == 1 ? s->bytes_inuse : which == 2 ? s->rss : s->rss_released;
    if (which == 3 && v == 0)
        return "—"; /* not handed back at this step */
    return lab_fmt_bytes(v, buf);
}

static const char *step_title(const char *name)
{
    if (!strcmp(name, "empty")) return "new, empty";
    if (!strcmp(name, "filled")) return "filled";
    if (!strcmp(name, "deleted-99%")) return "99% deleted";
    if (!strcmp(name, "deleted-all")) return "all deleted";
    return name;
}

static void print_table(const lab_run runs[LAB_IMPLS], uint64_t n)
{
    static const char *const names[] = {"empty", "filled", "deleted-99%", "deleted-all"};
    const uint64_t entries[] = {0, n, (n + 99) / 100, 0}; /* keys i < n with i % 100 == 0 survive */
    char b[12][32];
    printf("\n| step | entries | hmap bytes | hmap RSS | hmap RSS, settled | no_shrink bytes | no_shrink RSS | "
           "no_shrink RSS, settled | Go HeapAlloc | Go HeapInuse | Go RSS | Go RSS, FreeOSMemory |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < LAB_STEPS; s++) {
        printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", step_title(names[s]),
               lab_fmt_count(entries[s], b[0]), cell(&runs[0], s, 0, b[1]),
               cell(&runs[0], s, 2, b[2]), cell(&runs[0], s, 3, b[3]), cell(&runs[1], s, 0, b[4]),
               cell(&runs[1], s, 2, b[5]), cell(&runs[1], s, 3, b[6]), cell(&runs[2], s, 0, b[7]),
               cell(&runs[2], s, 1, b[8]), cell(&runs[2], s, 2, b[9]), cell(&runs[2], s, 3, b[10]));
    }
}

static void print_summary(const lab_run runs[LAB_IMPLS])
{
    char b1[32], b2[32], b3[32];
    printf("\n| implementation | held after 99%% deleted ÷ fresh map of survivors | fresh map | RSS after 99%% "
           "deleted ÷ (RSS empty + fresh map) | same, settled | longest insert | longest delete | run time |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < LAB_IMPLS; i++) {
        const lab_run *r = &runs[i];
        if (!r->ok) {
            printf("| %s | — | — | — | — | — | — | not run: %s |\n", r->label, r->why);
            continue;
        }
        const lab_step *empty = &r->steps[0], *deleted = &r->steps[2];
        char held[32] = "—"; /* a tiny fresh Go map can measure 0 bytes */
        if (r->fresh_bytes > 0)
            snprintf(held, sizeof held, "%.2f×", (double)deleted->bytes / (double)r->fresh_bytes);
        double need = (double)(empty->rss + r->fresh_bytes);
        printf("| %s%s%s | %s | %s | %.2f× (%s) | %.2f× (%s) | %.3f ms | %.3f ms | %.1f s |\n", r->label,
               *r->version ? " " : "", r->version, held, lab_fmt_bytes(r->fresh_bytes, b1),
               (double)deleted->rss / need, lab_fmt_bytes(deleted->rss, b2), (double)deleted->rss_released / need,
               lab_fmt_bytes(deleted->rss_released, b3), (double)r->max_insert_ns / 1e6,
               (double)r->max_delete_ns / 1e6, (double)r->elapsed_ns / 1e9);
    }
}

static void print_compacted(const lab_run *r)
{
    if (!r->ok || !r->compact_bytes)
        return;
    char b1[32], b2[32];
    const lab_step *empty = &r->steps[0];
    printf("\nhmap after `hmap_compact` at the 99%% step: holds %s = %.2f× the fresh map; settled RSS %s = %.2f× "
           "(RSS empty + fresh map).\n",
           lab_fmt_bytes(r->compact_bytes, b1), (double)r->compact_bytes / (double)r->fresh_bytes,
           lab_fmt_bytes(r->compact_rss, b2), (double)r->compact_rss / (double)(empty->rss + r->fresh_bytes));
}

void lab_release(uint64_t n)
{
    static lab_run runs[LAB_IMPLS]; /* ~12 KiB each: keep them off the stack */
    char b[32];
    printf("\n## 2. Does memory come back? Fill %s, delete 99%%, delete all — hmap vs no_shrink vs Go's map\n",
           lab_fmt_count(n, b));
    printf("\nEach implementation in its own process. Bytes: hmap_get_stats().bytes; Go: HeapAlloc (and HeapInuse)"
           " after runtime.GC(), minus the heap before the map. RSS: /proc/self/statm at that step; \"settled\" "
           "after malloc_trim(0) and 200 ms for hmap's unmapper thread, \"FreeOSMemory\" after debug.FreeOSMemory(), called only from the 99%% delete "
           "on (earlier calls would change the RSS measured after it).\n");
    measure_c_map(&runs[0], n, false);
    measure_c_map(&runs[1], n, true);
    measure_go_map(&runs[2], n);
    print_table(runs, n);
    print_summary(runs);
    print_compacted(&runs[0]);
    printf("\nThe longest insert and delete are single worst timings on a shared machine: compare them with section"
           " 1's noise floor before reading them as pauses of the map.\n");
    if (!runs[2].ok)
        printf("\nGo's column is missing: %s.\n", runs[2].why);
    lab_svg_plot(n, runs, LAB_IMPLS);
}
