// SPDX-License-Identifier: MIT
// Command gomap-lab is hmap-lab's Go companion: it runs each experiment of the lab on Go's own map and
// prints what it measured, so that hmap-lab can show Go's figures beside hmap's.
//
//	gomap-lab <experiment> -n N      experiments: grow delete tophash values iterate signals release pool sync
//	gomap-lab version                prints the Go version it was built with
//
// The output is hmap-lab's line protocol (tools/lab/lab.h): "m key number", "s key text", "r table
// fields...", "p series x y". The map's internals are read the way the runtime lays them out: a map value
// is a pointer to the runtime's hmap header (runtime/map.go in Go 1.19: count, flags, B, noverflow, hash0,
// buckets, oldbuckets, nevacuate, extra), and a bucket of a map[uint64]uint64 is 8 tophash bytes, 8 keys,
// 8 values and an overflow pointer (144 bytes). Reading them through unsafe is only sound for the layout
// it was written against, so header() refuses other Go versions (Go 1.24 replaced the map entirely).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

var out = bufio.NewWriter(os.Stdout)

// ---- the line protocol ----

func num(key string, v float64) {
	if v == float64(int64(v)) {
		fmt.Fprintf(out, "m %s %d\n", key, int64(v))
	} else {
		fmt.Fprintf(out, "m %s %.9g\n", key, v)
	}
}

func str(key, text string) { fmt.Fprintf(out, "s %s %s\n", key, text) }

func row(table string, fields ...interface{}) {
	fmt.Fprintf(out, "r %s", table)
	for _, f := range fields {
		fmt.Fprintf(out, " %v", f)
	}
	fmt.Fprintln(out)
}

func point(series string, x, y float64) { fmt.Fprintf(out, "p %s %.9g %.9g\n", series, x, y) }

// ---- keys: the same sequence as hmap-lab's lab_key ----

func key(i uint64) uint64 {
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func survives(i uint64) bool { return i%100 == 0 }

// ---- memory ----

func statm(field int) uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) <= field {
		return 0
	}
	pages, _ := strconv.ParseUint(f[field], 10, 64)
	return pages * uint64(os.Getpagesize())
}

func rss() uint64 { return statm(1) }

// heapAfterGC is HeapAlloc once garbage is collected: the bytes live objects hold.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// ---- the runtime's map header (Go 1.19 layout) ----

type hmapHeader struct {
	count      int
	flags      uint8
	B          uint8
	noverflow  uint16
	hash0      uint32
	buckets    unsafe.Pointer
	oldbuckets unsafe.Pointer
	nevacuate  uintptr
	extra      unsafe.Pointer
}

// Header flag bits and tophash marks, as in runtime/map.go.
const (
	flagSameSizeGrow = 8
	emptyRest        = 0
	emptyOne         = 1
	evacuatedEmpty   = 4
	minTopHash       = 5
	bucketCnt        = 8
	bucketSize       = 8 + 8*8 + 8*8 + 8 // map[uint64]uint64: tophash, keys, values, overflow pointer
)

var headerOK, headerChecked bool
var headerWhy string

// layoutKnown reports whether this runtime's maps have the Go 1.19 header (1.19 to 1.23 do).
func layoutKnown() (bool, string) {
	v := runtime.Version()
	for _, p := range []string{"go1.19", "go1.20", "go1.21", "go1.22", "go1.23"} {
		if strings.HasPrefix(v, p) {
			return true, ""
		}
	}
	return false, v + " is not a Go 1.19-1.23 runtime: its map header has another layout"
}

// checkHeader verifies the layout on a map whose header values are known before anything relies on it.
func checkHeader() bool {
	if headerChecked {
		return headerOK
	}
	headerChecked = true
	if ok, why := layoutKnown(); !ok {
		headerWhy = why
		return false
	}
	m := make(map[uint64]uint64)
	for i := uint64(0); i < 100; i++ {
		m[key(i)] = i
	}
	h := header(&m)
	// 100 entries: B = 4 (6.5 x 8 = 52 < 100 <= 6.5 x 16 = 104)
	headerOK = h.count == 100 && h.B == 4 && h.buckets != nil
	if !headerOK {
		headerWhy = fmt.Sprintf("header check failed (count %d, B %d)", h.count, h.B)
	}
	return headerOK
}

