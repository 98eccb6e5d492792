/*
 * profile.c — the sampled heap profile of every allocation the library makes, and its pprof writer.
 *
 * What it answers: which call site's map holds the library's memory, the way Go's heap profile does.
 *
 * Sampling (Go's MemProfileRate idea). Each thread counts down the bytes it allocates; when an allocation
 * crosses the countdown it is sampled and a new countdown is drawn from an exponential distribution with
 * mean `rate`. That makes the samples a Poisson process over allocated bytes: an allocation of s bytes is
 * sampled with probability 1 - exp(-s/rate), which the writer divides back out ("unsampling", as Go's
 * scaleHeapSample does). Rate 0 turns sampling off; rate 1 samples every allocation exactly.
 *
 * Cost. profile_note_alloc is on every allocation path: when sampling is off it is one relaxed atomic load
 * and a branch; when on, a thread-local subtraction and compare. Only a sampled allocation takes the mutex,
 * captures its stack (backtrace()) and is entered in two small tables: the records, keyed by
 * (stack, size, map name) with allocated and freed counts, and the live table, an open-addressing table of
 * sampled pointers so that freeing a sampled block moves it from in-use to freed. Frees check the live
 * table only while some sample is live. Both tables use plain malloc: profiling must never re-enter itself.
 *
 * Writing (hmap_write_heap_profile). Stacks are stored whole; trimming and symbolization happen at write
 * time, off the allocation path. Trimming drops the innermost frames that belong to the library, so each
 * stack starts at the caller of the public API. Which frames are the library's: when the library is a
 * shared object, every address inside that object; when it is linked statically into the program, the
 * functions named hmap_* (the internal headers give the shared internal ones the hmap__ prefix) and the static
 * functions of the files of src/ (the ELF symbol table records local symbols after the name of their
 * source file); another global function found between library frames is taken as the library's too (see
 * trimmed_start). Function names come from
 * the ELF symbol table of each object (.symtab, read from the file), falling back to dladdr, so that
 * `go tool pprof` shows names even for static functions of a program built without -rdynamic.
 *
 * The output is pprof's protobuf (github.com/google/pprof proto/profile.proto), encoded by the few helpers
 * below (varints and length-delimited fields), gzipped with zlib: sample types alloc_objects, alloc_space,
 * inuse_objects, inuse_space; period type space/bytes with period = rate; a string label "map" with the
 * map's name; mappings from /proc/self/maps with their GNU build ids (read from the PT_NOTE segments that
 * dl_iterate_phdr shows); locations at return address - 1 with their function.
 *
 * Environment: HMAP_PROFILE_RATE sets the rate, HMAP_HEAPPROFILE=path writes a profile at exit; both are
 * read once, by a constructor, when the library is loaded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, dl_iterate_phdr */
#endif
#include "profile.h"

#include "../base/mix.h"
#include "../base/random.h"
#include "hmap.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_RATE (512u * 1024u)
#define MAX_FRAMES 64

/* ------------------------------------------------------------------------------------------------------
 * Rate and the per-thread countdown
 * ------------------------------------------------------------------------------------------------------ */

static _Atomic size_t profile_rate = DEFAULT_RATE;
static _Atomic unsigned rate_epoch = 1; /* bumped on every rate change: threads redraw their countdown */
static _Atomic size_t live_samples;     /* sampled blocks not yet freed: frees look them up only if > 0 */

static _Thread_local unsigned tls_epoch; /* epoch the countdown was drawn under; 0 = never drawn */
static _Thread_local uint64_t tls_left;  /* bytes still to allocate before the next sample */

/* Bytes until the next sample: exponential with mean `rate`, so that samples form a Poisson process. */
static uint64_t draw_countdown(size_t rate) {
    double u = ((double)(fast_random() >> 11) + 0.5) / 9007199254740992.0; /* uniform in (0, 1) */
    double bytes = -log(u) * (double)rate;
    return bytes >= 1e18 ? (uint64_t)1e18 : (uint64_t)bytes + 1;
}

/* Decides whether this allocation of `size` bytes is sampled; updates the thread's countdown. */
static bool should_sample(size_t size, size_t rate) {
    if (rate == 1)
        return true;
    unsigned epoch = atomic_load_explicit(&rate_epoch, memory_order_relaxed);
    if (tls_epoch != epoch) {
        tls_epoch = epoch;
        tls_left = draw_countdown(rate);
    }
    if (size < tls_left) {
        tls_left -= size;
        return false;
    }
    tls_left = draw_countdown(rate);
    return true;
}

