/* SPDX-License-Identifier: MIT */
/*
 * hmap_typed.h — typed maps: one macro line gives a map type whose functions take keys and values of
 * the right C types, so that the compiler rejects a key of the wrong type instead of the map reading
 * past it.
 *
 *     HMAP_DEFINE(u64map, uint64_t, uint64_t);  // u64map: uint64_t -> uint64_t
 *     u64map *m = u64map_new(0);
 *     u64map_put(m, 7, 49);                     // 1 inserted, 0 replaced, -ENOMEM / -EINVAL
 *     uint64_t *v = u64map_get(m, 7);           // NULL when absent
 *
 * How: each macro declares an incomplete struct type `name` that is never defined, so `name *` is a
 * pointer type distinct from `hmap *` and from every other typed map, and `static inline` functions that
 * take keys and values by value and hand their addresses to the public hmap_* calls. A `name *` is the
 * `hmap *` it was made from, converted; there is no second implementation, no wrapper object and no
 * extra allocation, and after inlining the typed call is the raw call (measured with callgrind: see
 * tests/typed_cost.c). name_hmap() gives the raw map for the calls the typed layer does not wrap
 * (hmap_get_stats, hmap_reserve, hmap_compact, hmap_clear, hmap_take).
 *
 * What each macro generates (all `static inline`; unused ones cost nothing and draw no warning):
 *
 *     HMAP_DEFINE(name, K, V)           a map from K to V
 *       name *name_new(size_t hint)                      NULL + errno, as hmap_new
 *       name *name_new_opts(size_t hint, const hmap_options *opts)
 *       int   name_put(name *m, K key, V val)            as hmap_put: 1 inserted, 0 replaced, -errno
 *       V    *name_get(const name *m, K key)             the value inside the map, or NULL
 *       V    *name_assign(name *m, K key, bool *inserted)  as hmap_assign: the slot, zeroed when new
 *       bool  name_del(name *m, K key)                   false if absent
 *       size_t name_len(const name *m)
 *       void  name_free(name *m)
 *       hmap *name_hmap(name *m)                         the underlying map
 *       name_iter it; name_iter_init(&it, m);            iteration, with hmap_iter's guarantees:
 *       while (name_next(&it, &kp, &vp)) ...             K *kp; V *vp; (either may be passed as NULL)
 *       name_iter_done(&it);
 *
 *     HMAP_DEFINE_SET(name, K)          a set of K: as above without values; name_put(m, key) returns 1 when
 *                                       added and 0 when already present; bool name_has(const name *m, K key)
 *                                       replaces name_get; name_next(&it, &kp).
 *
 *     HMAP_DEFINE_STR(name, V)          a map from C strings to V that owns its keys (below); key parameters
 *                                       are `const char *`, and name_next yields `const char *` keys:
 *                                       const char *key; V *vp; name_next(&it, &key, &vp).
 *
 * Keys of HMAP_DEFINE and HMAP_DEFINE_SET are hashed and compared as their bytes (the built-in hash), so
 * K must be a type in which equal keys have equal bytes: integers, pointers (compared as addresses),
 * structs of those without padding. Not floating point (0.0 and -0.0 differ in bytes, NaN never equals
 * itself), not structs with padding bytes (unless every key is memset to zero first). K and V must be
 * complete object types that can be passed by value; wrap an array in a struct. For any other key, use
 * hmap_new with a hash and an equal function.
 *
 * String keys (HMAP_DEFINE_STR) are owned by the map: name_put and name_assign copy the string (malloc)
 * only when the key is new, and the map frees its copy (free) when the key leaves it: name_del, name_free,
 * hmap_clear on name_hmap(m). The caller's string is never kept and never freed, so string literals,
 * stack buffers and strings the caller frees right after are all fine. A key pointer yielded by name_next
 * points at the map's copy: valid until the next write to the map, not to be freed or modified. A new
 * key costs one lookup more than with the raw API (looking it up first is what lets an existing key cost
 * no copy). The copies are made with malloc, not with an hmap_options allocator, and are not counted in
 * hmap_read_memstats. A NULL string is refused as a NULL key is (-EINVAL, or NULL / false with errno
 * EINVAL).
 *
 * The generated functions follow the raw calls' rules for NULL maps, errors and errno. The macros are for
 * C: C++ has templates, and the generated code uses C's designated initializers. Expand each macro once
 * per name, at file scope, followed by a semicolon like the declaration it is; in a header shared by
 * several files it is fine too (everything is static inline).
 */
#ifndef HMAP_TYPED_H
#define HMAP_TYPED_H

