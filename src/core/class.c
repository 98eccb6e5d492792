/* SPDX-License-Identifier: MIT */
/*
 * class.c — map classes: what every map of one kind shares, interned.
 *
 * A map's type (sizes, callbacks), its key kind, its slot layout, its allocator hook, its option flags and
 * its name are fixed at creation and are the same for every map made with the same type and options. They
 * live in one immutable record, a map_class (core.h), and each map points to it: the handle keeps only
 * what differs between maps (arrays, count, seed, stamps) and copies of the few layout fields that the
 * lookups read on every call.
 *
 * Maps on the built-in allocator share their class through a process-wide registry: a small hash table of
 * refcounted records, keyed by everything in the record, under one mutex (fork-safe: the atfork handlers
 * take it around fork, so a child never inherits it locked). Creating or freeing such a map takes the
 * lock once, unless it makes a map of the same class as the thread's previous one: each thread keeps its
 * last class (with a reference of its own, given back when the thread exits or moves on to another class)
 * and takes another reference on it without the lock, after comparing the type and options (a few dozen
 * instructions instead of a hash, a lock and a search: some 390, an eighth of what making, filling and
 * freeing a map of 1-8 u64 entries cost, callgrind). A
 * class's refcount is atomic for that; it only reaches zero under the lock, and a thread's own reference
 * keeps its last class from getting there. Their records come from the C heap directly and are counted in no
 * map's bytes and not in hmap_read_memstats — like the heap profiler's own memory, they are the library's
 * bookkeeping, a few hundred bytes per distinct (type, options, name) among the live maps, not any one map's
 * memory.
 *
 * A map with its own allocator hook owns its class instead: the record is allocated through the hook,
 * counted in that map's bytes, and freed with it. Every byte such a map takes then goes through its hook,
 * as the hook's contract says, and a map's bytes stay exactly what memstats and the hook see. (The
 * concurrent map gives each shard a hook of its own, so its shards would share nothing anyway.)
 */
#include "core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define REGISTRY_CHAINS 64

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static map_class *registry[REGISTRY_CHAINS];
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

/* Each thread's last class (see the top), holding a reference; the key's destructor gives it back. */
static _Thread_local const map_class *thread_last;
static pthread_key_t thread_exit_key;
static _Atomic bool thread_exit_key_made; /* and not deleted: see class_unload */
static void thread_exit_release(void *unused);

static void registry_fork_prepare(void) { pthread_mutex_lock(&registry_lock); }
static void registry_fork_parent(void) { pthread_mutex_unlock(&registry_lock); }
static void registry_fork_child(void) { pthread_mutex_unlock(&registry_lock); }
static void registry_init(void) {
    pthread_atfork(registry_fork_prepare, registry_fork_parent, registry_fork_child);
    atomic_store(&thread_exit_key_made, pthread_key_create(&thread_exit_key, thread_exit_release) == 0);
}

/* When the library is unloaded (dlclose of the shared build; also at exit), the key goes: a thread that
 * exits later must not call a destructor whose code is gone. Its reference then stays, as the main thread's
 * does: a class record, never freed memory. */
__attribute__((destructor)) static void class_unload(void) {
    if (atomic_exchange(&thread_exit_key_made, false))
        pthread_key_delete(thread_exit_key);
}

_Static_assert(sizeof(hmap_type) == 2 * sizeof(size_t) + 9 * sizeof(void *),
               "hmap_type has no padding: classes compare types bytewise");

static key_kind choose_kind(const hmap_type *t) {
    if (t->key_size == 8 && !t->hash && !t->equal && !t->hash_ctx && !t->equal_ctx)
        return KEYS_U64;
    if (t->key_size == sizeof(char *) && t->hash == hmap_hash_cstr && t->equal == hmap_equal_cstr)
        return KEYS_CSTR;
    return KEYS_GENERIC;
}

/* Everything a class is looked up by, filled in as the record would be (the name not yet copied). */
static void describe(map_class *c, const hmap_type *type, const hmap_allocator *a, const hmap_options *opts) {
    memset(c, 0, sizeof *c);
    mem_source_init(&c->src, a, opts ? opts->name : NULL);
    c->type = *type;
    c->kind = choose_kind(type);
    c->drops =
        type->key_drop || type->key_drop_ctx || (type->val_size && (type->val_drop || type->val_drop_ctx));
    c->hash_off = c->kind == KEYS_CSTR || type->hash || type->hash_ctx ? 8 : 0; /* see stores_hashes() */
    c->no_shrink = opts && opts->no_shrink;
    c->fixed_seed = opts && opts->fixed_seed;
    set_layout(c);
}

