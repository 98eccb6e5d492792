/*
 * impl_absl.cc — abseil's absl::flat_hash_map (SwissTable), the fastest widely used open-addressing map,
 * behind the same C adapter interface as the others. This is the only C++ in the project: abseil is a
 * C++ library.
 *
 * uint64 keys: flat_hash_map<uint64_t, uint64_t> with absl::Hash. String keys:
 * flat_hash_map<std::string_view, uint64_t> on the arena bytes, so that, as for every other map here,
 * the key bytes are shared and not copied (std::string would allocate each 16-40 byte key: that measures
 * malloc, not the map).
 *
 * Bytes held: the map allocates through a counting allocator; the count is what it asked for (one
 * backing array per map). compact() is rehash(0), abseil's shrink-to-fit.
 */
#include "loops.h"

#include <absl/container/flat_hash_map.h>

#include <cstdlib>
#include <new>
#include <string_view>

namespace {

size_t g_bytes_held; // live bytes of every abseil map in this process

template <class T>
struct counting_allocator {
    using value_type = T;
    counting_allocator() = default;
    template <class U>
    counting_allocator(const counting_allocator<U> &) {}
    T *allocate(size_t n) {
        g_bytes_held += n * sizeof(T);
        return static_cast<T *>(::operator new(n * sizeof(T)));
    }
    void deallocate(T *p, size_t n) {
        g_bytes_held -= n * sizeof(T);
        ::operator delete(p);
    }
    template <class U>
    bool operator==(const counting_allocator<U> &) const { return true; }
    template <class U>
    bool operator!=(const counting_allocator<U> &) const { return false; }
};

using u64_map = absl::flat_hash_map<uint64_t, uint64_t, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                                    counting_allocator<std::pair<const uint64_t, uint64_t>>>;
using str_map = absl::flat_hash_map<std::string_view, uint64_t, absl::Hash<std::string_view>,
                                    std::equal_to<std::string_view>,
                                    counting_allocator<std::pair<const std::string_view, uint64_t>>>;

// Both maps exist (empty ones allocate nothing); the key kind decides which one is used.
struct amap {
    u64_map u;
    str_map s;
};

inline amap *A(void *m) { return static_cast<amap *>(m); }

bool ab_supports(key_kind) { return true; }

void *ab_create(key_kind kind, size_t reserve) {
    amap *m = new amap;
    if (reserve) {
        if (kind == KEYS_U64)
            m->u.reserve(reserve);
        else
            m->s.reserve(reserve);
    }
    return m;
}

void ab_destroy(void *m) { delete A(m); }

inline void ab_put_u64(void *m, uint64_t key, uint64_t val) { A(m)->u.insert_or_assign(key, val); }
inline void ab_put_str(void *m, const char *key, uint32_t len, uint64_t val) {
    A(m)->s.insert_or_assign(std::string_view(key, len), val);
}
inline bool ab_get_u64(void *m, uint64_t key, uint64_t *val) {
    auto it = A(m)->u.find(key);
    if (it == A(m)->u.end()) return false;
    *val = it->second;
    return true;
}
inline bool ab_get_str(void *m, const char *key, uint32_t len, uint64_t *val) {
    auto it = A(m)->s.find(std::string_view(key, len));
    if (it == A(m)->s.end()) return false;
    *val = it->second;
    return true;
}
inline bool ab_del_u64(void *m, uint64_t key) { return A(m)->u.erase(key) != 0; }
inline bool ab_del_str(void *m, const char *key, uint32_t len) {
    return A(m)->s.erase(std::string_view(key, len)) != 0;
}

DEFINE_LOOPS(ab)

uint64_t ab_iterate(void *m, size_t *count) {
    uint64_t sum = 0;
    size_t c = 0;
    for (const auto &kv : A(m)->u) {
        sum += kv.second;
        c++;
    }
    for (const auto &kv : A(m)->s) {
        sum += kv.second;
        c++;
    }
    *count = c;
    return sum;
}

size_t ab_bytes(void *) { return g_bytes_held; }

int ab_compact(void *m) {
    A(m)->u.rehash(0);
    A(m)->s.rehash(0);
    return 0;
}

size_t ab_len(void *m) { return A(m)->u.size() + A(m)->s.size(); }

} // namespace

extern "C" const adapter adapter_absl = ADAPTER(ab, "abseil", true, ab_compact);
