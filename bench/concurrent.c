/* SPDX-License-Identifier: MIT */
/*
 * concurrent.c — `hmap-bench --concurrent`: hmap_sync against locked and concurrent maps, by threads.
 *
 * Cells (concurrent.h): uint64 -> uint64, n pre-filled keys, a read percentage (the rest split between
 * store and delete), a thread count; each cell runs for a fixed time and reports the total Mops/s and
 * the CPU time the process really got meanwhile (getrusage: user + system, all threads), because on a
 * shared 2-core machine a "2-thread" cell may get one core. Maps: hmap_sync, mutex+abseil and
 * rwlock+abseil, TBB's concurrent_hash_map (concurrent_peers.cc), liburcu's cds_lfht (here), and Go's
 * sync.Map (the program in gosync/, same cells and output lines).
 *
 * For each (n, read percentage) every map runs in a fresh process (a fork, or the Go program), which
 * pre-fills its map once and then runs the thread counts in order; maps take turns, so drift on the
 * machine spreads over all of them. Results go to stdout as one Markdown table, after a memory check of
 * hmap_sync: 1Mi keys, 99% deleted by two threads, against a fresh hmap_sync of the survivors.
 *
 * Options (or environment): --sizes 1024,1048576 (BENCH_CC_SIZES), --reads 100,99,90,75
 * (BENCH_CC_READS), --threads 1,2,4,8 (BENCH_CC_THREADS), --ms 1000 per cell (BENCH_CC_MS), --reps 1
 * (BENCH_CC_REPS: every cell that many times, the median shown: on a shared machine one run of a cell
 * can be off by a third), --impls hmap_sync,mutex+abseil,... (BENCH_CC_IMPLS), --memory 0 to skip the
 * memory check (BENCH_CC_MEMORY).
 */
#define _GNU_SOURCE
#include "concurrent.h"
#include "tools_common.h"

#include <hmap.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_WITH_URCU
#include <urcu.h>
#include <urcu/rculfhash.h>
#endif

volatile uint64_t cc_sink;

/* ---------------------------------------------------------------- hmap_sync */

static void *hs_create(uint64_t n) {
    hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_sync *m = hmap_sync_new(&t, n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = cc_splitmix64(2 * i), v = 2 * i + 1;
        hmap_sync_store(m, &k, &v);
    }
    return m;
}

static void hs_destroy(void *m) { hmap_sync_free(m); }

static uint64_t hs_work(void *p, const cc_work *w) {
    hmap_sync *m = p;
    CC_LOOP(
        w,
        {
            uint64_t v;
            if (hmap_sync_load(m, &key, &v))
                cc_sum += v;
        },
        {
            uint64_t v = idx + 1;
            hmap_sync_store(m, &key, &v);
        },
        { hmap_sync_delete(m, &key); })
}

static const cc_adapter cc_hmap_sync = {"hmap_sync", hs_create, hs_destroy, NULL, NULL, hs_work};

/* ---------------------------------------------------------------- liburcu's lock-free hash table */

#ifdef BENCH_WITH_URCU
typedef struct lf_node {
    struct cds_lfht_node node;
    uint64_t key, val;
    struct rcu_head rcu;
} lf_node;

static uint64_t lf_hash(uint64_t k) { /* the keys are random already; one multiply spreads them anyway */
    k ^= k >> 33;
    return k * 0xff51afd7ed558ccdULL;
}

static int lf_match(struct cds_lfht_node *node, const void *key) {
    return caa_container_of(node, lf_node, node)->key == *(const uint64_t *)key;
}

static void lf_free(struct rcu_head *head) { free(caa_container_of(head, lf_node, rcu)); }

static lf_node *lf_new(uint64_t key, uint64_t val) {
    lf_node *n = malloc(sizeof *n);
    cds_lfht_node_init(&n->node);
    n->key = key;
    n->val = val;
    return n;
}

static void lf_store(struct cds_lfht *ht, uint64_t key, uint64_t val) {
    lf_node *n = lf_new(key, val);
    rcu_read_lock();
    struct cds_lfht_node *old = cds_lfht_add_replace(ht, lf_hash(key), lf_match, &key, &n->node);
    rcu_read_unlock();
    if (old)
        call_rcu(&caa_container_of(old, lf_node, node)->rcu, lf_free);
}