#include "hmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* static inline, and marked used-or-not: a macro expansion is in the user's file, where compilers warn
 * about unused static functions even when they are inline. */
#if defined(__GNUC__) || defined(__clang__)
#define HMAP_TYPED_FN_ static inline __attribute__((unused))
#else
#define HMAP_TYPED_FN_ static inline
#endif

/* The part every typed map shares: the distinct map and iterator types and the calls that do not depend
 * on the key or value types. */
#define HMAP_TYPED_COMMON_(name)                                                                             \
    typedef struct name name; /* never defined: a name * is the hmap * it was created as */                  \
    typedef struct name##_iter {                                                                             \
        hmap_iter raw;                                                                                       \
    } name##_iter;                                                                                           \
    HMAP_TYPED_FN_ hmap *name##_hmap(name *m) { return (hmap *)m; }                                          \
    HMAP_TYPED_FN_ size_t name##_len(const name *m) { return hmap_len((const hmap *)m); }                    \
    HMAP_TYPED_FN_ void name##_free(name *m) { hmap_free((hmap *)m); }                                       \
    HMAP_TYPED_FN_ void name##_iter_init(name##_iter *it, name *m) { hmap_iter_init(&it->raw, (hmap *)m); }  \
    HMAP_TYPED_FN_ void name##_iter_done(name##_iter *it) { hmap_iter_done(&it->raw); }

/** A map from K to V named `name`; see the top of hmap_typed.h for the functions it generates. */
#define HMAP_DEFINE(name, K, V)                                                                              \
    HMAP_TYPED_COMMON_(name)                                                                                 \
    HMAP_TYPED_FN_ name *name##_new_opts(size_t hint, const hmap_options *opts) {                            \
        return (name *)hmap_new_opts(&(hmap_type){.key_size = sizeof(K), .val_size = sizeof(V)}, hint,       \
                                     opts);                                                                  \
    }                                                                                                        \
    HMAP_TYPED_FN_ name *name##_new(size_t hint) { return name##_new_opts(hint, NULL); }                     \
    HMAP_TYPED_FN_ int name##_put(name *m, K key, V val) { return hmap_put((hmap *)m, &key, &val); }         \
    HMAP_TYPED_FN_ V *name##_get(const name *m, K key) { return (V *)hmap_get((const hmap *)m, &key); }      \
    HMAP_TYPED_FN_ V *name##_assign(name *m, K key, bool *inserted) {                                        \
        return (V *)hmap_assign((hmap *)m, &key, inserted);                                                  \
    }                                                                                                        \
    HMAP_TYPED_FN_ bool name##_del(name *m, K key) { return hmap_del((hmap *)m, &key); }                     \
    HMAP_TYPED_FN_ bool name##_next(name##_iter *it, K **key, V **val) {                                     \
        void *k, *v;                                                                                         \
        if (!hmap_iter_next(&it->raw, &k, &v))                                                               \
            return false;                                                                                    \
        if (key)                                                                                             \
            *key = (K *)k;                                                                                   \
        if (val)                                                                                             \
            *val = (V *)v;                                                                                   \
        return true;                                                                                         \
    }                                                                                                        \
    typedef int name##_wants_a_semicolon_ /* so that `HMAP_DEFINE(...);` is valid ISO C */

/** A set of K named `name`; see the top of hmap_typed.h. */
#define HMAP_DEFINE_SET(name, K)                                                                             \
    HMAP_TYPED_COMMON_(name)                                                                                 \
    HMAP_TYPED_FN_ name *name##_new_opts(size_t hint, const hmap_options *opts) {                            \
        return (name *)hmap_new_opts(&(hmap_type){.key_size = sizeof(K), .val_size = 0}, hint, opts);        \
    }                                                                                                        \
    HMAP_TYPED_FN_ name *name##_new(size_t hint) { return name##_new_opts(hint, NULL); }                     \
    HMAP_TYPED_FN_ int name##_put(name *m, K key) { return hmap_put((hmap *)m, &key, NULL); }                \
    HMAP_TYPED_FN_ bool name##_has(const name *m, K key) { return hmap_get((const hmap *)m, &key) != NULL; } \
    HMAP_TYPED_FN_ bool name##_del(name *m, K key) { return hmap_del((hmap *)m, &key); }                     \
    HMAP_TYPED_FN_ bool name##_next(name##_iter *it, K **key) {                                              \
        void *k;                                                                                             \
        if (!hmap_iter_next(&it->raw, &k, NULL))                                                             \
            return false;                                                                                    \
        if (key)                                                                                             \
            *key = (K *)k;                                                                                   \
        return true;                                                                                         \
    }                                                                                                        \
    typedef int name##_wants_a_semicolon_ /* so that `HMAP_DEFINE(...);` is valid ISO C */

