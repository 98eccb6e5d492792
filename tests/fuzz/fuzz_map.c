/* SPDX-License-Identifier: MIT */
/*
 * fuzz_map.c — libFuzzer target: the input is decoded into a map configuration and a sequence of
 * operations, applied to an hmap and to the reference model through the shared differential harness
 * (tests/support/diff.h), which aborts on the first divergence (and ASan/UBSan abort on any memory or
 * undefined-behaviour error). Built only with clang (-fsanitize=fuzzer), in the ASan+UBSan build.
 *
 * Input format (bytes past the end read as 0, so every input is valid):
 *
 *   header   [0] key size: 1..255 bytes, 0 = C string keys (char *, owned by the map)
 *            [1] value size, modulo 101
 *            [2] hash, modulo 4: built-in (hmap_hash_cstr for strings), good custom, first byte only,
 *                constant
 *            [3] flags: 1 owned values (each holds a heap block freed by val_drop), 2 counted drops,
 *                4 built-in allocator (else the test allocator, which can be made to fail), 8 no_shrink,
 *                16 random seed (else fixed), 96 creation hint (0, 64, 1000, 5000)
 *            [4] key space: ids below 2^(2 + [4] % 13)
 *   then ops: one opcode byte (modulo OP_COUNT, below) and its arguments. An id argument is 2 bytes: with
 *            the top bit set, the (rest)-th key the model holds; else an id in the key space.
 *
 * The operations cover every write (put, assign, del, take, clear, reserve, compact), lookups, bulk
 * inserts and deletes (to reach resize states in a few bytes), allocation failures injected at the k-th
 * allocation from now, up to four iterations open at once, stepped one by one or run to their end with
 * writes inside, writes through an iteration's own key and value pointers, a value put straight from
 * hmap_get, and iterations abandoned without hmap_iter_done.
 *
 * HMAP_FUZZ_STRICT=0 in the environment (or a list: samekey,alias,abandon,reinsert) leaves out the
 * rules on identical keys, aliasing, abandoning and re-insertion (see diff.h), to fuzz the rest on a
 * library that lacks them.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "hmap.h"
#include "model.h"

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static uint8_t u8(input *in) {
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t u16(input *in) {
    uint16_t lo = u8(in);
    return (uint16_t)(lo | (uint16_t)u8(in) << 8);
}

typedef struct fuzz {
    diff d;
    input in;
    uint64_t id_space;
} fuzz;

static uint64_t id_arg(fuzz *f) {
    uint16_t x = u16(&f->in);
    if (x & 0x8000)
        return diff_existing_id(&f->d, x & 0x7fff, x % f->id_space);
    return x % f->id_space;
}

static int slot_arg(fuzz *f) { return u8(&f->in) % DIFF_ITERS; }

/* ---- decoded operations ---- */

static void bulk_put(fuzz *f) {
    size_t n = 16 * ((size_t)u8(&f->in) % 64 + 1);
    prng rng = {u16(&f->in)};
    for (size_t i = 0; i < n; i++)
        diff_put(&f->d, prng_below(&rng, f->id_space));
}

static void bulk_del(fuzz *f, bool all) {
    size_t n = all ? hmap_len(f->d.m) : 16 * ((size_t)u8(&f->in) % 64 + 1);
    prng rng = {u16(&f->in)};
    for (size_t i = 0; i < n && hmap_len(f->d.m) > 0; i++)
        diff_del(&f->d, diff_existing_id(&f->d, prng_next(&rng), 0));
}

/* Ids 0..n-1 put again: after a bulk delete, the same keys come back. */
static void reinsert(fuzz *f) {
    uint64_t n = 4 * ((uint64_t)u8(&f->in) + 1);
    for (uint64_t id = 0; id < n && id < f->id_space; id++)
        diff_put(&f->d, id);
}

static void step(fuzz *f) {
    int slot = slot_arg(f);
    unsigned steps = u8(&f->in) % 16 + 1;
    for (unsigned i = 0; i < steps && diff_iter_is_open(&f->d, slot); i++)
        diff_iter_next(&f->d, slot);
}

/* A write after a yield, drawn from a PRNG (the input gives its seed): the loop users write. */
static void write_inside(fuzz *f, int slot, prng *rng) {
    uint64_t x = prng_below(rng, 100);
    if (x < 10)
        diff_iter_alias(&f->d, slot, (diff_alias)prng_below(rng, DIFF_ALIAS_KINDS),
                        prng_below(rng, f->id_space));
    else if (x < 20)
        diff_del(&f->d, f->d.iters[slot].id);
    else if (x < 34)
        diff_put(&f->d, prng_below(rng, f->id_space));
    else if (x < 40)
        diff_assign(&f->d, prng_below(rng, f->id_space));
    else if (x < 46)
        diff_del(&f->d, diff_existing_id(&f->d, prng_next(rng), 0));
    else if (x < 49)
        diff_take(&f->d, diff_existing_id(&f->d, prng_next(rng), 0), prng_chance(rng, 0.5),
                  prng_chance(rng, 0.5));
    else if (x < 51)
        diff_fail_in(&f->d, 1 + prng_below(rng, 8));
    else if (x < 52)
        diff_put_from_get(&f->d, prng_below(rng, f->id_space), diff_existing_id(&f->d, prng_next(rng), 0));
}

