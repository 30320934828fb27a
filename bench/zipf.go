package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// zipfJob returns a job of GOMAXPROCS workers, each reading keys drawn
// with its own Zipf generator (kept across runs, so that no round replays
// another's draws) through read.
func zipfJob(ks []string, seed uint64, read func(string) error) job {
	n := runtime.GOMAXPROCS(0)
	gens := make([]*rand.Zipf, n)
	for w := range gens {
		gens[w] = rand.NewZipf(rand.New(rand.NewPCG(seed, uint64(w))), 1.01, 1, uint64(len(ks)-1))
	}
	return job{workers: n, batch: 64, op: func(w int) func() error {
		return func() error { return read(ks[gens[w].Uint64()]) }
	}}
}

// fill runs j until full reports true (checked every 100ms), for at most
// 10s.
func fill(ctx context.Context, j job, full func() bool) error {
	for deadline := time.Now().Add(10 * time.Second); !full() && time.Now().Before(deadline); {
		if _, err := runJob(ctx, j, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// zipf reads cfg.zipfKeys keys drawn with Zipf s=1.01 through a cache of
// cfg.zipfSize entries and through the bare LRU of that size
// (which reads a miss with a plain GET and adds it), and compares the share of reads
// the local tier answered, and reads per second. Each first reads until its
// LRU is 90% full; then rounds alternate between them.
func zipf(ctx context.Context, e *env, cfg config) ([]row, error) {
	ns, ks := e.ns("zipf"), keys("z", cfg.zipfKeys)
	if err := e.populate(ctx, ns, ks, value); err != nil {
		return nil, err
	}
	c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{LocalSize: cfg.zipfSize})
	if err != nil {
		return nil, err
	}
	bare, plain := newMutexLRU(cfg.zipfSize, nil), e.client(nil)
	var bareHits, bareMisses atomic.Uint64
	tj := zipfJob(ks, 1, getter(ctx, c))
	bj := zipfJob(ks, 1, func(k string) error {
		if _, ok := bare.get(k); ok {
			bareHits.Add(1)
			return nil
		}
		bareMisses.Add(1)
		v, err := plain.Get(ctx, ns+":"+k).Result()
		if err == nil {
			bare.add(k, v)
		}
		return err
	})
	if err := fill(ctx, tj, func() bool { return c.Stats().LocalEntries >= cfg.zipfSize*9/10 }); err != nil {
		return nil, err
	}
	if err := fill(ctx, bj, func() bool { return bare.len() >= cfg.zipfSize*9/10 }); err != nil {
		return nil, err
	}
	var tRates, bRates []float64
	s0, bh0, bm0 := c.Stats(), bareHits.Load(), bareMisses.Load()
	for range cfg.rounds {
		for i, j := range []job{tj, bj} {
			s, err := runJob(ctx, j, cfg.duration/time.Duration(cfg.rounds))
			if err != nil {
				return nil, err
			}
			rate := float64(s.ops) / s.elapsed.Seconds()
			if i == 0 {
				tRates = append(tRates, rate)
			} else {
				bRates = append(bRates, rate)
			}
		}
	}
	s1 := c.Stats()
	local := s1.LocalHits - s0.LocalHits
	tRatio := float64(local) / float64(max(1, local+s1.RemoteHits-s0.RemoteHits+s1.Misses-s0.Misses))
	bh, bm := bareHits.Load()-bh0, bareMisses.Load()-bm0
	bRatio := float64(bh) / float64(max(1, bh+bm))
	tRate, bRate := median(tRates), median(bRates)
	return []row{
		judge(row{Measure: "zipf: local hit ratio",
			Tiered: fmt.Sprintf("%.3f", tRatio), Baseline: fmt.Sprintf("bare LRU %.3f", bRatio),
			Target: "≥ baseline − 0.02"}, tRatio >= bRatio-0.02),
		judge(row{Measure: "zipf: reads/s", Tiered: count(tRate),
			Baseline: "bare LRU + GET " + count(bRate), Target: "≥ baseline"}, tRate >= bRate),
	}, nil
}

// count prints a large number briefly: 1.25 M, 312 k, 950.
func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
