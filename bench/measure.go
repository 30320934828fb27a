package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The one way the bench times an operation: runJob runs it on a few
// goroutines for a while; compare alternates jobs over rounds, so that a
// noisy machine slows each alike, and takes medians.

// job is an operation to time: op(w) returns worker w's operation, called
// over and over by one goroutine; workers goroutines run at once; batch
// calls run between two looks at the clock.
type job struct {
	workers, batch int
	op             func(w int) func() error
}

// figures are a job's medians over the rounds.
type figures struct {
	ns     float64 // wall time per operation (all workers together)
	perSec float64 // operations per second
	allocs float64 // heap allocations of the whole process per operation
}

// sample is one timed run.
type sample struct {
	ops, mallocs uint64
	elapsed      time.Duration
}

// runJob runs j for about d and counts its operations and the process's
// allocations meanwhile.
func runJob(ctx context.Context, j job, d time.Duration) (sample, error) {
	workers, batch := max(j.workers, 1), max(j.batch, 1)
	ops := make([]func() error, workers)
	for w := range ops {
		ops[w] = j.op(w)
	}
	var (
		stop     atomic.Bool
		total    atomic.Uint64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		m0, m1   runtime.MemStats
	)
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			var n uint64
			defer func() { total.Add(n) }()
			for !stop.Load() {
				for range batch {
					if err := ops[w](); err != nil {
						errOnce.Do(func() { firstErr = err })
						stop.Store(true)
						return
					}
				}
				n += uint64(batch)
				if w == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
					stop.Store(true)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return sample{ops: total.Load(), mallocs: m1.Mallocs - m0.Mallocs, elapsed: elapsed}, firstErr
}

// compare times each job for d in all, in rounds that alternate between
// the jobs (A B A B …), after an untimed warm-up of each, and returns each
// job's medians.
func compare(ctx context.Context, d time.Duration, rounds int, jobs ...job) ([]figures, error) {
	per := max(d/time.Duration(rounds), time.Millisecond)
	samples := make([][]sample, len(jobs))
	for _, j := range jobs {
		if _, err := runJob(ctx, j, min(per/4, 50*time.Millisecond)); err != nil {
			return nil, err
		}
	}
	for range rounds {
		for i, j := range jobs {
			s, err := runJob(ctx, j, per)
			if err != nil {
				return nil, err
			}
			samples[i] = append(samples[i], s)
		}
	}
	out := make([]figures, len(jobs))
	for i, ss := range samples {
		var ns, perSec []float64
		var ops, mallocs uint64
		for _, s := range ss {
			ns = append(ns, float64(s.elapsed)/float64(max(s.ops, 1)))
			perSec = append(perSec, float64(s.ops)/s.elapsed.Seconds())
			ops, mallocs = ops+s.ops, mallocs+s.mallocs
		}
		out[i] = figures{ns: median(ns), perSec: median(perSec), allocs: float64(mallocs) / float64(max(ops, 1))}
	}
	return out, nil
}

// cursor is a worker's place in its items, padded so that two workers'
// cursors never share a cache line.
type cursor struct {
	i int
	_ [120]byte
}

// cycle returns a job's op: worker w calls f on items in turn, from a place
// of its own.
func cycle[T any](items []T, f func(T) error) func(w int) func() error {
	return func(w int) func() error {
		cur := &cursor{i: w * 7919 % len(items)}
		return func() error {
			err := f(items[cur.i])
			if cur.i++; cur.i == len(items) {
				cur.i = 0
			}
			return err
		}
	}
}

// median of v (v is reordered).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// dur prints a duration with three significant digits: 52.1 ns, 45.3 µs,
// 1.25 ms.
func dur(d float64) string {
	unit, div := "ns", 1.0
	switch {
	case d >= 1e9:
		unit, div = "s", 1e9
	case d >= 1e6:
		unit, div = "ms", 1e6
	case d >= 1e3:
		unit, div = "µs", 1e3
	}
	v := d / div
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}
