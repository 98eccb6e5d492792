// SPDX-License-Identifier: MIT
// values: n values of 1 MiB owned by a map, then deleted.
//
// A map[uint64]*[1 MiB]byte holds pointers: delete clears the slot, so the value becomes garbage and the
// next GC frees it; the buckets stay. The same with sync.Map, which is said to keep the arrays.
// Every page of every value is written, so that it is resident. Figures: HeapAlloc after runtime.GC()
// minus the heap before; RSS as the runtime leaves it after the GC, and after debug.FreeOSMemory().
package main

import (
	"runtime"
	"runtime/debug"
	"sync"
)

const valueSize = 1 << 20

type value [valueSize]byte

func newValue(i uint64) *value {
	v := new(value)
	for p := 0; p < valueSize; p += 4096 {
		v[p] = byte(i) | 1
	}
	return v
}

func values(n uint64) {
	base := heapAfterGC()
	m := make(map[uint64]*value)
	for i := uint64(0); i < n; i++ {
		m[key(i)] = newValue(i)
	}
	num("map.filled.heap", float64(sub(heapAfterGC(), base)))
	num("map.filled.rss", float64(rss()))
	num("map.filled.B", float64((*(**hmapHeader)(unsafeMapPointer(&m))).B))
	for i := uint64(0); i < n; i++ {
		delete(m, key(i))
	}
	num("map.deleted.rss", float64(rss()))
	num("map.deleted_gc.heap", float64(sub(heapAfterGC(), base)))
	num("map.deleted_gc.rss", float64(rss()))
	num("map.deleted_gc.B", float64((*(**hmapHeader)(unsafeMapPointer(&m))).B))
	num("map.deleted_gc.count", float64(len(m)))
	debug.FreeOSMemory()
	num("map.released.rss", float64(rss()))
	runtime.KeepAlive(m)
	m = nil

	base = heapAfterGC()
	var s sync.Map
	for i := uint64(0); i < n; i++ {
		s.Store(key(i), newValue(i))
	}
	for i := uint64(0); i < n; i++ { // a read promotes the dirty map to the read map, as in a real program
		s.Load(key(i))
	}
	num("sync.filled.heap", float64(sub(heapAfterGC(), base)))
	num("sync.filled.rss", float64(rss()))
	for i := uint64(0); i < n; i++ {
		s.Delete(key(i))
	}
	num("sync.deleted_gc.heap", float64(sub(heapAfterGC(), base)))
	num("sync.deleted_gc.rss", float64(rss()))
	debug.FreeOSMemory()
	num("sync.released.rss", float64(rss()))
	runtime.KeepAlive(&s)
}
