/*
 * lab.h — what the parts of hmap-lab share.
 *
 * hmap-lab reproduces the seed article's experiments with measured numbers and prints them as Markdown.
 * It is split by section, one file each:
 *
 *   main.c         options, and the order in which sections run
 *   util.c         measuring (RSS, clock), the experiment's keys, formatting, running work in a child
 *   state_table.c  section 1: the article's state table (B, buckets, nevacuate, ...) while growing to 1M,
 *                  shrinking after 99% deletes, and after hmap_compact; plus the longest single operation
 *   release.c      section 2: fill N, delete 99%, delete all — hmap vs no_shrink vs Go's own map
 *   svg.c          section 3: the plot of section 2 as an SVG file
 *   churn.c        section 4: churn and clear-and-refill: resizes and buckets moved per operation
 *
 * Every measurement that needs its own RSS runs in a forked child (lab_run_in_child): the parent stays
 * small, so a child's RSS is the map's plus a few MB of program, and nothing one map freed or kept
 * disturbs the next.
 */
#ifndef HMAP_LAB_H
#define HMAP_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hmap.h"

/* ---- util.c ---- */
uint64_t lab_rss_bytes(void);           /* resident set size, from /proc/self/statm */
uint64_t lab_now_ns(void);              /* CLOCK_MONOTONIC */
uint64_t lab_key(uint64_t i);           /* the i-th key: splitmix64's finalizer (same as the Go program) */
bool lab_survives(uint64_t i);          /* kept by the 99% delete: one key in a hundred */
const char *lab_fmt_bytes(uint64_t bytes, char buf[32]); /* "12.3 MiB" */
const char *lab_fmt_count(uint64_t n, char buf[32]);     /* "10M", "1.5M", "200k", "999" */
const char *lab_phase_name(hmap_phase phase);
hmap *lab_new_u64_map(size_t hint, bool no_shrink);      /* uint64 -> uint64, built-in hash */
void lab_put(hmap *m, uint64_t i);                       /* inserts lab_key(i) -> i; exits on error */
void lab_del(hmap *m, uint64_t i);                       /* deletes lab_key(i); exits if absent */

/* A latency histogram with no allocation (so it does not disturb RSS): 4 bins per power of two (±19%),
 * plus the exact maximum. */
typedef struct lab_hist {
    uint64_t bins[256];
    uint64_t total, sum, max;
} lab_hist;
void lab_hist_add(lab_hist *h, uint64_t ns);
uint64_t lab_hist_quantile(const lab_hist *h, double q); /* upper bound of the bin holding quantile q */
/* Times `count` busy-waits of `spin_ns` each, back to back: what the machine alone (other processes,
 * interrupts, the scheduler) does to a timed operation of that length, over the same span of time. */
void lab_noise_floor(lab_hist *h, uint64_t count, uint64_t spin_ns);

/* Runs fn(arg, out, out_size) in a forked child and copies the child's `out` back into the parent's.
 * Returns false (with a message on stderr) if the child failed. */
bool lab_run_in_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t out_size);

/* Where output files go (the build directory's lab/, or $LAB_OUT); created if missing. */
const char *lab_output_dir(void);

/* ---- the sections ---- */
void lab_state_table(uint64_t n);       /* section 1 */

/* Section 2 records, shared with svg.c. */
enum { LAB_STEPS = 4, LAB_MAX_SAMPLES = 512, LAB_IMPLS = 3 };
typedef struct lab_step {
    char name[24];
    uint64_t count;
    uint64_t bytes;          /* what the map holds (hmap_get_stats, or Go's HeapAlloc after GC) */
    uint64_t bytes_inuse;    /* Go only: HeapInuse after GC */
    uint64_t rss;
    uint64_t rss_released;   /* after malloc_trim(0) (C) or debug.FreeOSMemory() (Go); 0: not done */
} lab_step;
typedef struct lab_sample {
    uint64_t op;             /* operations done since the start of the run */
    uint64_t bytes, rss;
} lab_sample;
typedef struct lab_run {
    char label[24];
    bool ok;
    char why[200];           /* why ok is false */
    char version[32];        /* Go only: runtime.Version() */
    lab_step steps[LAB_STEPS];
    size_t nsteps;
    uint64_t fresh_bytes;    /* a fresh map of the 99% delete's survivors */
    uint64_t compact_bytes, compact_rss; /* hmap only: after hmap_compact at the 99% step (settled RSS) */
    uint64_t max_insert_ns, max_delete_ns;
    uint64_t elapsed_ns;     /* wall time of the whole run */
    size_t nsamples;
    lab_sample samples[LAB_MAX_SAMPLES];
} lab_run;

void lab_release(uint64_t n);                           /* section 2, and calls section 3 */
void lab_svg_plot(uint64_t n, const lab_run runs[], size_t nruns); /* section 3 */
void lab_churn(void);                                   /* section 4 */

#endif /* HMAP_LAB_H */
