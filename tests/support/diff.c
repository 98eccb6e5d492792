/* SPDX-License-Identifier: MIT */
/*
 * diff.c — the differential operations of diff.h.
 *
 * Layout: keys and values (ids to bytes, owned strings and value blocks, the drop callbacks and custom
 * hashes, which reach the active harness through a static pointer because callbacks carry no context);
 * then the bookkeeping shared by every write (was an allocation refused during the call? then the call
 * must report it or have done its job); then the operations; then iterations.
 *
 * Expected drops are counted as the rules say they must happen, and compared with what the callbacks saw
 * at every diff_check: a replace drops the old value, and drops the key passed unless it is bitwise
 * identical to the stored key (DIFF_RULE_SAME_KEY; without it either is accepted, see diff.h); del, clear
 * and free drop both; take drops the parts it does not hand over; assign never drops a value.
 */
#include "diff.h"
#include "core/check.h" /* the library's own consistency walker */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define MAX_KEY_BUF (DIFF_MAX_KEY + 64) /* string keys: up to ~60 characters and the NUL */
#define BLOCK_MAGIC 0xb10cb10cb10cb10cULL
#define GRAVE_BYTE 0xa5

static diff *active;
static uint64_t key_drops, val_drops;
static long live_strings, live_blocks;

/* ---------------------------------------------------------------- keys */

static bool string_keys(const diff *d) { return d->cfg.key_size == 0; }

uint64_t diff_id_of(const diff *d, uint64_t id) {
    size_t ks = d->cfg.key_size;
    return ks > 0 && ks < 8 ? id & ((1ULL << (8 * ks)) - 1) : id;
}

/* A key's bytes as the model stores them: fixed keys of up to 8 bytes are the id itself; longer ones are
 * filled from the id's group (id >> 3) and end with the id, so the keys of a group differ in their last 8
 * bytes only (an equality that stops early shows); strings are a padding drawn from the group, a ':' (the
 * padding never holds one), then the id in hex. */
static size_t key_bytes(const diff *d, uint64_t id, unsigned char *out) {
    size_t ks = d->cfg.key_size;
    uint64_t group = id >> 3;
    if (ks == 0) {
        size_t pad = mix64(group) % 40;
        for (size_t i = 0; i < pad; i++)
            out[i] = (unsigned char)('a' + mix64(group + i) % 26);
        out[pad++] = ':';
        int digits = 1;
        while (digits < 16 && id >> (4 * digits))
            digits++;
        for (int i = digits - 1; i >= 0; i--) /* hex by hand: snprintf was a sixth of the sweep's time */
            out[pad++] = (unsigned char)"0123456789abcdef"[(id >> (4 * i)) & 15];
        return pad;
    }
    if (ks <= 8) {
        memcpy(out, &id, ks);
        return ks;
    }
    for (size_t i = 0; i < ks - 8; i += 8) {
        uint64_t w = mix64(group + i * 0x1000193ULL);
        memcpy(out + i, &w, ks - 8 - i < 8 ? ks - 8 - i : 8);
    }
    memcpy(out + ks - 8, &id, 8);
    return ks;
}

static uint64_t id_of_bytes(const diff *d, const unsigned char *kb, size_t klen) {
    uint64_t id = 0;
    size_t ks = d->cfg.key_size;
    if (ks == 0) { /* the model's bytes are not NUL-terminated */
        const unsigned char *colon = memchr(kb, ':', klen);
        check(colon != NULL, "%s: a string key without its id", diff_where((diff *)d));
        for (const unsigned char *c = colon + 1; c < kb + klen; c++)
            id = id << 4 | (uint64_t)(*c <= '9' ? *c - '0' : *c - 'a' + 10);
        return id;
    }
    memcpy(&id, ks <= 8 ? kb : kb + ks - 8, ks < 8 ? ks : 8);
    return id;
}

uint64_t diff_existing_id(const diff *d, uint64_t i, uint64_t fallback) {
    if (model_len(&d->ref) == 0)
        return fallback;
    const model_entry *e = model_at(&d->ref, i % model_len(&d->ref));
    return id_of_bytes(d, e->key, e->klen);
}

/* What a call passes as the key. For string keys `str` holds the char * and `arg` points to it. */
typedef struct key_arg {
    unsigned char bytes[MAX_KEY_BUF];
    size_t klen;
    char *str;
    const void *arg;
    bool fresh; /* str is a new string the harness made (the map takes it, or the harness frees it) */
} key_arg;

