/* SPDX-License-Identifier: MIT */
/*
 * concurrent.h — what concurrent.c (the driver, hmap_sync and liburcu's cds_lfht) and
 * concurrent_peers.cc (abseil behind a mutex or an rwlock, TBB's concurrent_hash_map) share.
 *
 * A cell is (map, pre-filled keys n, read percentage, threads). Keys are splitmix64(i) for key indexes
 * i in [0, 2n); the map starts with the n keys of even index. Each operation draws a key index uniformly
 * from [0, 2n) and is a lookup with probability read_pct, else a store (value i + 1) or a delete with
 * equal odds; so the map stays around n keys and half the lookups hit, on every mix alike. Each thread
 * runs the same loop (CC_LOOP, stamped out once per map so that no function pointer sits between an
 * operation and the loop) until the driver raises *stop.
 */
#ifndef HMAP_BENCH_CONCURRENT_H
#define HMAP_BENCH_CONCURRENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_work {
    uint64_t n;        /* pre-filled keys; operations use key indexes [0, 2n) */
    unsigned read_pct; /* 0..100 */
    const int *stop;   /* becomes non-zero when the cell's time is up */
    uint64_t seed;     /* per thread */
} cc_work;

typedef struct cc_adapter {
    const char *name;
    void *(*create)(uint64_t n); /* pre-filled with the keys of even index */
    void (*destroy)(void *m);
    void (*thread_begin)(void *m); /* NULL, or what each thread must do first (liburcu's registration) */
    void (*thread_end)(void *m);
    uint64_t (*work)(void *m, const cc_work *w); /* operations until *stop; returns how many */
} cc_adapter;

int concurrent_main(int argc, char **argv);

extern const cc_adapter cc_mutex_absl, cc_rwlock_absl, cc_tbb;

static inline uint64_t cc_splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline uint64_t cc_next(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

extern volatile uint64_t cc_sink; /* lookup results, so that nothing is elided */

/* The body of every work(): LOAD, STORE and ERASE are statements using `key` and `idx`; LOAD adds what
 * it found to `cc_sum`. The stop flag is read every 256 operations. */
#define CC_LOOP(w, LOAD, STORE, ERASE)                                                                       \
    uint64_t cc_s = (w)->seed | 1, cc_ops = 0, cc_sum = 0, cc_space = 2 * (w)->n;                            \
    unsigned cc_read = (w)->read_pct;                                                                        \
    while (!__atomic_load_n((w)->stop, __ATOMIC_RELAXED)) {                                                  \
        for (int cc_i = 0; cc_i < 256; cc_i++) {                                                             \
            uint64_t cc_r = cc_next(&cc_s);                                                                  \
            uint64_t idx = ((cc_r >> 32) * cc_space) >> 32, key = cc_splitmix64(idx);                        \
            if ((unsigned)(cc_r & 0xffff) % 100 < cc_read) {                                                 \
                LOAD                                                                                         \
            } else if ((cc_r >> 16) & 1) {                                                                   \
                STORE                                                                                        \
            } else {                                                                                         \
                ERASE                                                                                        \
            }                                                                                                \
        }                                                                                                    \
        cc_ops += 256;                                                                                       \
    }                                                                                                        \
    cc_sink += cc_sum;                                                                                       \
    return cc_ops;

#ifdef __cplusplus
}
#endif
#endif /* HMAP_BENCH_CONCURRENT_H */
