/* SPDX-License-Identifier: MIT */
/*
 * test_fork.c — fork() while maps are live and other threads allocate: the child can use the library.
 *
 * After fork() only the forking thread exists in the child; any lock another thread held at that moment
 * stays locked there forever unless the library resets it (pthread_atfork). Locks the library takes on
 * allocation: the memory thread's queue lock, and the heap profiler's locks (taken for every sampled
 * allocation and free, so at profile rate 1 for every one of them). So: two threads churn maps (growing
 * past the size at which arrays are mapped from the OS, so the memory thread works too, then freeing
 * them) with every allocation sampled, while the main thread forks CHILDREN children one after another.
 * Each child builds a map big enough to need the memory thread, reads it back, frees it, writes a heap
 * profile, and exits 0. A child that hangs is killed by its own alarm after CHILD_SECONDS and counts as a
 * failure (the alarm is the test's deadline, not a measurement: a healthy child takes milliseconds);
 * after ENOUGH_HUNG of them the test stops forking.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hmap.h"
#include "model.h"

#define CHILDREN 200 /* HMAP_FORK_CHILDREN overrides (the TSan build, where a child takes ~1 s) */
#define CHILD_SECONDS                                                                                        \
    5                 /* HMAP_FORK_CHILD_SECONDS overrides (the TSan build: a slow child is not a hung one) */
#define ENOUGH_HUNG 3 /* the verdict is in: stop forking */
#define WORKERS 2

static atomic_bool stop;

/* Under a sanitizer the workers' maps allocate through mmap: the sanitizer runtimes of clang 14 do not
 * make their own allocators safe across fork (ASan has no fork handlers for it; TSan's size-class regions
 * have a lock its fork handler does not take, seen as a child asleep in
 * SizeClassAllocator64::GetFromAllocator under the child's first malloc), so a child forked while a worker
 * is inside the sanitizer's malloc would hang in the sanitizer, not in this library. The children still
 * use the built-in allocator. (The other builds use it in the workers too, so that the memory thread's
 * lock is held at fork time as well.) */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FORK_TEST_MMAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FORK_TEST_MMAP 1
#endif
#endif
#ifdef FORK_TEST_MMAP
#include <sys/mman.h>
static void *map_alloc(size_t size, void *ctx) {
    (void)ctx;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
static void map_free(void *p, size_t size, void *ctx) {
    (void)ctx;
    munmap(p, size);
}
static const hmap_allocator mmap_allocator = {map_alloc, map_free, NULL};
#define FORK_TEST_ALLOCATOR (&mmap_allocator)
#else
#define FORK_TEST_ALLOCATOR NULL
#endif

static void *churn(void *arg) {
    (void)arg;
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_options o = {.name = "churn", .allocator = FORK_TEST_ALLOCATOR};
    while (!atomic_load(&stop)) {
        hmap *m = hmap_new_opts(&t, 0, &o);
        if (!m)
            return "hmap_new_opts failed";
        for (uint64_t i = 0; i < 40000; i++)
            if (hmap_put(m, &i, &i) < 0)
                return "hmap_put failed";
        for (uint64_t i = 0; i < 40000; i += 2)
            hmap_del(m, &i);
        hmap_free(m);
    }
    return NULL;
}

/* What a child does: everything that takes a library lock. Returns the exit status. */
static unsigned child_seconds = CHILD_SECONDS;

static int child_work(void) {
    alarm(child_seconds);
    static const hmap_type t = {.key_size = 8, .val_size = 8};
    hmap_options o = {.name = "child"};
    hmap *m = hmap_new_opts(&t, 0, &o);
    if (!m)
        return 2;
    for (uint64_t i = 0; i < 100000; i++)
        if (hmap_put(m, &i, &i) != 1)
            return 3;
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t *v = hmap_get(m, &i);
        if (!v || *v != i)
            return 4;
    }
    hmap_free(m);
    if (hmap_write_heap_profile("/dev/null") != 0)
        return 5;
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    return 0;
}

static void test_children_of_a_busy_process_can_use_the_library(void **state) {
    (void)state;
    hmap_set_profile_rate(1); /* every allocation takes the profiler's locks */
    pthread_t workers[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&workers[i], NULL, churn, NULL), 0);
    int hung = 0, failed = 0;
    int forked = 0, children = (int)env_u64("HMAP_FORK_CHILDREN", CHILDREN);
    child_seconds = (unsigned)env_u64("HMAP_FORK_CHILD_SECONDS", CHILD_SECONDS);
    for (; forked < children && hung < ENOUGH_HUNG; forked++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(child_work()); /* _exit: the parent's threads and their maps are not the child's */
        int status;
        while (waitpid(pid, &status, 0) < 0)
            assert_int_equal(errno, EINTR);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            hung++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < WORKERS; i++) {
        void *err;
        assert_int_equal(pthread_join(workers[i], &err), 0);
        if (err)
            fail_msg("worker: %s", (const char *)err);
    }
    hmap_set_profile_rate(512 << 10);
    print_message(
        "  %d children forked from a process with %d allocating threads: %d hung (killed after %d s), "
        "%d failed\n",
        forked, WORKERS, hung, child_seconds, failed);
    assert_int_equal(hung, 0);
    assert_int_equal(failed, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_of_a_busy_process_can_use_the_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
