/* SPDX-License-Identifier: MIT */
/*
 * impl_hmap.c — hmap through its public API, twice: as shipped (shrinks after deletes) and with
 * hmap_options.no_shrink (keeps its memory, as Go's map does).
 *
 * uint64 keys: key_size 8, val_size 8, built-in hash and equality (the map picks its 8-byte fast path).
 * String keys: the key is the `const char *` into the shared arena, with hmap_hash_cstr/hmap_equal_cstr
 * (the string fast path); the map does not own the bytes, as no other implementation here does.
 * Bytes held: hmap_get_stats().bytes, the map's own count of every byte it holds.
 *
 * Small maps: an array of hmap pointers, each map made by hmap_new(type, 0) (no hint, no options: the map
 * a program gets by default). Their bytes are the sum of hmap_get_stats().bytes; hmap_read_memstats's live
 * bytes must have grown by the same amount since the array was made (a difference is reported on stderr).
 */
#include "loops.h"

#include <hmap.h>
#include <stdlib.h>
#include <string.h>

static void die_nomem(void) {
    fprintf(stderr, "hmap-bench: hmap reported an allocation failure\n");
    exit(1);
}

static bool hm_supports(key_kind kind) {
    (void)kind;
    return true;
}

static void *hm_create_with(key_kind kind, size_t reserve, bool no_shrink) {
    hmap_type type = {0};
    type.val_size = sizeof(uint64_t);
    if (kind == KEYS_U64) {
        type.key_size = sizeof(uint64_t);
    } else {
        type.key_size = sizeof(const char *);
        type.hash = hmap_hash_cstr;
        type.equal = hmap_equal_cstr;
    }
    hmap_options opts = {0};
    opts.no_shrink = no_shrink;
    opts.name = no_shrink ? "bench-noshrink" : "bench";
    hmap *m = hmap_new_opts(&type, reserve, &opts);
    if (!m)
        die_nomem();
    return m;
}

static void *hm_create(key_kind kind, size_t reserve) { return hm_create_with(kind, reserve, false); }
static void *hmns_create(key_kind kind, size_t reserve) { return hm_create_with(kind, reserve, true); }

static void hm_destroy(void *m) { hmap_free(m); }

static inline void hm_put_u64(void *m, uint64_t key, uint64_t val) {
    if (hmap_put(m, &key, &val) < 0)
        die_nomem();
}
static inline void hm_put_str(void *m, const char *key, uint32_t len, uint64_t val) {
    (void)len;
    if (hmap_put(m, &key, &val) < 0)
        die_nomem();
}
static inline bool hm_get_u64(void *m, uint64_t key, uint64_t *val) {
    const uint64_t *p = hmap_get(m, &key);
    if (!p)
        return false;
    *val = *p;
    return true;
}
static inline bool hm_get_str(void *m, const char *key, uint32_t len, uint64_t *val) {
    (void)len;
    const uint64_t *p = hmap_get(m, &key);
    if (!p)
        return false;
    *val = *p;
    return true;
}
static inline bool hm_del_u64(void *m, uint64_t key) { return hmap_del(m, &key); }
static inline bool hm_del_str(void *m, const char *key, uint32_t len) {
    (void)len;
    return hmap_del(m, &key);
}

DEFINE_LOOPS(hm)

static uint64_t hm_iterate(void *m, size_t *count) {
    hmap_iter it;
    void *k, *v;
    uint64_t sum = 0;
    size_t c = 0;
    hmap_iter_init(&it, m);
    while (hmap_iter_next(&it, &k, &v)) {
        sum += *(const uint64_t *)v;
        c++;
    }
    hmap_iter_done(&it);
    *count = c;
    return sum;
}

static size_t hm_bytes(void *m) {
    hmap_stats st;
    hmap_get_stats(m, &st);
    return st.bytes;
}

static int hm_compact(void *m) { return hmap_compact(m); }
static size_t hm_len(void *m) { return hmap_len(m); }

/* ---- small maps ---- */

typedef struct hm_many {
    uint64_t live_before; /* hmap_read_memstats live bytes when the array was made */
    hmap *maps[];
} hm_many;

static const hmap_type small_type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};

static void *hm_many_new(size_t count) {
    hm_many *all = malloc(sizeof *all + count * sizeof all->maps[0]);
    if (!all)
        die_nomem();
    memset(all->maps, 0xff, count * sizeof all->maps[0]); /* resident before the measurement */
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    all->live_before = ms.live_bytes;
    return all;
}

static void *hm_many_create(void *all, size_t j) {
    hmap *m = hmap_new(&small_type, 0);
    if (!m)
        die_nomem();
    return ((hm_many *)all)->maps[j] = m;
}

#define hm_small_put hm_put_u64
DEFINE_SMALL_FILL(hm)

static size_t hm_many_bytes(void *v, size_t count) {
    hm_many *all = v;
    size_t sum = 0;
    for (size_t j = 0; j < count; j++)
        sum += hm_bytes(all->maps[j]);
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    if (ms.live_bytes - all->live_before != sum)
        fprintf(stderr,
                "hmap-bench: hmap: the small maps' stats add up to %zu bytes, memstats' live bytes grew by "
                "%llu\n",
                sum, (unsigned long long)(ms.live_bytes - all->live_before));
    return sum;
}

static size_t hm_many_len(void *v, size_t count) {
    size_t n = 0;
    for (size_t j = 0; j < count; j++)
        n += hmap_len(((hm_many *)v)->maps[j]);
    return n;
}

static void hm_many_free(void *v, size_t count) {
    for (size_t j = 0; j < count; j++)
        hmap_free(((hm_many *)v)->maps[j]);
    free(v);
}

static const small_ops hm_small = {hm_many_new, hm_many_fill, hm_many_bytes, hm_many_len, hm_many_free};

/* The no_shrink variant shares every loop; only creation differs. */
#define hmns_supports hm_supports
#define hmns_destroy hm_destroy
#define hmns_insert hm_insert
#define hmns_insert_timed hm_insert_timed
#define hmns_lookup hm_lookup
#define hmns_erase hm_erase
#define hmns_iterate hm_iterate
#define hmns_churn hm_churn
#define hmns_bytes hm_bytes
#define hmns_len hm_len

const adapter adapter_hmap = ADAPTER(hm, "hmap", true, hm_compact, &hm_small);
/* Small maps never shrink: no_shrink would measure the same maps again. */
const adapter adapter_hmap_noshrink = ADAPTER(hmns, "hmap_noshrink", true, hm_compact, NULL);
