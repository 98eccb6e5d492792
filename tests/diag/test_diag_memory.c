/* SPDX-License-Identifier: MIT */
/*
 * test_diag_memory.c — the profiler's own memory, its names, and fork.
 *
 *   test_hook_map_leaves_c_heap_alone  a map built with an allocator hook that never mallocs, profiled at
 *                                      rate 1: the C heap's in-use bytes do not move (the profiler's records
 *                                      come from its own mapped pages)
 *   test_named_maps_leave_no_growth    20,000 maps with distinct names created and freed at rate 1: after
 *                                      the first 1,000, the records, the interned names and the profiler's
 *                                      own bytes stay exactly where they were (every lookup is by hash, so
 *                                      flat tables mean flat time per map as well)
 *   test_fork_while_threads_allocate   threads allocate through maps at rate 1 (new names, new records)
 *                                      while the main thread forks 100 children; each child must build a map
 *                                      and write a profile within 30 s (alarm), i.e. find no lock of the
 *                                      profiler held by a thread that did not come along
 * Each runs in a forked child, so that it sees only its own records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "diag/diag.h" /* own_bytes, profile_record_count, profile_name_count */
#include "hmap.h"
#include "pprof_util.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn in a child process; asserts it exited with 0. */
static void in_child(int (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = fn();
        fflush(NULL);
        _exit(rc);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("child killed by signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void put_n(hmap *m, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = (i + 1) * 0x9E3779B97F4A7C15u;
        if (hmap_put(m, &k, &i) != 1)
            abort();
    }
}

/* ---- the C heap ---------------------------------------------------------------------------------------- */

/* The C heap's bytes in use: the sanitizer's count under ASan (which replaces malloc), else glibc's. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t c_heap_in_use(void) {
    if (__sanitizer_get_current_allocated_bytes != NULL)
        return __sanitizer_get_current_allocated_bytes();
    return mallinfo2().uordblks;
}

/* A bump allocator over a static arena: never touches the C heap. */
static unsigned char arena[96 << 20] __attribute__((aligned(64)));
static size_t arena_used;

static void *arena_alloc(size_t size, void *ctx) {
    (void)ctx;
    size = (size + 63) & ~(size_t)63;
    if (arena_used + size > sizeof arena)
        return NULL;
    void *p = arena + arena_used;
    arena_used += size;
    return p;
}

static void arena_free(void *p, size_t size, void *ctx) { (void)p, (void)size, (void)ctx; }

static int child_hook_map(void) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    static const hmap_allocator hook = {arena_alloc, arena_free, NULL};
    hmap_set_profile_rate(1);
    hmap *warm = hmap_new(&type, 0); /* the first stack capture loads the unwinder (which mallocs) */
    put_n(warm, 10);
    hmap_free(warm);

    size_t before = c_heap_in_use();
    hmap_options opts = {.allocator = &hook, .name = "hooked"};
    for (int round = 0; round < 3; round++) {
        hmap *m = hmap_new_opts(&type, 0, &opts);
        if (m == NULL)
            return 1;
        put_n(m, 100000);
        hmap_free(m);
    }
    size_t after = c_heap_in_use();
    printf("C heap in use: %zu bytes before, %zu after three hooked maps of 100k entries at rate 1; the "
           "profiler's own pages: %zu bytes\n",
           before, after, own_bytes());
    return after == before ? 0 : 2;
}

static void test_hook_map_leaves_c_heap_alone(void **state) {
    (void)state;
    in_child(child_hook_map);
}

/* ---- names --------------------------------------------------------------------------------------------- */

enum { NAMED_MAPS = 20000, NAMED_WARMUP = 1000 };
static size_t warm_records, warm_names, warm_bytes; /* measured after NAMED_WARMUP maps */

/* One map named session-<i>, with 200 entries, created and freed. Not inlined, and called from one loop
 * without branches, so that every round has the same stacks. */
__attribute__((noinline)) void named_map_round(int i) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    if (i == NAMED_WARMUP)
        warm_records = profile_record_count(), warm_names = profile_name_count(), warm_bytes = own_bytes();
    char name[32];
    snprintf(name, sizeof name, "session-%05d", i); /* one length: one size of name block */
    hmap_options opts = {.name = name, .fixed_seed = true, .seed = 7}; /* the same growth every time */
    hmap *m = hmap_new_opts(&type, 0, &opts);
    if (m == NULL)
        abort();
    put_n(m, 200);
    hmap_free(m);
}

static int child_named_maps(void) {
    hmap_set_profile_rate(1);
    for (int i = 0; i < NAMED_MAPS; i++)
        named_map_round(i);
    size_t records = profile_record_count(), names = profile_name_count(), bytes = own_bytes();
    printf("after %d / %d named maps: records %zu / %zu, names %zu / %zu, profiler's own bytes %zu / %zu\n",
           NAMED_WARMUP, NAMED_MAPS, warm_records, records, warm_names, names, warm_bytes, bytes);
    return records == warm_records && names == warm_names && names == 0 && bytes == warm_bytes && records > 0
               ? 0
               : 1;
}