/* A key for a lookup or delete: no new string. */
static void lookup_key(const diff *d, uint64_t id, key_arg *k) {
    k->klen = key_bytes(d, id, k->bytes);
    k->fresh = false;
    if (string_keys(d)) {
        k->bytes[k->klen] = '\0';
        k->str = (char *)k->bytes;
        k->arg = &k->str;
    } else {
        k->arg = k->bytes;
    }
}

/* A key whose ownership goes to the map: strings are duplicated. */
static void owned_key(const diff *d, uint64_t id, key_arg *k) {
    lookup_key(d, id, k);
    if (string_keys(d)) {
        k->str = xstrdup((char *)k->bytes);
        live_strings++;
        k->fresh = true;
    }
}

/* The map refused the key (an error): it is still ours. */
static void disown_key(key_arg *k) {
    if (k->fresh) {
        free(k->str);
        live_strings--;
        k->fresh = false;
    }
}

static void drop_string(void *key) {
    char *s = *(char **)key;
    check(s != NULL, "key_drop of a NULL string");
    memset(s, 0x5a, strlen(s)); /* a stale read now sees garbage, not the old key */
    free(s);
    live_strings--;
    key_drops++;
}

static void count_key_drop(void *key) {
    (void)key;
    key_drops++;
}

/* ---------------------------------------------------------------- values */

typedef struct value_block {
    uint64_t magic, serial;
} value_block;

/* A fresh value: bytes from the seed and a serial number; owned values start with a pointer to a heap
 * block (the map owns it once the value is stored, and frees it through val_drop). */
static void make_value(diff *d, unsigned char *out) {
    uint64_t serial = ++d->serial;
    for (size_t i = 0; i < d->cfg.val_size; i += 8) {
        uint64_t w = mix64(d->cfg.seed ^ (serial * 0x9e3779b97f4a7c15ULL + i));
        memcpy(out + i, &w, d->cfg.val_size - i < 8 ? d->cfg.val_size - i : 8);
    }
    if (d->cfg.owned_values) {
        value_block *b = xmalloc(sizeof *b);
        *b = (value_block){BLOCK_MAGIC, serial};
        memcpy(out, &b, sizeof b);
        live_blocks++;
    }
}

static void free_block(const void *val) {
    value_block *b;
    memcpy(&b, val, sizeof b);
    check(b != NULL && b->magic == BLOCK_MAGIC, "an owned value whose block is not live");
    b->magic = 0;
    free(b);
    live_blocks--;
}

/* A value the harness made or got back (a refused put, a take): it frees the block itself. */
static void release_value(const diff *d, const void *val) {
    if (d->cfg.owned_values)
        free_block(val);
}

static void drop_block(void *val) {
    free_block(val);
    val_drops++;
}

static void count_val_drop(void *val) {
    (void)val;
    val_drops++;
}

/* ---------------------------------------------------------------- custom hashes */

static uint64_t hash_good_fixed(const void *key, uint64_t seed) {
    return hmap_hash_bytes(key, active->cfg.key_size, seed ^ 0x600d600d600d600dULL);
}

static bool equal_fixed(const void *a, const void *b) { return memcmp(a, b, active->cfg.key_size) == 0; }

static uint64_t hash_good_cstr(const void *key, uint64_t seed) {
    const char *s = *(const char *const *)key;
    return hmap_hash_bytes(s, strlen(s), seed + 1);
}

static uint64_t hash_poor_fixed(const void *key, uint64_t seed) {
    (void)seed;
    return *(const unsigned char *)key;
}

static uint64_t hash_poor_cstr(const void *key, uint64_t seed) {
    (void)seed;
    return (unsigned char)**(const char *const *)key;
}

static uint64_t hash_constant(const void *key, uint64_t seed) {
    (void)key;
    (void)seed;
    return 0x5eed5eed5eed5eedULL;
}

static hmap_type type_for(const diff_config *c) {
    bool str = c->key_size == 0;
    hmap_type t = {.key_size = str ? sizeof(char *) : c->key_size, .val_size = c->val_size};
    switch (c->hash) {
    case DIFF_HASH_BUILTIN:
        t.hash = str ? hmap_hash_cstr : NULL;
        break;
    case DIFF_HASH_GOOD:
        t.hash = str ? hash_good_cstr : hash_good_fixed;
        t.equal = str ? NULL : equal_fixed;
        break;
    case DIFF_HASH_POOR:
        t.hash = str ? hash_poor_cstr : hash_poor_fixed;
        break;
    default:
        t.hash = hash_constant;
        break;
    }
    if (str) {
        t.equal = hmap_equal_cstr;
        t.key_drop = drop_string;
    } else if (c->count_drops) {
        t.key_drop = count_key_drop;
    }
    if (c->val_size && c->owned_values)
        t.val_drop = drop_block;
    else if (c->val_size && c->count_drops)
        t.val_drop = count_val_drop;
    return t;
}

