/* SPDX-License-Identifier: MIT */
/*
 * consumer.c — the smallest program that uses an installed hmap: it must compile against the installed
 * header and link against the installed library (and, for a static library, against the dependencies the
 * package files declare: zlib, pthread, libm). Built by the packaging tests in cmake/test_install.cmake:
 * through find_package(hmap CONFIG) against each library, and through pkg-config against the shared one.
 * It also checks that the library it runs with is the version of the headers it was compiled with, and
 * that the installed typed header works.
 */
#include <hmap.h>

#include <inttypes.h>
#include <stdio.h>

HMAP_DEFINE_STR(name_ids, int);

int main(int argc, char **argv) {
    hmap_type type = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap *m = hmap_new(&type, 0);
    if (m == NULL) {
        perror("hmap_new");
        return 1;
    }
    for (uint64_t k = 0; k < 1000; k++) {
        uint64_t v = k + 1;
        if (hmap_put(m, &k, &v) != 1) {
            fprintf(stderr, "consumer: put %" PRIu64 " failed\n", k);
            return 1;
        }
    }
    uint64_t key = 500;
    const uint64_t *val = hmap_get(m, &key);
    int ok = hmap_len(m) == 1000 && val != NULL && *val == 501;

    /* Touch the parts of the library that pull in zlib (the gzipped heap profile) and the thread-safe
     * counters, so that a static link proves the declared dependencies resolve. */
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    ok = ok && ms.live_bytes > 0;
    if (argc > 1 && hmap_write_heap_profile(argv[1]) != 0) {
        fprintf(stderr, "consumer: hmap_write_heap_profile(%s) failed\n", argv[1]);
        ok = 0;
    }
    hmap_free(m);

    if (hmap_version() != HMAP_VERSION) {
        fprintf(stderr, "consumer: library version %d, headers " HMAP_VERSION_STRING " (%d)\n", hmap_version(),
                HMAP_VERSION);
        ok = 0;
    }
    name_ids *ids = name_ids_new(0);
    ok = ok && ids != NULL && name_ids_put(ids, "one", 1) == 1 && name_ids_put(ids, "one", 2) == 0;
    const int *id = ids ? name_ids_get(ids, "one") : NULL;
    ok = ok && id != NULL && *id == 2 && name_ids_len(ids) == 1;
    name_ids_free(ids);

    printf("consumer: %s\n", ok ? "ok" : "WRONG RESULT");
    return ok ? 0 : 1;
}
