/* SPDX-License-Identifier: MIT */
/*
 * diag/pprof.c — hmap_write_heap_profile: the sampled records (profile.c) written as pprof's protobuf
 * (github.com/google/pprof proto/profile.proto), gzipped with zlib.
 *
 * What is written: sample types alloc_objects, alloc_space, inuse_objects, inuse_space, each record
 * unsampled with the rate its samples were taken at (Go's scaleHeapSample: an allocation of s bytes was
 * sampled with probability 1 - exp(-s/rate)); period type space/bytes with period = the rate now; a string
 * label "map" with the map's name; the executable mappings of /proc/self/maps with their GNU build ids;
 * one location per return address (minus one, so that it falls inside the call), with the function name
 * the symbol tables give (symbols.c).
 *
 * Symbolization. The mappings do not claim to have functions, file names or line numbers, so that
 * `go tool pprof` symbolizes every location from the binary itself (its DWARF line tables): `-list` and
 * `-lines` work without `-symbolize=force`. The function names written are the fallback for a binary
 * pprof cannot open (it replaces them whenever it can). `go tool pprof` reads a C binary's DWARF with
 * Go's own reader, which neither expands inlined calls (an inlined function's lines count for its
 * caller) nor names the copies gcc makes of a function (f.constprop.0, f.isra.0: their debug entries name
 * the original only by reference), so those frames show as file:line or as the binary's name;
 * `-symbolize=none` shows the names written here instead (without lines).
 *
 * Stacks are cut at the public API: the innermost frame inside one of the library's public functions
 * (hmap_put, hmap_new_opts...), with any public frames right outside it (hmap_new calling hmap_new_opts),
 * is dropped together with everything inside it, so that each stack starts at the caller of the API
 * (symbols.c says which functions those are). A stack with no public frame — an allocation hook called
 * from elsewhere — is kept whole (the profiler's own frames are never stored, see profile.c). Which
 * frames are the library's is thus decided by the symbols of the library, never by file names.
 *
 * The encoder is the few helpers below (varints and length-delimited fields), as Go's runtime/pprof also
 * writes its own. Everything a write uses lives on the C heap (or in own pages for the index tables)
 * while it runs and is freed before it returns; the records are copied under the profiler's lock first,
 * so that the slow part (symbol tables, file I/O) holds no lock.
 */
#include "diag.h"

#include "../base/mix.h"
#include "hmap.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* --------------------------------------------------------------------------------------------------------
 * Protobuf encoding: a growable buffer, varints, length-delimited fields
 * -------------------------------------------------------------------------------------------------------- */

typedef struct pbuf {
    unsigned char *data;
    size_t len, cap;
    bool failed; /* out of memory somewhere: the whole write fails */
} pbuf;

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

static void pb_reserve(pbuf *b, size_t more) {
    if (b->failed || b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return;
    }
    b->data = d;
    b->cap = cap;
}

static void pb_raw(pbuf *b, const void *p, size_t n) {
    if (n == 0)
        return; /* p may be NULL (an empty buffer): memcpy must not see it */
    pb_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void pb_varint(pbuf *b, uint64_t v) {
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            tmp[n] |= 0x80;
        n++;
    } while (v != 0);
    pb_raw(b, tmp, n);
}

static void pb_tag(pbuf *b, unsigned field, unsigned wire) { pb_varint(b, (uint64_t)field << 3 | wire); }

/* An integer field (int64, uint64 or bool); zero is the default and is left out, as proto3 does. */
static void pb_uint(pbuf *b, unsigned field, uint64_t v) {
    if (v == 0)
        return;
    pb_tag(b, field, WIRE_VARINT);
    pb_varint(b, v);
}

static void pb_bytes(pbuf *b, unsigned field, const void *p, size_t n) {
    pb_tag(b, field, WIRE_BYTES);
    pb_varint(b, n);
    pb_raw(b, p, n);
}

/* Appends `msg` as an embedded message field and empties it for reuse. */
static void pb_message(pbuf *b, unsigned field, pbuf *msg) {
    pb_bytes(b, field, msg->data, msg->len);
    b->failed |= msg->failed;
    msg->len = 0;
}

static void pb_packed(pbuf *b, unsigned field, const uint64_t *v, size_t n) {
    pbuf tmp = {0};
    for (size_t i = 0; i < n; i++)
        pb_varint(&tmp, v[i]);
    pb_bytes(b, field, tmp.data, tmp.len);
    b->failed |= tmp.failed;
    free(tmp.data);
}

