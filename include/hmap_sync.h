/* SPDX-License-Identifier: MIT */
/*
 * hmap_sync.h — a concurrent map: many threads load, store and delete at once (included by hmap.h).
 *
 * The map is 2^s shards, each an hmap behind its own lock. Writers lock the key's shard. Readers of maps
 * whose keys compare bytewise (hmap_type.equal == NULL) take no lock and write nothing shared: they copy
 * the value out under the shard's sequence counter and retry when a writer was busy (after a few
 * retries they take the lock); maps with an equal() function take the lock on reads, so that equal() never
 * sees a key being overwritten. Each shard grows and shrinks as an hmap does, and gives memory back.
 *
 * Keys and values are copied by value, as in hmap. Every operation is linearizable on its key.
 *
 * Ownership, as in hmap: a call that writes a key or value into the map takes ownership of it; a call
 * that replaces a value (store, swap, update, compare_and_swap) drops the key passed unless it is
 * bitwise the stored key, and drops the old value (swap hands it to the caller instead). A call that
 * writes nothing (load_or_store returning 0, a compare_and_* that fails) takes nothing. Lookup keys
 * (load, delete, load_and_delete, compare_and_*) stay the caller's.
 *
 * Reclamation rule (values and keys with val_drop / key_drop). A key or value that leaves the map is not
 * dropped at once: its drop waits until every thread that was inside a read section when it left has
 * left that section (epoch-based reclamation). Read sections are: hmap_sync_pin() ... hmap_sync_unpin()
 * (nestable, per thread, covering every hmap_sync map), the fn of hmap_sync_load_with and of
 * hmap_sync_range, and each hmap_sync call internally. So:
 *   - a value loaded while the thread holds a pin (say a pointer to an object the map owns) may be
 *     dereferenced until that thread's matching hmap_sync_unpin();
 *   - a value loaded without a pin is a copy of the bytes: what it points to may be dropped as soon as
 *     load returns, if another thread deletes or replaces it;
 *   - a value handed to the caller (load_and_delete, swap's old value) belongs to the caller, but other
 *     threads may still be reading it: free it after hmap_sync_synchronize(), or once you know no reader
 *     holds it.
 * Deferred drops run in later writes to the same shard (outside every lock), in hmap_sync_reclaim, and at
 * the latest in hmap_sync_free. A pin held for long delays every drop of every map; take it for the time
 * a value is used.
 *
 * Errors as hmap: NULL map or key is EINVAL; ENOMEM is reported and leaves the map unchanged.
 */
#ifndef HMAP_SYNC_H
#define HMAP_SYNC_H

#include "hmap.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmap_sync hmap_sync;

/* A map sized for `hint` entries in all. NULL with errno EINVAL or ENOMEM, as hmap_new. */
hmap_sync *hmap_sync_new(const hmap_type *type, size_t hint);
/* The same with hmap's options: allocator, no_shrink, fixed_seed/seed and name apply to every shard
 * (reserved_ must be zero, EINVAL otherwise). */
hmap_sync *hmap_sync_new_opts(const hmap_type *type, size_t hint, const hmap_options *opts);

/* Drops every key and value (also those whose drop was deferred) and frees the map. No other thread may
 * use m any more, nor still be using a value it loaded from it. NULL is fine. */
void hmap_sync_free(hmap_sync *m);

/* Live entries: the sum of the shards' counts, each read at a slightly different moment. */
size_t hmap_sync_len(hmap_sync *m);

/* Copies the value of key to val_out (may be NULL: a presence test). false if absent (val_out then
 * untouched), or with errno EINVAL for a NULL map or key. */
bool hmap_sync_load(hmap_sync *m, const void *key, void *val_out);

/* Inserts or replaces: 1 inserted, 0 replaced, -ENOMEM, -EINVAL. Ownership as hmap_put. */
int hmap_sync_store(hmap_sync *m, const void *key, const void *val);

/* Removes key, dropping key and value (deferred, see above). false if absent; false with errno ENOMEM
 * when the drop could not be queued (a map with drop functions; the entry is then kept). */
bool hmap_sync_delete(hmap_sync *m, const void *key);

/* If key is present, copies its value to actual_out (may be NULL) and returns 0: nothing is taken. Else
 * stores key and val (the map takes both) and returns 1. -ENOMEM, -EINVAL. */
int hmap_sync_load_or_store(hmap_sync *m, const void *key, const void *val, void *actual_out);

/* Removes key and moves its value to val_out: ownership to the caller (val_out NULL: the value is dropped,
 * deferred). The stored key is dropped (deferred). false if absent, or as hmap_sync_delete. */
bool hmap_sync_load_and_delete(hmap_sync *m, const void *key, void *val_out);

