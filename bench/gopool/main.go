// SPDX-License-Identifier: MIT
// Command hmap-bench-pool-go measures Go's sync.Pool for hmap-bench-pool: Get+Put pairs of []byte buffers
// of one size, on one or more goroutines at once (GOMAXPROCS = goroutines), touching one byte or the
// whole buffer between Get and Put, as the C workers do (../pool.c; the whole-buffer write is a clear
// here, the loop form the compiler turns into memclr, where C calls memset). It prints one line,
//
//	R <ns per pair>
//
// Each goroutine is locked to its OS thread and runs pairs for at least -ms milliseconds of that thread's
// CPU time (CLOCK_THREAD_CPUTIME_ID, as the C workers), and the line is their mean. The pool holds
// *[]byte, so that Put stores a pointer and allocates nothing (a bare slice would be boxed).
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

var sink byte

func pairs(p *sync.Pool, size int, touchAll bool, d time.Duration, start *sync.WaitGroup) float64 {
	runtime.LockOSThread()
	start.Wait()
	// Batches double until one takes 200 us: the clock is a system call, read once a batch.
	batch, n := 16, 0
	t0 := threadCPU()
	t := t0
	var acc byte
	for t-t0 < d {
		prev := t
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
		t = threadCPU()
		if t-prev < 200*time.Microsecond {
			batch *= 2
		}
	}
	sink += acc
	return float64((t - t0).Nanoseconds()) / float64(n)
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