void hmap_set_profile_rate(size_t bytes) {
    atomic_store_explicit(&profile_rate, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&rate_epoch, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------------------------
 * Records and the live table (guarded by prof_lock)
 * ------------------------------------------------------------------------------------------------------ */

typedef struct record {
    uint64_t hash;
    size_t size;
    const char *name; /* interned (see intern_name), or NULL */
    unsigned nframes;
    void *frames[MAX_FRAMES];
    uint64_t allocs, frees; /* sampled allocations and frees of blocks of this record */
} record;

typedef struct live_slot {
    const void *p; /* NULL: empty */
    size_t record; /* index into records */
} live_slot;

static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static record *records;
static size_t nrecords, records_cap;
static size_t *record_index; /* open addressing: record number + 1, 0 = empty */
static size_t record_index_cap;
static live_slot *live;
static size_t live_count, live_cap;
static char **names; /* interned map names, never freed (a map's name may die before the profile) */
static size_t nnames;

static const char *intern_name(const char *name) {
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < nnames; i++)
        if (strcmp(names[i], name) == 0)
            return names[i];
    char **grown = realloc(names, (nnames + 1) * sizeof *names);
    if (grown == NULL)
        return NULL;
    names = grown;
    char *copy = strdup(name);
    if (copy == NULL)
        return NULL;
    names[nnames++] = copy;
    return copy;
}

static uint64_t record_hash(void *const *frames, unsigned n, size_t size, const char *name) {
    uint64_t h = mix64(size ^ ((uint64_t)(uintptr_t)name << 1));
    for (unsigned i = 0; i < n; i++)
        h = mix64(h ^ (uint64_t)(uintptr_t)frames[i]);
    return h;
}

static bool record_index_grow(void) {
    size_t cap = record_index_cap ? record_index_cap * 2 : 256;
    size_t *idx = calloc(cap, sizeof *idx);
    if (idx == NULL)
        return false;
    for (size_t r = 0; r < nrecords; r++) {
        size_t i = records[r].hash & (cap - 1);
        while (idx[i] != 0)
            i = (i + 1) & (cap - 1);
        idx[i] = r + 1;
    }
    free(record_index);
    record_index = idx;
    record_index_cap = cap;
    return true;
}

/* The record for this (stack, size, name), created if new; SIZE_MAX when out of memory. */
static size_t find_or_add_record(void *const *frames, unsigned n, size_t size, const char *name) {
    uint64_t h = record_hash(frames, n, size, name);
    if ((nrecords + 1) * 2 > record_index_cap && !record_index_grow())
        return SIZE_MAX;
    size_t i = h & (record_index_cap - 1);
    for (; record_index[i] != 0; i = (i + 1) & (record_index_cap - 1)) {
        record *r = &records[record_index[i] - 1];
        if (r->hash == h && r->size == size && r->name == name && r->nframes == n &&
            memcmp(r->frames, frames, n * sizeof *frames) == 0)
            return record_index[i] - 1;
    }
    if (nrecords == records_cap) {
        size_t cap = records_cap ? records_cap * 2 : 64;
        record *grown = realloc(records, cap * sizeof *records);
        if (grown == NULL)
            return SIZE_MAX;
        records = grown;
        records_cap = cap;
    }
    record *r = &records[nrecords];
    memset(r, 0, sizeof *r);
    r->hash = h;
    r->size = size;
    r->name = name;
    r->nframes = n;
    memcpy(r->frames, frames, n * sizeof *frames);
    record_index[i] = nrecords + 1;
    return nrecords++;
}

static size_t live_home(const void *p, size_t cap) {
    return mix64((uint64_t)(uintptr_t)p) & (cap - 1);
}

static bool live_grow(void) {
    size_t cap = live_cap ? live_cap * 2 : 1024;
    live_slot *t = calloc(cap, sizeof *t);
    if (t == NULL)
        return false;
    for (size_t j = 0; j < live_cap; j++) {
        if (live[j].p == NULL)
            continue;
        size_t i = live_home(live[j].p, cap);
        while (t[i].p != NULL)
            i = (i + 1) & (cap - 1);
        t[i] = live[j];
    }
    free(live);
    live = t;
    live_cap = cap;
    return true;
}

static bool live_insert(const void *p, size_t rec) {
    if ((live_count + 1) * 2 > live_cap && !live_grow())
        return false;
    size_t i = live_home(p, live_cap);
    while (live[i].p != NULL && live[i].p != p)
        i = (i + 1) & (live_cap - 1);
    if (live[i].p == NULL)
        live_count++;
    live[i].p = p;
    live[i].record = rec;
    return true;
}

/* Removes p; returns its record, or SIZE_MAX when p was not sampled. Backward-shift deletion keeps the
 * probe sequences intact without tombstones. */
static size_t live_remove(const void *p) {
    if (live_cap == 0)
        return SIZE_MAX;
    size_t i = live_home(p, live_cap);
    while (live[i].p != p) {
        if (live[i].p == NULL)
            return SIZE_MAX;
        i = (i + 1) & (live_cap - 1);
    }
    size_t rec = live[i].record;
    size_t hole = i;
    for (size_t j = (i + 1) & (live_cap - 1); live[j].p != NULL; j = (j + 1) & (live_cap - 1)) {
        size_t home = live_home(live[j].p, live_cap);
        /* j's entry may move into the hole unless its home lies cyclically in (hole, j]. */
        bool home_after_hole = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!home_after_hole) {
            live[hole] = live[j];
            hole = j;
        }
    }
    live[hole].p = NULL;
    live_count--;
    return rec;
}

