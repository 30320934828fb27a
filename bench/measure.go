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

// The one way the bench measures: a crew of goroutines runs an operation
// until stopped; runJob times a job on a crew for a while and counts its
// operations and allocations; compare alternates jobs over rounds;
// sequential is runJob on one goroutine; median and percentile summarize
// what was measured.

// sample is one timed run of an operation.
type sample struct {
	Ops     uint64        `json:"ops"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Mallocs uint64        `json:"mallocs"` // heap allocations of the whole process meanwhile
}

// nsPerOp is wall time per operation: for a parallel run, wall time divided
// by the operations of all goroutines (what b.RunParallel reports).
func (s sample) nsPerOp() float64 {
	if s.Ops == 0 {
		return 0
	}
	return float64(s.Elapsed.Nanoseconds()) / float64(s.Ops)
}

// opsPerSec is the throughput of the run.
func (s sample) opsPerSec() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

// opLoop runs an operation n times in a row. A worker's opLoop keeps its own
// state (which key comes next), so one opLoop is never called concurrently.
type opLoop func(n int) error

// job describes an operation to time: newOp returns worker w's opLoop,
// workers goroutines run it at once (1 for a sequential run), batch
// operations run between two looks at the clock.
type job struct {
	name    string
	workers int
	batch   int
	newOp   func(w int) opLoop
}

// series is the samples of one job over several rounds.
type series struct {
	Name    string   `json:"name"`
	Workers int      `json:"workers"`
	Samples []sample `json:"samples"`
}

// medianNsPerOp is the median of the rounds' ns/op.
func (s series) medianNsPerOp() float64 {
	v := make([]float64, len(s.Samples))
	for i, x := range s.Samples {
		v[i] = x.nsPerOp()
	}
	return median(v)
}

// medianOpsPerSec is the median of the rounds' throughput.
func (s series) medianOpsPerSec() float64 {
	v := make([]float64, len(s.Samples))
	for i, x := range s.Samples {
		v[i] = x.opsPerSec()
	}
	return median(v)
}

// allocsPerOp is every round's allocations over every round's operations.
func (s series) allocsPerOp() float64 {
	var ops, mallocs uint64
	for _, x := range s.Samples {
		ops += x.Ops
		mallocs += x.Mallocs
	}
	if ops == 0 {
		return 0
	}
	return float64(mallocs) / float64(ops)
}

// compare times each job for d in total, split into rounds that alternate
// between the jobs (A B C A B C ...), so that a noisy machine slows each of
// them alike; compare medians. Each job runs once untimed first, as warm-up.
func compare(ctx context.Context, d time.Duration, rounds int, p *progress, scenario string, jobs ...job) ([]series, error) {
	rounds = max(rounds, 1)
	per := max(d/time.Duration(rounds), time.Millisecond)
	out := make([]series, len(jobs))
	for i, j := range jobs {
		out[i] = series{Name: j.name, Workers: max(j.workers, 1)}
		if _, err := runJob(ctx, j, min(per/4, 50*time.Millisecond)); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", j.name, err)
		}
	}
	total := time.Duration(rounds*len(jobs)) * per
	start := time.Now()
	for r := range rounds {
		for i, j := range jobs {
			p.update("%s: round %d/%d, %s (%v of ~%v)", scenario, r+1, rounds, j.name,
				time.Since(start).Round(100*time.Millisecond), total.Round(100*time.Millisecond))
			s, err := runJob(ctx, j, per)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", j.name, err)
			}
			out[i].Samples = append(out[i].Samples, s)
		}
	}
	p.done()
	return out, nil
}

// runJob times j for about d on a crew of j.workers goroutines. Worker 0
// looks at the clock after each batch, so the run ends within a batch of d
// however busy the machine is.
func runJob(ctx context.Context, j job, d time.Duration) (sample, error) {
	workers, batch := max(j.workers, 1), max(j.batch, 1)
	ops := make([]opLoop, workers)
	for w := range ops {
		ops[w] = j.newOp(w)
	}
	var (
		c     crew
		total atomic.Uint64
	)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		c.run(func() error {
			var n uint64
			defer func() { total.Add(n) }()
			for !c.done() {
				if err := ops[w](batch); err != nil {
					return err
				}
				n += uint64(batch)
				if w == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
					c.stop()
				}
			}
			return nil
		})
	}
	err := c.wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		return sample{}, err
	}
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	return sample{Ops: total.Load(), Elapsed: elapsed, Mallocs: after.Mallocs - before.Mallocs}, nil
}

// sequential times f, called over and over by one goroutine, for d (see
// runJob).
func sequential(ctx context.Context, d time.Duration, f func() error) (sample, error) {
	return runJob(ctx, job{name: "sequential", workers: 1, batch: 1, newOp: func(int) opLoop {
		return func(n int) error {
			for range n {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		}
	}}, d)
}

// cursor is a worker's place in its items, padded to two cache lines.
type cursor struct {
	i int
	_ [120]byte
}

// cycle returns a job's newOp: worker w's opLoop calls f on items in turn,
// starting at a place of its own.
func cycle[T any](items []T, f func(T) error) func(w int) opLoop {
	return func(w int) opLoop {
		// The cursor lives in a cache line of its own: workers' cursors side
		// by side would make every read of one core stall the other.
		cur := &cursor{i: (w * 7919) % len(items)}
		return func(n int) error {
			i := cur.i
			for range n {
				if err := f(items[i]); err != nil {
					cur.i = i
					return err
				}
				if i++; i == len(items) {
					i = 0
				}
			}
			cur.i = i
			return nil
		}
	}
}

// indexes returns 0 … n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// crew is a group of goroutines that run until stopped: stop, or the first
// error one of them returns, ends them all, and wait returns that error.
type crew struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	first   error // guarded by mu
}

// run starts body on a goroutine of the crew. Body runs until done reports
// true; an error it returns stops the crew.
func (c *crew) run(body func() error) {
	c.wg.Go(func() {
		if err := body(); err != nil {
			c.fail(err)
		}
	})
}

// fail records err, unless an error came first, and stops the crew.
func (c *crew) fail(err error) {
	c.mu.Lock()
	if c.first == nil {
		c.first = err
	}
	c.mu.Unlock()
	c.stopped.Store(true)
}

func (c *crew) stop()      { c.stopped.Store(true) }
func (c *crew) done() bool { return c.stopped.Load() }

// wait waits for the crew's goroutines to return (it does not stop them)
// and returns the first error one of them returned, or nil.
func (c *crew) wait() error {
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

// finish stops the crew and waits for it.
func (c *crew) finish() error {
	c.stop()
	return c.wait()
}

// sleep waits d, or less if ctx ends or the crew stops, and reports whether
// all of d passed with the crew still running.
func (c *crew) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !c.done() {
		select {
		case <-t.C:
			return !c.done()
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return false
}

// paced calls f(0), f(1), … one every `every` from start, on a schedule
// (catching up after a late wake-up), until the crew stops or f fails.
func (c *crew) paced(start time.Time, every time.Duration, f func(i int) error) error {
	next := start
	for i := 0; !c.done(); i++ {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		next = next.Add(every)
		if err := f(i); err != nil {
			return err
		}
	}
	return nil
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

// percentile returns the p-th percentile (0 < p <= 100) of sorted durations,
// by the nearest-rank method: percentile(v, 100) is the largest.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