static bool key_drops_counted(const diff *d) { return string_keys(d) || d->cfg.count_drops; }

static bool val_drops_counted(const diff *d) {
    return d->cfg.val_size && (d->cfg.owned_values || d->cfg.count_drops);
}

/* ---------------------------------------------------------------- rules */

static const char *const RULE_NAMES[] = {"samekey", "alias", "abandon", "reinsert"};

unsigned diff_rules_from_env(void) {
    const char *s = getenv("HMAP_FUZZ_STRICT");
    if (!s || !*s || strcmp(s, "1") == 0)
        return DIFF_RULES_ALL;
    unsigned rules = 0;
    for (unsigned i = 0; i < 4; i++) {
        const char *at = strstr(s, RULE_NAMES[i]);
        size_t n = strlen(RULE_NAMES[i]);
        if (at && (at == s || at[-1] == ',') && (at[n] == '\0' || at[n] == ','))
            rules |= 1u << i;
    }
    return rules; /* "0", or names only */
}

const char *diff_rules_name(unsigned rules) {
    static char buf[64];
    if (rules == DIFF_RULES_ALL)
        return "all";
    if (rules == 0)
        return "none";
    buf[0] = '\0';
    for (unsigned i = 0; i < 4; i++)
        if (rules & (1u << i)) {
            if (buf[0])
                strcat(buf, ",");
            strcat(buf, RULE_NAMES[i]);
        }
    return buf;
}

/* ---------------------------------------------------------------- bookkeeping */

const char *diff_where(diff *d) {
    snprintf(d->context, sizeof d->context, "[%s seed=%#" PRIx64 " op=%" PRIu64 " len=%zu%s%s]",
             d->cfg.name ? d->cfg.name : "diff", d->cfg.seed, d->op, model_len(&d->ref), d->note ? " " : "",
             d->note ? d->note : "");
    return d->context;
}

typedef struct call {
    uint64_t failures; /* the allocator's refusals before the call */
} call;

static call begin_write(diff *d) {
    d->op++;
    return (call){d->ta.failures};
}

static bool refused_during(const diff *d, call c) { return d->ta.failures > c.failures; }

/* The call reported -ENOMEM: an allocation must have been refused during it, and nothing changed. */
static void reported_error(diff *d, call c, const char *what) {
    d->writes++;
    check(refused_during(d, c), "%s %s reported ENOMEM but no allocation was refused", diff_where(d), what);
    d->errors_reported++;
    model_assert_matches(&d->ref, d->m, diff_where(d));
}

/* The call succeeded (the model has been updated): if an allocation was refused during it, the map
 * absorbed it (a postponed resize) and must still be exactly right. */
static void succeeded(diff *d, call c) {
    d->writes++;
    if (refused_during(d, c)) {
        d->failures_absorbed++;
        model_assert_matches(&d->ref, d->m, diff_where(d));
    }
    if (model_len(&d->ref) > d->max_len)
        d->max_len = model_len(&d->ref);
}

static void expect_drops_of_removed(diff *d) {
    d->expect_key_drops += key_drops_counted(d);
    d->expect_val_drops += val_drops_counted(d);
}

/* A replace (put or assign of a present key) drops the key passed unless it is the stored key. */
static void expect_key_drop_of_replace(diff *d, bool identical_key) {
    if (!key_drops_counted(d))
        return;
    if (!identical_key)
        d->expect_key_drops++;
    else if (!(d->cfg.rules & DIFF_RULE_SAME_KEY))
        d->key_drop_slack++; /* the older rule dropped it anyway (fixed-size keys only: harmless) */
}

static const model_entry *find_entry(const diff *d, const key_arg *k) {
    return model_find(&d->ref, k->bytes, k->klen);
}

/* ---------------------------------------------------------------- lifecycle */