/* A malloc'ed copy of s, for HMAP_DEFINE_STR (strdup is POSIX, not C11). */
HMAP_TYPED_FN_ char *hmap_typed_strcopy_(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = (char *)malloc(n);
    return copy ? (char *)memcpy(copy, s, n) : NULL;
}

/* The key_drop of every HMAP_DEFINE_STR map: the key is the map's malloc'ed copy. */
HMAP_TYPED_FN_ void hmap_typed_strfree_(void *key) { free(*(char **)key); }

/** A map from owned C strings to V named `name`; see the top of hmap_typed.h for the ownership rules. */
#define HMAP_DEFINE_STR(name, V)                                                                             \
    HMAP_TYPED_COMMON_(name)                                                                                 \
    HMAP_TYPED_FN_ name *name##_new_opts(size_t hint, const hmap_options *opts) {                            \
        hmap_type type = {.key_size = sizeof(char *),                                                        \
                          .val_size = sizeof(V),                                                             \
                          .hash = hmap_hash_cstr,                                                            \
                          .equal = hmap_equal_cstr,                                                          \
                          .key_drop = hmap_typed_strfree_};                                                  \
        return (name *)hmap_new_opts(&type, hint, opts);                                                     \
    }                                                                                                        \
    HMAP_TYPED_FN_ name *name##_new(size_t hint) { return name##_new_opts(hint, NULL); }                     \
    HMAP_TYPED_FN_ V *name##_get(const name *m, const char *key) {                                           \
        if (key == NULL) {                                                                                   \
            errno = EINVAL;                                                                                  \
            return NULL;                                                                                     \
        }                                                                                                    \
        return (V *)hmap_get((const hmap *)m, &key);                                                         \
    }                                                                                                        \
    HMAP_TYPED_FN_ V *name##_assign(name *m, const char *key, bool *inserted) {                              \
        if (m == NULL || key == NULL) {                                                                      \
            errno = EINVAL;                                                                                  \
            return NULL;                                                                                     \
        }                                                                                                    \
        V *val = (V *)hmap_get((const hmap *)m, &key);                                                       \
        if (val != NULL) { /* present: the map keeps its copy, the caller's string is not copied */          \
            if (inserted != NULL)                                                                            \
                *inserted = false;                                                                           \
            return val;                                                                                      \
        }                                                                                                    \
        char *copy = hmap_typed_strcopy_(key);                                                               \
        if (copy == NULL) {                                                                                  \
            errno = ENOMEM;                                                                                  \
            return NULL;                                                                                     \
        }                                                                                                    \
        val = (V *)hmap_assign((hmap *)m, &copy, inserted);                                                  \
        if (val == NULL) { /* not taken: the copy is still ours */                                           \
            int err = errno;                                                                                 \
            free(copy);                                                                                      \
            errno = err;                                                                                     \
        }                                                                                                    \
        return val;                                                                                          \
    }                                                                                                        \
    HMAP_TYPED_FN_ int name##_put(name *m, const char *key, V val) {                                         \
        bool inserted;                                                                                       \
        V *slot = name##_assign(m, key, &inserted);                                                          \
        if (slot == NULL)                                                                                    \
            return -errno;                                                                                   \
        *slot = val; /* a string map has no val_drop: replacing is overwriting */                            \
        return inserted ? 1 : 0;                                                                             \
    }                                                                                                        \
    HMAP_TYPED_FN_ bool name##_del(name *m, const char *key) {                                               \
        if (key == NULL) {                                                                                   \
            errno = EINVAL;                                                                                  \
            return false;                                                                                    \
        }                                                                                                    \
        return hmap_del((hmap *)m, &key);                                                                    \
    }                                                                                                        \
    HMAP_TYPED_FN_ bool name##_next(name##_iter *it, const char **key, V **val) {                            \
        void *k, *v;                                                                                         \
        if (!hmap_iter_next(&it->raw, &k, &v))                                                               \
            return false;                                                                                    \
        if (key)                                                                                             \
            *key = *(const char **)k;                                                                        \
        if (val)                                                                                             \
            *val = (V *)v;                                                                                   \
        return true;                                                                                         \
    }                                                                                                        \
    typedef int name##_wants_a_semicolon_ /* so that `HMAP_DEFINE(...);` is valid ISO C */

#endif /* HMAP_TYPED_H */
