// SPDX-License-Identifier: MIT
// tophash: one bucket's 8 tophash bytes through inserts and deletes, read from the map's memory.
//
// A map made without a size hint has B = 0: one bucket, which holds the first 8 keys (growth comes at
// the 9th). So after 8 inserts every key is in that bucket, and its bytes can be printed after each step:
// tophash values >= 5 are live slots, 1 is emptyOne (deleted), 0 is emptyRest (deleted, and nothing
// live after it). For each step the probes a missing-key lookup makes are counted the way the runtime's
// generic lookup loop does it (it stops at the first emptyRest; mapaccess1 in runtime/map.go, and the
// string fast path does the same); the uint64 fast lookup (mapaccess1_fast64) looks at all 8 slots. Then what a delete
// clears: the key and the value bytes of the deleted slot, for uint64 keys and for string keys; and the
// hash seed when the map becomes empty.
package main

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// genericMissProbes is how many slots mapaccess1's loop looks at for a key whose tophash matches none.
func genericMissProbes(th *[bucketSize]byte) int {
	for i := 0; i < bucketCnt; i++ {
		if th[i] == emptyRest {
			return i + 1
		}
	}
	return bucketCnt
}

func tophashRow(step int, what string, m *map[uint64]uint64) {
	h := header(m)
	b := bucketAt(h.buckets, 0)
	cells := make([]string, bucketCnt)
	for i := range cells {
		cells[i] = fmt.Sprint(b[i])
	}
	row("tophash", step, what, strings.Join(cells, ","), genericMissProbes(b), h.count, h.B)
}

func tophash(n uint64) {
	if !headerOK {
		return
	}
	m := make(map[uint64]uint64)
	for i := uint64(0); i < bucketCnt; i++ {
		m[key(i)] = i + 1
	}
	tophashRow(0, "8-keys-inserted", &m)
	h := header(&m)
	b := bucketAt(h.buckets, 0)
	slotOf := func(k uint64) int { // where key k sits: keys start at offset 8
		for i := 0; i < bucketCnt; i++ {
			if *(*uint64)(unsafe.Pointer(&b[8+8*i])) == k {
				return i
			}
		}
		return -1
	}
	// delete the keys in slots 3, 7, 6, 5, 4 (slot order is insertion order in a one-bucket map)
	order := []int{3, 7, 6, 5, 4}
	keys := make([]uint64, bucketCnt)
	for i := uint64(0); i < bucketCnt; i++ {
		if s := slotOf(key(i)); s >= 0 {
			keys[s] = key(i)
		}
	}
	for step, slot := range order {
		delete(m, keys[slot])
		tophashRow(step+1, fmt.Sprintf("delete-slot-%d", slot), &m)
		if slot == 3 {
			num("u64.deleted_key_still_there", boolNum(*(*uint64)(unsafe.Pointer(&b[8+8*3])) == keys[3]))
			num("u64.deleted_value", float64(*(*uint64)(unsafe.Pointer(&b[8+64+8*3]))))
		}
	}
	m[key(100)] = 101
	tophashRow(len(order)+1, fmt.Sprintf("insert-lands-in-slot-%d", slotOf(key(100))), &m)
	seed := h.hash0
	for k := range m {
		delete(m, k)
	}
	num("hash0_changed_at_empty", boolNum(h.hash0 != seed))
	runtime.KeepAlive(m)
	stringKeys()
}

// stringKeys: a string key holds a pointer, so delete clears it: mapdelete_faststr sets the string
// header's pointer to nil (its length stays).
func stringKeys() {
	const strBucket = 8 + 8*16 + 8*8 + 8
	s := make(map[string]uint64)
	for i := 0; i < bucketCnt; i++ {
		s[fmt.Sprintf("key-%d", i)] = uint64(i) + 1
	}
	h := *(**hmapHeader)(unsafe.Pointer(&s))
	b := (*[strBucket]byte)(h.buckets)
	delete(s, "key-3")
	num("str.deleted_key_pointer_cleared", boolNum(*(*uintptr)(unsafe.Pointer(&b[8+16*3])) == 0))
	num("str.deleted_key_length", float64(*(*uintptr)(unsafe.Pointer(&b[8+16*3+8]))))
	num("str.deleted_value", float64(*(*uint64)(unsafe.Pointer(&b[8+128+8*3]))))
	runtime.KeepAlive(s)
}

func boolNum(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