void diff_init(diff *d, const diff_config *cfg) {
    check(cfg->key_size <= DIFF_MAX_KEY && cfg->val_size <= DIFF_MAX_VAL, "configuration out of range");
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    if (d->cfg.val_size < 8)
        d->cfg.owned_values = false;
    active = d;
    key_drops = val_drops = 0;
    live_strings = live_blocks = 0;
    test_alloc_init(&d->ta);
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    d->memstats_live_at_start = ms.live_bytes;
    hmap_type t = type_for(&d->cfg);
    hmap_options o = {.allocator = d->cfg.custom_allocator ? &d->ta.hook : NULL,
                      .no_shrink = d->cfg.no_shrink,
                      .fixed_seed = d->cfg.fixed_seed,
                      .seed = d->cfg.seed,
                      .name = d->cfg.name};
    d->m = hmap_new_opts(&t, d->cfg.hint, &o);
    check(d->m != NULL, "%s hmap_new_opts failed", diff_where(d));
    model_init(&d->ref, d->cfg.key_size, d->cfg.val_size);
}

static void check_graves(diff *d) {
    for (size_t g = 0; g < d->ngraves; g++)
        for (size_t i = 0; i < sizeof(hmap_iter); i++)
            check(d->graves[g][i] == GRAVE_BYTE,
                  "%s the map wrote into an abandoned iterator (byte %zu of %zu: %#x)", diff_where(d), i,
                  sizeof(hmap_iter), d->graves[g][i]);
}

static void check_drops(diff *d) {
    check(key_drops >= d->expect_key_drops && key_drops <= d->expect_key_drops + d->key_drop_slack,
          "%s key drops %" PRIu64 ", expected %" PRIu64 " (+%" PRIu64 " allowed)", diff_where(d), key_drops,
          d->expect_key_drops, d->key_drop_slack);
    check(val_drops == d->expect_val_drops, "%s value drops %" PRIu64 ", expected %" PRIu64, diff_where(d),
          val_drops, d->expect_val_drops);
}

void diff_check_consistent(const hmap *m) {
    char why[256];
    check(map_check(m, why, sizeof why) == 0, "inconsistent map: %s", why);
}

void diff_check(diff *d) {
    char why[256];
    check(map_check(d->m, why, sizeof why) == 0, "%s inconsistent map: %s", diff_where(d), why);
    model_assert_matches(&d->ref, d->m, diff_where(d));
    check_drops(d);
    if (string_keys(d))
        check(live_strings == (long)model_len(&d->ref), "%s %ld live key strings for %zu entries",
              diff_where(d), live_strings, model_len(&d->ref));
    if (d->cfg.owned_values)
        check(live_blocks == (long)model_len(&d->ref), "%s %ld live value blocks for %zu entries",
              diff_where(d), live_blocks, model_len(&d->ref));
    if (d->cfg.custom_allocator) {
        hmap_stats st;
        hmap_get_stats(d->m, &st);
        check(st.bytes == d->ta.live_bytes, "%s hmap_get_stats says %zu bytes, the allocator holds %zu",
              diff_where(d), st.bytes, d->ta.live_bytes);
    }
    check_graves(d);
}

void diff_destroy(diff *d) {
    for (int i = 0; i < DIFF_ITERS; i++)
        if (d->iters[i].open)
            diff_iter_close(d, i);
    diff_check(d);
    d->expect_key_drops += key_drops_counted(d) ? model_len(&d->ref) : 0;
    d->expect_val_drops += val_drops_counted(d) ? model_len(&d->ref) : 0;
    hmap_free(d->m);
    d->m = NULL;
    model_clear(&d->ref);
    check_drops(d);
    check(live_strings == 0, "%s %ld key strings left after hmap_free", diff_where(d), live_strings);
    check(live_blocks == 0, "%s %ld value blocks left after hmap_free", diff_where(d), live_blocks);
    test_alloc_check_empty(&d->ta, diff_where(d));
    hmap_memstats ms;
    hmap_read_memstats(&ms);
    check(ms.live_bytes == d->memstats_live_at_start,
          "%s memstats live bytes %" PRIu64 ", %" PRIu64 " before", diff_where(d), ms.live_bytes,
          d->memstats_live_at_start);
    check_graves(d);
    for (size_t g = 0; g < d->ngraves; g++)
        free(d->graves[g]);
    d->ngraves = 0;
    model_destroy(&d->ref);
    active = NULL;
}

void diff_fail_in(diff *d, uint64_t k) {
    if (d->cfg.custom_allocator)
        test_alloc_fail_in(&d->ta, k);
}

