/* SPDX-License-Identifier: MIT */
/*
 * impl_flat.h — one C++ adapter for the flat hash maps of C++ libraries (abseil's flat_hash_map, boost's
 * unordered_flat_map), written once: each impl_*.cc includes it after naming its two map types.
 *
 * uint64 keys: map<uint64_t, uint64_t> with the library's own hash. String keys: map<std::string_view,
 * uint64_t> on the arena bytes, so that, as for every other map here, the key bytes are shared and not
 * copied (std::string would allocate each 16-40 byte key: that measures malloc, not the map).
 *
 * Bytes held: the map allocates through a counting allocator; the count is what it asked for. compact()
 * is rehash(0), the libraries' shrink-to-fit.
 *
 * Small maps: an array of u64 map objects constructed in place, as a program holding many small maps keeps
 * them (in a vector, or as members); their bytes are sizeof(map) each plus what they asked their allocator
 * for.
 *
 * Before including, a file declares the alias templates flat_u64_map<Alloc> and flat_str_map<Alloc> (its
 * two map types over a given allocator), then calls FLAT_DEFINE_ADAPTER(symbol, "name") after it.
 */
#ifndef HMAP_BENCH_IMPL_FLAT_H
#define HMAP_BENCH_IMPL_FLAT_H

#include "loops.h"

#include <cstdlib>
#include <new>
#include <string_view>

namespace {

size_t g_bytes_held; // live bytes of every map of this library in this process

template <class T> struct counting_allocator {
    using value_type = T;
    counting_allocator() = default;
    template <class U> counting_allocator(const counting_allocator<U> &) {}
    T *allocate(size_t n) {
        g_bytes_held += n * sizeof(T);
        return static_cast<T *>(::operator new(n * sizeof(T)));
    }
    void deallocate(T *p, size_t n) {
        g_bytes_held -= n * sizeof(T);
        ::operator delete(p);
    }
    template <class U> bool operator==(const counting_allocator<U> &) const { return true; }
    template <class U> bool operator!=(const counting_allocator<U> &) const { return false; }
};

using u64_map = flat_u64_map<counting_allocator<std::pair<const uint64_t, uint64_t>>>;
using str_map = flat_str_map<counting_allocator<std::pair<const std::string_view, uint64_t>>>;

// Both maps exist (empty ones allocate nothing); the key kind decides which one is used.
struct fmap {
    u64_map u;
    str_map s;
};

inline fmap *F(void *m) { return static_cast<fmap *>(m); }

bool fl_supports(key_kind) { return true; }

void *fl_create(key_kind kind, size_t reserve) {
    fmap *m = new fmap;
    if (reserve) {
        if (kind == KEYS_U64)
            m->u.reserve(reserve);
        else
            m->s.reserve(reserve);
    }
    return m;
}

void fl_destroy(void *m) { delete F(m); }

inline void fl_put_u64(void *m, uint64_t key, uint64_t val) { F(m)->u.insert_or_assign(key, val); }
inline void fl_put_str(void *m, const char *key, uint32_t len, uint64_t val) {
    F(m)->s.insert_or_assign(std::string_view(key, len), val);
}
inline bool fl_get_u64(void *m, uint64_t key, uint64_t *val) {
    auto it = F(m)->u.find(key);
    if (it == F(m)->u.end())
        return false;
    *val = it->second;
    return true;
}
inline bool fl_get_str(void *m, const char *key, uint32_t len, uint64_t *val) {
    auto it = F(m)->s.find(std::string_view(key, len));
    if (it == F(m)->s.end())
        return false;
    *val = it->second;
    return true;
}
inline bool fl_del_u64(void *m, uint64_t key) { return F(m)->u.erase(key) != 0; }
inline bool fl_del_str(void *m, const char *key, uint32_t len) {
    return F(m)->s.erase(std::string_view(key, len)) != 0;
}

DEFINE_LOOPS(fl)

uint64_t fl_iterate(void *m, size_t *count) {
    uint64_t sum = 0;
    size_t c = 0;
    for (const auto &kv : F(m)->u) {
        sum += kv.second;
        c++;
    }
    for (const auto &kv : F(m)->s) {
        sum += kv.second;
        c++;
    }
    *count = c;
    return sum;
}

size_t fl_bytes(void *) { return g_bytes_held; }

int fl_compact(void *m) {
    F(m)->u.rehash(0);
    F(m)->s.rehash(0);
    return 0;
}

size_t fl_len(void *m) { return F(m)->u.size() + F(m)->s.size(); }

// ---- small maps ----

size_t g_small_base; // g_bytes_held when the array of small maps was made

inline u64_map *U(void *all) { return static_cast<u64_map *>(all); }

void *fl_many_new(size_t count) {
    g_small_base = g_bytes_held;
    return ::operator new(count * sizeof(u64_map)); // not touched: the maps' own bytes
}

void *fl_many_create(void *all, size_t j) { return new (U(all) + j) u64_map(); }

inline void fl_small_put(void *m, uint64_t key, uint64_t val) {
    static_cast<u64_map *>(m)->insert_or_assign(key, val);
}

DEFINE_SMALL_FILL(fl)

size_t fl_many_bytes(void *, size_t count) { return count * sizeof(u64_map) + (g_bytes_held - g_small_base); }

size_t fl_many_len(void *all, size_t count) {
    size_t n = 0;
    for (size_t j = 0; j < count; j++)
        n += U(all)[j].size();
    return n;
}

void fl_many_free(void *all, size_t count) {
    for (size_t j = 0; j < count; j++)
        U(all)[j].~u64_map();
    ::operator delete(all);
}

const small_ops fl_small = {fl_many_new, fl_many_fill, fl_many_bytes, fl_many_len, fl_many_free};

} // namespace

#define FLAT_DEFINE_ADAPTER(symbol, name)                                                                    \
    extern "C" const adapter symbol = ADAPTER(fl, name, true, fl_compact, &fl_small);

#endif /* HMAP_BENCH_IMPL_FLAT_H */
