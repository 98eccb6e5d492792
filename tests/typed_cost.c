/* SPDX-License-Identifier: MIT */
/*
 * typed_cost.c — not a test: the same small loop over the raw API and over a typed map, to count what the
 * typed layer costs. Run each half under callgrind and compare the instructions spent inside it:
 *
 *   valgrind --tool=callgrind --toggle-collect=loop_raw   build/tests/typed_cost raw
 *   valgrind --tool=callgrind --toggle-collect=loop_typed build/tests/typed_cost typed
 *
 * (the "Collected" line, or callgrind_annotate). The loops insert N keys, look each up, iterate, delete
 * them all; both are compiled in this file with the project's flags, so any difference is the layer's.
 * The map is created outside the loops with a fixed seed, so both runs hash and place keys alike.
 */
#include <hmap.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

HMAP_DEFINE(u64map, uint64_t, uint64_t);

enum { N = 100000 };

__attribute__((noinline)) static uint64_t loop_raw(hmap *m) {
    uint64_t sum = 0;
    for (uint64_t k = 0; k < N; k++) {
        uint64_t v = k * 7;
        sum += (uint64_t)hmap_put(m, &k, &v);
    }
    for (uint64_t k = 0; k < N; k++) {
        uint64_t *v = hmap_get(m, &k);
        sum += v ? *v : 0;
    }
    hmap_iter it;
    void *kp, *vp;
    for (hmap_iter_init(&it, m); hmap_iter_next(&it, &kp, &vp);)
        sum += *(uint64_t *)kp ^ *(uint64_t *)vp;
    hmap_iter_done(&it);
    for (uint64_t k = 0; k < N; k++)
        sum += hmap_del(m, &k);
    return sum;
}

__attribute__((noinline)) static uint64_t loop_typed(u64map *m) {
    uint64_t sum = 0;
    for (uint64_t k = 0; k < N; k++)
        sum += (uint64_t)u64map_put(m, k, k * 7);
    for (uint64_t k = 0; k < N; k++) {
        uint64_t *v = u64map_get(m, k);
        sum += v ? *v : 0;
    }
    u64map_iter it;
    uint64_t *kp, *vp;
    for (u64map_iter_init(&it, m); u64map_next(&it, &kp, &vp);)
        sum += *kp ^ *vp;
    u64map_iter_done(&it);
    for (uint64_t k = 0; k < N; k++)
        sum += u64map_del(m, k);
    return sum;
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "raw") != 0 && strcmp(argv[1], "typed") != 0)) {
        fprintf(stderr, "usage: typed_cost raw|typed\n");
        return 2;
    }
    hmap_options opts = {.fixed_seed = true, .seed = 42};
    u64map *m = u64map_new_opts(0, &opts);
    if (m == NULL)
        return 1;
    uint64_t sum = argv[1][0] == 'r' ? loop_raw(u64map_hmap(m)) : loop_typed(m);
    printf("%s: checksum %" PRIu64 "\n", argv[1], sum);
    u64map_free(m);
    return 0;
}