/* ---------------------------------------------------------------- operations */

/* hmap_put(key, val) checked; `newval` is what the value must read afterwards (a copy, taken before the
 * call when `val` points into the map), `ours` says whether the harness made it (a refused put gives an
 * owned value back). */
static int put_checked(diff *d, key_arg *k, const void *val, const unsigned char *newval, bool ours) {
    call c = begin_write(d);
    const model_entry *old = find_entry(d, k);
    bool present = old != NULL;
    /* A value bitwise equal to the stored one is the same object: the put drops nothing of it. */
    bool same_value = present && memcmp(old->val, newval, d->cfg.val_size) == 0;
    int rc = hmap_put(d->m, k->arg, d->cfg.val_size ? val : NULL);
    if (rc == -ENOMEM) {
        disown_key(k);
        if (ours)
            release_value(d, newval);
        reported_error(d, c, "hmap_put");
        return rc;
    }
    check(rc == (present ? 0 : 1), "%s hmap_put returned %d, the key was %s", diff_where(d), rc,
          present ? "present" : "absent");
    if (present) { /* put drops the old value */
        d->expect_val_drops += val_drops_counted(d) && !same_value;
        expect_key_drop_of_replace(d, !k->fresh);
    }
    model_put(&d->ref, k->bytes, k->klen, newval);
    succeeded(d, c);
    return rc;
}

int diff_put(diff *d, uint64_t id) {
    key_arg k;
    unsigned char v[DIFF_MAX_VAL + 8];
    owned_key(d, diff_id_of(d, id), &k);
    make_value(d, v);
    return put_checked(d, &k, v, v, true);
}

/* hmap_assign(key) checked; a new value is written into the slot. */
static int assign_checked(diff *d, key_arg *k) {
    call c = begin_write(d);
    const model_entry *e = find_entry(d, k);
    bool inserted = !e;
    errno = 0;
    unsigned char *slot = hmap_assign(d->m, k->arg, &inserted);
    if (!slot) {
        check(errno == ENOMEM, "%s hmap_assign: NULL with errno %d", diff_where(d), errno);
        disown_key(k);
        reported_error(d, c, "hmap_assign");
        return -ENOMEM;
    }
    check(inserted == !e, "%s hmap_assign: inserted=%d, the key was %s", diff_where(d), inserted,
          e ? "present" : "absent");
    size_t vs = d->cfg.val_size;
    if (inserted) {
        for (size_t i = 0; i < vs; i++)
            check(slot[i] == 0, "%s hmap_assign: a new slot not zeroed", diff_where(d));
    } else {
        check(vs == 0 || memcmp(slot, e->val, vs) == 0, "%s hmap_assign: the slot holds a wrong value",
              diff_where(d));
        expect_key_drop_of_replace(d, !k->fresh); /* and no value: assign hands the slot over */
        if (vs)
            release_value(d, slot); /* overwritten below: the caller disposes of the old value */
    }
    unsigned char v[DIFF_MAX_VAL + 8];
    make_value(d, v);
    if (vs)
        memcpy(slot, v, vs);
    model_put(&d->ref, k->bytes, k->klen, v);
    succeeded(d, c);
    return inserted ? 1 : 0;
}

int diff_assign(diff *d, uint64_t id) {
    key_arg k;
    owned_key(d, diff_id_of(d, id), &k);
    return assign_checked(d, &k);
}

bool diff_get(diff *d, uint64_t id) {
    key_arg k;
    lookup_key(d, diff_id_of(d, id), &k);
    d->op++;
    uint64_t calls = d->ta.calls;
    const unsigned char *v = hmap_get(d->m, k.arg);
    const model_entry *e = find_entry(d, &k);
    check((v != NULL) == (e != NULL), "%s hmap_get %s, the model %s", diff_where(d), v ? "hit" : "missed",
          e ? "holds the key" : "does not");
    check(!e || !d->cfg.val_size || memcmp(v, e->val, d->cfg.val_size) == 0, "%s hmap_get: a wrong value",
          diff_where(d));
    check(d->ta.calls == calls, "%s hmap_get allocated", diff_where(d));
    return e != NULL;
}

#define START_BIT(slot) (1u << (2 * (slot)))     /* present at start, not yet reached or deleted */
#define YIELD_BIT(slot) (1u << (2 * (slot) + 1)) /* yielded since this entry was inserted */

