// SPDX-License-Identifier: MIT
// pool: a request loop that needs a scratch map per request, with and without sync.Pool.
//
// Each request takes a map[uint64]uint64, puts poolEntries keys in it, looks each one up and lets it go:
// without a pool the map is garbage; with sync.Pool it goes back after `for k := range m { delete(m, k) }`,
// which the compiler turns into one mapclear call that keeps the buckets. 1 goroutine, then 2 (n requests
// split between them). Figures: allocations per request (MemStats.Mallocs during the loop / requests),
// HeapAlloc above the baseline (after runtime.GC() before the loop) when the load stops (no GC yet, so
// the unpooled loop's garbage still counts), after a first runtime.GC() (sync.Pool's objects move to the
// victim cache) and after a second (the victims are dropped); New calls.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

const poolEntries = 1000

type poolRun struct {
	pool *sync.Pool
	made int64
	sum  uint64
}

func (p *poolRun) request(r uint64) uint64 {
	var m map[uint64]uint64
	if p.pool != nil {
		m = p.pool.Get().(map[uint64]uint64)
	} else {
		m = make(map[uint64]uint64)
	}
	for j := uint64(0); j < poolEntries; j++ {
		m[key(r*poolEntries+j)] = r*poolEntries + j
	}
	var sum uint64
	for j := uint64(0); j < poolEntries; j++ {
		sum += m[key(r*poolEntries+j)]
	}
	if p.pool != nil {
		for k := range m {
			delete(m, k)
		}
		p.pool.Put(m)
	}
	return sum
}

// loop runs n requests on `workers` goroutines and returns the summed time of their loops.
func (p *poolRun) loop(n uint64, workers int) uint64 {
	var wg sync.WaitGroup
	var total, sum uint64
	for w := 0; w < workers; w++ {
		first, last := n*uint64(w)/uint64(workers), n*uint64(w+1)/uint64(workers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := nanotime()
			var s uint64
			for r := first; r < last; r++ {
				s += p.request(r)
			}
			atomic.AddUint64(&total, nanotime()-t0)
			atomic.AddUint64(&sum, s)
		}()
	}
	wg.Wait()
	p.sum = sum
	return total
}

func heapAlloc() (uint64, uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.Mallocs
}

func poolLoad(n uint64, workers int, pooled bool) {
	pre := fmt.Sprintf("t%d.none.", workers)
	p := &poolRun{}
	if pooled {
		pre = fmt.Sprintf("t%d.pool.", workers)
		p.pool = &sync.Pool{New: func() interface{} {
			atomic.AddInt64(&p.made, 1)
			return make(map[uint64]uint64)
		}}
	}
	base := heapAfterGC()
	_, m0 := heapAlloc()
	ns := p.loop(n, workers)
	held, m1 := heapAlloc()
	num(pre+"mallocs_per_req", float64(m1-m0)/float64(n))
	num(pre+"ns_per_req", float64(ns)/float64(n))
	num(pre+"held.bytes", float64(sub(held, base)))
	num(pre+"cycle1.bytes", float64(sub(heapAfterGC(), base)))
	num(pre+"cycle2.bytes", float64(sub(heapAfterGC(), base)))
	if pooled {
		num(pre+"made", float64(atomic.LoadInt64(&p.made)))
	}
	runtime.KeepAlive(p)
}

func poolExp(n uint64) {
	// What one full scratch map's buckets take, from its runtime header.
	m := make(map[uint64]uint64)
	for j := uint64(0); j < poolEntries; j++ {
		m[key(j)] = j
	}
	if checkHeader() {
		num("map_bytes", float64(arrayBytes(header(&m))))
	} else {
		before := heapAfterGC()
		m = nil
		num("map_bytes", float64(sub(before, heapAfterGC())))
	}
	runtime.KeepAlive(m)
	for _, workers := range []int{1, 2} {
		poolLoad(n, workers, false)
		poolLoad(n, workers, true)
	}
}