static void *lf_create(uint64_t n) {
    rcu_register_thread();
    unsigned long size = 1;
    while (size < n)
        size <<= 1;
    struct cds_lfht *ht = cds_lfht_new(size, 1, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
    for (uint64_t i = 0; i < n; i++)
        lf_store(ht, cc_splitmix64(2 * i), 2 * i + 1);
    return ht;
}

static void lf_destroy(void *m) { (void)m; /* the worker process exits right after: nothing to give back */ }

static void lf_thread_begin(void *m) {
    (void)m;
    rcu_register_thread();
}

static void lf_thread_end(void *m) {
    (void)m;
    rcu_unregister_thread();
}

static uint64_t lf_work(void *p, const cc_work *w) {
    struct cds_lfht *ht = p;
    CC_LOOP(
        w,
        {
            struct cds_lfht_iter it;
            rcu_read_lock();
            cds_lfht_lookup(ht, lf_hash(key), lf_match, &key, &it);
            struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
            if (node)
                cc_sum += caa_container_of(node, lf_node, node)->val;
            rcu_read_unlock();
        },
        { lf_store(ht, key, idx + 1); },
        {
            struct cds_lfht_iter it;
            rcu_read_lock();
            cds_lfht_lookup(ht, lf_hash(key), lf_match, &key, &it);
            struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
            if (node && cds_lfht_del(ht, node) == 0)
                call_rcu(&caa_container_of(node, lf_node, node)->rcu, lf_free);
            rcu_read_unlock();
        })
}

static const cc_adapter cc_cds_lfht = {"cds_lfht",      lf_create,     lf_destroy,
                                       lf_thread_begin, lf_thread_end, lf_work};
#endif

/* ---------------------------------------------------------------- configuration */

#define MAX_LIST 8
#define MAX_IMPLS 8

typedef struct cc_config {
    uint64_t sizes[MAX_LIST];
    unsigned reads[MAX_LIST], threads[MAX_LIST];
    int nsizes, nreads, nthreads;
    unsigned ms, reps;
    const char *impls;
    char gosync[PATH_MAX + 32];
} cc_config;

static int parse_list(const char *s, uint64_t *out) {
    int n = 0;
    for (char *end; s && *s && n < MAX_LIST; s = *end ? end + 1 : end) {
        out[n++] = strtoull(s, &end, 10);
        if (end == s)
            break;
    }
    return n;
}

static const char *option(int argc, char **argv, const char *flag, const char *env, const char *dflt) {
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return argv[i + 1];
    return getenv(env) ? getenv(env) : dflt;
}

static void configure(cc_config *c, int argc, char **argv) {
    memset(c, 0, sizeof *c);
    uint64_t tmp[MAX_LIST];
    c->nsizes = parse_list(option(argc, argv, "--sizes", "BENCH_CC_SIZES", "1024,1048576"), c->sizes);
    c->nreads = parse_list(option(argc, argv, "--reads", "BENCH_CC_READS", "100,99,90,75"), tmp);
    for (int i = 0; i < c->nreads; i++)
        c->reads[i] = (unsigned)(tmp[i] > 100 ? 100 : tmp[i]);
    c->nthreads = parse_list(option(argc, argv, "--threads", "BENCH_CC_THREADS", "1,2,4,8"), tmp);
    for (int i = 0; i < c->nthreads; i++)
        c->threads[i] = (unsigned)(tmp[i] < 1 ? 1 : tmp[i] > 64 ? 64 : tmp[i]);
    c->ms = (unsigned)atoi(option(argc, argv, "--ms", "BENCH_CC_MS", "1000"));
    if (c->ms < 10)
        c->ms = 10;
    c->reps = (unsigned)atoi(option(argc, argv, "--reps", "BENCH_CC_REPS", "1"));
    if (c->reps < 1)
        c->reps = 1;
    if (c->reps > 15)
        c->reps = 15;
    c->impls = option(argc, argv, "--impls", "BENCH_CC_IMPLS", NULL);
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(c->gosync, sizeof c->gosync, "%s/hmap-bench-gosync", len > 0 ? self : ".");
}

static bool listed(const char *list, const char *name) {
    if (!list)
        return true;
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
            return true;
    return false;
}

/* ---------------------------------------------------------------- one cell */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

typedef struct worker {
    const cc_adapter *a;
    void *m;
    cc_work w;
    pthread_barrier_t *start;
    uint64_t ops;
} worker;

static void *worker_main(void *p) {
    worker *k = p;
    if (k->a->thread_begin)
        k->a->thread_begin(k->m);
    pthread_barrier_wait(k->start);
    k->ops = k->a->work(k->m, &k->w);
    if (k->a->thread_end)
        k->a->thread_end(k->m);
    return NULL;
}

/* Runs one cell; prints "C <impl> <n> <reads> <threads> <Mops/s> <cpu s> <wall s>". */
static void run_cell(FILE *out, const cc_adapter *a, void *m, uint64_t n, unsigned reads, unsigned threads,
                     unsigned ms) {
    static int stop;
    worker k[64];
    pthread_t t[64];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, threads + 1);
    __atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < threads; i++) {
        k[i] = (worker){a, m, {n, reads, &stop, cc_splitmix64(1000 + i)}, &start, 0};
        pthread_create(&t[i], NULL, worker_main, &k[i]);
    }
    pthread_barrier_wait(&start);
    double c0 = cpu_s(), t0 = now_s();
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    uint64_t ops = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        ops += k[i].ops;
    }
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    pthread_barrier_destroy(&start);
    fprintf(out, "C %s %llu %u %u %.3f %.3f %.3f\n", a->name, (unsigned long long)n, reads, threads,
            (double)ops / wall / 1e6, cpu, wall);
    fflush(out);
}

