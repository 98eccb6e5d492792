/* SPDX-License-Identifier: MIT */
/* quickstart.c — the README example: a uint64 -> uint64 map. Run: build/examples/quickstart */
#include <hmap.h>
#include <inttypes.h>
#include <stdio.h>

int main(void) {
    hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap *m = hmap_new(&type, 0); /* hint 0: start small, grow as needed */
    if (m == NULL)
        return 1;

    for (uint64_t k = 1; k <= 1000; k++) {
        uint64_t v = k * k;
        if (hmap_put(m, &k, &v) < 0) /* 1 inserted, 0 replaced, < 0 error */
            return 1;
    }
    uint64_t key = 12;
    uint64_t *v = hmap_get(m, &key); /* points into the map, valid until the next write */
    printf("12 -> %" PRIu64 "\n", v ? *v : 0);
    hmap_del(m, &key);
    printf("len after delete: %zu\n", hmap_len(m));

    uint64_t sum = 0;
    void *kp, *vp;
    hmap_iter it;
    for (hmap_iter_init(&it, m); hmap_iter_next(&it, &kp, &vp);)
        sum += *(uint64_t *)vp;
    hmap_iter_done(&it);
    printf("sum of values: %" PRIu64 "\n", sum);

    hmap_free(m);
    return 0;
}