/* ------------------------------------------------------------------------------------------------------
 * The allocation hooks
 * ------------------------------------------------------------------------------------------------------ */

static void record_sample(const void *p, size_t size, const char *name) {
    void *frames[MAX_FRAMES];
    int n = backtrace(frames, MAX_FRAMES); /* may allocate (first call loads the unwinder): not under lock */
    if (n < 0)
        n = 0;
    pthread_mutex_lock(&prof_lock);
    size_t rec = find_or_add_record(frames, (unsigned)n, size, intern_name(name));
    if (rec != SIZE_MAX) {
        records[rec].allocs++;
        if (live_insert(p, rec))
            atomic_fetch_add_explicit(&live_samples, 1, memory_order_relaxed);
        else
            records[rec].frees++; /* cannot follow it: count it as gone rather than leak it forever */
    }
    pthread_mutex_unlock(&prof_lock);
}

void profile_note_alloc(const void *p, size_t size, const char *name) {
    size_t rate = atomic_load_explicit(&profile_rate, memory_order_relaxed);
    if (rate == 0 || p == NULL)
        return;
    if (should_sample(size, rate))
        record_sample(p, size, name);
}

void profile_note_free(const void *p, size_t size) {
    (void)size;
    if (p == NULL || atomic_load_explicit(&live_samples, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&prof_lock);
    size_t rec = live_remove(p);
    if (rec != SIZE_MAX) {
        records[rec].frees++;
        atomic_fetch_sub_explicit(&live_samples, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&prof_lock);
}

/* ------------------------------------------------------------------------------------------------------
 * Protobuf encoding: a growable buffer, varints, length-delimited fields
 * ------------------------------------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------------------------------------
 * The string table of a profile: string -> index, index 0 is ""
 * ------------------------------------------------------------------------------------------------------ */

typedef struct strtab {
    char **strs;
    size_t n, cap;
    size_t *index; /* open addressing: string number + 1 */
    size_t index_cap;
    bool failed;
} strtab;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static bool strtab_grow_index(strtab *t) {
    size_t cap = t->index_cap ? t->index_cap * 2 : 256;
    size_t *idx = calloc(cap, sizeof *idx);
    if (idx == NULL)
        return false;
    for (size_t k = 0; k < t->n; k++) {
        size_t i = str_hash(t->strs[k]) & (cap - 1);
        while (idx[i] != 0)
            i = (i + 1) & (cap - 1);
        idx[i] = k + 1;
    }
    free(t->index);
    t->index = idx;
    t->index_cap = cap;
    return true;
}

static uint64_t strtab_id(strtab *t, const char *s) {
    if (t->failed)
        return 0;
    if ((t->n + 1) * 2 > t->index_cap && !strtab_grow_index(t))
        goto fail;
    size_t i = str_hash(s) & (t->index_cap - 1);
    for (; t->index[i] != 0; i = (i + 1) & (t->index_cap - 1))
        if (strcmp(t->strs[t->index[i] - 1], s) == 0)
            return t->index[i] - 1;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **grown = realloc(t->strs, cap * sizeof *grown);
        if (grown == NULL)
            goto fail;
        t->strs = grown;
        t->cap = cap;
    }
    if ((t->strs[t->n] = strdup(s)) == NULL)
        goto fail;
    t->index[i] = t->n + 1;
    return t->n++;
fail:
    t->failed = true;
    return 0;
}

static void strtab_free(strtab *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->strs[i]);
    free(t->strs);
    free(t->index);
}