/* --------------------------------------------------------------------------------------------------------
 * Numbered sets: the profile's strings, functions and locations, each numbered in order of first use
 * -------------------------------------------------------------------------------------------------------- */

/* Strings and function names point at memory that outlives the write (literals, the snapshot's names,
 * the mapped symbol tables, the mappings), so they are not copied. */
typedef struct string_set {
    const char **strs;
    size_t n, cap;
    dtable index;
    bool failed;
} string_set;

typedef struct string_key {
    const char *s;
    size_t len;
} string_key;

static bool string_matches(const void *ctx, uint32_t item, const void *key) {
    const string_set *t = ctx;
    const string_key *k = key;
    return strncmp(t->strs[item], k->s, k->len) == 0 && t->strs[item][k->len] == '\0';
}

/* The number of s in the set (from 0), added if new; 0 after any failure (t->failed tells). */
static uint64_t string_id(string_set *t, const char *s) {
    if (t->failed)
        return 0;
    string_key k = {s, strlen(s)};
    uint64_t h = hash_string(s, k.len);
    uint32_t i = dtable_find(&t->index, h, string_matches, t, &k);
    if (i != DTABLE_NONE)
        return i;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        const char **grown = realloc(t->strs, cap * sizeof *grown);
        if (grown == NULL)
            goto fail;
        t->strs = grown;
        t->cap = cap;
    }
    if (!dtable_add(&t->index, h, (uint32_t)t->n))
        goto fail;
    t->strs[t->n] = s;
    return t->n++;
fail:
    t->failed = true;
    return 0;
}

static void string_set_free(string_set *t) {
    free(t->strs);
    dtable_free(&t->index);
}

typedef struct pc_set {
    uintptr_t *pcs;
    size_t n, cap;
    dtable index;
    bool failed;
} pc_set;

static bool pc_matches(const void *ctx, uint32_t item, const void *key) {
    return ((const pc_set *)ctx)->pcs[item] == *(const uintptr_t *)key;
}

static uint64_t pc_id(pc_set *t, uintptr_t pc) {
    if (t->failed)
        return 0;
    uint64_t h = mix64(pc);
    uint32_t i = dtable_find(&t->index, h, pc_matches, t, &pc);
    if (i != DTABLE_NONE)
        return i;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        uintptr_t *grown = realloc(t->pcs, cap * sizeof *grown);
        if (grown == NULL)
            goto fail;
        t->pcs = grown;
        t->cap = cap;
    }
    if (!dtable_add(&t->index, h, (uint32_t)t->n))
        goto fail;
    t->pcs[t->n] = pc;
    return t->n++;
fail:
    t->failed = true;
    return 0;
}

static void pc_set_free(pc_set *t) {
    free(t->pcs);
    dtable_free(&t->index);
}

/* --------------------------------------------------------------------------------------------------------
 * Writing the profile
 * -------------------------------------------------------------------------------------------------------- */

enum { /* profile.proto field numbers */
       PROFILE_SAMPLE_TYPE = 1,
       PROFILE_SAMPLE = 2,
       PROFILE_MAPPING = 3,
       PROFILE_LOCATION = 4,
       PROFILE_FUNCTION = 5,
       PROFILE_STRING_TABLE = 6,
       PROFILE_TIME_NANOS = 9,
       PROFILE_PERIOD_TYPE = 11,
       PROFILE_PERIOD = 12,
       PROFILE_DEFAULT_SAMPLE_TYPE = 14,
       VALUE_TYPE_TYPE = 1,
       VALUE_TYPE_UNIT = 2,
       SAMPLE_LOCATION_ID = 1,
       SAMPLE_VALUE = 2,
       SAMPLE_LABEL = 3,
       LABEL_KEY = 1,
       LABEL_STR = 2,
       MAPPING_ID = 1,
       MAPPING_START = 2,
       MAPPING_LIMIT = 3,
       MAPPING_OFFSET = 4,
       MAPPING_FILENAME = 5,
       MAPPING_BUILD_ID = 6,
       LOCATION_ID = 1,
       LOCATION_MAPPING_ID = 2,
       LOCATION_ADDRESS = 3,
       LOCATION_LINE = 4,
       LINE_FUNCTION_ID = 1,
       FUNCTION_ID = 1,
       FUNCTION_NAME = 2,
       FUNCTION_SYSTEM_NAME = 3,
};

