/* SPDX-License-Identifier: MIT */
/*
 * keys.c — the keys, maps and yardsticks every experiment uses.
 *
 * Keys are splitmix64's finalizer of 0, 1, 2, ... : distinct and well mixed, and the Go companion computes
 * the very same sequence, so both maps see the same keys and a "delete 99%" deletes the same ones (every
 * index not divisible by 100).
 */
#define _GNU_SOURCE

#include "lab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t lab_key(uint64_t i) {
    uint64_t z = i + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

bool lab_survives(uint64_t i) { return i % 100 == 0; }

static hmap *u64_map(size_t hint, const hmap_options *opts) {
    static const hmap_type u64_to_u64 = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap *m = hmap_new_opts(&u64_to_u64, hint, opts);
    if (!m) {
        fprintf(stderr, "hmap-lab: hmap_new_opts: %s\n", strerror(errno));
        exit(1);
    }
    return m;
}

hmap *lab_u64_map(size_t hint, bool no_shrink, const char *name) {
    hmap_options opts = {.no_shrink = no_shrink, .name = name};
    return u64_map(hint, &opts);
}

void lab_put(hmap *m, uint64_t i) {
    uint64_t key = lab_key(i);
    int rc = hmap_put(m, &key, &i);
    if (rc < 0) {
        fprintf(stderr, "hmap-lab: hmap_put: %s\n", strerror(-rc));
        exit(1);
    }
}

void lab_del(hmap *m, uint64_t i) {
    uint64_t key = lab_key(i);
    if (!hmap_del(m, &key)) {
        fprintf(stderr, "hmap-lab: hmap_del: key %llu missing (library bug?)\n", (unsigned long long)i);
        exit(1);
    }
}

/* A fixed seed, so that the yardstick is the same number in every section and every run of one build
 * (overflow buckets, and so bytes, depend a little on where the keys hash). */
size_t lab_fresh_bytes(uint64_t first, uint64_t step, uint64_t count) {
    hmap_options opts = {.fixed_seed = true, .seed = 0x5eed, .name = "fresh"};
    hmap *fresh = u64_map((size_t)count, &opts);
    for (uint64_t k = 0; k < count; k++)
        lab_put(fresh, first + k * step);
    hmap_stats st;
    hmap_get_stats(fresh, &st);
    hmap_free(fresh);
    return st.bytes;
}

const char *lab_phase_name(hmap_phase p) {
    switch (p) {
    case HMAP_STEADY:
        return "steady";
    case HMAP_GROWING:
        return "growing";
    case HMAP_SAME_SIZE_GROWING:
        return "same-size";
    case HMAP_SHRINKING:
        return "shrinking";
    }
    return "?";
}

const char *lab_fmt_bytes(double v, char buf[32]) {
    if (!(v >= 0)) { /* NaN too */
        snprintf(buf, 32, "—");
        return buf;
    }
    return tc_fmt_bytes((uint64_t)v, buf);
}

const char *lab_fmt_count(double v, char buf[32]) {
    if (!(v >= 0)) {
        snprintf(buf, 32, "—");
        return buf;
    }
    return tc_fmt_count((uint64_t)v, buf);
}

uint64_t lab_release(void) {
    uint64_t t0 = tc_now_ns();
    if (hmap_release_os_memory() != 0)
        fprintf(stderr, "hmap-lab: hmap_release_os_memory failed\n");
    return tc_now_ns() - t0;
}