/* ------------------------------------------------------------------------------------------------------
 * Loaded objects: their address ranges, build ids and symbol tables (dl_iterate_phdr + the ELF files)
 * ------------------------------------------------------------------------------------------------------ */

/* Whose function a frame is in, as far as the symbol table tells (see symbol_owner). */
enum { OWNER_USER, OWNER_LIBRARY, OWNER_UNKNOWN };

typedef struct symbol {
    uintptr_t start;
    size_t size;
    const char *name; /* inside the mapped file */
    int owner;        /* OWNER_LIBRARY, OWNER_USER or OWNER_UNKNOWN (see symbol_owner) */
} symbol;

typedef struct object {
    char path[512];
    uintptr_t bias;    /* load bias: runtime address = file address + bias */
    uintptr_t lo, hi;  /* range of its loaded segments */
    bool is_main;      /* the program itself */
    char build_id[81]; /* hex, or "" */
    bool symbols_loaded;
    symbol *syms;
    size_t nsyms;
    void *file_map; /* the mapped ELF file the names point into */
    size_t file_bytes;
} object;

static object *objects;
static size_t nobjects;
static const object *library_object; /* the object holding this file's code */

static void hex_encode(const unsigned char *p, size_t n, char *out, size_t out_size) {
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < n && k + 2 < out_size; i++) {
        out[k++] = digits[p[i] >> 4];
        out[k++] = digits[p[i] & 15];
    }
    out[k] = '\0';
}

/* Finds NT_GNU_BUILD_ID in one PT_NOTE segment, already in memory. */
static void read_build_id(const unsigned char *notes, size_t len, char *out, size_t out_size) {
    size_t off = 0;
    while (off + sizeof(ElfW(Nhdr)) <= len) {
        const ElfW(Nhdr) *nh = (const void *)(notes + off);
        size_t name_at = off + sizeof *nh;
        size_t desc_at = name_at + ((nh->n_namesz + 3) & ~(size_t)3);
        size_t next = desc_at + ((nh->n_descsz + 3) & ~(size_t)3);
        if (next > len)
            return;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(notes + name_at, "GNU", 4) == 0) {
            hex_encode(notes + desc_at, nh->n_descsz, out, out_size);
            return;
        }
        off = next;
    }
}

static int note_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    (void)arg;
    object *grown = realloc(objects, (nobjects + 1) * sizeof *objects);
    if (grown == NULL)
        return 1;
    objects = grown;
    object *o = &objects[nobjects];
    memset(o, 0, sizeof *o);
    o->bias = info->dlpi_addr;
    o->lo = UINTPTR_MAX;
    o->is_main = nobjects == 0; /* dl_iterate_phdr reports the program first */
    if (o->is_main || info->dlpi_name == NULL || info->dlpi_name[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", o->path, sizeof o->path - 1);
        o->path[n > 0 ? n : 0] = '\0';
    } else {
        snprintf(o->path, sizeof o->path, "%s", info->dlpi_name);
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            if (start < o->lo)
                o->lo = start;
            if (start + ph->p_memsz > o->hi)
                o->hi = start + ph->p_memsz;
        } else if (ph->p_type == PT_NOTE && o->build_id[0] == '\0') {
            read_build_id((const unsigned char *)start, ph->p_memsz, o->build_id, sizeof o->build_id);
        }
    }
    nobjects++;
    return 0;
}

static object *object_of(uintptr_t addr) {
    for (size_t i = 0; i < nobjects; i++)
        if (addr >= objects[i].lo && addr < objects[i].hi)
            return &objects[i];
    return NULL;
}

/* The library's own files, whose static functions appear after their STT_FILE symbol in .symtab. */
static bool is_library_source(const char *file) {
    static const char *const sources[] = {"map.c",     "bucket.c",  "resize.c", "iter.c",
                                          "hash.c",    "alloc.c",   "profile.c", "trace.c",
                                          "random.c",  "memthread.c", "pool.c"};
    if (file == NULL)
        return false;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    for (size_t i = 0; i < sizeof sources / sizeof *sources; i++)
        if (strcmp(base, sources[i]) == 0)
            return true;
    return false;
}