/* The state of one write. Ids in the profile are set numbers + 1 (0 means none), except strings (index
 * 0 is ""). */
typedef struct writer {
    pbuf out, msg, sub;
    string_set strings, functions;
    pc_set locations; /* return address - 1 */
    objects *objs;
    mapping *maps;
    size_t nmaps;
    bool failed;
} writer;

static uint64_t str_id(writer *w, const char *s) { return string_id(&w->strings, s); }

static uint64_t mapping_id_of(const writer *w, uintptr_t pc) {
    for (size_t i = 0; i < w->nmaps; i++)
        if (pc >= w->maps[i].start && pc < w->maps[i].limit)
            return i + 1;
    return 0;
}

/* Where a stack starts once the library is cut off: just outside the innermost run of public frames. */
static unsigned api_caller(writer *w, void *const *frames, unsigned n) {
    unsigned i = 0;
    while (i < n && !objects_in_public_api(w->objs, (uintptr_t)frames[i] - 1))
        i++;
    if (i == n)
        return 0; /* not called through the API: the whole stack */
    while (i + 1 < n && objects_in_public_api(w->objs, (uintptr_t)frames[i + 1] - 1))
        i++;
    return i + 1 < n ? i + 1 : i; /* (an API function at the bottom of a stack stays) */
}

/* Go's scaleHeapSample: an allocation of s bytes was sampled with probability 1 - exp(-s/rate). */
static void unsample(uint64_t count, size_t size, size_t rate, int64_t *objects_out, int64_t *bytes_out) {
    double objs = (double)count, bytes = (double)count * (double)size;
    if (count != 0 && size != 0 && rate > 1) {
        double scale = 1.0 / (1.0 - exp(-(double)size / (double)rate));
        objs *= scale;
        bytes *= scale;
    }
    *objects_out = (int64_t)(objs + 0.5);
    *bytes_out = (int64_t)(bytes + 0.5);
}

static void write_value_type(writer *w, unsigned field, const char *type, const char *unit) {
    pb_uint(&w->msg, VALUE_TYPE_TYPE, str_id(w, type));
    pb_uint(&w->msg, VALUE_TYPE_UNIT, str_id(w, unit));
    pb_message(&w->out, field, &w->msg);
}

static void write_sample(writer *w, const sample_record *r) {
    uint64_t ids[MAX_FRAMES];
    size_t n = 0;
    for (unsigned i = api_caller(w, r->frames, r->nframes); i < r->nframes; i++)
        ids[n++] = pc_id(&w->locations, (uintptr_t)r->frames[i] - 1) + 1;

    int64_t alloc_objs, alloc_bytes, inuse_objs, inuse_bytes;
    unsample(r->allocs, r->size, r->rate, &alloc_objs, &alloc_bytes);
    unsample(r->allocs - r->frees, r->size, r->rate, &inuse_objs, &inuse_bytes);
    uint64_t values[4] = {(uint64_t)alloc_objs, (uint64_t)alloc_bytes, (uint64_t)inuse_objs,
                          (uint64_t)inuse_bytes};

    pb_packed(&w->msg, SAMPLE_LOCATION_ID, ids, n);
    pb_packed(&w->msg, SAMPLE_VALUE, values, 4);
    if (r->name != NULL) {
        pb_uint(&w->sub, LABEL_KEY, str_id(w, "map"));
        pb_uint(&w->sub, LABEL_STR, str_id(w, r->name));
        pb_message(&w->msg, SAMPLE_LABEL, &w->sub);
    }
    pb_message(&w->out, PROFILE_SAMPLE, &w->msg);
}

/* No has_functions / has_filenames / has_line_numbers: pprof then symbolizes from the binary. */
static void write_mappings(writer *w) {
    for (size_t i = 0; i < w->nmaps; i++) {
        const mapping *m = &w->maps[i];
        pb_uint(&w->msg, MAPPING_ID, i + 1);
        pb_uint(&w->msg, MAPPING_START, m->start);
        pb_uint(&w->msg, MAPPING_LIMIT, m->limit);
        pb_uint(&w->msg, MAPPING_OFFSET, m->offset);
        pb_uint(&w->msg, MAPPING_FILENAME, str_id(w, m->path));
        pb_uint(&w->msg, MAPPING_BUILD_ID, str_id(w, m->build_id));
        pb_message(&w->out, PROFILE_MAPPING, &w->msg);
    }
}