/* ---------------------------------------------------------------- results */

typedef struct result {
    char impl[32];
    uint64_t n;
    unsigned reads, threads;
    double mops, cpu, wall;
} result;

static result results[4096];
static int nresults;
static const char *impl_names[MAX_IMPLS];
static int nimpl_names;

static void note_impl(const char *name) {
    for (int i = 0; i < nimpl_names; i++)
        if (strcmp(impl_names[i], name) == 0)
            return;
    if (nimpl_names < MAX_IMPLS)
        impl_names[nimpl_names++] = strdup(name);
}

/* One line from a group's process: a cell's result, or a line to pass through (memory, notes). */
static void parse_result_line(void *ctx, char *line) {
    (void)ctx;
    result r;
    unsigned long long n;
    if (line[0] == 'C' && nresults < 4096 &&
        sscanf(line, "C %31s %llu %u %u %lf %lf %lf", r.impl, &n, &r.reads, &r.threads, &r.mops, &r.cpu,
               &r.wall) == 7) {
        r.n = n;
        results[nresults++] = r;
        note_impl(r.impl);
        fprintf(stderr, "  %-14s n=%-8llu reads=%3u%% threads=%u: %7.2f Mops/s, cpu %.2f s of %.2f s\n",
                r.impl, n, r.reads, r.threads, r.mops, r.cpu, r.wall);
    } else {
        puts(line);
    }
}

static double per_cpu_rate(const result *r) { return r->cpu > 0 ? r->mops * r->wall / r->cpu : 0.0; }

/* The cell's run (of --reps) with the median rate per CPU second: its Mops/s and CPU time are shown
 * together, as one run measured them. */
static const result *find_result(const char *impl, uint64_t n, unsigned reads, unsigned threads) {
    const result *found[64];
    int k = 0;
    for (int i = 0; i < nresults && k < 64; i++)
        if (strcmp(results[i].impl, impl) == 0 && results[i].n == n && results[i].reads == reads &&
            results[i].threads == threads)
            found[k++] = &results[i];
    for (int i = 1; i < k; i++) /* insertion sort by rate: a few runs */
        for (int j = i; j > 0 && per_cpu_rate(found[j - 1]) > per_cpu_rate(found[j]); j--) {
            const result *t = found[j];
            found[j] = found[j - 1];
            found[j - 1] = t;
        }
    return k ? found[(k - 1) / 2] : NULL;
}

static const char *size_label(uint64_t n, char *buf, size_t size) {
    if (n >= 1048576 && n % 1048576 == 0)
        snprintf(buf, size, "%lluMi", (unsigned long long)(n >> 20));
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(buf, size, "%lluKi", (unsigned long long)(n >> 10));
    else
        snprintf(buf, size, "%llu", (unsigned long long)n);
    return buf;
}