/*
 * Static functions are the library's when their file is; global ones when they are public (hmap_*) or
 * internal (hmap__*, the prefix every internal header gives its functions). Any other global function may be the program's: unknown, decided by
 * its neighbours on the stack (see trimmed_start).
 */
static int symbol_owner(const char *name, unsigned bind, const char *file) {
    if (bind == STB_LOCAL)
        return is_library_source(file) ? OWNER_LIBRARY : OWNER_USER;
    if (strncmp(name, "hmap_", 5) == 0) /* public, or internal (hmap__) */
        return OWNER_LIBRARY;
    return OWNER_UNKNOWN;
}

static int compare_symbols(const void *a, const void *b) {
    const symbol *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Reads the function symbols of an object's ELF file (.symtab, else .dynsym). Failures leave it empty. */
static void load_symbols(object *o) {
    o->symbols_loaded = true;
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(ElfW(Ehdr)))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    o->file_map = map;
    o->file_bytes = (size_t)st.st_size;
    const unsigned char *base = map;
    const ElfW(Ehdr) *eh = map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff == 0 ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > o->file_bytes)
        return;
    const ElfW(Shdr) *sh = (const void *)(base + eh->e_shoff);
    const ElfW(Shdr) *symtab = NULL;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && symtab == NULL))
            symtab = &sh[i];
    if (symtab == NULL || symtab->sh_link >= eh->e_shnum)
        return;
    const ElfW(Shdr) *strsec = &sh[symtab->sh_link];
    if (symtab->sh_offset + symtab->sh_size > o->file_bytes ||
        strsec->sh_offset + strsec->sh_size > o->file_bytes)
        return;
    const ElfW(Sym) *syms = (const void *)(base + symtab->sh_offset);
    size_t n = symtab->sh_size / sizeof(ElfW(Sym));
    const char *strs = (const char *)(base + strsec->sh_offset);
    o->syms = malloc(n * sizeof *o->syms);
    if (o->syms == NULL)
        return;
    const char *file = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned type = ELF64_ST_TYPE(syms[i].st_info), bind = ELF64_ST_BIND(syms[i].st_info);
        if (syms[i].st_name >= strsec->sh_size)
            continue;
        const char *name = strs + syms[i].st_name;
        if (type == STT_FILE) {
            file = name;
            continue;
        }
        if (type != STT_FUNC || syms[i].st_shndx == SHN_UNDEF || syms[i].st_value == 0)
            continue;
        symbol *s = &o->syms[o->nsyms++];
        s->start = o->bias + syms[i].st_value;
        s->size = syms[i].st_size;
        s->name = name;
        s->owner = symbol_owner(name, bind, file);
    }
    qsort(o->syms, o->nsyms, sizeof *o->syms, compare_symbols);
}