/* Stores val and hands the previous value to old_out (ownership to the caller; NULL: dropped, deferred).
 * 1 inserted, 0 swapped, -ENOMEM, -EINVAL. */
int hmap_sync_swap(hmap_sync *m, const void *key, const void *val, void *old_out);

/* Replaces key's value by new_val if it is bytewise equal to old_val: true when swapped (the old value is
 * dropped, deferred; the map takes new_val). false if absent or different, or with errno ENOMEM. */
bool hmap_sync_compare_and_swap(hmap_sync *m, const void *key, const void *old_val, const void *new_val);

/* Removes key if its value is bytewise equal to old_val (dropping both, deferred). */
bool hmap_sync_compare_and_delete(hmap_sync *m, const void *key, const void *old_val);

/* Runs fn on key's value slot (zeroed, inserted = true, when the key is new; the map then owns the key)
 * atomically with respect to every other writer of the key: the way to change a value in place. fn runs
 * under the shard's lock: it must not call hmap_sync functions on this map, and must not free a value that
 * readers may hold (see the reclamation rule). 1 inserted, 0 updated, -ENOMEM, -EINVAL. */
int hmap_sync_update(hmap_sync *m, const void *key, void (*fn)(void *val, bool inserted, void *ctx),
                     void *ctx);

/* Calls fn for the entries, with copies of each key and value, until it returns false. A key present and
 * unchanged throughout is visited exactly once; no key is visited twice; a key stored or deleted
 * meanwhile may or may not be visited, with any value it had during the call. fn is never called with a
 * lock held and may call any hmap_sync function on the same map; it runs inside a read section, so the
 * key and value it is given may be dereferenced until it returns. */
void hmap_sync_range(hmap_sync *m, bool (*fn)(const void *key, const void *val, void *ctx), void *ctx);

/* Totals over the shards (count, buckets, overflow_buckets, old_buckets, evacuated, tombstones, bytes,
 * grows...); B is the largest shard's; phase is HMAP_STEADY unless some shard is resizing (then the first
 * such shard's). bytes also counts the map's own structures and memory whose free is deferred. */
void hmap_sync_get_stats(hmap_sync *m, hmap_stats *st);

/* ---- additions to the contract ---- */

/* Empties the map, every shard in turn (each at once: a reader sees a shard's entries all there or all
 * gone), and gives the arrays back as hmap_clear does (their frees, and the drops of the keys and values
 * that leave, deferred as for a delete: see the reclamation rule; what no reader can see any more goes
 * before it returns). Another thread's writes meanwhile
 * land before or after their shard is emptied. 0; -ENOMEM when the drops of some shard could not be
 * queued (a map with drop functions): that shard keeps its entries, the others are emptied; -EINVAL for
 * NULL. Open hmap_sync_range calls end their walk of a shard it empties. */
int hmap_sync_clear(hmap_sync *m);

/* As hmap_compact, shard by shard: finishes any resize and shrinks each shard's arrays to fit its live
 * entries (also with no_shrink), the old arrays going back before it returns unless a reader is inside a
 * read section (then at the next writes or hmap_sync_reclaim after that section ends). 0, or -ENOMEM when
 * some shard could not be rebuilt (it stays as it was); -EINVAL for NULL. O(n). */
int hmap_sync_compact(hmap_sync *m);

/* Calls fn with key's value (a copy) inside a read section: what the value points to stays valid until fn
 * returns. false if absent (fn not called). */
bool hmap_sync_load_with(hmap_sync *m, const void *key, void (*fn)(const void *val, void *ctx), void *ctx);

/* An explicit read section for the calling thread (nestable): values loaded inside stay valid until the
 * matching unpin. 0, or -ENOMEM when the thread's record could not be allocated (the thread then has no
 * pin: do not dereference loaded values). */
int hmap_sync_pin(void);
/* Ends the read section of the matching hmap_sync_pin (nothing when the thread holds none). */
void hmap_sync_unpin(void);

/* Waits until every read section open at the call has ended: then nothing removed before the call can
 * still be seen by a reader (free what load_and_delete or swap handed you). -EDEADLK when the calling
 * thread holds a pin itself; else 0. */
int hmap_sync_synchronize(void);

/* Runs, now, every deferred drop and free of m whose readers are gone (a program that stops writing
 * would otherwise keep the last ones until its next writes to the same shards). Returns how many
 * deferred drops and frees remain (those a current read section may still see). */
size_t hmap_sync_reclaim(hmap_sync *m);

/* The number of shards (a power of two): 16..256, chosen at creation from the number of CPUs (4 each) and
 * the size hint (one per 64 entries), whichever asks for more. */
size_t hmap_sync_shards(const hmap_sync *m);

#ifdef __cplusplus
}
#endif
#endif /* HMAP_SYNC_H */
