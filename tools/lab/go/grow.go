// SPDX-License-Identifier: MIT
// grow: the state of Go's map while it fills, read from its header after every insert.
//
// A row is printed when a growth starts (oldbuckets becomes non-nil) or ends (it goes back to nil), and at
// a few counts. For every growth the count that started it is checked against the load rule (count >
// 6.5 x 2^B); for growths of at most maxScanned old buckets, the old array is scanned after every write
// to count how many old buckets that write evacuated (an evacuated bucket's first tophash byte is
// evacuatedX, evacuatedY or evacuatedEmpty), and lookups are interleaved to see whether they evacuate.
// Then "fake growth": a map at load 6.5 under delete-one-insert-one churn, count constant.
package main

import "runtime"

const maxScanned = 4096

var lookupSink uint64 // keeps the lookups from being optimised away

type snapshot struct {
	B          uint8
	growing    bool
	sameSize   bool
	noverflow  uint16
	nevacuate  uintptr
	oldBuckets uintptr
}

func snap(h *hmapHeader) snapshot {
	return snapshot{h.B, h.oldbuckets != nil, h.flags&flagSameSizeGrow != 0, h.noverflow, h.nevacuate,
		oldBucketCount(h)}
}

// evacuatedOld counts the old buckets already moved.
func evacuatedOld(h *hmapHeader) uintptr {
	n := uintptr(0)
	for i, old := uintptr(0), oldBucketCount(h); i < old; i++ {
		if th := bucketAt(h.oldbuckets, i)[0]; th > emptyOne && th < minTopHash {
			n++
		}
	}
	return n
}

func growRow(event string, m *map[uint64]uint64) {
	h := header(m)
	phase := "steady"
	if h.oldbuckets != nil {
		phase = "growing"
		if h.flags&flagSameSizeGrow != 0 {
			phase = "same-size"
		}
	}
	row("grow", event, h.count, h.B, uint64(1)<<h.B, oldBucketCount(h), h.nevacuate, h.noverflow, phase,
		arrayBytes(h), rss())
}

func grow(n uint64) {
	if !headerOK {
		return
	}
	m := make(map[uint64]uint64)
	h := header(&m)
	var lat hist
	prev := snap(h)
	marks := map[int]bool{1000: true, 10000: true, 100000: true, int(n): true}
	growths, loadOK := 0, 0
	maxPerWrite, writesScanned, lookupsScanned, lookupEvacuations := uintptr(0), 0, 0, uintptr(0)
	maxSteadyOverflow, maxSteadyOverflowB := uint16(0), uint8(0)
	evacBefore := uintptr(0)
	growRow("new", &m)
	for i := uint64(0); i < n; i++ {
		t0 := nanotime()
		m[key(i)] = i
		lat.add(nanotime() - t0)
		cur := snap(h)
		// this insert started a growth (it may also have finished it: a 1-bucket old array is evacuated
		// by the very insert that allocated the new one)
		if (cur.growing && !prev.growing) || (!prev.growing && cur.B != prev.B) {
			growths++
			// the rule of mapassign: overLoadFactor(count+1, B) before inserting, i.e. the count after the
			// insert exceeds both 8 and 6.5 x 2^oldB, and the count before did not
			oldB := prev.B
			limit := 13 * (uint64(1) << oldB) / 2
			if limit < bucketCnt {
				limit = bucketCnt
			}
			if uint64(h.count) == limit+1 {
				loadOK++
			}
			row("trigger", h.count, oldB, prev.noverflow)
			if cur.growing {
				growRow("grow-start", &m)
			} else {
				growRow("grow-start+end", &m)
			}
			evacBefore = 0
		}
		if cur.growing && cur.oldBuckets <= maxScanned {
			e := evacuatedOld(h)
			if e-evacBefore > maxPerWrite {
				maxPerWrite = e - evacBefore
			}
			evacBefore = e
			writesScanned++
			// a lookup between writes: does it evacuate anything?
			lookupSink += m[key(i/2)]
			lookupsScanned++
			lookupEvacuations += evacuatedOld(h) - e
		}
		if !cur.growing && (prev.growing || cur.B != prev.B) {
			if !prev.growing { // started and ended in this write: it evacuated the whole old array
				if old := uintptr(1) << prev.B; old > maxPerWrite {
					maxPerWrite = old
				}
			} else if prev.oldBuckets <= maxScanned {
				if last := prev.oldBuckets - evacBefore; last > maxPerWrite {
					maxPerWrite = last
				}
				writesScanned++
			}
			if prev.growing {
				growRow("grow-end", &m)
			}
		}
		if !cur.growing && cur.noverflow > maxSteadyOverflow {
			maxSteadyOverflow, maxSteadyOverflowB = cur.noverflow, cur.B
		}
		if marks[int(i+1)] {
			growRow("at-count", &m)
		}
		prev = cur
	}
	num("grow.growths", float64(growths))
	num("grow.load_rule_ok", float64(loadOK))
	num("grow.max_evacuated_per_write", float64(maxPerWrite))
	num("grow.writes_scanned", float64(writesScanned))
	num("grow.lookups_scanned", float64(lookupsScanned))
	num("grow.lookup_evacuations", float64(lookupEvacuations))
	num("grow.max_overflow_steady", float64(maxSteadyOverflow))
	num("grow.max_overflow_steady_B", float64(maxSteadyOverflowB))
	num("grow.final_B", float64(h.B))
	num("grow.final_nevacuate", float64(h.nevacuate))
	num("grow.bytes", float64(arrayBytes(h)))
	lat.emit("insert")
	runtime.KeepAlive(m)
	fakeGrowth()
}

// fakeGrowth: 6656 entries in 2^10 buckets (load exactly 6.5), then delete the oldest and insert a new
// key, churnRounds x 6656 times. Deleted slots are reused only by keys hashing to the same bucket, so new
// keys that land in full buckets chain overflow buckets until there are as many as buckets: a same-size
// growth, which rebuilds the array at the same B.
const fakeSize, churnRounds = 6656, 60

func fakeGrowth() {
	m := make(map[uint64]uint64)
	for i := uint64(0); i < fakeSize; i++ {
		m[key(i)] = i
	}
	h := header(&m)
	startB, sameSize, grows := h.B, 0, 0
	prev := snap(h)
	maxOverflow := uint16(0)
	minBytes, maxBytes := arrayBytes(h), arrayBytes(h)
	for i := uint64(fakeSize); i < fakeSize*(churnRounds+1); i++ {
		delete(m, key(i-fakeSize))
		m[key(i)] = i
		cur := snap(h)
		if cur.growing && !prev.growing {
			if cur.sameSize {
				sameSize++
			} else {
				grows++
			}
		}
		if cur.noverflow > maxOverflow {
			maxOverflow = cur.noverflow
		}
		if b := arrayBytes(h); b < minBytes {
			minBytes = b
		} else if b > maxBytes {
			maxBytes = b
		}
		if i%(fakeSize/8) == 0 {
			point("fake_overflow", float64(i-fakeSize), float64(h.noverflow))
		}
		prev = cur
	}
	num("fake.ops", float64(fakeSize*churnRounds*2))
	num("fake.count", float64(h.count))
	num("fake.B_start", float64(startB))
	num("fake.B_end", float64(h.B))
	num("fake.same_size_grows", float64(sameSize))
	num("fake.grows", float64(grows))
	num("fake.max_overflow", float64(maxOverflow))
	num("fake.bytes_min", float64(minBytes))
	num("fake.bytes_max", float64(maxBytes))
	runtime.KeepAlive(m)
}