static const symbol *symbol_of(object *o, uintptr_t addr) {
    if (!o->symbols_loaded)
        load_symbols(o);
    size_t lo = 0, hi = o->nsyms; /* find the last symbol starting at or below addr */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->syms[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const symbol *s = &o->syms[lo - 1];
    if (s->size != 0 && addr >= s->start + s->size)
        return NULL;
    return s;
}

static void objects_load(void) {
    nobjects = 0;
    dl_iterate_phdr(note_object, NULL);
    library_object = object_of((uintptr_t)&profile_note_alloc);
}

static void objects_free(void) {
    for (size_t i = 0; i < nobjects; i++) {
        free(objects[i].syms);
        if (objects[i].file_map)
            munmap(objects[i].file_map, objects[i].file_bytes);
    }
    free(objects);
    objects = NULL;
    nobjects = 0;
    library_object = NULL;
}

/* Is this return address inside the hmap library? */
static int frame_owner(uintptr_t pc) {
    object *o = object_of(pc);
    if (o == NULL || o != library_object)
        return OWNER_USER;
    if (!o->is_main)
        return OWNER_LIBRARY; /* the library is its own shared object */
    const symbol *s = symbol_of(o, pc);
    return s != NULL ? s->owner : OWNER_USER;
}

/*
 * Where a sampled stack starts once the library's frames are trimmed: just outside the outermost library
 * frame of the innermost run of library frames. Frames before the first library frame belong to whatever
 * wraps backtrace() (a sanitizer's interceptor) and go too. Unknown frames (global functions the symbol
 * table cannot attribute) count as the library's when a library frame lies beyond them before any user
 * frame, e.g. a new internal function between mem_alloc and hmap_put.
 */
static unsigned trimmed_start(void *const *frames, unsigned n) {
    unsigned i = 0;
    while (i < n && frame_owner((uintptr_t)frames[i]) != OWNER_LIBRARY)
        i++;
    if (i == n)
        return 0; /* no library frame at all: keep the whole stack */
    unsigned start = i;
    for (; i < n; i++) {
        int owner = frame_owner((uintptr_t)frames[i]);
        if (owner == OWNER_USER)
            break;
        if (owner == OWNER_LIBRARY)
            start = i + 1;
    }
    return start < n ? start : 0;
}

/* The function name at pc: the ELF symbol table first (it knows static functions), then dladdr. */
static const char *function_name(uintptr_t pc) {
    object *o = object_of(pc);
    if (o != NULL) {
        const symbol *s = symbol_of(o, pc);
        if (s != NULL)
            return s->name;
    }
    Dl_info info;
    if (dladdr((void *)pc, &info) != 0 && info.dli_sname != NULL)
        return info.dli_sname;
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------
 * Writing the profile
 * ------------------------------------------------------------------------------------------------------ */

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
       MAPPING_HAS_FUNCTIONS = 7,
       LOCATION_ID = 1,
       LOCATION_MAPPING_ID = 2,
       LOCATION_ADDRESS = 3,
       LOCATION_LINE = 4,
       LINE_FUNCTION_ID = 1,
       FUNCTION_ID = 1,
       FUNCTION_NAME = 2,
       FUNCTION_SYSTEM_NAME = 3,
};

typedef struct mapping {
    uintptr_t start, limit, offset;
    char path[512];
    const char *build_id;
} mapping;

/* The state of one write. */
typedef struct writer {
    pbuf out, msg, sub;
    strtab strings;
    mapping *maps;
    size_t nmaps;
    uintptr_t *loc_pcs; /* location i + 1 is at loc_pcs[i] (a return address - 1) */
    size_t nlocs, locs_cap;
    size_t *loc_index; /* open addressing over loc_pcs: location number + 1 */
    size_t loc_index_cap;
    const char **func_names; /* function i + 1 */
    size_t nfuncs;
    bool failed;
} writer;

/* Executable file mappings of /proc/self/maps: these are what pprof symbolizes against. */
static void read_mappings(writer *w) {
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long start, end, offset;
        char perms[8], path[512] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511[^\n]", &start, &end, perms, &offset, path) < 4)
            continue;
        if (strchr(perms, 'x') == NULL || path[0] != '/')
            continue;
        mapping *grown = realloc(w->maps, (w->nmaps + 1) * sizeof *grown);
        if (grown == NULL) {
            w->failed = true;
            break;
        }
        w->maps = grown;
        mapping *m = &w->maps[w->nmaps++];
        m->start = start;
        m->limit = end;
        m->offset = offset;
        snprintf(m->path, sizeof m->path, "%s", path);
        const object *o = object_of(start);
        m->build_id = o != NULL ? o->build_id : "";
    }
    fclose(f);
}

static uint64_t mapping_id_of(const writer *w, uintptr_t pc) {
    for (size_t i = 0; i < w->nmaps; i++)
        if (pc >= w->maps[i].start && pc < w->maps[i].limit)
            return i + 1;
    return 0;
}

static bool loc_index_grow(writer *w) {
    size_t cap = w->loc_index_cap ? w->loc_index_cap * 2 : 256;
    size_t *idx = calloc(cap, sizeof *idx);
    if (idx == NULL)
        return false;
    for (size_t k = 0; k < w->nlocs; k++) {
        size_t i = mix64(w->loc_pcs[k]) & (cap - 1);
        while (idx[i] != 0)
            i = (i + 1) & (cap - 1);
        idx[i] = k + 1;
    }
    free(w->loc_index);
    w->loc_index = idx;
    w->loc_index_cap = cap;
    return true;
}

