/*
 * consumer.c — the smallest program that uses an installed hmap: it must compile against the installed
 * header and link against the installed library (and, for a static library, against the dependencies the
 * package files declare: zlib, pthread). Built by the packaging tests in cmake/test_install.cmake, once
 * through find_package(hmap CONFIG) and once through pkg-config.
 */
#include <hmap.h>

#include <inttypes.h>
#include <stdio.h>

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

    printf("consumer: %s\n", ok ? "ok" : "WRONG RESULT");
    return ok ? 0 : 1;
}
