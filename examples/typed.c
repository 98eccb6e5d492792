/* SPDX-License-Identifier: MIT */
/* typed.c — the README quickstart: typed maps made by HMAP_DEFINE. Run: build/examples/typed */
#include <hmap.h>
#include <inttypes.h>
#include <stdio.h>

HMAP_DEFINE(squares, uint64_t, uint64_t); /* the type `squares`: uint64_t -> uint64_t, and its functions */
HMAP_DEFINE_STR(ages, int);               /* the type `ages`: C strings (the map keeps copies) -> int */

int main(void) {
    squares *m = squares_new(0); /* hint 0: start small, grow as needed */
    if (m == NULL)
        return 1;
    for (uint64_t k = 1; k <= 1000; k++)
        if (squares_put(m, k, k * k) < 0) /* 1 inserted, 0 replaced, < 0 error */
            return 1;
    uint64_t *v = squares_get(m, 12); /* points into the map, valid until the next write */
    printf("12 -> %" PRIu64 "\n", v ? *v : 0);
    squares_del(m, 12);
    printf("len after delete: %zu\n", squares_len(m));

    uint64_t sum = 0, *kp, *vp;
    squares_iter it;
    for (squares_iter_init(&it, m); squares_next(&it, &kp, &vp);)
        sum += *vp;
    squares_iter_done(&it);
    printf("sum of values: %" PRIu64 "\n", sum);
    squares_free(m);

    ages *a = ages_new(0);
    if (a == NULL)
        return 1;
    char name[8] = "ada";
    if (ages_put(a, name, 36) < 0) /* copies "ada": the buffer stays the caller's */
        return 1;
    name[0] = 'A'; /* changes nothing in the map */
    if (ages_put(a, "alan", 41) < 0)
        return 1;
    int *age = ages_get(a, "ada");
    printf("ada -> %d, %zu names\n", age ? *age : -1, ages_len(a));
    ages_free(a); /* frees the map's copies of the names */
    return 0;
}
