package main

import (
	"context"
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
