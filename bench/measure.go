package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Sample is one timed run of an operation.
type Sample struct {
	Ops     uint64        `json:"ops"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Mallocs uint64        `json:"mallocs"` // heap allocations of the whole process meanwhile
}

// NsPerOp is wall time per operation: for a parallel run, wall time divided
// by the operations of all goroutines (what b.RunParallel reports).
func (s Sample) NsPerOp() float64 {
	if s.Ops == 0 {
		return 0
	}
	return float64(s.Elapsed.Nanoseconds()) / float64(s.Ops)
}

// OpsPerSec is the throughput of the run.
func (s Sample) OpsPerSec() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

// Op runs an operation n times in a row. A worker's Op keeps its own state
// (which key comes next), so one Op is never called concurrently.
type Op func(n int) error

// Job describes an operation to time: New returns worker w's Op, Workers
// goroutines run it at once (1 for a sequential run), Batch operations run
// between two looks at the clock.
type Job struct {
	Name    string
	Workers int
	Batch   int
	New     func(w int) Op
}

// Series is the samples of one Job over several rounds.
type Series struct {
	Name    string   `json:"name"`
	Workers int      `json:"workers"`
	Samples []Sample `json:"samples"`
}

// MedianNsPerOp is the median of the rounds' ns/op.
func (s Series) MedianNsPerOp() float64 {
	v := make([]float64, len(s.Samples))
	for i, x := range s.Samples {
		v[i] = x.NsPerOp()
	}
	return median(v)
}

// MedianOpsPerSec is the median of the rounds' throughput.
func (s Series) MedianOpsPerSec() float64 {
	v := make([]float64, len(s.Samples))
	for i, x := range s.Samples {
		v[i] = x.OpsPerSec()
	}
	return median(v)
}

// AllocsPerOp is every round's allocations over every round's operations.
func (s Series) AllocsPerOp() float64 {
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

// Ops is the total number of operations timed.
func (s Series) Ops() uint64 {
	var n uint64
	for _, x := range s.Samples {
		n += x.Ops
	}
	return n
}

// Compare times each job for d in total, split into rounds that alternate
// between the jobs (A B C A B C ...), so that a noisy machine slows each of
// them alike; compare medians. Each job runs once untimed first, as warm-up.
func Compare(ctx context.Context, d time.Duration, rounds int, p *Progress, scenario string, jobs ...Job) ([]Series, error) {
	rounds = max(rounds, 1)
	per := max(d/time.Duration(rounds), time.Millisecond)
	out := make([]Series, len(jobs))
	for i, j := range jobs {
		out[i] = Series{Name: j.Name, Workers: max(j.Workers, 1)}
		if _, err := runJob(ctx, j, min(per/4, 50*time.Millisecond)); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", j.Name, err)
		}
	}
	total := time.Duration(rounds*len(jobs)) * per
	start := time.Now()
	for r := range rounds {
		for i, j := range jobs {
			p.Update("%s: round %d/%d, %s (%v of ~%v)", scenario, r+1, rounds, j.Name,
				time.Since(start).Round(100*time.Millisecond), total.Round(100*time.Millisecond))
			s, err := runJob(ctx, j, per)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", j.Name, err)
			}
			out[i].Samples = append(out[i].Samples, s)
		}
	}
	p.Done()
	return out, nil
}

// halt stops a group of workers, and keeps the first error that made one
// of them stop it.
type halt struct {
	stopped atomic.Bool
	mu      sync.Mutex
	first   error // guarded by mu
}

// fail records err, unless an error came first, and stops the group.
func (h *halt) fail(err error) {
	h.mu.Lock()
	if h.first == nil {
		h.first = err
	}
	h.mu.Unlock()
	h.stopped.Store(true)
}

func (h *halt) stop()      { h.stopped.Store(true) }
func (h *halt) done() bool { return h.stopped.Load() }

// err is the first error given to fail, or nil.
func (h *halt) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.first
}

// runJob times j for about d.
func runJob(ctx context.Context, j Job, d time.Duration) (Sample, error) {
	workers := max(j.Workers, 1)
	batch := max(j.Batch, 1)
	ops := make([]Op, workers)
	for w := range ops {
		ops[w] = j.New(w)
	}
	var (
		h     halt
		total atomic.Uint64
		wg    sync.WaitGroup
	)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			var n uint64
			for !h.done() {
				if err := ops[w](batch); err != nil {
					h.fail(err)
					break
				}
				n += uint64(batch)
				if w == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
					h.stop()
				}
			}
			total.Add(n)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err := h.err(); err != nil {
		return Sample{}, err
	}
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	return Sample{Ops: total.Load(), Elapsed: elapsed, Mallocs: after.Mallocs - before.Mallocs}, nil
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
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Progress writes one status line to a terminal, rewritten in place, or (to
// a file or pipe) a line every few seconds at most. A nil *Progress is
// silent.
type Progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	last time.Time // guarded by mu
	dirt bool      // guarded by mu: a line is shown on a terminal
}

// NewProgress reports to f.
func NewProgress(f *os.File) *Progress {
	p := &Progress{w: f}
	if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		p.tty = true
	}
	return p
}

// Update shows a new status.
func (p *Progress) Update(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	line := fmt.Sprintf(format, args...)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.dirt = true
		return
	}
	if now.Sub(p.last) >= 2*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = now
	}
}

// Done clears the status line.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.dirt {
		fmt.Fprint(p.w, "\r\033[K")
		p.dirt = false
	}
}

// Ticker calls show every 250ms until the returned stop is called; stop
// waits for it.
func (p *Progress) Ticker(show func()) (stop func()) {
	if p == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				show()
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			p.Done()
		})
	}
}
