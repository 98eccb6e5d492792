/* SPDX-License-Identifier: MIT */
/*
 * concurrent_peers.cc — the C++ peers of hmap_sync in the concurrent bench (cells in concurrent.h):
 *
 *   mutex+abseil   one std::mutex around absl::flat_hash_map<uint64_t, uint64_t> (what a C++ programmer
 *                  writes first; the mutex is glibc's, as hmap_sync's shard locks)
 *   rwlock+abseil  the same behind a pthread rwlock: lookups share it, writes take it alone
 *   tbb            oneTBB's concurrent_hash_map<uint64_t, uint64_t> (per-bucket locks; accessors)
 *
 * Built when CMake finds abseil (the first two) and TBB (the third); missing ones are left out.
 */
#include "concurrent.h"

#include <pthread.h>

#include <cstdint>
#include <mutex>

#ifdef BENCH_WITH_ABSL
#include <absl/container/flat_hash_map.h>

namespace {

struct locked_absl {
    std::mutex mu;
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    absl::flat_hash_map<uint64_t, uint64_t> map;
};

void *absl_create(uint64_t n) {
    auto *m = new locked_absl;
    m->map.reserve(n);
    for (uint64_t i = 0; i < n; i++)
        m->map[cc_splitmix64(2 * i)] = 2 * i + 1;
    return m;
}

void absl_destroy(void *p) { delete static_cast<locked_absl *>(p); }

uint64_t mutex_work(void *p, const cc_work *w) {
    auto *m = static_cast<locked_absl *>(p);
    CC_LOOP(
        w,
        {
            std::lock_guard<std::mutex> g(m->mu);
            auto it = m->map.find(key);
            if (it != m->map.end())
                cc_sum += it->second;
        },
        {
            std::lock_guard<std::mutex> g(m->mu);
            m->map[key] = idx + 1;
        },
        {
            std::lock_guard<std::mutex> g(m->mu);
            m->map.erase(key);
        })
}

uint64_t rwlock_work(void *p, const cc_work *w) {
    auto *m = static_cast<locked_absl *>(p);
    CC_LOOP(
        w,
        {
            pthread_rwlock_rdlock(&m->rw);
            auto it = m->map.find(key);
            if (it != m->map.end())
                cc_sum += it->second;
            pthread_rwlock_unlock(&m->rw);
        },
        {
            pthread_rwlock_wrlock(&m->rw);
            m->map[key] = idx + 1;
            pthread_rwlock_unlock(&m->rw);
        },
        {
            pthread_rwlock_wrlock(&m->rw);
            m->map.erase(key);
            pthread_rwlock_unlock(&m->rw);
        })
}

} // namespace

extern "C" const cc_adapter cc_mutex_absl = {"mutex+abseil", absl_create, absl_destroy,
                                             nullptr,        nullptr,     mutex_work};
extern "C" const cc_adapter cc_rwlock_absl = {"rwlock+abseil", absl_create, absl_destroy,
                                              nullptr,         nullptr,     rwlock_work};
#endif

#ifdef BENCH_WITH_TBB
#include <oneapi/tbb/concurrent_hash_map.h>

namespace {

using tbb_map = oneapi::tbb::concurrent_hash_map<uint64_t, uint64_t>;

void *tbb_create(uint64_t n) {
    auto *m = new tbb_map(n);
    for (uint64_t i = 0; i < n; i++)
        m->insert({cc_splitmix64(2 * i), 2 * i + 1});
    return m;
}

void tbb_destroy(void *p) { delete static_cast<tbb_map *>(p); }

uint64_t tbb_work(void *p, const cc_work *w) {
    auto *m = static_cast<tbb_map *>(p);
    CC_LOOP(
        w,
        {
            tbb_map::const_accessor a;
            if (m->find(a, key))
                cc_sum += a->second;
        },
        {
            tbb_map::accessor a;
            m->insert(a, key);
            a->second = idx + 1;
        },
        { m->erase(key); })
}

} // namespace

extern "C" const cc_adapter cc_tbb = {"tbb", tbb_create, tbb_destroy, nullptr, nullptr, tbb_work};
#endif
