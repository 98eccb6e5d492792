// SPDX-License-Identifier: MIT
// Command hmap-bench-go measures Go's built-in map for hmap-bench, on the very same keys, with the very
// same suite and output lines as the C workers (../suite.c, protocol in ../bench.h):
//
//	R <metric> <value> <unit>    S <series> <x> <y>    I <text>
//
// The driver runs it once per repetition as a separate process, so its heap and RSS are its own. Keys are
// regenerated here with the same functions as ../keys.c (splitmix64; base-64 strings of 16..40 bytes) and
// their FNV-1a checksum must equal the driver's (-checksum), or the program refuses to measure.
//
// Bytes held are runtime.MemStats.HeapAlloc growth measured right after runtime.GC(), i.e. live heap bytes
// attributable to the map (Go has no per-map count). The per-insert clock is runtime.nanotime (the
// monotonic clock the runtime itself uses, via vDSO); its own cost is reported as timer_cost.
//
// -keys small is the small-maps row (../suite.c, suite_run_small): n maps of 1..8 uint64 entries, map j
// holding 1 + j%8 of the uint64 keys in order, all alive at once in a slice made beforehand; then n empty
// maps. Bytes per map are HeapAlloc growth after runtime.GC() divided by n.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"time"
	_ "unsafe" // for go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

const symbols = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-"

var sink uint64 // lookup results go here so that nothing is elided

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// makeString appends string key i to buf, exactly as make_string in keys.c.
func makeString(i uint64, buf []byte) []byte {
	h := splitmix64(i)
	length := 16 + int(splitmix64(h)%25)
	pos := 0
	for v := h; pos < 11; pos, v = pos+1, v>>6 {
		buf = append(buf, symbols[v&63])
	}
	r := h
	for pos < length {
		r = splitmix64(r)
		for k := 0; k < 10 && pos < length; k, pos = k+1, pos+1 {
			buf = append(buf, symbols[(r>>(6*uint(k)))&63])
		}
	}
	return buf
}

type keyset struct {
	u64 []uint64
	str []string
}

func makeKeys(kind string, count int) keyset {
	var ks keyset
	if kind == "u64" || kind == "small" {
		ks.u64 = make([]uint64, count)
		for i := range ks.u64 {
			ks.u64[i] = splitmix64(uint64(i))
		}
		return ks
	}
	buf := make([]byte, 0, count*41)
	offs := make([]int, count+1)
	for i := 0; i < count; i++ {
		offs[i] = len(buf)
		buf = makeString(uint64(i), buf)
	}
	offs[count] = len(buf)
	arena := string(buf) // one copy; every key below is a slice of it, like the C arena
	ks.str = make([]string, count)
	for i := range ks.str {
		ks.str[i] = arena[offs[i]:offs[i+1]]
	}
	return ks
}

func checksum(ks keyset) uint64 {
	h := uint64(14695981039346656037)
	const prime = 1099511628211
	for _, k := range ks.u64 {
		for b := 0; b < 8; b++ {
			h = (h ^ ((k >> (8 * uint(b))) & 0xff)) * prime
		}
	}
	for _, s := range ks.str {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h = (h ^ 0) * prime
	}
	return h
}

// ops is Go's map behind the suite's operations, for one key type.
type ops interface {
	create(reserve int)
	drop()
	insert(from, to int)
	insertTimed(from, to int, lat []uint32, every int, sample func(i int))
	lookup(from, stride, count int) (sum uint64, found int)
	erase(from, to int, every int, sample func(i int)) int
	iterate() (sum uint64, count int)
	churn(insFrom, delFrom, count int)
	length() int
	current() interface{} // the map itself, to keep it alive
}

// u64Map and strMap are deliberately two concrete copies rather than one generic type: each then compiles
// to exactly what a plain Go program gets for its key type (the runtime's map fast paths, chosen by the
// compiler from the concrete key type); a version generic over the key type could compile differently and
// would no longer measure Go's map as people use it.
type u64Map struct {
	keys []uint64
	m    map[uint64]uint64
}

