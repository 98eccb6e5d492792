/* SPDX-License-Identifier: MIT */
/*
 * pool.c — hmap_pool: scratch maps reused instead of made and freed for every request, and let go once
 * the requests stop. Run: build/examples/pool
 *
 * Each "request" counts the distinct values in a batch with a scratch map taken from the pool and puts
 * it back; reset empties it with hmap_reset, which keeps its array, so the next request refills it without
 * regrowing (hmap_clear would give the array back). Four threads serve requests at once and make at most one
 * map each (a thread's own cache keeps the map it put back), then two cycles without requests destroy every
 * idle map, and the library's memory is back where it started.
 */
#include <hmap.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

static const hmap_type u64_set = {.key_size = sizeof(uint64_t), .val_size = 0};

static void *make_map(void *ctx) {
    (void)ctx;
    return hmap_new(&u64_set, 0);
}
static void reset_map(void *m, void *ctx) {
    (void)ctx;
    hmap_reset(m); /* drop the entries, keep the array for the next request */
}
static void destroy_map(void *m, void *ctx) {
    (void)ctx;
    hmap_free(m);
}

/* One request: how many distinct values of x * 7 % 100 for x in [seed, seed + 200). */
static size_t request(hmap_pool *pool, uint64_t seed) {
    hmap *scratch = hmap_pool_get(pool);
    if (scratch == NULL)
        return 0;
    for (uint64_t x = seed; x < seed + 200; x++) {
        uint64_t v = x * 7 % 100;
        hmap_put(scratch, &v, NULL);
    }
    size_t distinct = hmap_len(scratch);
    hmap_pool_put(pool, scratch); /* reset_map runs, the map stays for the next request */
    return distinct;
}

static void *serve(void *arg) {
    hmap_pool *pool = arg;
    size_t total = 0;
    for (uint64_t r = 0; r < 1000; r++)
        total += request(pool, r);
    return (void *)(uintptr_t)total;
}

int main(void) {
    hmap_memstats before, after;
    hmap_read_memstats(&before);
    hmap_pool_config cfg = {.make = make_map, .reset = reset_map, .destroy = destroy_map, .name = "scratch"};
    hmap_pool *pool = hmap_pool_new(&cfg);
    if (pool == NULL)
        return 1;

    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&threads[i], NULL, serve, pool) != 0)
            return 1;
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        void *t;
        pthread_join(threads[i], &t);
        total += (size_t)(uintptr_t)t;
    }

    hmap_pool_stats st;
    hmap_pool_get_stats(pool, &st);
    printf("requests: %" PRIu64 ", distinct values counted: %zu\n", st.gets, total);
    printf("maps made: %s (at most one per thread)\n", st.misses <= 4 ? "<= 4" : "more than 4");
    printf("idle maps after the threads exited: %zu\n", st.idle);

    hmap_pool_cycle(pool); /* idle maps become victims */
    hmap_pool_get_stats(pool, &st);
    printf("after one cycle: idle %zu, victims %zu\n", st.idle, st.victims);
    hmap_pool_cycle(pool); /* victims are destroyed */
    hmap_pool_get_stats(pool, &st);
    printf("after two cycles: idle %zu, victims %zu, destroyed = made: %s\n", st.idle, st.victims,
           st.destroyed == st.misses ? "yes" : "no");

    hmap_pool_free(pool);
    hmap_read_memstats(&after);
    printf("library memory back where it started: %s\n",
           after.live_bytes == before.live_bytes ? "yes" : "no");
    return 0;
}
