// Command hmap-bench-pool-go measures Go's sync.Pool for hmap-bench-pool: Get+Put pairs of []byte buffers
// of one size, on one or more goroutines at once (GOMAXPROCS = goroutines), touching one byte or the
// whole buffer between Get and Put, as the C workers do (../pool.c; the whole-buffer write is a clear
// here, the loop form the compiler turns into memclr, where C calls memset). It prints one line,
//
//	R <ns per pair>
//
// Each goroutine runs pairs for at least -ms milliseconds and times itself; the line is their mean. The
// pool holds *[]byte, so that Put stores a pointer and allocates nothing (a bare slice would be boxed).
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"time"
)

var sink byte

func pairs(p *sync.Pool, size int, touchAll bool, d time.Duration, start *sync.WaitGroup) float64 {
	start.Wait()
	const batch = 256
	n := 0
	t0 := time.Now()
	var acc byte
	for time.Since(t0) < d {
		for i := 0; i < batch; i++ {
			b := p.Get().(*[]byte)
			buf := *b
			if touchAll {
				for j := range buf { // compiled to memclr, Go's memset
					buf[j] = 0
				}
			} else {
				buf[0] = byte(i)
			}
			acc += buf[size-1]
			p.Put(b)
		}
		n += batch
	}
	sink += acc
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func main() {
	size := flag.Int("size", 64, "bytes per object")
	threads := flag.Int("threads", 1, "goroutines at once")
	touch := flag.String("touch", "one", "one: write one byte; all: write every byte")
	ms := flag.Int("ms", 300, "milliseconds each goroutine runs")
	flag.Parse()
	runtime.GOMAXPROCS(*threads)
	p := &sync.Pool{New: func() any { b := make([]byte, *size); return &b }}
	var start, done sync.WaitGroup
	start.Add(1)
	results := make([]float64, *threads)
	for t := 0; t < *threads; t++ {
		done.Add(1)
		go func(t int) {
			defer done.Done()
			results[t] = pairs(p, *size, *touch == "all", time.Duration(*ms)*time.Millisecond, &start)
		}(t)
	}
	start.Done()
	done.Wait()
	sum := 0.0
	for _, r := range results {
		sum += r
	}
	fmt.Printf("R %.3f\n", sum/float64(*threads))
}