/* The location id of a pc, numbered in order of first use. */
static uint64_t location_id(writer *w, uintptr_t pc) {
    if ((w->nlocs + 1) * 2 > w->loc_index_cap && !loc_index_grow(w))
        goto fail;
    size_t i = mix64(pc) & (w->loc_index_cap - 1);
    for (; w->loc_index[i] != 0; i = (i + 1) & (w->loc_index_cap - 1))
        if (w->loc_pcs[w->loc_index[i] - 1] == pc)
            return w->loc_index[i];
    if (w->nlocs == w->locs_cap) {
        size_t cap = w->locs_cap ? w->locs_cap * 2 : 256;
        uintptr_t *grown = realloc(w->loc_pcs, cap * sizeof *grown);
        if (grown == NULL)
            goto fail;
        w->loc_pcs = grown;
        w->locs_cap = cap;
    }
    w->loc_pcs[w->nlocs] = pc;
    w->loc_index[i] = w->nlocs + 1;
    return ++w->nlocs;
fail:
    w->failed = true;
    return 0;
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
    pb_uint(&w->msg, VALUE_TYPE_TYPE, strtab_id(&w->strings, type));
    pb_uint(&w->msg, VALUE_TYPE_UNIT, strtab_id(&w->strings, unit));
    pb_message(&w->out, field, &w->msg);
}

static void write_sample(writer *w, const record *r, size_t rate) {
    unsigned first = trimmed_start(r->frames, r->nframes); /* the stack starts at the API's caller */
    uint64_t ids[MAX_FRAMES];
    size_t n = 0;
    for (unsigned i = first; i < r->nframes; i++)
        ids[n++] = location_id(w, (uintptr_t)r->frames[i] - 1);

    int64_t alloc_objs, alloc_bytes, inuse_objs, inuse_bytes;
    unsample(r->allocs, r->size, rate, &alloc_objs, &alloc_bytes);
    unsample(r->allocs - r->frees, r->size, rate, &inuse_objs, &inuse_bytes);
    uint64_t values[4] = {(uint64_t)alloc_objs, (uint64_t)alloc_bytes, (uint64_t)inuse_objs,
                          (uint64_t)inuse_bytes};

    pb_packed(&w->msg, SAMPLE_LOCATION_ID, ids, n);
    pb_packed(&w->msg, SAMPLE_VALUE, values, 4);
    if (r->name != NULL) {
        pb_uint(&w->sub, LABEL_KEY, strtab_id(&w->strings, "map"));
        pb_uint(&w->sub, LABEL_STR, strtab_id(&w->strings, r->name));
        pb_message(&w->msg, SAMPLE_LABEL, &w->sub);
    }
    pb_message(&w->out, PROFILE_SAMPLE, &w->msg);
}

static void write_mappings(writer *w) {
    for (size_t i = 0; i < w->nmaps; i++) {
        const mapping *m = &w->maps[i];
        pb_uint(&w->msg, MAPPING_ID, i + 1);
        pb_uint(&w->msg, MAPPING_START, m->start);
        pb_uint(&w->msg, MAPPING_LIMIT, m->limit);
        pb_uint(&w->msg, MAPPING_OFFSET, m->offset);
        pb_uint(&w->msg, MAPPING_FILENAME, strtab_id(&w->strings, m->path));
        pb_uint(&w->msg, MAPPING_BUILD_ID, strtab_id(&w->strings, m->build_id));
        pb_uint(&w->msg, MAPPING_HAS_FUNCTIONS, 1);
        pb_message(&w->out, PROFILE_MAPPING, &w->msg);
    }
}

/* The function id for a name, numbered in order of first use (linear: profiles hold few functions). */
static uint64_t function_id(writer *w, const char *name) {
    for (size_t i = 0; i < w->nfuncs; i++)
        if (strcmp(w->func_names[i], name) == 0)
            return i + 1;
    const char **grown = realloc(w->func_names, (w->nfuncs + 1) * sizeof *grown);
    if (grown == NULL) {
        w->failed = true;
        return 0;
    }
    w->func_names = grown;
    w->func_names[w->nfuncs] = name;
    return ++w->nfuncs;
}

static void write_locations(writer *w) {
    for (size_t i = 0; i < w->nlocs; i++) {
        uintptr_t pc = w->loc_pcs[i];
        pb_uint(&w->msg, LOCATION_ID, i + 1);
        pb_uint(&w->msg, LOCATION_MAPPING_ID, mapping_id_of(w, pc));
        pb_uint(&w->msg, LOCATION_ADDRESS, pc);
        const char *name = function_name(pc);
        if (name != NULL) {
            pb_uint(&w->sub, LINE_FUNCTION_ID, function_id(w, name));
            pb_message(&w->msg, LOCATION_LINE, &w->sub);
        }
        pb_message(&w->out, PROFILE_LOCATION, &w->msg);
    }
}

