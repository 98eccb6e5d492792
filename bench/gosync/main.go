// SPDX-License-Identifier: MIT
// Command hmap-bench-gosync measures Go's sync.Map for `hmap-bench --concurrent`, in the same cells and
// with the same output lines as the C maps (../concurrent.h, ../concurrent.c):
//
//	C sync.Map <n> <reads> <threads> <Mops/s> <cpu s> <wall s>
//
// It pre-fills a sync.Map[uint64]uint64 with the n keys of even index (splitmix64, as the C side), then
// for each thread count runs that many goroutines, GOMAXPROCS set to the same number (so 4 and 8 are
// oversubscribed OS threads, as the C threads are), each drawing operations exactly as CC_LOOP does,
// for -ms milliseconds. CPU time is getrusage(RUSAGE_SELF) over the cell, as for the C maps.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var sink uint64

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func next(s *uint64) uint64 { // xorshift64*, as cc_next
	*s ^= *s >> 12
	*s ^= *s << 25
	*s ^= *s >> 27
	return *s * 0x2545f4914f6cdd1d
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return float64(u.Utime.Sec) + float64(u.Utime.Usec)/1e6 + float64(u.Stime.Sec) + float64(u.Stime.Usec)/1e6
}

// work runs CC_LOOP's operations on m until stop is set; returns how many.
func work(m *sync.Map, n uint64, reads uint64, seed uint64, stop *int32) uint64 {
	s, ops, sum, space := seed|1, uint64(0), uint64(0), 2*n
	for atomic.LoadInt32(stop) == 0 {
		for i := 0; i < 256; i++ {
			r := next(&s)
			idx := ((r >> 32) * space) >> 32
			key := splitmix64(idx)
			if (r&0xffff)%100 < reads {
				if v, ok := m.Load(key); ok {
					sum += v.(uint64)
				}
			} else if (r>>16)&1 != 0 {
				m.Store(key, idx+1)
			} else {
				m.Delete(key)
			}
		}
		ops += 256
	}
	atomic.AddUint64(&sink, sum)
	return ops
}

func main() {
	n := flag.Uint64("n", 1024, "pre-filled keys")
	reads := flag.Uint64("reads", 100, "read percentage")
	threads := flag.String("threads", "1,2,4,8", "thread counts")
	ms := flag.Int("ms", 1000, "milliseconds per cell")
	flag.Parse()

	m := &sync.Map{}
	for i := uint64(0); i < *n; i++ {
		m.Store(splitmix64(2*i), 2*i+1)
	}
	for _, field := range strings.Split(*threads, ",") {
		t, err := strconv.Atoi(field)
		if err != nil || t < 1 {
			fmt.Fprintf(os.Stderr, "hmap-bench-gosync: bad thread count %q\n", field)
			os.Exit(2)
		}
		runtime.GOMAXPROCS(t)
		var stop int32
		var wg sync.WaitGroup
		var start sync.WaitGroup
		counts := make([]uint64, t)
		start.Add(1)
		for i := 0; i < t; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				start.Wait()
				counts[i] = work(m, *n, *reads, splitmix64(uint64(1000+i)), &stop)
			}(i)
		}
		c0, t0 := cpuSeconds(), time.Now()
		start.Done()
		time.Sleep(time.Duration(*ms) * time.Millisecond)
		atomic.StoreInt32(&stop, 1)
		wg.Wait()
		wall, cpu := time.Since(t0).Seconds(), cpuSeconds()-c0
		total := uint64(0)
		for _, c := range counts {
			total += c
		}
		fmt.Printf("C sync.Map %d %d %d %.3f %.3f %.3f\n", *n, *reads, t, float64(total)/wall/1e6, cpu, wall)
	}
}