static void write_locations(writer *w) {
    for (size_t i = 0; i < w->locations.n; i++) {
        uintptr_t pc = w->locations.pcs[i];
        pb_uint(&w->msg, LOCATION_ID, i + 1);
        pb_uint(&w->msg, LOCATION_MAPPING_ID, mapping_id_of(w, pc));
        pb_uint(&w->msg, LOCATION_ADDRESS, pc);
        const char *name = objects_function(w->objs, pc);
        if (name != NULL) {
            pb_uint(&w->sub, LINE_FUNCTION_ID, string_id(&w->functions, name) + 1);
            pb_message(&w->msg, LOCATION_LINE, &w->sub);
        }
        pb_message(&w->out, PROFILE_LOCATION, &w->msg);
    }
}

static void write_functions(writer *w) {
    for (size_t i = 0; i < w->functions.n; i++) {
        uint64_t name = str_id(w, w->functions.strs[i]);
        pb_uint(&w->msg, FUNCTION_ID, i + 1);
        pb_uint(&w->msg, FUNCTION_NAME, name);
        pb_uint(&w->msg, FUNCTION_SYSTEM_NAME, name);
        pb_message(&w->out, PROFILE_FUNCTION, &w->msg);
    }
}

/* Encodes the whole profile into w->out. */
static void encode_profile(writer *w, const profile_snapshot *s) {
    str_id(w, ""); /* index 0 must be the empty string */
    write_value_type(w, PROFILE_SAMPLE_TYPE, "alloc_objects", "count");
    write_value_type(w, PROFILE_SAMPLE_TYPE, "alloc_space", "bytes");
    write_value_type(w, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
    write_value_type(w, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
    for (size_t i = 0; i < s->n; i++)
        write_sample(w, &s->recs[i]);
    if (objects_mappings(w->objs, &w->maps, &w->nmaps) != 0)
        w->failed = true;
    write_mappings(w);
    write_locations(w);
    write_functions(w);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pb_uint(&w->out, PROFILE_TIME_NANOS, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
    write_value_type(w, PROFILE_PERIOD_TYPE, "space", "bytes");
    pb_uint(&w->out, PROFILE_PERIOD, s->rate);
    pb_uint(&w->out, PROFILE_DEFAULT_SAMPLE_TYPE, str_id(w, "inuse_space"));
    for (size_t i = 0; i < w->strings.n; i++) /* last: every string is known by now */
        pb_bytes(&w->out, PROFILE_STRING_TABLE, w->strings.strs[i], strlen(w->strings.strs[i]));
}

static int write_gzip(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    gzFile gz = gzdopen(fd, "wb");
    if (gz == NULL) {
        close(fd);
        return -ENOMEM;
    }
    int err = 0;
    const unsigned char *p = data;
    while (len > 0 && err == 0) {
        unsigned chunk = len > (1u << 30) ? 1u << 30 : (unsigned)len;
        if (gzwrite(gz, p, chunk) != (int)chunk)
            err = -EIO;
        p += chunk;
        len -= chunk;
    }
    if (gzclose(gz) != Z_OK && err == 0)
        err = -EIO;
    return err;
}

static bool writer_failed(const writer *w) {
    return w->failed || w->out.failed || w->msg.failed || w->sub.failed || w->strings.failed ||
           w->functions.failed || w->locations.failed;
}

static void writer_free(writer *w) {
    free(w->out.data);
    free(w->msg.data);
    free(w->sub.data);
    string_set_free(&w->strings);
    string_set_free(&w->functions);
    pc_set_free(&w->locations);
    free(w->maps);
    objects_free(w->objs);
}

int hmap_write_heap_profile(const char *path) {
    if (path == NULL)
        return -EINVAL;
    profile_snapshot s;
    if (profile_snapshot_take(&s) != 0)
        return -ENOMEM;
    writer w = {0};
    int err = -ENOMEM;
    if ((w.objs = objects_load()) != NULL) {
        encode_profile(&w, &s);
        err = writer_failed(&w) ? -ENOMEM : write_gzip(path, w.out.data, w.out.len);
    }
    writer_free(&w);
    profile_snapshot_free(&s);
    return err;
}