static void write_functions(writer *w) {
    for (size_t i = 0; i < w->nfuncs; i++) {
        uint64_t name = strtab_id(&w->strings, w->func_names[i]);
        pb_uint(&w->msg, FUNCTION_ID, i + 1);
        pb_uint(&w->msg, FUNCTION_NAME, name);
        pb_uint(&w->msg, FUNCTION_SYSTEM_NAME, name);
        pb_message(&w->out, PROFILE_FUNCTION, &w->msg);
    }
}

/* Encodes the whole profile of `recs` into w->out. */
static void encode_profile(writer *w, const record *recs, size_t n, size_t rate) {
    strtab_id(&w->strings, ""); /* index 0 must be the empty string */
    write_value_type(w, PROFILE_SAMPLE_TYPE, "alloc_objects", "count");
    write_value_type(w, PROFILE_SAMPLE_TYPE, "alloc_space", "bytes");
    write_value_type(w, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
    write_value_type(w, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
    for (size_t i = 0; i < n; i++)
        write_sample(w, &recs[i], rate);
    read_mappings(w);
    write_mappings(w);
    write_locations(w);
    write_functions(w);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pb_uint(&w->out, PROFILE_TIME_NANOS, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
    write_value_type(w, PROFILE_PERIOD_TYPE, "space", "bytes");
    pb_uint(&w->out, PROFILE_PERIOD, rate);
    pb_uint(&w->out, PROFILE_DEFAULT_SAMPLE_TYPE, strtab_id(&w->strings, "inuse_space"));
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

/* Copies the records, so that encoding (slow: symbol tables, file I/O) runs without the lock. */
static record *snapshot_records(size_t *n) {
    pthread_mutex_lock(&prof_lock);
    record *copy = malloc((nrecords ? nrecords : 1) * sizeof *copy);
    if (copy != NULL) {
        if (nrecords != 0)
            memcpy(copy, records, nrecords * sizeof *copy);
        *n = nrecords;
    }
    pthread_mutex_unlock(&prof_lock);
    return copy;
}

int hmap_write_heap_profile(const char *path) {
    if (path == NULL)
        return -EINVAL;
    size_t n = 0;
    record *recs = snapshot_records(&n);
    if (recs == NULL)
        return -ENOMEM;
    size_t rate = atomic_load_explicit(&profile_rate, memory_order_relaxed);
    static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER; /* the objects table is shared */
    pthread_mutex_lock(&write_lock);
    objects_load();
    writer w = {0};
    encode_profile(&w, recs, n, rate);
    bool failed = w.failed || w.out.failed || w.msg.failed || w.sub.failed || w.strings.failed;
    int err = failed ? -ENOMEM : write_gzip(path, w.out.data, w.out.len);
    objects_free();
    pthread_mutex_unlock(&write_lock);
    free(w.out.data);
    free(w.msg.data);
    free(w.sub.data);
    strtab_free(&w.strings);
    free(w.maps);
    free(w.loc_pcs);
    free(w.loc_index);
    free(w.func_names);
    free(recs);
    return err;
}

/* ------------------------------------------------------------------------------------------------------
 * Environment: HMAP_PROFILE_RATE, HMAP_HEAPPROFILE
 * ------------------------------------------------------------------------------------------------------ */

static char *exit_profile_path;

static void write_exit_profile(void) {
    int err = hmap_write_heap_profile(exit_profile_path);
    if (err != 0)
        fprintf(stderr, "hmap: cannot write HMAP_HEAPPROFILE=%s: %s\n", exit_profile_path, strerror(-err));
}

__attribute__((constructor)) static void profile_read_environment(void) {
    const char *rate = getenv("HMAP_PROFILE_RATE");
    if (rate != NULL && *rate != '\0') {
        char *end;
        unsigned long long v = strtoull(rate, &end, 10);
        if (*end == '\0')
            hmap_set_profile_rate((size_t)v);
        else
            fprintf(stderr, "hmap: ignoring HMAP_PROFILE_RATE=%s (not a number)\n", rate);
    }
    const char *path = getenv("HMAP_HEAPPROFILE");
    if (path != NULL && *path != '\0' && (exit_profile_path = strdup(path)) != NULL)
        atexit(write_exit_profile);
}
