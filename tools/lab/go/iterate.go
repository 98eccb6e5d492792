// SPDX-License-Identifier: MIT
// iterate: deletes and inserts inside a range loop while the map grows.
//
// n entries (values are their index), then one range over the map. For the first quarter of the entries
// it yields, each step inserts 4 new keys (the map doubles, mid-iteration); after that each step deletes
// 4 keys: first the inserted ones, then the original ones whose index is not a multiple of 10 (a map that
// would shrink, if Go's did). Every yielded index is counted. The language's rules: an entry removed
// before it is reached is not produced; one added during the iteration may or may not be.
package main

func iterate(n uint64) {
	m := make(map[uint64]uint64)
	for i := uint64(0); i < n; i++ {
		m[key(i)] = i
	}
	seen := make([]uint32, 2*n)
	deleted := make([]bool, 2*n)  // deleted at some point
	deletedBeforeYield := uint64(0)
	yieldedAfterDelete := uint64(0)
	next := n                     // next new index to insert
	delNew, delOld := n, uint64(0) // next inserted / original index to delete
	steps := uint64(0)
	startB := header(&m).B
	maxB := startB
	for _, v := range m {
		if deleted[v] {
			yieldedAfterDelete++
		}
		seen[v]++
		steps++
		for k := 0; k < 4; k++ {
			if steps <= n/4 {
				m[key(next)] = next
				next++
				continue
			}
			var idx uint64
			if delNew < next {
				idx, delNew = delNew, delNew+1
			} else {
				for delOld < n && delOld%10 == 0 {
					delOld++
				}
				if delOld >= n {
					break
				}
				idx, delOld = delOld, delOld+1
			}
			if !deleted[idx] {
				deleted[idx] = true
				if seen[idx] == 0 {
					deletedBeforeYield++
				}
				delete(m, key(idx))
			}
		}
		if headerOK && steps%(n/64+1) == 0 {
			h := header(&m)
			point("B", float64(steps), float64(h.B))
			if h.B > maxB {
				maxB = h.B
			}
		}
	}
	reportIteration(seen, deleted, n, next, steps, deletedBeforeYield, yieldedAfterDelete)
	if headerOK {
		num("B_start", float64(startB))
		num("B_max", float64(maxB))
		num("B_end", float64(header(&m).B))
	}
	num("count_end", float64(len(m)))
}

// reportIteration counts the outcomes the language guarantees, and those it leaves open.
func reportIteration(seen []uint32, deleted []bool, n, inserted, steps, delBefore, yieldAfter uint64) {
	survivors, once, missed, twice, newSeen, newTwice := uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0)
	for i := uint64(0); i < n; i++ {
		if deleted[i] {
			continue
		}
		survivors++
		switch seen[i] {
		case 0:
			missed++
		case 1:
			once++
		default:
			twice++
		}
	}
	for i := n; i < inserted; i++ {
		if seen[i] > 0 {
			newSeen++
		}
		if seen[i] > 1 {
			newTwice++
		}
	}
	num("survivors", float64(survivors))
	num("survivors_once", float64(once))
	num("survivors_missed", float64(missed))
	num("survivors_twice", float64(twice))
	num("deleted_before_yield", float64(delBefore))
	num("yielded_after_delete", float64(yieldAfter))
	num("inserted", float64(inserted-n))
	num("inserted_yielded", float64(newSeen))
	num("inserted_twice", float64(newTwice))
	num("steps", float64(steps))
}