static void run_to_end(fuzz *f) {
    int slot = slot_arg(f);
    if (!diff_iter_is_open(&f->d, slot))
        slot = diff_iter_open(&f->d);
    if (slot < 0)
        return;
    prng rng = {u16(&f->in)};
    uint64_t cap = 4 * f->id_space + 64; /* keys come from the key space: only a broken map yields more */
    for (uint64_t n = 0; n < cap && diff_iter_next(&f->d, slot); n++)
        write_inside(f, slot, &rng);
}

enum {
    OP_PUT,
    OP_ASSIGN,
    OP_DEL,
    OP_TAKE,
    OP_GET,
    OP_CLEAR,
    OP_RESERVE,
    OP_COMPACT,
    OP_FAIL,
    OP_BULK_PUT,
    OP_BULK_DEL,
    OP_DEL_ALL,
    OP_REINSERT,
    OP_ITER_OPEN,
    OP_ITER_STEP,
    OP_ITER_CLOSE,
    OP_ITER_ABANDON,
    OP_ITER_ALIAS,
    OP_ITER_RUN,
    OP_PUT_FROM_GET,
    OP_COUNT
};

static void one_op(fuzz *f) {
    diff *d = &f->d;
    switch (u8(&f->in) % OP_COUNT) {
    case OP_PUT:
        diff_put(d, id_arg(f));
        break;
    case OP_ASSIGN:
        diff_assign(d, id_arg(f));
        break;
    case OP_DEL:
        diff_del(d, id_arg(f));
        break;
    case OP_TAKE: {
        uint64_t id = id_arg(f);
        uint8_t how = u8(&f->in);
        diff_take(d, id, how & 1, how & 2);
        break;
    }
    case OP_GET:
        diff_get(d, id_arg(f));
        break;
    case OP_CLEAR:
        diff_clear(d);
        break;
    case OP_RESERVE:
        diff_reserve(d, hmap_len(d->m) + u16(&f->in) % 10000);
        break;
    case OP_COMPACT:
        diff_compact(d);
        break;
    case OP_FAIL:
        diff_fail_in(d, 1 + u8(&f->in) % 32);
        break;
    case OP_BULK_PUT:
        bulk_put(f);
        break;
    case OP_BULK_DEL:
        bulk_del(f, false);
        break;
    case OP_DEL_ALL:
        bulk_del(f, true);
        break;
    case OP_REINSERT:
        reinsert(f);
        break;
    case OP_ITER_OPEN:
        diff_iter_open(d);
        break;
    case OP_ITER_STEP:
        step(f);
        break;
    case OP_ITER_CLOSE: {
        int slot = slot_arg(f);
        if (diff_iter_is_open(d, slot))
            diff_iter_close(d, slot);
        break;
    }
    case OP_ITER_ABANDON: {
        int slot = slot_arg(f);
        if (diff_iter_is_open(d, slot))
            diff_iter_abandon(d, slot);
        break;
    }
    case OP_ITER_ALIAS: {
        int slot = slot_arg(f);
        diff_alias what = (diff_alias)(u8(&f->in) % DIFF_ALIAS_KINDS);
        diff_iter_alias(d, slot, what, id_arg(f));
        break;
    }
    case OP_ITER_RUN:
        run_to_end(f);
        break;
    case OP_PUT_FROM_GET: {
        uint64_t dst = id_arg(f);
        diff_put_from_get(d, dst, id_arg(f));
        break;
    }
    }
}

/* ---- the configuration ---- */

static unsigned rules(void) {
    static unsigned cached = ~0u;
    if (cached == ~0u)
        cached = diff_rules_from_env();
    return cached;
}

static void decode_config(input *in, diff_config *c, uint64_t *id_space) {
    static const size_t hints[4] = {0, 64, 1000, 5000};
    memset(c, 0, sizeof *c);
    c->name = "fuzz";
    c->key_size = u8(in);
    c->val_size = u8(in) % (DIFF_MAX_VAL + 1);
    c->hash = (diff_hash)(u8(in) % DIFF_HASH_KINDS);
    uint8_t flags = u8(in);
    c->owned_values = flags & 1;
    c->count_drops = flags & 2;
    c->custom_allocator = !(flags & 4);
    c->no_shrink = flags & 8;
    c->fixed_seed = !(flags & 16);
    c->seed = 0x5eedf022u;
    c->hint = hints[(flags >> 5) & 3];
    c->rules = rules();
    *id_space = (uint64_t)1 << (2 + u8(in) % 13);
}

/* Totals over the run, printed at exit: libFuzzer counts inputs, these count what they did. */
static uint64_t total_inputs, total_ops, total_yields, total_alias, total_refused;

static void print_totals(void) {
    fprintf(stderr,
            "fuzz_map: %" PRIu64 " inputs, %" PRIu64 " operations (%" PRIu64 " iteration steps, %" PRIu64
            " writes through map pointers, %" PRIu64 " allocations refused), rules checked: %s\n",
            total_inputs, total_ops, total_yields, total_alias, total_refused, diff_rules_name(rules()));
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    atexit(print_totals);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fuzz f; /* large (the harness holds key buffers and iterators): not on the stack */
    memset(&f, 0, sizeof f);
    f.in = (input){data, size};
    diff_config cfg;
    decode_config(&f.in, &cfg, &f.id_space);
    diff_init(&f.d, &cfg);
    while (f.in.n > 0)
        one_op(&f);
    total_inputs++;
    total_ops += f.d.op;
    total_yields += f.d.yields;
    total_alias += f.d.alias_writes;
    total_refused += f.d.ta.failures;
    diff_destroy(&f.d);
    return 0;
}
