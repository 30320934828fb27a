package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// -------------------------------------------------------------------- zipf

// ZipfResult is throughput and local hit ratio of Zipf-distributed reads.
type ZipfResult struct {
	Keys       int           `json:"keys"`
	LocalSize  int           `json:"local_size"`
	Instances  int           `json:"instances"`
	Goroutines int           `json:"goroutines"`
	Warmup     time.Duration `json:"warmup_ns"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Ops        uint64        `json:"ops"`
	OpsPerSec  float64       `json:"ops_per_sec"`
	LocalHits  uint64        `json:"local_hits"`
	RemoteHits uint64        `json:"remote_hits"`
	Misses     uint64        `json:"misses"`
	HitRatio   float64       `json:"local_hit_ratio"`
}

// ZipfKeys returns zipf's key names, stored in Redis with Populate.
func ZipfKeys(ctx context.Context, e *Env, n int) ([]string, error) {
	ks := keys("z:", n)
	return ks, e.Populate(ctx, n, func(i int) string { return ks[i] }, value)
}

// ZipfOp returns an Op that reads keys drawn with Zipf s=1.01 from in.
func ZipfOp(ctx context.Context, in *Instance[string], ks []string, seed uint64) Op {
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), 1.01, 1, uint64(len(ks)-1))
	return func(n int) error {
		for range n {
			if _, err := in.Get(ctx, ks[z.Uint64()]); err != nil {
				return err
			}
		}
		return nil
	}
}

// Zipf reads keys drawn with Zipf s=1.01 from ZipfWorkers goroutines per
// instance, counts reads for Duration after a warm-up of ZipfWarmup, and
// reports throughput and the local hit ratio.
func Zipf(ctx context.Context, e *Env, cfg Config) (*ZipfResult, error) {
	n := max(cfg.Instances, 1)
	ins, err := NewInstances(ctx, e, n, tiered.Options[string]{LocalSize: cfg.ZipfLocalSize})
	if err != nil {
		return nil, err
	}
	cfg.Progress.Update("zipf: storing %d keys in Redis", cfg.ZipfKeys)
	ks, err := ZipfKeys(ctx, e, cfg.ZipfKeys)
	if err != nil {
		return nil, err
	}
	workers := n * max(cfg.ZipfWorkers, 1)
	var (
		ops   atomic.Uint64
		stop  atomic.Bool
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for w := range workers {
		op := ZipfOp(ctx, ins[w%n], ks, uint64(w)+1)
		wg.Go(func() {
			for !stop.Load() {
				if err := op(64); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					stop.Store(true)
					return
				}
				ops.Add(64)
			}
		})
	}
	stats := func() tiered.Stats {
		var sum tiered.Stats
		for _, in := range ins {
			s := in.Stats()
			sum.LocalHits += s.LocalHits
			sum.RemoteHits += s.RemoteHits
			sum.Misses += s.Misses
		}
		return sum
	}
	// sleep waits d, or less if ctx ends or a worker fails.
	sleep := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !stop.Load() {
			select {
			case <-t.C:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
	phase, phaseStart := "warming up", time.Now()
	var phaseMu sync.Mutex
	stopTicker := cfg.Progress.Ticker(func() {
		phaseMu.Lock()
		defer phaseMu.Unlock()
		s := stats()
		cfg.Progress.Update("zipf: %s, %v, %d reads, hit ratio so far %.3f", phase,
			time.Since(phaseStart).Round(100*time.Millisecond), ops.Load(),
			float64(s.LocalHits)/float64(max(1, s.LocalHits+s.RemoteHits+s.Misses)))
	})
	defer separateProcs(cfg)()
	warm0 := time.Now()
	sleep(cfg.ZipfWarmup)
	for time.Since(warm0) < cfg.ZipfWarmupMax && !stop.Load() && ctx.Err() == nil {
		full := true
		for _, in := range ins {
			full = full && in.Stats().LocalEntries*10 >= cfg.ZipfLocalSize*9
		}
		if full {
			break
		}
		sleep(10 * time.Millisecond)
	}
	warmup := time.Since(warm0)
	phaseMu.Lock()
	phase, phaseStart = "counting", time.Now()
	phaseMu.Unlock()
	s0, o0, t0 := stats(), ops.Load(), time.Now()
	sleep(cfg.Duration)
	s1, o1, elapsed := stats(), ops.Load(), time.Since(t0)
	stop.Store(true)
	wg.Wait()
	stopTicker()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &ZipfResult{
		Keys: len(ks), LocalSize: cfg.ZipfLocalSize, Instances: n, Goroutines: workers,
		Warmup: warmup, Elapsed: elapsed, Ops: o1 - o0,
		LocalHits: s1.LocalHits - s0.LocalHits, RemoteHits: s1.RemoteHits - s0.RemoteHits, Misses: s1.Misses - s0.Misses,
	}
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	r.HitRatio = float64(r.LocalHits) / float64(max(1, r.LocalHits+r.RemoteHits+r.Misses))
	return r, nil
}

func (r *ZipfResult) Name() string { return "zipf" }
func (r *ZipfResult) Title() string {
	return fmt.Sprintf("zipf: Get of %d keys drawn with Zipf s=1.01, LocalSize %d, %d instances × %d goroutines",
		r.Keys, r.LocalSize, r.Instances, r.Goroutines/max(r.Instances, 1))
}
func (r *ZipfResult) Rows() []Row {
	return []Row{
		{Measure: "reads/s (all goroutines)", Tiered: fmt.Sprintf("%.0f", r.OpsPerSec)},
		{Measure: "local hit ratio", Tiered: fmt.Sprintf("%.3f", r.HitRatio), Target: ">= 0.74", OK: r.HitRatio >= 0.74},
		{Measure: "local hits / Redis hits / misses", Tiered: fmt.Sprintf("%d / %d / %d", r.LocalHits, r.RemoteHits, r.Misses)},
	}
}
func (r *ZipfResult) Notes() []string {
	return []string{fmt.Sprintf("counted for %v after %v of warm-up (at least until every local tier was 90%% full); no baseline",
		r.Elapsed.Round(time.Millisecond), r.Warmup.Round(time.Millisecond))}
}

// ---------------------------------------------------------------- stampede

// StampedeCase is one stampede: callers Fetch one cold key at once.
type StampedeCase struct {
	Name      string        `json:"name"`
	Callers   int           `json:"callers"`
	Instances int           `json:"instances"`
	Loads     []uint64      `json:"loads_per_instance"`
	Total     uint64        `json:"loads"`
	Calls     Calls         `json:"redis"`
	Wall      time.Duration `json:"wall_ns"`
}

// StampedeResult is both stampedes.
type StampedeResult struct {
	Delay time.Duration  `json:"loader_delay_ns"`
	Cases []StampedeCase `json:"cases"`
}

// RunStampede starts callers goroutines that Fetch key at once, caller i on
// ins[i%len(ins)], with a loader that sleeps delay, and counts loads and the
// instances' round trips.
func RunStampede(ctx context.Context, ins []*Instance[string], key string, callers int, delay time.Duration) (StampedeCase, error) {
	c := StampedeCase{Callers: callers, Instances: len(ins), Loads: make([]uint64, len(ins))}
	loads := make([]atomic.Uint64, len(ins))
	before := make([]Calls, len(ins))
	for i, in := range ins {
		before[i] = in.Calls.Snapshot()
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, callers)
	)
	for i := range callers {
		in, idx := ins[i%len(ins)], i%len(ins)
		wg.Go(func() {
			<-start
			v, err := in.Fetch(ctx, key, func(ctx context.Context) (string, error) {
				loads[idx].Add(1)
				t := time.NewTimer(delay)
				defer t.Stop()
				select {
				case <-t.C:
					return "loaded", nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			})
			if err == nil && v != "loaded" {
				err = fmt.Errorf("Fetch returned %q", v)
			}
			errs[i] = err
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	c.Wall = time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	c.Calls = Calls{Names: map[string]uint64{}}
	for i, in := range ins {
		c.Loads[i] = loads[i].Load()
		c.Total += c.Loads[i]
		c.Calls = c.Calls.Add(in.Calls.Snapshot().Sub(before[i]))
	}
	return c, nil
}

// Stampede runs two stampedes of StampedeCallers goroutines on a cold key:
// all on one instance, then spread over all of them.
func Stampede(ctx context.Context, e *Env, cfg Config) (*StampedeResult, error) {
	n := max(cfg.Instances, 1)
	ins, err := NewInstances(ctx, e, n, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	r := &StampedeResult{Delay: cfg.StampedeDelay}
	cfg.Progress.Update("stampede: %d callers on one instance", cfg.StampedeCallers)
	a, err := RunStampede(ctx, ins[:1], "stampede:one", cfg.StampedeCallers, cfg.StampedeDelay)
	if err != nil {
		return nil, err
	}
	a.Name = "(a) all on one instance"
	cfg.Progress.Update("stampede: %d callers over %d instances", cfg.StampedeCallers, n)
	b, err := RunStampede(ctx, ins, "stampede:all", cfg.StampedeCallers, cfg.StampedeDelay)
	if err != nil {
		return nil, err
	}
	b.Name = fmt.Sprintf("(b) spread over %d instances", n)
	cfg.Progress.Done()
	r.Cases = []StampedeCase{a, b}
	return r, nil
}

func (r *StampedeResult) Name() string { return "stampede" }
func (r *StampedeResult) Title() string {
	return fmt.Sprintf("stampede: %d goroutines Fetch one cold key, loader sleeps %v", r.Cases[0].Callers, r.Delay)
}
func (r *StampedeResult) Rows() []Row {
	var rows []Row
	for _, c := range r.Cases {
		ok := c.Total >= 1
		for _, l := range c.Loads {
			ok = ok && l <= 1
		}
		rows = append(rows,
			Row{Measure: c.Name + ": loader calls", Tiered: fmt.Sprintf("%d %v", c.Total, c.Loads),
				Baseline: fmt.Sprintf("%d without sharing", c.Callers),
				Target:   "1 per instance", OK: ok},
			Row{Measure: c.Name + ": Redis round trips", Tiered: c.Calls.String()},
			Row{Measure: c.Name + ": wall time", Tiered: c.Wall.Round(10 * time.Microsecond).String()},
		)
	}
	return rows
}
func (r *StampedeResult) Notes() []string {
	return []string{"loader calls are listed per instance in brackets; round trips are those of the instances' clients (the read that misses, then the write of the loaded value)"}
}
