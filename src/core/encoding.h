/* SPDX-License-Identifier: MIT */
/*
 * core/encoding.h — how a bucket's 8 tophash bytes encode its slots, and the SWAR arithmetic that reads
 * them 8 at a time. Everything that reads buckets uses these, the core and the concurrent map's lock-free
 * reads alike (which is why this header stands alone: core/sync_support.h includes it without the rest of
 * the core).
 */
#ifndef HMAP_CORE_ENCODING_H
#define HMAP_CORE_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLOTS_PER_BUCKET 8

/* Tophash states, as in Go. A slot's tophash byte is either one of these or a hash-derived value
 * >= MIN_TOPHASH. */
enum {
    EMPTY_REST = 0,      /* this slot is empty, and so is every later slot of the bucket and its overflows */
    EMPTY_ONE = 1,       /* this slot is empty (a tombstone left by a delete) */
    EVACUATED_X = 2,     /* entry moved to the first (or only) destination bucket of the new array */
    EVACUATED_Y = 3,     /* entry moved to the second destination bucket (growth only) */
    EVACUATED_EMPTY = 4, /* slot was empty when its bucket was evacuated */
    MIN_TOPHASH = 5,     /* smallest tophash of a live entry */
};

/* A slot's tophash: the hash's low byte, moved above the reserved states. */
static inline uint8_t tophash_of(uint64_t hash) {
    uint8_t top = (uint8_t)hash;
    return top < MIN_TOPHASH ? (uint8_t)(top + MIN_TOPHASH) : top;
}

/* SWAR on a bucket's 8 tophash bytes: each helper returns a mask with the high bit of every selected byte. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define LOWS7 0x7f7f7f7f7f7f7f7fULL

/* Bytes equal to `byte`. Bytes above a true match may be reported falsely (a borrow), never below it, so
 * the lowest bit is always a real match; callers compare keys anyway. */
static inline uint64_t match_byte(uint64_t w, uint8_t byte) {
    uint64_t x = w ^ (ONES * byte);
    return (x - ONES) & ~x & HIGHS;
}

/* Bytes equal to zero, exactly (no borrow between bytes). */
static inline uint64_t zero_bytes(uint64_t w) { return ~(((w & LOWS7) + LOWS7) | w | LOWS7); }

/* True when the word holds an EMPTY_REST byte: the chain ends here. The borrowing test of match_byte is
 * enough for a yes/no answer (its lowest reported byte is always a real zero) and is one operation
 * shorter than zero_bytes(): every miss runs it (callgrind, 1Ki u64 map: 78 -> 75 instructions a miss,
 * counting the caller's loop). */
static inline bool has_empty_rest(uint64_t w) { return ((w - ONES) & ~w & HIGHS) != 0; }

/* Bytes holding a live entry (tophash >= MIN_TOPHASH), exactly. */
static inline uint64_t live_slots(uint64_t w) {
    return (((w & LOWS7) + ONES * (0x80 - MIN_TOPHASH)) | w) & HIGHS;
}

/* How many bytes a mask from the helpers above selects (no popcount instruction needed). */
static inline unsigned count_bytes(uint64_t mask) { return (unsigned)(((mask >> 7) * ONES) >> 56); }

/* Bytes <= EMPTY_ONE, free for an insert, found with the borrowing test of match_byte: the mask is nonzero
 * exactly when one is free, and its lowest byte is the first free slot, which is all an insert asks (a
 * byte above it may be reported falsely). */
static inline uint64_t free_slots(uint64_t w) {
    uint64_t x = w & ~ONES;
    return (x - ONES) & ~x & HIGHS;
}

/* The lowest slot a mask from the helpers above selects. */
static inline unsigned first_slot(uint64_t mask) { return (unsigned)__builtin_ctzll(mask) / 8; }

/* Visits the slots a mask selects, lowest first, in the (already declared) unsigned s. `break` and
 * `continue` work as in any loop. */
#define for_each_slot(s, mask)                                                                               \
    for (uint64_t slots_left_ = (mask); slots_left_ && ((s) = first_slot(slots_left_), true);                \
         slots_left_ &= slots_left_ - 1)

/* The encodings the SWAR helpers and evacuation depend on. */
_Static_assert(EMPTY_REST == 0 && EMPTY_ONE == 1,
               "free_slots() finds bytes <= EMPTY_ONE by clearing bit 0 and looking for zero bytes; "
               "has_empty_rest() and fresh (zeroed) arrays need EMPTY_REST to be 0");
_Static_assert(EVACUATED_Y == EVACUATED_X + 1, "evacuate() marks a slot EVACUATED_X + destination (0 or 1)");
_Static_assert(EVACUATED_X > EMPTY_ONE && EVACUATED_EMPTY < MIN_TOPHASH,
               "evacuation marks are neither empty slots nor live entries");
_Static_assert(MIN_TOPHASH < 0x80, "live_slots() adds 0x80 - MIN_TOPHASH to the low 7 bits of each byte");
_Static_assert(SLOTS_PER_BUCKET == 8, "a bucket's tophash bytes are one 64-bit word");

/* High bits of the hash choose the bucket: bucket i of 2^B covers hashes [i << (64-B), (i+1) << (64-B)). */
static inline size_t bucket_index(uint64_t hash, unsigned B) {
    return (size_t)((hash >> 1) >> (63 - B)); /* two shifts: B = 0 gives 0 without a branch */
}

/* Slot i's tophash is byte i of the word in memory, which is its byte i in value on a little-endian
 * machine: the SWAR masks above number slots by their lowest set bit (ctz). */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hmap's tophash words assume a little-endian machine"
#endif

#endif /* HMAP_CORE_ENCODING_H */
