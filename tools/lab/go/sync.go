// SPDX-License-Identifier: MIT
// sync: fill a sync.Map with n keys, delete 99%, delete the rest, then go on using it (a new key stored,
// then lookups that miss, twice) — what it holds at each step, and what its two inner maps hold.
//
// "bytes" is HeapAlloc after runtime.GC() minus the same figure before the map existed. After each delete
// step RSS is read once as the runtime left it and once after debug.FreeOSMemory(). Points for the plot are
// taken about every tenth of a phase and at each step of the last one, each after a runtime.GC() (a
// sync.Map's memory is mostly small objects, entries and boxed keys, that no header tells about).
//
// A sync.Map (Go 1.19) is a read-only map, read without a lock, and a dirty map behind a mutex that holds
// what the read map lacks. Delete of a key in the read map only sets its entry's pointer to nil; the entry
// stays. When a new key is stored and there is no dirty map, a dirty map is built from the read map's live
// entries, and the nil ones are marked expunged, not copied; once lookups have missed the read map as
// often as the dirty map has entries, the dirty map is promoted to be the read map and the old one becomes
// garbage. Whether that is what happens is read, not assumed: syncInside reads the read map, the dirty map
// and each entry through unsafe, with the Go 1.19 layout of sync.Map, and only after checking that layout
// on a map whose state is known (syncLayoutOK); on another runtime it reports the figures without them.
package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"unsafe"
)

// The Go 1.19 layout of sync.Map and of what it points to (sync/map.go): a Mutex (two 32-bit words),
// read as an atomic.Value (an interface holding a readOnly), the dirty map, the miss counter.
type syncMapLayout struct {
	mu     [8]byte
	read   struct{ typ, data unsafe.Pointer }
	dirty  map[any]*syncEntry
	misses int
}

type syncReadOnly struct {
	m       map[any]*syncEntry
	amended bool
}

type syncEntry struct{ p unsafe.Pointer }

// syncState is what the two maps hold at one moment.
type syncState struct {
	read, readLive, readNil, readExpunged, dirty int
	readB, dirtyB                                int // -1 when there is no such map
	amended                                      bool
	misses                                       int
}

var syncExpunged unsafe.Pointer // sync's expunged marker, found by syncLayoutOK
var syncLayoutChecked, syncLayoutGood bool
var syncLayoutWhy string

func syncLayout(m *sync.Map) *syncMapLayout { return (*syncMapLayout)(unsafe.Pointer(m)) }

func syncReadMap(m *sync.Map) *syncReadOnly {
	return (*syncReadOnly)(syncLayout(m).read.data) // nil before the first store
}

// mapB is the B of the runtime header of the map variable mp points to; -1 for a nil map.
func mapB(mp *map[any]*syncEntry) int {
	if *mp == nil || !checkHeader() {
		return -1
	}
	return int((*(**hmapHeader)(unsafe.Pointer(mp))).B)
}

// syncInside reads the state of m's two maps (call only when syncLayoutOK).
func syncInside(m *sync.Map) syncState {
	l := syncLayout(m)
	s := syncState{readB: -1, dirtyB: mapB(&l.dirty), dirty: len(l.dirty), misses: l.misses}
	if ro := syncReadMap(m); ro != nil {
		s.read, s.amended, s.readB = len(ro.m), ro.amended, mapB(&ro.m)
		for _, e := range ro.m {
			switch p := e.p; {
			case p == nil:
				s.readNil++
			case p == syncExpunged:
				s.readExpunged++
			default:
				s.readLive++
			}
		}
	}
	return s
}

// syncLayoutOK checks the layout on a map taken through known states, and finds the expunged marker: a key
// deleted from the read map, then a new key stored, leaves that key's entry pointing at it.
func syncLayoutOK() (bool, string) {
	if syncLayoutChecked {
		return syncLayoutGood, syncLayoutWhy
	}
	syncLayoutChecked = true
	if !strings.HasPrefix(runtime.Version(), "go1.19") {
		syncLayoutWhy = runtime.Version() + " is not Go 1.19: sync.Map's inside has another layout"
		return false, syncLayoutWhy
	}
	var m sync.Map
	m.Store(uint64(1000), uint64(1))
	ro, l := syncReadMap(&m), syncLayout(&m)
	stored := ro != nil && ro.amended && len(ro.m) == 0 && len(l.dirty) == 1
	m.Load(uint64(2000)) // one miss against a dirty map of one entry: promoted
	ro = syncReadMap(&m)
	promoted := ro != nil && !ro.amended && len(ro.m) == 1 && l.dirty == nil
	m.Delete(uint64(1000))
	m.Store(uint64(3000), uint64(3)) // a new key: the dirty map is built, key 1000 expunged
	ro = syncReadMap(&m)
	if !stored || !promoted || ro == nil || len(ro.m) != 1 || len(l.dirty) != 1 {
		syncLayoutWhy = "the check of sync.Map's layout failed"
		return false, syncLayoutWhy
	}
	for _, e := range ro.m {
		syncExpunged = e.p
	}
	syncLayoutGood = syncExpunged != nil
	if !syncLayoutGood {
		syncLayoutWhy = "no expunged marker found"
	}
	runtime.KeepAlive(&m)
	return syncLayoutGood, syncLayoutWhy
}

