// SPDX-License-Identifier: MIT
// delete: fill n, delete 99%, delete the rest, fill n again — what Go's map holds at each step.
//
// "bytes" is HeapAlloc after runtime.GC() minus the same figure before the map existed; B comes from the
// header. After each delete step, RSS is read once as the runtime left it and once after
// debug.FreeOSMemory(). While running, a point is printed every n/100 operations for the plot (the
// arrays' size from the header, and RSS). Then the remedies, each measured as heap bytes: the
// range-and-delete loop that the compiler turns into mapclear, rebuilding into a map made with the live
// count, and the same made with the old count.
package main

import (
	"runtime"
	"runtime/debug"
)

type deleteRun struct {
	m     map[uint64]uint64
	base  uint64
	op    uint64
	every uint64
}

func (d *deleteRun) tick() {
	d.op++
	if d.op%d.every == 0 {
		d.sample()
	}
}

// phase samples the next phase 100 times, however short (the last deletes are 1% of the operations).
func (d *deleteRun) phase(ops uint64) {
	d.every = ops / 100
	if d.every == 0 {
		d.every = 1
	}
}

func (d *deleteRun) sample() {
	point("bytes", float64(d.op), float64(arrayBytes(header(&d.m))))
	point("rss", float64(d.op), float64(rss()))
}

func (d *deleteRun) step(name string, release bool) {
	heap := sub(heapAfterGC(), d.base)
	h := header(&d.m)
	row("step", name, len(d.m), heap, rss(), h.B)
	num(name+".bytes", float64(heap))
	num(name+".rss", float64(rss()))
	num(name+".B", float64(h.B))
	num(name+".count", float64(len(d.m)))
	if release {
		debug.FreeOSMemory()
		num(name+".rss_released", float64(rss()))
	}
	d.sample()
}

func deleteExp(n uint64) {
	d := &deleteRun{every: n / 100}
	if d.every == 0 {
		d.every = 1
	}
	d.base = heapAfterGC()
	d.m = make(map[uint64]uint64)
	d.step("empty", false)
	for i := uint64(0); i < n; i++ {
		d.m[key(i)] = i
		d.tick()
	}
	d.step("filled", false)
	survivors := (n + 99) / 100
	d.phase(n - survivors)
	for i := uint64(0); i < n; i++ {
		if !survives(i) {
			delete(d.m, key(i))
			d.tick()
		}
	}
	d.step("deleted99", true)
	d.phase(survivors)
	for i := uint64(0); i < n; i += 100 {
		delete(d.m, key(i))
		d.tick()
	}
	d.step("deletedall", true)
	d.phase(n)
	for i := uint64(0); i < n; i++ {
		d.m[key(n+i)] = i
		d.tick()
	}
	d.step("refilled", false)
	remedies(n)
	runtime.KeepAlive(d.m)
}

// heapOf measures what building a map with build() leaves on the heap.
func heapOf(build func() map[uint64]uint64) (uint64, map[uint64]uint64) {
	before := heapAfterGC()
	m := build()
	after := heapAfterGC()
	return sub(after, before), m
}

func remedies(n uint64) {
	survivors := (n + 99) / 100
	// clear: the range-and-delete loop; the compiler replaces it with a call to mapclear
	full, m := heapOf(func() map[uint64]uint64 {
		m := make(map[uint64]uint64)
		for i := uint64(0); i < n; i++ {
			m[key(i)] = i
		}
		return m
	})
	B := header(&m).B
	before := heapAfterGC()
	for k := range m {
		delete(m, k)
	}
	after := heapAfterGC()
	num("clear.bytes_before", float64(full))
	num("clear.bytes_after", float64(sub(full+after, before)))
	num("clear.B_before", float64(B))
	num("clear.B_after", float64(header(&m).B))
	num("clear.count_after", float64(len(m)))
	runtime.KeepAlive(m)
	m = nil

	fresh, f := heapOf(func() map[uint64]uint64 {
		f := make(map[uint64]uint64, survivors)
		for i := uint64(0); i < n; i += 100 {
			f[key(i)] = i
		}
		return f
	})
	num("fresh.bytes", float64(fresh))
	num("fresh.B", float64(header(&f).B))
	runtime.KeepAlive(f)
	f = nil
	oldLen, o := heapOf(func() map[uint64]uint64 {
		o := make(map[uint64]uint64, n)
		for i := uint64(0); i < n; i += 100 {
			o[key(i)] = i
		}
		return o
	})
	num("oldlen.bytes", float64(oldLen))
	num("oldlen.B", float64(header(&o).B))
	runtime.KeepAlive(o)
}