static bool same_name(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool same_class(const map_class *a, const map_class *b) {
    return memcmp(&a->type, &b->type, sizeof a->type) == 0 && a->src.alloc.alloc == b->src.alloc.alloc &&
           a->src.alloc.free == b->src.alloc.free && a->src.alloc.ctx == b->src.alloc.ctx &&
           a->no_shrink == b->no_shrink && a->fixed_seed == b->fixed_seed &&
           same_name(a->src.name, b->src.name);
}

static size_t chain_of(const map_class *c) {
    uint64_t h = hash_bytes_inline(&c->type, sizeof c->type, (uint64_t)c->no_shrink << 1 | c->fixed_seed);
    if (c->src.name)
        h ^= hash_bytes_inline(c->src.name, strlen(c->src.name), h);
    return (size_t)(h % REGISTRY_CHAINS);
}

/* A record for the class `key` describes, with its own copy of the name, from `alloc` (which counts it
 * where it must); NULL on ENOMEM. */
static map_class *new_record(const map_class *key, void *(*alloc)(size_t, void *), void *ctx) {
    size_t name_bytes = key->src.name ? strlen(key->src.name) + 1 : 0;
    map_class *c = alloc(sizeof *c + name_bytes, ctx);
    if (!c)
        return NULL;
    *c = *key;
    c->record_bytes = sizeof *c + name_bytes;
    if (name_bytes) {
        memcpy(c->name_copy, key->src.name, name_bytes);
        c->src.name = c->name_copy;
    }
    atomic_init(&c->refs, 1);
    return c;
}

/* ---- the thread's last class ---- */

static void thread_exit_release(void *unused) {
    (void)unused;
    const map_class *c = thread_last;
    thread_last = NULL;
    if (c)
        class_release(c, NULL);
}

/* Is c what class_acquire(type, built-in allocator, opts) would find? */
static bool is_thread_last(const map_class *c, const hmap_type *type, const hmap_options *opts) {
    return c && memcmp(&c->type, type, sizeof *type) == 0 && c->no_shrink == (opts && opts->no_shrink) &&
           c->fixed_seed == (opts && opts->fixed_seed) && same_name(c->src.name, opts ? opts->name : NULL);
}

/* c (just acquired, from the registry) becomes the thread's last class, with a reference of its own. */
static void remember_thread_last(const map_class *c) {
    if (!atomic_load_explicit(&thread_exit_key_made, memory_order_relaxed)) /* (set in registry_init) */
        return;
    const map_class *prev = thread_last;
    atomic_fetch_add_explicit(&((map_class *)c)->refs, 1, memory_order_relaxed);
    thread_last = c;
    (void)pthread_setspecific(thread_exit_key, (void *)1); /* non-NULL: the destructor runs */
    if (prev)
        class_release(prev, NULL);
}

static void *heap_alloc(size_t size, void *ctx) {
    (void)ctx;
    return malloc(size);
}

static void *hook_alloc(size_t size, void *ctx) {
    mem_owner *o = ctx;
    return mem_alloc(o, size);
}

const map_class *class_acquire(const hmap_type *type, const hmap_allocator *a, const hmap_options *opts,
                               mem_owner *owner) {
    const map_class *last = thread_last;
    bool built_in = !mem_allocator_is_custom(a);
    if (built_in &&
        is_thread_last(last, type, opts)) { /* its reference keeps it registered: no lock needed */
        atomic_fetch_add_explicit(&((map_class *)last)->refs, 1, memory_order_relaxed);
        return last;
    }
    map_class key;
    describe(&key, type, a, opts);
    if (key.src.custom_alloc) { /* owned: through the hook, counted in the map (owner's source set below) */
        mem_owner o = {&key.src, 0};
        map_class *c = new_record(&key, hook_alloc, &o);
        if (c)
            c->owned = true, owner->bytes += o.bytes;
        return c;
    }
    pthread_once(&registry_once, registry_init);
    size_t chain = chain_of(&key);
    pthread_mutex_lock(&registry_lock);
    map_class *c = registry[chain];
    while (c && !same_class(c, &key))
        c = c->next;
    if (c) {
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    } else if ((c = new_record(&key, heap_alloc, NULL)) != NULL) {
        c->next = registry[chain];
        registry[chain] = c;
    }
    pthread_mutex_unlock(&registry_lock);
    if (c && built_in)
        remember_thread_last(c);
    return c;
}

void class_release(const map_class *cls, mem_owner *owner) {
    map_class *c = (map_class *)cls; /* the refcount and link are the only fields that ever change */
    if (c->owned) {
        mem_source src = c->src; /* the record goes through its own hook */
        mem_owner o = {&src, owner->bytes};
        mem_free(&o, c, c->record_bytes);
        owner->bytes = o.bytes;
        return;
    }
    pthread_mutex_lock(&registry_lock);
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        map_class **link = &registry[chain_of(c)];
        while (*link != c)
            link = &(*link)->next;
        *link = c->next;
        free(c);
    }
    pthread_mutex_unlock(&registry_lock);
}