/* One table; per_cpu: operations per CPU second the process got (what a loaded machine hides). */
static void print_one_table(const cc_config *c, bool per_cpu) {
    if (per_cpu)
        printf("\nMillions of operations per CPU second received (total operations / CPU time):\n\n");
    else
        printf("\nTotal Mops/s over the %u ms cell (CPU seconds the process got meanwhile, all threads):\n\n",
               c->ms);
    printf("| keys | reads | threads |");
    for (int i = 0; i < nimpl_names; i++)
        printf(" %s |", impl_names[i]);
    printf("\n|---|---|---|");
    for (int i = 0; i < nimpl_names; i++)
        printf("---|");
    printf("\n");
    char nb[32];
    for (int s = 0; s < c->nsizes; s++)
        for (int r = 0; r < c->nreads; r++)
            for (int t = 0; t < c->nthreads; t++) {
                printf("| %s | %u%% | %u |", size_label(c->sizes[s], nb, sizeof nb), c->reads[r],
                       c->threads[t]);
                for (int i = 0; i < nimpl_names; i++) {
                    const result *x = find_result(impl_names[i], c->sizes[s], c->reads[r], c->threads[t]);
                    if (!x)
                        printf(" — |");
                    else if (per_cpu)
                        printf(" %.2f |", per_cpu_rate(x));
                    else
                        printf(" %.2f (%.2f) |", x->mops, x->cpu);
                }
                printf("\n");
            }
}

static void print_table(const cc_config *c) {
    print_one_table(c, false);
    print_one_table(c, true);
}

/* ---------------------------------------------------------------- memory after deletes */

typedef struct deleter {
    hmap_sync *m;
    uint64_t from, to, step;
} deleter;

static void *delete_range(void *p) {
    deleter *d = p;
    for (uint64_t i = d->from; i < d->to; i += d->step)
        if (i % 100 != 0) {
            uint64_t k = cc_splitmix64(i);
            hmap_sync_delete(d->m, &k);
        }
    return NULL;
}