func (u *u64Map) create(reserve int)   { u.m = make(map[uint64]uint64, reserve) }
func (u *u64Map) drop()                { u.m = nil }
func (u *u64Map) length() int          { return len(u.m) }
func (u *u64Map) current() interface{} { return u.m }
func (u *u64Map) insert(from, to int) {
	m, keys := u.m, u.keys
	for i := from; i < to; i++ {
		m[keys[i]] = uint64(i + 1)
	}
}
func (u *u64Map) insertTimed(from, to int, lat []uint32, every int, sample func(int)) {
	m, keys := u.m, u.keys
	for i := from; i < to; i++ {
		t0 := nanotime()
		m[keys[i]] = uint64(i + 1)
		lat[i-from] = clamp32(nanotime() - t0)
		if sample != nil && (i-from)%every == 0 {
			sample(i)
		}
	}
}
func (u *u64Map) lookup(from, stride, count int) (uint64, int) {
	m, keys := u.m, u.keys
	var sum uint64
	found := 0
	for j := 0; j < count; j++ {
		if v, ok := m[keys[from+j*stride]]; ok {
			sum += v
			found++
		}
	}
	return sum, found
}
func (u *u64Map) erase(from, to int, every int, sample func(int)) int {
	m, keys := u.m, u.keys
	before := len(m)
	for i := from; i < to; i++ {
		delete(m, keys[i])
		if sample != nil && (i-from)%every == 0 {
			sample(i)
		}
	}
	return before - len(m)
}
func (u *u64Map) iterate() (uint64, int) {
	var sum uint64
	c := 0
	for _, v := range u.m {
		sum += v
		c++
	}
	return sum, c
}
func (u *u64Map) churn(insFrom, delFrom, count int) {
	m, keys := u.m, u.keys
	for j := 0; j < count; j++ {
		m[keys[insFrom+j]] = uint64(insFrom + j + 1)
		delete(m, keys[delFrom+j])
	}
}

type strMap struct {
	keys []string
	m    map[string]uint64
}

func (u *strMap) create(reserve int)   { u.m = make(map[string]uint64, reserve) }
func (u *strMap) drop()                { u.m = nil }
func (u *strMap) length() int          { return len(u.m) }
func (u *strMap) current() interface{} { return u.m }
func (u *strMap) insert(from, to int) {
	m, keys := u.m, u.keys
	for i := from; i < to; i++ {
		m[keys[i]] = uint64(i + 1)
	}
}
func (u *strMap) insertTimed(from, to int, lat []uint32, every int, sample func(int)) {
	m, keys := u.m, u.keys
	for i := from; i < to; i++ {
		t0 := nanotime()
		m[keys[i]] = uint64(i + 1)
		lat[i-from] = clamp32(nanotime() - t0)
		if sample != nil && (i-from)%every == 0 {
			sample(i)
		}
	}
}
func (u *strMap) lookup(from, stride, count int) (uint64, int) {
	m, keys := u.m, u.keys
	var sum uint64
	found := 0
	for j := 0; j < count; j++ {
		if v, ok := m[keys[from+j*stride]]; ok {
			sum += v
			found++
		}
	}
	return sum, found
}
func (u *strMap) erase(from, to int, every int, sample func(int)) int {
	m, keys := u.m, u.keys
	before := len(m)
	for i := from; i < to; i++ {
		delete(m, keys[i])
		if sample != nil && (i-from)%every == 0 {
			sample(i)
		}
	}
	return before - len(m)
}
func (u *strMap) iterate() (uint64, int) {
	var sum uint64
	c := 0
	for _, v := range u.m {
		sum += v
		c++
	}
	return sum, c
}
func (u *strMap) churn(insFrom, delFrom, count int) {
	m, keys := u.m, u.keys
	for j := 0; j < count; j++ {
		m[keys[insFrom+j]] = uint64(insFrom + j + 1)
		delete(m, keys[delFrom+j])
	}
}

func clamp32(d int64) uint32 {
	if d > 0xffffffff {
		return 0xffffffff
	}
	return uint32(d)
}

func emit(metric string, value float64, unit string) {
	fmt.Printf("R %s %.6g %s\n", metric, value, unit)
}

func check(ok bool, what string, got, want int) {
	if !ok {
		fmt.Fprintf(os.Stderr, "hmap-bench-go: %s: got %d, want %d\n", what, got, want)
		os.Exit(2)
	}
}

func rssBytes() float64 {
	var size, resident int64
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	defer f.Close()
	fmt.Fscan(f, &size, &resident)
	return float64(resident) * float64(os.Getpagesize())
}

// liveHeap is the heap in use right after a full collection.
func liveHeap() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc)
}

func radixSort(a []uint32) {
	tmp := make([]uint32, len(a))
	count := make([]int, 65537)
	for shift := 0; shift < 32; shift += 16 {
		for i := range count {
			count[i] = 0
		}
		for _, v := range a {
			count[((v>>shift)&0xffff)+1]++
		}
		for d := 0; d < 65536; d++ {
			count[d+1] += count[d]
		}
		for _, v := range a {
			d := (v >> shift) & 0xffff
			tmp[count[d]] = v
			count[d]++
		}
		copy(a, tmp)
	}
}

func percentile(sorted []uint32, f float64) float64 {
	n := len(sorted)
	idx := n - 1
	if f < 1 {
		idx = int(f * float64(n))
	}
	if idx >= n {
		idx = n - 1
	}
	return float64(sorted[idx])
}

func timerCost() float64 {
	d := make([]uint32, 100001)
	for i := range d {
		t0 := nanotime()
		d[i] = clamp32(nanotime() - t0)
	}
	radixSort(d)
	return float64(d[len(d)/2])
}