type syncRun struct {
	m          sync.Map
	base, live uint64
	op, every  uint64
	inside     bool
}

func (r *syncRun) sample() {
	point("bytes", float64(r.op), float64(sub(heapAfterGC(), r.base)))
	point("rss", float64(r.op), float64(rss()))
}

func (r *syncRun) tick() {
	r.op++
	if r.op%r.every == 0 {
		r.sample()
	}
}

// phase samples the next phase about 10 times: each sample is a full GC, ~70 ms at 1M keys.
func (r *syncRun) phase(ops uint64) {
	r.every = ops / 10
	if r.every == 0 {
		r.every = 1
	}
}

func (r *syncRun) step(name string, release bool) {
	heap := sub(heapAfterGC(), r.base)
	num(name+".bytes", float64(heap))
	num(name+".rss", float64(rss()))
	num(name+".count", float64(r.live))
	if release {
		debug.FreeOSMemory()
		num(name+".rss_released", float64(rss()))
	}
	if r.inside {
		s := syncInside(&r.m)
		num(name+".read", float64(s.read))
		num(name+".read_live", float64(s.readLive))
		num(name+".read_deleted", float64(s.readNil))
		num(name+".read_expunged", float64(s.readExpunged))
		num(name+".read_B", float64(s.readB))
		num(name+".dirty", float64(s.dirty))
		num(name+".dirty_B", float64(s.dirtyB))
		amended := 0
		if s.amended {
			amended = 1
		}
		num(name+".amended", float64(amended))
		num(name+".misses", float64(s.misses))
	}
	if r.op > 0 { // none for the empty map: its few bytes would stretch the log axis down by octaves
		r.sample()
	}
}

// storeAndMiss is what a program still using the map does next: it stores a new key, then looks up keys
// that are absent, live+1 times (enough misses to promote a dirty map that holds only live keys).
func (r *syncRun) storeAndMiss(name string, i uint64) {
	r.m.Store(key(i), i)
	r.live++
	r.tick()
	r.step(name+"_stored", false)
	for j := uint64(0); j <= r.live; j++ {
		r.m.Load(key(i + 1 + j)) // absent: the next indices are never stored
		r.tick()
	}
	r.step(name+"_missed", false)
}

func syncExp(n uint64) {
	inside, why := syncLayoutOK()
	if inside {
		num("inside", 1)
	} else {
		num("inside", 0)
		str("inside_missing", why)
	}
	r := &syncRun{inside: inside}
	r.base = heapAfterGC()
	r.step("empty", false)
	r.phase(n)
	for i := uint64(0); i < n; i++ {
		r.m.Store(key(i), i)
		r.live++
		r.tick()
	}
	r.step("filled", false)
	survivors := (n + 99) / 100
	r.phase(n - survivors)
	for i := uint64(0); i < n; i++ {
		if !survives(i) {
			r.m.Delete(key(i))
			r.live--
			r.tick()
		}
	}
	r.step("deleted99", true)
	r.phase(survivors)
	for i := uint64(0); i < n; i += 100 {
		r.m.Delete(key(i))
		r.live--
		r.tick()
	}
	r.step("deletedall", true)
	r.every = 1 << 62 // the last phase's few operations: each step below takes its own sample
	r.storeAndMiss("round1", 2*n)
	r.storeAndMiss("round2", 3*n)
	runtime.KeepAlive(&r.m)

	// The fresh map of the survivors: a new sync.Map (it takes no size hint) with the same keys stored.
	fresh, f := heapOfSync(func(m *sync.Map) {
		for i := uint64(0); i < n; i += 100 {
			m.Store(key(i), i)
		}
	})
	num("fresh.bytes", float64(fresh))
	runtime.KeepAlive(f)
}

// heapOfSync measures what a sync.Map filled by fill() leaves on the heap.
func heapOfSync(fill func(m *sync.Map)) (uint64, *sync.Map) {
	before := heapAfterGC()
	m := new(sync.Map)
	fill(m)
	return sub(heapAfterGC(), before), m
}
