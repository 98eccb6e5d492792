/* SPDX-License-Identifier: MIT */
/*
 * keys.c — the key streams every implementation is measured on.
 *
 * uint64 keys: key i is splitmix64(i). splitmix64 is a bijection on 64-bit integers, so the keys are
 * distinct, and its output looks random, so no map profits from sequential keys.
 *
 * The small-maps row uses the uint64 keys.
 *
 * String keys: key i is 16..40 bytes of [a-z0-9A-Z_-] (64 symbols). Its first 11 characters spell
 * splitmix64(i) in base 64 (6 bits each, low bits first), which makes the strings distinct; the length
 * (16 + r % 25) and the remaining characters come from further splitmix64 rounds of the same value.
 * All strings live in one arena and keep a NUL terminator; maps store pointers to them, so the key bytes
 * are shared by every implementation and counted by none.
 *
 * go/main.go generates exactly the same keys (it checks a checksum of them against this one via the
 * "I keys-checksum" line printed by both).
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static const char SYMBOLS[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-";

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

const char *key_kind_name(key_kind k) { return k == KEYS_U64 ? "u64" : k == KEYS_STR ? "str" : "small"; }

/* Writes string key i into dst (no terminator); returns its length. */
static size_t make_string(uint64_t i, char *dst) {
    uint64_t h = splitmix64(i);
    size_t len = 16 + (size_t)(splitmix64(h) % 25);
    size_t pos = 0;
    for (uint64_t v = h; pos < 11; pos++, v >>= 6)
        dst[pos] = SYMBOLS[v & 63];
    uint64_t r = h;
    while (pos < len) {
        r = splitmix64(r);
        for (int k = 0; k < 10 && pos < len; k++, pos++)
            dst[pos] = SYMBOLS[(r >> (6 * k)) & 63];
    }
    return len;
}

void keyset_make(keyset *ks, key_kind kind, size_t count) {
    memset(ks, 0, sizeof *ks);
    ks->kind = kind;
    ks->count = count;
    if (kind != KEYS_STR) {
        ks->u64 = tc_xrealloc(NULL, count * sizeof *ks->u64);
        for (size_t i = 0; i < count; i++)
            ks->u64[i] = splitmix64(i);
        return;
    }
    ks->arena = tc_xrealloc(NULL, count * 41);
    ks->str = tc_xrealloc(NULL, count * sizeof *ks->str);
    ks->len = tc_xrealloc(NULL, count * sizeof *ks->len);
    char *p = ks->arena;
    for (size_t i = 0; i < count; i++) {
        size_t len = make_string(i, p);
        p[len] = '\0';
        ks->str[i] = p;
        ks->len[i] = (uint32_t)len;
        p += len + 1;
    }
}

void keyset_free(keyset *ks) {
    free(ks->u64);
    free(ks->str);
    free(ks->len);
    free(ks->arena);
    memset(ks, 0, sizeof *ks);
}

/* FNV-1a, 64-bit: uint64 keys as their 8 little-endian bytes, strings as their bytes and a 0 byte. */
uint64_t keyset_checksum(const keyset *ks) {
    uint64_t h = 14695981039346656037ULL;
    const uint64_t prime = 1099511628211ULL;
    for (size_t i = 0; i < ks->count; i++) {
        if (ks->kind != KEYS_STR) {
            for (int b = 0; b < 8; b++)
                h = (h ^ ((ks->u64[i] >> (8 * b)) & 0xff)) * prime;
        } else {
            for (const char *p = ks->str[i]; *p; p++)
                h = (h ^ (unsigned char)*p) * prime;
            h = (h ^ 0) * prime;
        }
    }
    return h;
}