var latMetric = []string{"lat_p50", "lat_p99", "lat_p99.9", "lat_p99.99", "lat_p99.999", "lat_max"}
var latFraction = []float64{0.50, 0.99, 0.999, 0.9999, 0.99999, 1.0}

func emitLatencies(lat []uint32, series bool) {
	radixSort(lat)
	for p := range latMetric {
		emit(latMetric[p], percentile(lat, latFraction[p]), "ns")
	}
	emit("timer_cost", timerCost(), "ns")
	if !series {
		return
	}
	n := float64(len(lat))
	for k := 0; ; k++ {
		nines := float64(k) / 8
		tail := math.Pow(10, -nines)
		if tail*n < 1 {
			break
		}
		fmt.Printf("S lat %.4f %.6g\n", nines, percentile(lat, 1-tail))
	}
	fmt.Printf("S lat max %.6g\n", percentile(lat, 1))
}

type config struct {
	n, lookups, rounds int
	series             bool
}

func memoryExperiment(m ops, cfg config) {
	n := cfg.n
	survivors := n / 100
	if survivors == 0 {
		survivors = 1
	}
	every := n / 256
	if every == 0 {
		every = 1
	}
	lat := make([]uint32, n)
	for i := range lat {
		lat[i] = 1
	}
	var xs, ys []float64
	offset, from := 0, 0
	var base float64
	var spent time.Duration // sampling time, taken out of the timed delete phase
	var sample func(int)
	if cfg.series {
		sample = func(i int) {
			t0 := time.Now()
			xs = append(xs, float64(offset+i-from))
			ys = append(ys, liveHeap()-base)
			spent += time.Since(t0)
		}
	}

	base = liveHeap()
	rss0 := rssBytes()
	m.create(0)
	m.insertTimed(0, n, lat, every, sample)
	check(m.length() == n, "size after fill", m.length(), n)
	full := liveHeap() - base
	emit("bytes_per_entry", full/float64(n), "B")
	emit("rss_full", (rssBytes()-rss0)/(1<<20), "MiB")

	offset, from = n, survivors
	spent = 0
	t0 := time.Now()
	deleted := m.erase(survivors, n, every, sample)
	deleteTime := time.Since(t0) - spent
	check(deleted == n-survivors, "deleted", deleted, n-survivors)
	emit("delete", float64(deleteTime)/float64(deleted), "ns/op")
	after := liveHeap() - base
	debug.FreeOSMemory() // Go's best case: everything free goes back to the OS now
	rssAfter := rssBytes()
	if cfg.series {
		xs = append(xs, float64(n+n-survivors))
		ys = append(ys, after)
	}
	m.drop()

	fresh := freshBytes(m, survivors)

	emit("held_after_del99", after/fresh, "x")
	emit("rss_after_del99", (rssAfter-rss0)/(1<<20), "MiB")
	emitLatencies(lat, cfg.series)
	for i := range xs {
		fmt.Printf("S bytes %.0f %.0f\n", xs[i], ys[i])
	}
}

// freshBytes is the heap a fresh map of keys [0, survivors) holds. A few hundred bytes are below the noise
// of HeapAlloc (the runtime's own small allocations), so small maps are built many times over, kept alive
// together, and the total is divided.
func freshBytes(m ops, survivors int) float64 {
	copies := 1 + 100000/survivors
	if copies > 256 {
		copies = 256
	}
	kept := make([]interface{}, copies)
	base := liveHeap()
	for c := range kept {
		m.create(0)
		m.insert(0, survivors)
		kept[c] = m.current()
	}
	total := liveHeap() - base
	runtime.KeepAlive(kept)
	m.drop()
	return total / float64(copies)
}

type phaseTimes struct{ insert, hit, miss, iterate, churn, reserved time.Duration }

func speedRound(m ops, cfg config, t *phaseTimes) {
	n, L := cfg.n, cfg.lookups
	m.create(0)
	t0 := time.Now()
	m.insert(0, n)
	t1 := time.Now()
	sum, found := m.lookup(0, n/L, L)
	sink += sum
	t2 := time.Now()
	check(found == L, "lookup hits", found, L)
	sum, found = m.lookup(n, 1, L)
	sink += sum
	t3 := time.Now()
	check(found == 0, "lookup misses", found, 0)
	sum, count := m.iterate()
	sink += sum
	t4 := time.Now()
	check(count == n, "iterated", count, n)
	m.churn(n, 0, L)
	t5 := time.Now()
	check(m.length() == n, "size after churn", m.length(), n)
	m.drop()
	t.insert += t1.Sub(t0)
	t.hit += t2.Sub(t1)
	t.miss += t3.Sub(t2)
	t.iterate += t4.Sub(t3)
	t.churn += t5.Sub(t4)

	m.create(n)
	t0 = time.Now()
	m.insert(0, n)
	t.reserved += time.Since(t0)
	m.drop()
}