static void memory_check(FILE *out) {
    const uint64_t n = 1 << 20;
    hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_sync *m = hmap_sync_new(&t, 0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = cc_splitmix64(i);
        hmap_sync_store(m, &k, &i);
    }
    hmap_stats full, after, fresh_st;
    hmap_sync_get_stats(m, &full);
    deleter d[2] = {{m, 0, n, 2}, {m, 1, n, 2}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, delete_range, &d[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    hmap_sync_get_stats(m, &after);
    size_t waiting = hmap_sync_reclaim(m);
    hmap_stats reclaimed;
    hmap_sync_get_stats(m, &reclaimed);
    hmap_sync_compact(m);
    hmap_stats compacted;
    hmap_sync_get_stats(m, &compacted);
    hmap_sync *fresh = hmap_sync_new(&t, 0);
    for (uint64_t i = 0; i < n; i += 100) {
        uint64_t k = cc_splitmix64(i);
        hmap_sync_store(fresh, &k, &i);
    }
    hmap_sync_get_stats(fresh, &fresh_st);
    hmap_sync_free(fresh);
    hmap_release_os_memory();
    size_t rss = (size_t)tc_rss_bytes();
    fprintf(out,
            "\nMemory, hmap_sync, 1Mi u64 keys, 99%% deleted by 2 threads: full %zu bytes; right after the "
            "deletes %zu bytes (%zu entries); after hmap_sync_reclaim %zu bytes (%zu deferred left); a fresh "
            "hmap_sync of the %zu survivors %zu bytes: ratio %.2fx right after, %.2fx after reclaim, %.2fx "
            "after hmap_sync_compact (%zu bytes). RSS after hmap_release_os_memory: %.1f MiB\n",
            full.bytes, after.bytes, after.count, reclaimed.bytes, waiting, fresh_st.count, fresh_st.bytes,
            (double)after.bytes / (double)fresh_st.bytes, (double)reclaimed.bytes / (double)fresh_st.bytes,
            (double)compacted.bytes / (double)fresh_st.bytes, compacted.bytes, (double)rss / 1048576.0);
    hmap_sync_free(m);
}

/* ---------------------------------------------------------------- driver */

static const cc_adapter *const C_IMPLS[] = {
    &cc_hmap_sync,
#ifdef BENCH_WITH_ABSL
    &cc_mutex_absl, &cc_rwlock_absl,
#endif
#ifdef BENCH_WITH_TBB
    &cc_tbb,
#endif
#ifdef BENCH_WITH_URCU
    &cc_cds_lfht,
#endif
};
#define NUM_C_IMPLS (sizeof C_IMPLS / sizeof C_IMPLS[0])

/* One (map, n, reads) group: every thread count, in a child process. */
typedef struct group {
    const cc_config *c;
    const cc_adapter *a;
    uint64_t n;
    unsigned reads;
} group;

static void run_group_child(void *arg, FILE *out) {
    const group *g = arg;
    void *m = g->a->create(g->n);
    for (int t = 0; t < g->c->nthreads; t++)
        run_cell(out, g->a, m, g->n, g->reads, g->c->threads[t], g->c->ms);
    g->a->destroy(m);
}

static void list_threads(const cc_config *c, char *buf, size_t size) {
    buf[0] = '\0';
    for (int t = 0; t < c->nthreads; t++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%u", t ? "," : "", c->threads[t]);
}

/* Runs a group in a fresh process (a fork for the C maps, the Go program for sync.Map). */
static bool run_group(const cc_config *c, const cc_adapter *a, uint64_t n, unsigned reads) {
    char why[256];
    bool ok;
    if (a) {
        group g = {c, a, n, reads};
        ok = tc_fork_lines(run_group_child, &g, parse_result_line, NULL, why, sizeof why);
    } else {
        char ns[32], rs[16], ms[16], ts[128];
        snprintf(ns, sizeof ns, "%llu", (unsigned long long)n);
        snprintf(rs, sizeof rs, "%u", reads);
        snprintf(ms, sizeof ms, "%u", c->ms);
        list_threads(c, ts, sizeof ts);
        char *argv[] = {(char *)c->gosync, "-n", ns, "-reads", rs, "-threads", ts, "-ms", ms, NULL};
        ok = tc_spawn_lines(argv, NULL, false, parse_result_line, NULL, why, sizeof why);
    }
    if (!ok)
        fprintf(stderr, "  %s\n", why);
    return ok;
}

int concurrent_main(int argc, char **argv) {
    cc_config c;
    configure(&c, argc, argv);
    bool have_go = access(c.gosync, X_OK) == 0 && listed(c.impls, "sync.Map");
    char threads[128];
    list_threads(&c, threads, sizeof threads);
    printf("# hmap-bench --concurrent\n\n- %ld online CPUs; %u ms per cell; threads %s; maps:",
           sysconf(_SC_NPROCESSORS_ONLN), c.ms, threads);
    for (size_t i = 0; i < NUM_C_IMPLS; i++)
        if (listed(c.impls, C_IMPLS[i]->name))
            printf(" %s", C_IMPLS[i]->name);
    printf("%s\n", have_go ? " sync.Map (Go)" : " (Go's sync.Map: hmap-bench-gosync not built)");
    if (c.reps > 1)
        printf(
            "- every cell run %u times (each time in a fresh process, maps in turn); shown: the run with the "
            "median rate per CPU second\n",
            c.reps);
    printf("- uint64 -> uint64; n keys pre-filled, operations on 2n key indexes (the map stays near n, half "
           "the lookups hit); the rest of the reads split between store and delete\n");
    int failures = 0, group = 0;
    for (unsigned rep = 0; rep < c.reps; rep++)
        for (int s = 0; s < c.nsizes; s++)
            for (int r = 0; r < c.nreads; r++, group++) {
                int count = (int)NUM_C_IMPLS + (have_go ? 1 : 0);
                for (int j = 0; j < count; j++) {
                    int i = (j + group) % count; /* rotate the order from group to group */
                    const cc_adapter *a = i < (int)NUM_C_IMPLS ? C_IMPLS[i] : NULL;
                    if (a && !listed(c.impls, a->name))
                        continue;
                    if (!run_group(&c, a, c.sizes[s], c.reads[r])) {
                        fprintf(stderr, "hmap-bench: %s failed\n", a ? a->name : "sync.Map");
                        failures++;
                    }
                }
            }
    print_table(&c);
    if (listed(c.impls, "hmap_sync") && atoi(option(argc, argv, "--memory", "BENCH_CC_MEMORY", "1"))) {
        fflush(stdout);
        memory_check(stdout);
    }
    return failures ? 1 : 0;
}