/* After a successful removal: the model forgets the key, and each open iteration that yielded it
 * remembers it (it must not yield the key again, also if it is inserted again). Only removed keys are
 * remembered: a key still present carries its yield bit in its model entry. */
static void removed(diff *d, const key_arg *k) {
    const model_entry *e = find_entry(d, k);
    for (int slot = 0; slot < DIFF_ITERS; slot++)
        if (d->iters[slot].open && (e->flags & YIELD_BIT(slot)))
            model_put(&d->iters[slot].yielded, k->bytes, k->klen, NULL);
    model_del(&d->ref, k->bytes, k->klen);
}

bool diff_del(diff *d, uint64_t id) {
    key_arg k;
    lookup_key(d, diff_id_of(d, id), &k);
    call c = begin_write(d);
    bool want = find_entry(d, &k) != NULL;
    bool got = hmap_del(d->m, k.arg);
    check(got == want, "%s hmap_del returned %d, the model %d", diff_where(d), got, want);
    if (got) {
        expect_drops_of_removed(d);
        removed(d, &k);
    }
    succeeded(d, c);
    return got;
}

/* hmap_take(key) checked: the parts handed over must be the stored ones; the harness then owns them. */
static bool take_checked(diff *d, key_arg *k, bool want_key, bool want_val) {
    unsigned char kout[DIFF_MAX_KEY + 8], vout[DIFF_MAX_VAL + 8], expect_val[DIFF_MAX_VAL + 8];
    call c = begin_write(d);
    const model_entry *e = find_entry(d, k);
    if (e && d->cfg.val_size)
        memcpy(expect_val, e->val, d->cfg.val_size);
    bool got = hmap_take(d->m, k->arg, want_key ? kout : NULL, want_val ? vout : NULL);
    check(got == (e != NULL), "%s hmap_take returned %d, the model %d", diff_where(d), got, e != NULL);
    if (got) {
        if (want_key) {
            size_t olen;
            const void *ob = model_key_bytes(&d->ref, kout, &olen);
            check(olen == k->klen && memcmp(ob, k->bytes, olen) == 0, "%s hmap_take handed over a wrong key",
                  diff_where(d));
            if (string_keys(d)) {
                free(*(char **)kout);
                live_strings--;
            }
        } else {
            d->expect_key_drops += key_drops_counted(d);
        }
        if (want_val && d->cfg.val_size) {
            check(memcmp(vout, expect_val, d->cfg.val_size) == 0, "%s hmap_take handed over a wrong value",
                  diff_where(d));
            release_value(d, vout);
        } else if (!want_val) {
            d->expect_val_drops += val_drops_counted(d);
        }
        removed(d, k);
    }
    succeeded(d, c);
    return got;
}

bool diff_take(diff *d, uint64_t id, bool want_key, bool want_val) {
    key_arg k;
    lookup_key(d, diff_id_of(d, id), &k);
    return take_checked(d, &k, want_key, want_val);
}

void diff_clear(diff *d) {
    call c = begin_write(d);
    d->expect_key_drops += key_drops_counted(d) ? model_len(&d->ref) : 0;
    d->expect_val_drops += val_drops_counted(d) ? model_len(&d->ref) : 0;
    hmap_clear(d->m);
    model_clear(&d->ref);
    for (int i = 0; i < DIFF_ITERS; i++)
        d->iters[i].ended_by_clear |= d->iters[i].open;
    check(hmap_len(d->m) == 0, "%s hmap_clear left %zu entries", diff_where(d), hmap_len(d->m));
    succeeded(d, c);
}

/* reserve and compact: 0, or -ENOMEM with a refused allocation and nothing changed. */
static int sized_call(diff *d, int rc, call c, const char *what) {
    if (rc == 0) {
        succeeded(d, c);
        return 0;
    }
    check(rc == -ENOMEM, "%s %s returned %d", diff_where(d), what, rc);
    reported_error(d, c, what);
    return rc;
}

int diff_reserve(diff *d, size_t n) {
    call c = begin_write(d);
    return sized_call(d, hmap_reserve(d->m, n), c, "hmap_reserve");
}

int diff_compact(diff *d) {
    call c = begin_write(d);
    return sized_call(d, hmap_compact(d->m), c, "hmap_compact");
}