func speed(m ops, cfg config) {
	var t phaseTimes
	for r := 0; r < cfg.rounds; r++ {
		speedRound(m, cfg, &t)
	}
	ops := float64(cfg.n) * float64(cfg.rounds)
	lops := float64(cfg.lookups) * float64(cfg.rounds)
	emit("insert", float64(t.insert)/ops, "ns/op")
	emit("insert_reserved", float64(t.reserved)/ops, "ns/op")
	emit("lookup_hit", float64(t.hit)/lops, "ns/op")
	emit("lookup_miss", float64(t.miss)/lops, "ns/op")
	emit("iterate", float64(t.iterate)/ops, "ns/entry")
	emit("churn", float64(t.churn)/(2*lops), "ns/op")
}

const smallMaxEntries = 8 // SMALL_MAX_ENTRIES in ../bench.h

func smallEntries(j, max int) int {
	if max == 0 {
		return 0
	}
	return 1 + j%max
}

func smallTotal(count int) int {
	total := 0
	for j := 0; j < count; j++ {
		total += smallEntries(j, smallMaxEntries)
	}
	return total
}

// fillSmall makes map j of maps with no size hint and gives it its smallEntries(j, max) keys.
func fillSmall(maps []map[uint64]uint64, keys []uint64, max int) {
	k := 0
	for j := range maps {
		m := make(map[uint64]uint64)
		for e := smallEntries(j, max); e > 0; e-- {
			m[keys[k]] = uint64(k + 1)
			k++
		}
		maps[j] = m
	}
}

func countSmall(maps []map[uint64]uint64) int {
	n := 0
	for _, m := range maps {
		n += len(m)
	}
	return n
}

// smallExperiment is suite_run_small: the small maps (timed as a whole, bytes and RSS per map), then as
// many empty maps (bytes per map). The slice of maps is made and written before each base is read, as the
// C side's array of handles is.
func smallExperiment(keys []uint64, count int) {
	entries := smallTotal(count)
	maps := make([]map[uint64]uint64, count)
	for j := range maps {
		maps[j] = nil
	}
	base := liveHeap()
	rss0 := rssBytes()
	t0 := time.Now()
	fillSmall(maps, keys, smallMaxEntries)
	fill := time.Since(t0)
	rss := rssBytes()
	check(countSmall(maps) == entries, "small-map entries", countSmall(maps), entries)
	held := liveHeap() - base
	emit("small_insert", float64(fill)/float64(entries), "ns/op")
	emit("small_map_bytes", held/float64(count), "B")
	emit("small_map_rss", (rss-rss0)/float64(count), "B")

	for j := range maps {
		maps[j] = nil
	}
	base = liveHeap()
	fillSmall(maps, keys, 0)
	check(countSmall(maps) == 0, "empty-map entries", countSmall(maps), 0)
	emit("empty_map_bytes", (liveHeap()-base)/float64(count), "B")
	runtime.KeepAlive(maps)
	runtime.KeepAlive(keys) // else the last collection frees the keys and takes them off the maps' bytes
}

func main() {
	kind := flag.String("keys", "u64", "key set: u64, str, or small (the small-maps row)")
	n := flag.Int("n", 1<<20, "entries at full size")
	lookups := flag.Int("lookups", 1<<20, "lookups and churn steps per round")
	rounds := flag.Int("rounds", 1, "rounds of the speed measurements")
	series := flag.Int("series", 0, "1: print the chart series")
	want := flag.Uint64("checksum", 0, "the driver's key checksum (0: don't check)")
	version := flag.Bool("version", false, "print the Go version and exit")
	flag.Parse()
	if *version {
		fmt.Println(runtime.Version())
		return
	}
	cfg := config{n: *n, lookups: *lookups, rounds: *rounds, series: *series != 0}
	count := cfg.n + cfg.lookups
	if *kind == "small" {
		count = smallTotal(cfg.n)
	}
	ks := makeKeys(*kind, count)
	if sum := checksum(ks); *want != 0 && sum != *want {
		fmt.Fprintf(os.Stderr, "hmap-bench-go: key checksum %d differs from the driver's %d\n", sum, *want)
		os.Exit(3)
	}
	if *kind == "small" {
		fmt.Printf("I go %s\n", runtime.Version())
		smallExperiment(ks.u64, cfg.n)
		return
	}
	var m ops
	if *kind == "u64" {
		m = &u64Map{keys: ks.u64}
	} else {
		m = &strMap{keys: ks.str}
	}
	fmt.Printf("I go %s\n", runtime.Version())
	memoryExperiment(m, cfg)
	speed(m, cfg)
	fmt.Printf("I checksum %d\n", sink)
}
