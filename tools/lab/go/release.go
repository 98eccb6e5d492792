// SPDX-License-Identifier: MIT
// release: the usual remedies for Go's map, measured.
//
// Fill n, delete 99%. Then "force GC": runtime.GC() while the map is still in use. Then "copy into a new
// map": the survivors into make(map, len(m)), the old map dropped, runtime.GC(), and RSS sampled every
// 10 ms for `waitMillis` ms to see whether the runtime hands the pages back by itself (its background
// scavenger); then debug.FreeOSMemory(), timed. Last, the go:linkname "freeHeapBits" remedy: is there
// such a function? The runtime's sources (runtime.GOROOT()/src/runtime) are searched for its definition,
// and this very binary's symbol table for its symbol.
package main

import (
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

const waitMillis = 1000

func release(n uint64) {
	base := heapAfterGC()
	m := make(map[uint64]uint64)
	for i := uint64(0); i < n; i++ {
		m[key(i)] = i
	}
	for i := uint64(0); i < n; i++ {
		if !survives(i) {
			delete(m, key(i))
		}
	}
	num("deleted.heap", float64(sub(heapAfterGC(), base)))
	num("deleted.rss", float64(rss()))
	num("deleted.B", float64(header(&m).B))

	t0 := time.Now()
	runtime.GC()
	num("gc.ns", float64(time.Since(t0).Nanoseconds()))
	num("gc.heap", float64(sub(heapAfterGC(), base)))
	num("gc.rss", float64(rss()))

	t0 = time.Now()
	point("rss_wait", 0, float64(rss()))
	fresh := make(map[uint64]uint64, len(m))
	for k, v := range m {
		fresh[k] = v
	}
	m = fresh
	num("rebuild.ns", float64(time.Since(t0).Nanoseconds()))
	runtime.GC()
	num("rebuild.heap", float64(sub(heapAfterGC(), base)))
	num("rebuild.B", float64(header(&m).B))
	start := t0
	for t := 0; t <= waitMillis; t += 10 {
		point("rss_wait", float64(time.Since(start).Nanoseconds()), float64(rss()))
		time.Sleep(10 * time.Millisecond)
	}
	num("rebuild.rss_waited", float64(rss()))
	t0 = time.Now()
	debug.FreeOSMemory()
	num("free_os_memory.ns", float64(time.Since(t0).Nanoseconds()))
	num("free_os_memory.rss", float64(rss()))
	point("rss_wait", float64(time.Since(start).Nanoseconds()), float64(rss()))
	runtime.KeepAlive(m)
	freeHeapBits()
}

// freeHeapBits looks for the function the go:linkname remedy would link to.
func freeHeapBits() {
	dir := filepath.Join(runtime.GOROOT(), "src", "runtime")
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	found, similar := 0, map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "func ") {
				continue
			}
			name := strings.TrimPrefix(line, "func ")
			if strings.HasPrefix(name, "(") { // a method: skip the receiver
				if i := strings.Index(name, ") "); i >= 0 {
					name = name[i+2:]
				}
			}
			if i := strings.IndexAny(name, "(["); i >= 0 {
				name = name[:i]
			}
			if name == "freeHeapBits" {
				found++
			}
			if strings.Contains(strings.ToLower(name), "heapbits") {
				similar[name] = true
			}
		}
	}
	num("freeheapbits.files", float64(len(files)))
	num("freeheapbits.in_source", float64(found))
	names := make([]string, 0, len(similar))
	for s := range similar {
		names = append(names, s)
	}
	sort.Strings(names)
	str("freeheapbits.similar", strings.Join(names, ","))
	str("freeheapbits.dir", dir)
	inBinary, symbols := 0, 0
	if exe, err := os.Executable(); err == nil {
		if f, err := elf.Open(exe); err == nil {
			syms, _ := f.Symbols()
			symbols = len(syms)
			for _, s := range syms {
				if s.Name == "runtime.freeHeapBits" {
					inBinary++
				}
			}
			f.Close()
		}
	}
	num("freeheapbits.symbols", float64(symbols))
	num("freeheapbits.in_binary", float64(inBinary))
}