int diff_put_from_get(diff *d, uint64_t dst, uint64_t src) {
    if (!(d->cfg.rules & DIFF_RULE_ALIAS) || d->cfg.owned_values || !d->cfg.val_size)
        return -1;
    key_arg ks, kd;
    lookup_key(d, diff_id_of(d, src), &ks);
    const model_entry *e = find_entry(d, &ks);
    const void *v = hmap_get(d->m, ks.arg);
    check((v != NULL) == (e != NULL), "%s hmap_get disagrees with the model", diff_where(d));
    if (!v)
        return -1;
    unsigned char copy[DIFF_MAX_VAL + 8];
    memcpy(copy, e->val, d->cfg.val_size);
    owned_key(d, diff_id_of(d, dst), &kd);
    d->alias_writes++;
    return put_checked(d, &kd, v, copy, false);
}

/* ---------------------------------------------------------------- iterations */

static void clear_bits(diff *d, int slot) {
    for (size_t i = 0; i < model_len(&d->ref); i++)
        model_at(&d->ref, i)->flags &= ~(START_BIT(slot) | YIELD_BIT(slot));
}

bool diff_iter_is_open(const diff *d, int slot) {
    return slot >= 0 && slot < DIFF_ITERS && d->iters[slot].open;
}

int diff_iter_open(diff *d) {
    int slot = 0;
    while (slot < DIFF_ITERS && d->iters[slot].open)
        slot++;
    if (slot == DIFF_ITERS)
        return -1;
    diff_iter *t = &d->iters[slot];
    memset(t, 0, sizeof *t);
    t->it = xmalloc(sizeof *t->it);
    t->open = true;
    t->yield_writes = UINT64_MAX;
    model_init(&t->yielded, d->cfg.key_size, 0);
    for (size_t i = 0; i < model_len(&d->ref); i++) {
        model_entry *e = model_at(&d->ref, i);
        e->flags = (e->flags & ~YIELD_BIT(slot)) | START_BIT(slot);
    }
    d->op++;
    hmap_iter_init(t->it, d->m);
    return slot;
}

static void forget_iter(diff *d, int slot) {
    diff_iter *t = &d->iters[slot];
    clear_bits(d, slot);
    model_destroy(&t->yielded);
    t->open = false;
    t->it = NULL;
}

void diff_iter_close(diff *d, int slot) {
    check(diff_iter_is_open(d, slot), "closing an iteration that is not open");
    hmap_iter_done(d->iters[slot].it);
    free(d->iters[slot].it);
    forget_iter(d, slot);
}

void diff_iter_abandon(diff *d, int slot) {
    check(diff_iter_is_open(d, slot), "abandoning an iteration that is not open");
    if (!(d->cfg.rules & DIFF_RULE_ABANDON)) {
        diff_iter_close(d, slot);
        return;
    }
    unsigned char *grave = (unsigned char *)d->iters[slot].it;
    memset(grave, GRAVE_BYTE, sizeof(hmap_iter)); /* what a dead stack frame would hold: anything */
    if (d->ngraves == DIFF_GRAVES) { /* the oldest goes back to malloc: from now on ASan watches it */
        check_graves(d);
        free(d->graves[0]);
        memmove(&d->graves[0], &d->graves[1], (DIFF_GRAVES - 1) * sizeof *d->graves);
        d->ngraves--;
    }
    d->graves[d->ngraves++] = grave;
    d->iterations_abandoned++;
    forget_iter(d, slot);
}

/* The end of an iteration: nothing present since the start (and not deleted) may have been missed. */
static void iteration_ended(diff *d, int slot) {
    for (size_t i = 0; i < model_len(&d->ref); i++)
        check(!(model_at(&d->ref, i)->flags & START_BIT(slot)),
              "%s iteration %d ended without yielding a key present throughout", diff_where(d), slot);
    d->iterations_done++;
    diff_iter_close(d, slot);
}