static void test_named_maps_leave_no_growth(void **state) {
    (void)state;
    in_child(child_named_maps);
}

/* The alloc figures of the names' records are kept, unlabelled, once the maps are gone. */
static char named_facts[512], named_profile[512];

static int child_named_profile(void) {
    hmap_set_profile_rate(1);
    hmap_memstats before, after;
    hmap_read_memstats(&before);
    for (int i = 0; i < 50; i++)
        named_map_round(i);
    hmap_read_memstats(&after);
    FILE *f = fopen(named_facts, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "%llu\n", (unsigned long long)(after.total_bytes - before.total_bytes));
    fclose(f);
    return hmap_write_heap_profile(named_profile) == 0 ? 0 : 2;
}

static void test_retired_names_keep_alloc_figures(void **state) {
    (void)state;
    if (!go_available()) {
        print_message("SKIPPED: `go` not found on PATH (install golang-go, e.g. scripts/deps)\n");
        skip();
    }
    snprintf(named_facts, sizeof named_facts, "%s/named.facts", scratch_dir());
    snprintf(named_profile, sizeof named_profile, "%s/named.pb.gz", scratch_dir());
    in_child(child_named_profile);
    unsigned long long allocated;
    FILE *f = fopen(named_facts, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu", &allocated), 1);
    fclose(f);
    char *top = pprof_top("/proc/self/exe", named_profile, "alloc_space");
    assert_non_null(top);
    assert_int_equal(top_cum(top, "named_map_round"), (int64_t)allocated);
    free(top);
    char *tags = pprof_run("-tags", "/proc/self/exe", named_profile);
    assert_non_null(tags);
    assert_null(strstr(tags, "session-")); /* every such map is gone: so are their labels */
    free(tags);
}

/* ---- fork ---------------------------------------------------------------------------------------------- */

enum { FORKS = 100, ALLOCATING_THREADS = 3 };
static atomic_bool stop_threads;

/* The threads' maps take their memory straight from mmap, so that no thread holds the C heap's lock when
 * the main thread forks: what is tested is the profiler's locks (a sanitizer's allocator, unlike glibc's
 * malloc, does not prepare itself for fork). */
static void *page_alloc(size_t size, void *ctx) {
    (void)ctx;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void page_free(void *p, size_t size, void *ctx) {
    (void)ctx;
    munmap(p, size);
}

static void *allocate_until_stopped(void *arg) {
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    static const hmap_allocator pages = {page_alloc, page_free, NULL};
    char name[32];
    unsigned round = 0;
    while (!atomic_load(&stop_threads)) {
        snprintf(name, sizeof name, "t%d-%u", (int)(intptr_t)arg, round++); /* new names: the name lock */
        hmap_options opts = {.name = name, .allocator = &pages};
        hmap *m = hmap_new_opts(&type, 0, &opts);
        if (m == NULL)
            abort();
        put_n(m, 3000);
        hmap_free(m);
    }
    return NULL;
}

static int forked_child(int i) {
    alarm(30); /* a deadlock ends as SIGALRM */
    static const hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap_options opts = {.name = "in-child"};
    hmap *m = hmap_new_opts(&type, 0, &opts);
    if (m == NULL)
        return 1;
    put_n(m, 2000);
    char path[512];
    snprintf(path, sizeof path, "%s/child-%d.pb.gz", scratch_dir(), i);
    int err = hmap_write_heap_profile(path);
    hmap_free(m);
    return err == 0 ? 0 : 2;
}

static int child_fork_storm(void) {
    hmap_set_profile_rate(1);
    pthread_t t[ALLOCATING_THREADS];
    for (int i = 0; i < ALLOCATING_THREADS; i++)
        if (pthread_create(&t[i], NULL, allocate_until_stopped, (void *)(intptr_t)i) != 0)
            return 1;
    int bad = 0;
    for (int i = 0; i < FORKS && bad == 0; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0)
            _exit(forked_child(i));
        int status;
        if (waitpid(pid, &status, 0) != pid)
            return 3;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("fork %d: child %s %d\n", i, WIFEXITED(status) ? "exited with" : "killed by signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            bad = 4;
        }
    }
    atomic_store(&stop_threads, true);
    for (int i = 0; i < ALLOCATING_THREADS; i++)
        pthread_join(t[i], NULL);
    if (bad == 0)
        printf("%d children forked while %d threads allocated: each built a map and wrote a profile\n", FORKS,
               ALLOCATING_THREADS);
    return bad;
}

static void test_fork_while_threads_allocate(void **state) {
    (void)state;
    in_child(child_fork_storm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_map_leaves_c_heap_alone),
        cmocka_unit_test(test_named_maps_leave_no_growth),
        cmocka_unit_test(test_retired_names_keep_alloc_figures),
        cmocka_unit_test(test_fork_while_threads_allocate),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return failed;
}