// unsafeMapPointer turns a pointer to any map variable into a pointer to its header pointer.
func unsafeMapPointer[M ~map[K]V, K comparable, V any](m *M) unsafe.Pointer { return unsafe.Pointer(m) }

// header returns the runtime header of the map *m points to.
func header(m *map[uint64]uint64) *hmapHeader { return *(**hmapHeader)(unsafe.Pointer(m)) }

func bucketAt(base unsafe.Pointer, i uintptr) *[bucketSize]byte {
	return (*[bucketSize]byte)(unsafe.Add(base, i*bucketSize))
}

func oldBucketCount(h *hmapHeader) uintptr {
	if h.oldbuckets == nil {
		return 0
	}
	if h.flags&flagSameSizeGrow != 0 {
		return 1 << h.B
	}
	return 1 << (h.B - 1)
}

// preallocOverflow is how many overflow buckets makeBucketArray adds after 2^B buckets (B >= 4).
func preallocOverflow(B uint8) uint64 {
	if B < 4 {
		return 0
	}
	return 1 << (B - 4)
}

// arrayBytes estimates what the map's bucket arrays take: 2^B buckets and the overflow buckets allocated
// with them, the old array while growing, and overflow buckets beyond the pre-allocated ones.
func arrayBytes(h *hmapHeader) uint64 {
	if h.buckets == nil {
		return 0
	}
	n := uint64(1)<<h.B + preallocOverflow(h.B)
	if old := uint64(oldBucketCount(h)); old > 0 {
		oldB := uint8(bits.TrailingZeros64(old))
		n += old + preallocOverflow(oldB)
	}
	if extra := uint64(h.noverflow); extra > preallocOverflow(h.B) {
		n += extra - preallocOverflow(h.B)
	}
	return n * bucketSize
}

// ---- a latency histogram, binned as hmap-lab's (4 bins per power of two) ----

type hist struct {
	bins       [256]uint64
	total, max uint64
}

func binOf(v uint64) int {
	if v < 4 {
		return int(v)
	}
	top := 63 - bits.LeadingZeros64(v)
	return top*4 + int((v>>(top-2))&3)
}

func binLow(b int) uint64 {
	if b < 4 {
		return uint64(b)
	}
	return uint64(4+b%4) << (b/4 - 2)
}

func (h *hist) add(ns uint64) {
	h.bins[binOf(ns)]++
	h.total++
	if ns > h.max {
		h.max = ns
	}
}

func (h *hist) quantile(q float64) uint64 {
	rank, seen := uint64(q*float64(h.total)), uint64(0)
	for b := range h.bins {
		seen += h.bins[b]
		if seen > rank {
			hi := binLow(b+1) - 1
			if hi > h.max {
				return h.max
			}
			return hi
		}
	}
	return h.max
}

// emit prints the quantiles as figures and the bins as a series for the latency plot.
func (h *hist) emit(name string) {
	num(name+".p50_ns", float64(h.quantile(0.5)))
	num(name+".p99_ns", float64(h.quantile(0.99)))
	num(name+".p999_ns", float64(h.quantile(0.999)))
	num(name+".max_ns", float64(h.max))
	num(name+".ops", float64(h.total))
	for b, c := range h.bins {
		if c > 0 {
			point(name, float64(binLow(b)), float64(c))
		}
	}
}

var epoch = time.Now()

func nanotime() uint64 { return uint64(time.Since(epoch)) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gomap-lab <grow|delete|tophash|values|iterate|signals|release|pool|sync|version> -n N")
		os.Exit(2)
	}
	experiments := map[string]func(n uint64){
		"grow": grow, "delete": deleteExp, "tophash": tophash, "values": values,
		"iterate": iterate, "signals": signals, "release": release, "pool": poolExp, "sync": syncExp,
	}
	if os.Args[1] == "version" {
		str("version", runtime.Version())
		out.Flush()
		return
	}
	run, ok := experiments[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "gomap-lab: unknown experiment %q\n", os.Args[1])
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Uint64("n", 1000000, "size of the experiment")
	fs.StringVar(&profilePath, "profile", "", "signals: where to write the heap profile")
	fs.Parse(os.Args[2:])
	str("version", runtime.Version())
	if !checkHeader() {
		str("header_missing", headerWhy)
	}
	run(*n)
	out.Flush()
}