bool diff_iter_next(diff *d, int slot) {
    check(diff_iter_is_open(d, slot), "next on an iteration that is not open");
    diff_iter *t = &d->iters[slot];
    void *k = NULL, *v = NULL;
    d->op++;
    bool got = hmap_iter_next(t->it, &k, &v);
    if (t->ended_by_clear)
        check(!got, "%s iteration %d yielded after hmap_clear ended it", diff_where(d), slot);
    if (!got) {
        iteration_ended(d, slot);
        return false;
    }
    unsigned char kb[MAX_KEY_BUF];
    size_t klen;
    const void *bytes = model_key_bytes(&d->ref, k, &klen);
    check(klen < sizeof kb, "%s iteration yielded an overlong key", diff_where(d));
    memcpy(kb, bytes, klen);
    model_entry *e = model_find(&d->ref, kb, klen);
    check(e != NULL, "%s iteration %d yielded a key that is not in the map", diff_where(d), slot);
    check(!d->cfg.val_size || memcmp(v, e->val, d->cfg.val_size) == 0,
          "%s iteration %d yielded a wrong value", diff_where(d), slot);
    check(!(e->flags & YIELD_BIT(slot)), "%s iteration %d yielded a key twice", diff_where(d), slot);
    if (d->cfg.rules & DIFF_RULE_REINSERT)
        check(!model_find(&t->yielded, kb, klen),
              "%s iteration %d yielded a key twice (deleted and inserted again in between)", diff_where(d),
              slot);
    e->flags = (e->flags & ~START_BIT(slot)) | YIELD_BIT(slot);
    t->kp = k;
    t->vp = v;
    t->id = id_of_bytes(d, kb, klen);
    t->yield_writes = d->writes;
    d->yields++;
    return true;
}

/* The key just yielded, as the argument of a write: the map's own key (no new string). */
static void yielded_key(const diff *d, const diff_iter *t, key_arg *k) {
    size_t klen;
    const void *bytes = model_key_bytes(&d->ref, t->kp, &klen);
    memcpy(k->bytes, bytes, klen);
    k->klen = klen;
    k->bytes[klen] = '\0';
    k->str = NULL;
    k->arg = t->kp;
    k->fresh = false;
}

bool diff_iter_alias(diff *d, int slot, diff_alias what, uint64_t other) {
    if (!diff_iter_is_open(d, slot))
        return false;
    diff_iter *t = &d->iters[slot];
    if (t->yield_writes != d->writes || (!(d->cfg.rules & DIFF_RULE_ALIAS) && what != DIFF_ALIAS_GET))
        return false;
    bool replaces = what == DIFF_ALIAS_PUT_SAME || what == DIFF_ALIAS_PUT_NEW || what == DIFF_ALIAS_ASSIGN;
    if (replaces && string_keys(d) && !(d->cfg.rules & DIFF_RULE_SAME_KEY))
        return false; /* the older rule would free the map's own key */
    bool plain_values = d->cfg.val_size && !d->cfg.owned_values;
    if ((what == DIFF_ALIAS_PUT_SAME || what == DIFF_ALIAS_VAL_TO_OTHER) && !plain_values)
        return false;
    key_arg k;
    yielded_key(d, t, &k);
    const model_entry *e = find_entry(d, &k);
    check(e != NULL, "%s the key just yielded is not in the model", diff_where(d));
    unsigned char copy[DIFF_MAX_VAL + 8];
    if (d->cfg.val_size)
        memcpy(copy, e->val, d->cfg.val_size);
    d->alias_writes += what != DIFF_ALIAS_GET;
    switch (what) {
    case DIFF_ALIAS_DEL: {
        call c = begin_write(d);
        check(hmap_del(d->m, k.arg), "%s hmap_del through the iterator's key pointer missed", diff_where(d));
        expect_drops_of_removed(d);
        removed(d, &k);
        succeeded(d, c);
        break;
    }
    case DIFF_ALIAS_TAKE:
        check(take_checked(d, &k, true, true), "%s hmap_take through the iterator's key pointer missed",
              diff_where(d));
        break;
    case DIFF_ALIAS_PUT_SAME:
        put_checked(d, &k, t->vp, copy, false);
        break;
    case DIFF_ALIAS_PUT_NEW: {
        unsigned char v[DIFF_MAX_VAL + 8];
        make_value(d, v);
        put_checked(d, &k, v, v, true);
        break;
    }
    case DIFF_ALIAS_ASSIGN:
        assign_checked(d, &k);
        break;
    case DIFF_ALIAS_GET: {
        d->op++;
        const unsigned char *v = hmap_get(d->m, t->kp);
        check(v != NULL, "%s hmap_get through the iterator's key pointer missed", diff_where(d));
        check(!d->cfg.val_size || memcmp(v, copy, d->cfg.val_size) == 0, "%s hmap_get: a wrong value",
              diff_where(d));
        break;
    }
    case DIFF_ALIAS_VAL_TO_OTHER: {
        key_arg ko;
        owned_key(d, diff_id_of(d, other), &ko);
        put_checked(d, &ko, t->vp, copy, false);
        break;
    }
    default:
        return false;
    }
    return true;
}
