// SPDX-License-Identifier: MIT
// signals: the three usual signals of a map that keeps memory, on a program whose map does.
//
// The program: `waves` waves, each inserting n new keys and deleting 99% of them, so the live count
// grows by 1% of n a wave while the map stays at its peak size. Signal 1, memstats over time: HeapAlloc
// from runtime.ReadMemStats (no forced GC: what a dashboard sees). Signal 2, a heap profile
// (pprof.WriteHeapProfile after a GC) at the end, for `go tool pprof -top`; and MemProfileRate, the
// sampling period. Signal 3, GODEBUG=gctrace=1 (set by hmap-lab): one line per GC on stderr, against
// NumGC. And unsafe.Sizeof of the map against the bytes it holds.
package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"unsafe"
)

const waves = 3

var profilePath string

func heapNow() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func signals(n uint64) {
	num("mem_profile_rate", float64(runtime.MemProfileRate))
	base := heapAfterGC()
	m := make(map[uint64]uint64)
	every := n / 25
	if every == 0 {
		every = 1
	}
	op := uint64(0)
	for w := uint64(0); w < waves; w++ {
		first := w * n
		for i := first; i < first+n; i++ {
			m[key(i)] = i
			if op++; op%every == 0 {
				point("heap", float64(op), float64(sub(heapNow(), base)))
			}
		}
		for i := first; i < first+n; i++ {
			if !survives(i) {
				delete(m, key(i))
				if op++; op%every == 0 {
					point("heap", float64(op), float64(sub(heapNow(), base)))
				}
			}
		}
	}
	num("count", float64(len(m)))
	num("map_bytes", float64(sub(heapAfterGC(), base)))
	num("sizeof", float64(unsafe.Sizeof(m)))
	num("fresh_bytes", float64(freshOf(m)))
	if profilePath != "" {
		runtime.GC()
		if f, err := os.Create(profilePath); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
			str("profile", profilePath)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	num("num_gc", float64(ms.NumGC))
	runtime.KeepAlive(m)
}

// freshOf is the heap a map made for m's live count takes once filled with m's entries.
func freshOf(m map[uint64]uint64) uint64 {
	b, f := heapOf(func() map[uint64]uint64 {
		f := make(map[uint64]uint64, len(m))
		for k, v := range m {
			f[k] = v
		}
		return f
	})
	runtime.KeepAlive(f)
	return b
}
