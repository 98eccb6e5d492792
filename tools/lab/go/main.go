// Command gomap-lab runs hmap-lab's central experiment on Go's own map, so that hmap-lab can print
// Go's figures beside hmap's: fill a map[uint64]uint64 with N entries, delete 99% of them, then delete
// the rest, and report after each step how much memory the map holds and what the process's RSS is.
//
// It is run by hmap-lab (tools/lab/release.c), one process per implementation so that RSS belongs to
// Go's map alone. The output is one record per line, space-separated, first word the record type,
// all numbers in bytes or nanoseconds:
//
//	sample <op> <heap bytes> <rss>                 while running, for the plot (no GC forced)
//	step <name> <count> <heap> <inuse> <rss> <rss after FreeOSMemory, or 0 when not called>
//	fresh <bytes>                                  a fresh map of the survivors of the 99% delete
//	maxop <insert ns> <delete ns>                  the longest single insert and delete
//	version <go version>
//
// "heap" is runtime.MemStats.HeapAlloc after runtime.GC() minus the same figure before the map
// existed: the bytes the map holds. "inuse" is HeapInuse (spans holding objects), likewise measured
// from the baseline. Keys are the same mixed sequence as hmap-lab's (see mixKey), so both maps see the
// same keys and delete the same ones.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

var out = bufio.NewWriter(os.Stdout)

// mixKey is splitmix64's finalizer: the i-th key of the experiment. hmap-lab uses the same function.
func mixKey(i uint64) uint64 {
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// survives tells whether key i is kept by the 99% delete: one key in a hundred.
func survives(i uint64) bool { return i%100 == 0 }

// rssBytes reads the resident set size from /proc/self/statm (second field, in pages).
func rssBytes() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(fields[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// heapAfterGC returns HeapAlloc and HeapInuse once garbage is collected: what live objects hold.
func heapAfterGC() (alloc, inuse uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse
}

// heapNow returns HeapAlloc without forcing a collection (garbage included): the plot's "bytes".
func heapNow() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// lab carries the experiment's baseline and sampling period.
type lab struct {
	baseAlloc, baseInuse uint64
	every, op            uint64
}

// tick counts one operation and emits a plot sample every `every` operations.
func (l *lab) tick() {
	l.op++
	if l.op%l.every == 0 {
		l.sample()
	}
}

func (l *lab) sample() {
	heap := int64(heapNow()) - int64(l.baseAlloc)
	if heap < 0 {
		heap = 0
	}
	fmt.Fprintf(out, "sample %d %d %d\n", l.op, heap, rssBytes())
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// step reports one row of the table: heap after GC, RSS, then (if release) RSS after FreeOSMemory.
// FreeOSMemory changes what later steps measure, so it is called only once the deletes have begun:
// the RSS after the 99% delete is then the runtime's own doing, as in a program that never calls it.
func (l *lab) step(name string, count int, release bool) {
	alloc, inuse := heapAfterGC()
	rss := rssBytes()
	released := uint64(0)
	if release {
		debug.FreeOSMemory()
		released = rssBytes()
	}
	fmt.Fprintf(out, "step %s %d %d %d %d %d\n", name, count, sub(alloc, l.baseAlloc),
		sub(inuse, l.baseInuse), rss, released)
	l.sample()
}

// freshBytes measures a map made for the survivors (make with their count) and filled with them.
func freshBytes(m map[uint64]uint64) uint64 {
	before, _ := heapAfterGC()
	fresh := make(map[uint64]uint64, len(m))
	for k, v := range m {
		fresh[k] = v
	}
	after, _ := heapAfterGC()
	runtime.KeepAlive(fresh)
	return sub(after, before)
}

func main() {
	n := flag.Uint64("n", 1000000, "entries to insert")
	samples := flag.Uint64("samples", 100, "plot samples per N operations")
	flag.Parse()
	if *samples == 0 {
		*samples = 1
	}

	l := &lab{every: *n / *samples}
	if l.every == 0 {
		l.every = 1
	}
	l.baseAlloc, l.baseInuse = heapAfterGC()
	m := make(map[uint64]uint64)
	l.step("empty", 0, false)

	var maxInsert, maxDelete time.Duration
	for i := uint64(0); i < *n; i++ {
		t := time.Now()
		m[mixKey(i)] = i
		if d := time.Since(t); d > maxInsert {
			maxInsert = d
		}
		l.tick()
	}
	l.step("filled", len(m), false)

	for i := uint64(0); i < *n; i++ {
		if survives(i) {
			continue
		}
		t := time.Now()
		delete(m, mixKey(i))
		if d := time.Since(t); d > maxDelete {
			maxDelete = d
		}
		l.tick()
	}
	l.step("deleted-99%", len(m), true)
	fmt.Fprintf(out, "fresh %d\n", freshBytes(m))

	for i := uint64(0); i < *n; i += 100 {
		delete(m, mixKey(i))
		l.tick()
	}
	l.step("deleted-all", len(m), true)
	fmt.Fprintf(out, "maxop %d %d\n", maxInsert.Nanoseconds(), maxDelete.Nanoseconds())
	fmt.Fprintf(out, "version %s\n", runtime.Version())
	runtime.KeepAlive(m)
	out.Flush()
}
