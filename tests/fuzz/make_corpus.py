#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_corpus.py - writes the seed corpus of fuzz_map (corpus/), one small input per scenario.

The byte format is described at the top of fuzz_map.c; the opcodes below follow its enum. Run from this
directory: python3 make_corpus.py. The fuzzer only reads these files (ctest keeps its finds elsewhere).
"""
import os
import struct

(PUT, ASSIGN, DEL, TAKE, GET, CLEAR, RESERVE, COMPACT, FAIL, BULK_PUT, BULK_DEL, DEL_ALL, REINSERT,
 ITER_OPEN, ITER_STEP, ITER_CLOSE, ITER_ABANDON, ITER_ALIAS, ITER_RUN, PUT_FROM_GET) = range(20)
A_DEL, A_TAKE, A_PUT_SAME, A_PUT_NEW, A_ASSIGN, A_GET, A_VAL_TO_OTHER = range(7)
OWNED, COUNTED, BUILTIN_ALLOC, NO_SHRINK, RANDOM_SEED = 1, 2, 4, 8, 16
HASH_BUILTIN, HASH_GOOD, HASH_POOR, HASH_CONST = range(4)


def header(key_size, val_size, hash_kind, flags, space_log2, hint_class=0):
    return bytes([key_size, val_size, hash_kind, flags | (hint_class << 5), space_log2 - 2])


def u16(x):
    return struct.pack('<H', x)


def ident(x):  # an id in the key space
    return u16(x & 0x7fff)


def existing(i):  # the i-th key the model holds
    return u16(0x8000 | i)


def bulk_put(n16, seed):
    return bytes([BULK_PUT, n16 - 1]) + u16(seed)


def bulk_del(n16, seed):
    return bytes([BULK_DEL, n16 - 1]) + u16(seed)


def run(slot, seed):
    return bytes([ITER_RUN, slot]) + u16(seed)


def step(slot, n):
    return bytes([ITER_STEP, slot, n - 1])


def alias(slot, kind, other=0):
    return bytes([ITER_ALIAS, slot, kind]) + ident(other)


seeds = {
    'u64_grow_iterate_shrink': header(8, 8, HASH_BUILTIN, COUNTED, 12)
    + bulk_put(64, 1) + run(0, 2) + bulk_del(60, 3) + bytes([COMPACT]) + bytes([FAIL, 0]) + bulk_put(32, 4)
    + run(1, 5) + bytes([CLEAR]),
    'reinsert_after_empty': header(8, 8, HASH_BUILTIN, COUNTED | RANDOM_SEED, 10)
    + bytes([REINSERT, 49]) + bytes([ITER_OPEN]) + step(0, 10) * 10 + bytes([DEL_ALL]) + u16(1)
    + bytes([REINSERT, 49]) + run(0, 9),
    'strings_owned_alias': header(0, 16, HASH_BUILTIN, OWNED, 8)
    + bulk_put(8, 11) + bytes([ITER_OPEN]) + step(0, 1) + alias(0, A_DEL) + step(0, 1) + alias(0, A_PUT_NEW)
    + step(0, 1) + alias(0, A_TAKE) + step(0, 1) + alias(0, A_ASSIGN) + run(0, 12),
    'set_of_bytes': header(1, 0, HASH_BUILTIN, COUNTED, 8)
    + bulk_put(16, 13) + run(0, 14) + bytes([DEL_ALL]) + u16(2) + bulk_put(4, 15),
    'key255_val100_poor': header(255, 100, HASH_POOR, OWNED, 9)
    + bulk_put(20, 16) + run(0, 17) + bulk_del(19, 18) + bytes([RESERVE]) + u16(3000) + bulk_put(10, 19),
    'constant_hash': header(16, 8, HASH_CONST, COUNTED, 8)
    + bulk_put(8, 20) + run(0, 21) + bulk_del(4, 22) + run(1, 23),
    'alias_plain_values': header(8, 24, HASH_GOOD, COUNTED, 7)
    + bulk_put(4, 24) + bytes([ITER_OPEN]) + step(0, 1) + alias(0, A_PUT_SAME) + step(0, 1)
    + alias(0, A_VAL_TO_OTHER, 99) + step(0, 1) + alias(0, A_GET) + step(0, 1) + alias(0, A_DEL) + run(0, 25),
    'abandoned_iterations': header(8, 8, HASH_BUILTIN, COUNTED, 12)
    + bulk_put(16, 26) + bytes([ITER_OPEN] * 4) + step(0, 3) + step(1, 5) + step(2, 7) + step(3, 9)
    + bytes([ITER_ABANDON, 0, ITER_ABANDON, 1, ITER_ABANDON, 2, ITER_ABANDON, 3])
    + bulk_put(64, 27) + bulk_del(64, 28) + bytes([CLEAR]),
    'allocation_failures': header(12, 8, HASH_BUILTIN, COUNTED, 11)
    + bytes([FAIL, 0]) + bulk_put(8, 29) + bytes([FAIL, 3]) + bulk_put(32, 30) + bytes([FAIL, 1, RESERVE])
    + u16(5000) + bytes([FAIL, 0, COMPACT]) + run(0, 31) + bulk_del(40, 32) + bytes([FAIL, 2]) + bulk_del(2, 33),
    'put_from_get': header(4, 12, HASH_BUILTIN, COUNTED, 6)
    + bulk_put(2, 34) + bytes([PUT_FROM_GET]) + existing(0) + existing(0) + bytes([PUT_FROM_GET]) + ident(5)
    + existing(1) + run(0, 35),
    'builtin_allocator_large': header(8, 8, HASH_BUILTIN, BUILTIN_ALLOC | NO_SHRINK | RANDOM_SEED, 14, 3)
    + bulk_put(64, 36) * 4 + run(0, 37) + bytes([DEL_ALL]) + u16(3) + bytes([COMPACT]),
    'several_open': header(40, 3, HASH_GOOD, COUNTED, 9)
    + bulk_put(12, 38) + bytes([ITER_OPEN, ITER_OPEN]) + step(0, 10) + step(1, 4) + bulk_put(16, 39)
    + step(0, 16) + bulk_del(20, 40) + step(1, 16) + run(0, 41) + run(1, 42),
    'strings_poor_take': header(0, 8, HASH_POOR, COUNTED, 9)
    + bulk_put(10, 43) + bytes([TAKE]) + existing(3) + bytes([3, TAKE]) + existing(4) + bytes([0])
    + bytes([ASSIGN]) + ident(7) + bytes([GET]) + ident(7) + run(0, 44) + bytes([CLEAR]) + bulk_put(3, 45),
}

os.makedirs('corpus', exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join('corpus', name), 'wb') as f:
        f.write(data)
