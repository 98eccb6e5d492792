/*
 * hash.c — the public face of the built-in hash, the string-key helpers, and per-map seeds.
 *
 * Seeds come from getrandom(): each map gets its own, and draws a new one whenever it becomes empty, so
 * that iteration order and collision patterns cannot be learned from one map and replayed on another.
 */
#include "hash.h"
#include "internal.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t hmap_hash_bytes(const void *data, size_t n, uint64_t seed) {
    return hash_bytes_inline(data, n, seed);
}

uint64_t hmap_hash_cstr(const void *key, uint64_t seed) {
    const char *s = *(const char *const *)key;
    return hash_bytes_inline(s, strlen(s), seed);
}

bool hmap_equal_cstr(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return x == y || strcmp(x, y) == 0;
}

uint64_t hash_mix(uint64_t h) { return hash_mix_inline(h); }

uint64_t random_seed(void) {
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    /* No entropy yet (very early boot): mix the clock and an address, which is still per-process. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    static _Atomic uint64_t counter;
    uint64_t c = atomic_fetch_add(&counter, 1);
    return hash_mix_inline((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&seed ^
                           c);
}

/* splitmix64 on a per-thread state: cheap randomness for iteration starts. */
uint64_t fast_random(void) {
    static _Thread_local uint64_t state;
    if (state == 0)
        state = random_seed() | 1;
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
