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

// zipfResult is throughput and local hit ratio of Zipf-distributed reads.
type zipfResult struct {
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

// zipfKeys returns zipf's key names, stored in Redis with populate.
func zipfKeys(ctx context.Context, e *env, n int) ([]string, error) {
	ks := keys("z:", n)
	return ks, e.populate(ctx, ks, value)
}

// zipfOp returns an opLoop that reads keys drawn with Zipf s=1.01 from in.
func zipfOp(ctx context.Context, in *instance[string], ks []string, seed uint64) opLoop {
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

// zipf reads keys drawn with Zipf s=1.01 from cfg.zipfWorkers goroutines
// per instance, counts reads for cfg.duration after a warm-up of at least
// cfg.zipfWarmup, and
// reports throughput and the local hit ratio.
func zipf(ctx context.Context, e *env, cfg config) (*zipfResult, error) {
	n := max(cfg.instances, 1)
	ins, err := newCacheInstances(ctx, e, n, tiered.Options[string]{LocalSize: cfg.zipfLocalSize})
	if err != nil {
		return nil, err
	}
	cfg.progress.update("zipf: storing %d keys in Redis", cfg.zipfKeys)
	ks, err := zipfKeys(ctx, e, cfg.zipfKeys)
	if err != nil {
		return nil, err
	}
	workers := n * max(cfg.zipfWorkers, 1)
	var (
		c   crew
		ops atomic.Uint64
	)
	for w := range workers {
		op := zipfOp(ctx, ins[w%n], ks, uint64(w)+1)
		c.run(func() error {
			for !c.done() {
				if err := op(64); err != nil {
					return err
				}
				ops.Add(64)
			}
			return nil
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
	phase, phaseStart := "warming up", time.Now()
	var phaseMu sync.Mutex
	stopTicker := cfg.progress.ticker(func() {
		phaseMu.Lock()
		defer phaseMu.Unlock()
		s := stats()
		cfg.progress.update("zipf: %s, %v, %d reads, hit ratio so far %.3f", phase,
			time.Since(phaseStart).Round(100*time.Millisecond), ops.Load(),
			float64(s.LocalHits)/float64(max(1, s.LocalHits+s.RemoteHits+s.Misses)))
	})
	defer separateProcs(cfg)()
	warm0 := time.Now()
	c.sleep(ctx, cfg.zipfWarmup)
	for time.Since(warm0) < cfg.zipfWarmupMax && !c.done() && ctx.Err() == nil {
		full := true
		for _, in := range ins {
			full = full && in.Stats().LocalEntries*10 >= cfg.zipfLocalSize*9
		}
		if full {
			break
		}
		c.sleep(ctx, 10*time.Millisecond)
	}
	warmup := time.Since(warm0)
	phaseMu.Lock()
	phase, phaseStart = "counting", time.Now()
	phaseMu.Unlock()
	s0, o0, t0 := stats(), ops.Load(), time.Now()
	c.sleep(ctx, cfg.duration)
	s1, o1, elapsed := stats(), ops.Load(), time.Since(t0)
	err = c.finish()
	stopTicker()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &zipfResult{
		Keys: len(ks), LocalSize: cfg.zipfLocalSize, Instances: n, Goroutines: workers,
		Warmup: warmup, Elapsed: elapsed, Ops: o1 - o0,
		LocalHits: s1.LocalHits - s0.LocalHits, RemoteHits: s1.RemoteHits - s0.RemoteHits, Misses: s1.Misses - s0.Misses,
	}
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	r.HitRatio = float64(r.LocalHits) / float64(max(1, r.LocalHits+r.RemoteHits+r.Misses))
	return r, nil
}

func (r *zipfResult) name() string { return "zipf" }
func (r *zipfResult) title() string {
	return fmt.Sprintf("zipf: Get of %d keys drawn with Zipf s=1.01, LocalSize %d, %d instances × %d goroutines",
		r.Keys, r.LocalSize, r.Instances, r.Goroutines/max(r.Instances, 1))
}
func (r *zipfResult) rows() []row {
	return []row{
		{Measure: "reads/s (all goroutines)", Tiered: fmt.Sprintf("%.0f", r.OpsPerSec)},
		{Measure: "local hit ratio", Tiered: fmt.Sprintf("%.3f", r.HitRatio), Target: ">= 0.74", OK: r.HitRatio >= 0.74},
		{Measure: "local hits / Redis hits / misses", Tiered: fmt.Sprintf("%d / %d / %d", r.LocalHits, r.RemoteHits, r.Misses)},
	}
}
func (r *zipfResult) notes() []string {
	return []string{fmt.Sprintf("counted for %v after %v of warm-up (at least until every local tier was 90%% full); no baseline",
		r.Elapsed.Round(time.Millisecond), r.Warmup.Round(time.Millisecond))}
}
