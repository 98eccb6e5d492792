/* SPDX-License-Identifier: MIT */
/*
 * sync.c — hmap_sync from several threads: counters updated in place, a range that sums them, and
 * heap-allocated values read safely while another thread replaces them.
 *
 * Four threads each count 10000 events over 1000 keys with hmap_sync_update (an atomic increment of the
 * value in the map); the main thread then sums the counters with hmap_sync_range and deletes half of
 * them, and compacts what is left. Then the values become owned C strings (val_drop frees them): one
 * thread keeps replacing them while another reads them inside hmap_sync_pin / hmap_sync_unpin, which keeps
 * every string it loaded alive until it unpins, however fast the writer replaces it; at the end the map
 * is cleared while the main thread still holds a string it loaded inside its own read section.
 */
#include <hmap.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4, EVENTS = 10000, KEYS = 1000 };

static void add_one(void *val, bool inserted, void *ctx) {
    (void)inserted; /* a new key's value starts at zero */
    (void)ctx;
    ++*(uint64_t *)val;
}

static void *count_events(void *arg) {
    hmap_sync *m = arg;
    for (uint64_t i = 0; i < EVENTS; i++) {
        uint64_t key = i % KEYS;
        hmap_sync_update(m, &key, add_one, NULL);
    }
    return NULL;
}

static bool sum_values(const void *key, const void *val, void *ctx) {
    (void)key;
    *(uint64_t *)ctx += *(const uint64_t *)val;
    return true;
}

/* ---- owned strings ---- */

static void free_string(void *val) { free(*(char **)val); }

static void *replace_strings(void *arg) {
    hmap_sync *m = arg;
    for (int round = 0; round < 2000; round++) {
        uint64_t key = (uint64_t)round % 10;
        char *s = malloc(32);
        snprintf(s, 32, "value %d of key %llu", round, (unsigned long long)key);
        hmap_sync_store(m, &key, &s); /* the old string is freed once no reader can hold it */
    }
    return NULL;
}

static void *read_strings(void *arg) {
    hmap_sync *m = arg;
    size_t ok = 0;
    for (int round = 0; round < 2000; round++) {
        uint64_t key = (uint64_t)round % 10;
        char *s;
        hmap_sync_pin();
        if (hmap_sync_load(m, &key, &s) && strncmp(s, "value ", 6) == 0)
            ok++; /* s stays valid until the unpin */
        hmap_sync_unpin();
    }
    return (void *)ok;
}

int main(void) {
    hmap_type counters = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap_sync *m = hmap_sync_new(&counters, 0);
    if (!m)
        return 1;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, count_events, m);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);

    uint64_t sum = 0, key = 7, seven = 0;
    hmap_sync_range(m, sum_values, &sum);
    hmap_sync_load(m, &key, &seven);
    printf("keys: %zu, events counted: %llu, key 7 seen %llu times\n", hmap_sync_len(m),
           (unsigned long long)sum, (unsigned long long)seven);
    for (key = 0; key < KEYS; key += 2)
        hmap_sync_delete(m, &key);
    hmap_stats before, after;
    hmap_sync_get_stats(m, &before);
    hmap_sync_compact(m); /* each shard rebuilt to fit what is left, now */
    hmap_sync_get_stats(m, &after);
    printf("after deleting the even keys: %zu; compacted: %s\n", hmap_sync_len(m),
           after.bytes <= before.bytes ? "no larger" : "larger");
    hmap_sync_free(m);

    hmap_type strings = {.key_size = sizeof(uint64_t), .val_size = sizeof(char *), .val_drop = free_string};
    m = hmap_sync_new(&strings, 0);
    if (!m)
        return 1;
    for (key = 0; key < 10; key++) {
        char *s = strdup("value -1");
        hmap_sync_store(m, &key, &s);
    }
    pthread_t writer, reader;
    void *read_ok;
    pthread_create(&writer, NULL, replace_strings, m);
    pthread_create(&reader, NULL, read_strings, m);
    pthread_join(writer, NULL);
    pthread_join(reader, &read_ok);
    char *last;
    key = 9;
    hmap_sync_pin();
    hmap_sync_load(m, &key, &last);
    printf("reads of live strings: %zu of 2000; key 9 holds \"%s\"\n", (size_t)read_ok, last);
    hmap_sync_clear(m); /* empty: the strings are freed once no reader can hold them, so not "last" yet */
    printf("after clear: %zu keys, and key 9's string still readable: \"%s\"\n", hmap_sync_len(m), last);
    hmap_sync_unpin();
    hmap_sync_free(m); /* frees whatever the map still held, and what was waiting for readers */
    return 0;
}
