/* SPDX-License-Identifier: MIT */
/*
 * loops.h — the measured loops of an adapter, written once for every implementation.
 *
 * An adapter file defines, for its prefix P, six small inline operations on one key:
 *
 *     P##_put_u64(void *m, uint64_t key, uint64_t val)      P##_put_str(void *m, const char *key, uint32_t
 * len, uint64_t val) P##_get_u64(void *m, uint64_t key, uint64_t *val)     P##_get_str(void *m, const char
 * *key, uint32_t len, uint64_t *val) P##_del_u64(void *m, uint64_t key)                    P##_del_str(void
 * *m, const char *key, uint32_t len)
 *
 * (get and del return bool: found), then invokes DEFINE_LOOPS(P). The loops below are then compiled
 * with the operations inlined into them, exactly as a user's loop would be: no indirect call per
 * operation is measured, and every implementation runs the very same loop code. The file is valid C and
 * C++ (the abseil adapter is C++).
 */
#ifndef HMAP_BENCH_LOOPS_H
#define HMAP_BENCH_LOOPS_H

#include "bench.h"

/* Runs BODY_U64 or BODY_STR for each i in [from, to) with `i` bound, the kind test outside the loop. */
#define FOR_KEYS(ks, from, to, BODY_U64, BODY_STR)                                                           \
    do {                                                                                                     \
        if ((ks)->kind == KEYS_U64) {                                                                        \
            for (size_t i = (from); i < (to); i++) {                                                         \
                BODY_U64;                                                                                    \
            }                                                                                                \
        } else {                                                                                             \
            for (size_t i = (from); i < (to); i++) {                                                         \
                BODY_STR;                                                                                    \
            }                                                                                                \
        }                                                                                                    \
    } while (0)

#define DEFINE_LOOPS(P)                                                                                      \
    static void P##_insert(void *m, const keyset *ks, size_t from, size_t to) {                              \
        FOR_KEYS(ks, from, to, P##_put_u64(m, ks->u64[i], i + 1),                                            \
                 P##_put_str(m, ks->str[i], ks->len[i], i + 1));                                             \
    }                                                                                                        \
    static void P##_insert_timed(void *m, const keyset *ks, size_t from, size_t to, uint32_t *lat,           \
                                 size_t every, void (*sample)(void *, size_t), void *ctx) {                  \
        FOR_KEYS(                                                                                            \
            ks, from, to,                                                                                    \
            {                                                                                                \
                uint64_t t0 = ticks();                                                                       \
                P##_put_u64(m, ks->u64[i], i + 1);                                                           \
                uint64_t d = ticks() - t0;                                                                   \
                lat[i - from] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;                                   \
                if (sample && (i - from) % every == 0)                                                       \
                    sample(ctx, i);                                                                          \
            },                                                                                               \
            {                                                                                                \
                uint64_t t0 = ticks();                                                                       \
                P##_put_str(m, ks->str[i], ks->len[i], i + 1);                                               \
                uint64_t d = ticks() - t0;                                                                   \
                lat[i - from] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;                                   \
                if (sample && (i - from) % every == 0)                                                       \
                    sample(ctx, i);                                                                          \
            });                                                                                              \
    }                                                                                                        \
    static uint64_t P##_lookup(void *m, const keyset *ks, size_t from, size_t stride, size_t count,          \
                               size_t *found) {                                                              \
        uint64_t sum = 0, v = 0;                                                                             \
        size_t hits = 0;                                                                                     \
        FOR_KEYS(                                                                                            \
            ks, 0, count,                                                                                    \
            {                                                                                                \
                size_t k = from + i * stride;                                                                \
                if (P##_get_u64(m, ks->u64[k], &v)) {                                                        \
                    sum += v;                                                                                \
                    hits++;                                                                                  \
                }                                                                                            \
            },                                                                                               \
            {                                                                                                \
                size_t k = from + i * stride;                                                                \
                if (P##_get_str(m, ks->str[k], ks->len[k], &v)) {                                            \
                    sum += v;                                                                                \
                    hits++;                                                                                  \
                }                                                                                            \
            });                                                                                              \
        *found = hits;                                                                                       \
        return sum;                                                                                          \
    }                                                                                                        \
    static size_t P##_erase(void *m, const keyset *ks, size_t from, size_t to, size_t every,                 \
                            void (*sample)(void *, size_t), void *ctx) {                                     \
        size_t n = 0;                                                                                        \
        FOR_KEYS(                                                                                            \
            ks, from, to,                                                                                    \
            {                                                                                                \
                n += P##_del_u64(m, ks->u64[i]);                                                             \
                if (sample && (i - from) % every == 0)                                                       \
                    sample(ctx, i);                                                                          \
            },                                                                                               \
            {                                                                                                \
                n += P##_del_str(m, ks->str[i], ks->len[i]);                                                 \
                if (sample && (i - from) % every == 0)                                                       \
                    sample(ctx, i);                                                                          \
            });                                                                                              \
        return n;                                                                                            \
    }                                                                                                        \
    static void P##_churn(void *m, const keyset *ks, size_t ins_from, size_t del_from, size_t count) {       \
        FOR_KEYS(                                                                                            \
            ks, 0, count,                                                                                    \
            {                                                                                                \
                P##_put_u64(m, ks->u64[ins_from + i], ins_from + i + 1);                                     \
                P##_del_u64(m, ks->u64[del_from + i]);                                                       \
            },                                                                                               \
            {                                                                                                \
                P##_put_str(m, ks->str[ins_from + i], ks->len[ins_from + i], ins_from + i + 1);              \
                P##_del_str(m, ks->str[del_from + i], ks->len[del_from + i]);                                \
            });                                                                                              \
    }

/* The small-maps fill loop (bench.h, small_ops), for an adapter that defines P##_many_create(all, j) (makes
 * map j with no size hint, keeps it in `all`, returns it) and an inline P##_small_put(m, key, val). */
#define DEFINE_SMALL_FILL(P)                                                                                 \
    static void P##_many_fill(void *all, const keyset *ks, size_t count, size_t max) {                       \
        size_t k = 0;                                                                                        \
        for (size_t j = 0; j < count; j++) {                                                                 \
            void *m = P##_many_create(all, j);                                                               \
            for (size_t e = small_entries(j, max); e > 0; e--, k++)                                          \
                P##_small_put(m, ks->u64[k], k + 1);                                                         \
        }                                                                                                    \
    }

/* The adapter struct, positional so that C++ accepts it too. SMALL: a const small_ops *, or NULL. */
#define ADAPTER(P, NAME, CAN_RESERVE, COMPACT, SMALL)                                                        \
    {                                                                                                        \
        NAME, P##_supports, P##_create, CAN_RESERVE, P##_destroy, P##_insert, P##_insert_timed, P##_lookup,  \
            P##_erase, P##_iterate, P##_churn, P##_bytes, COMPACT, P##_len, SMALL                            \
    }

#endif /* HMAP_BENCH_LOOPS_H */
