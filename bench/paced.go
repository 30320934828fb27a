package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// pacedRates are the read rates of the paced scenario, reads per second.
var pacedRates = []int{10, 50, 200}

// pacedRun is what one paced reader saw.
type pacedRun struct {
	reads, local uint64
	total        time.Duration // of every read
}

func (p pacedRun) mean() float64 { return float64(p.total) / float64(max(p.reads, 1)) }

// paced reads 20 warm keys in turn, one read per tick, for d; local counts
// the reads local reports as answered by a local tier.
func paced(ctx context.Context, rate int, d time.Duration, ks []string, read func(string) error, local func() uint64) (pacedRun, error) {
	var r pacedRun
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return r, ctx.Err()
		}
		l0, t0 := local(), time.Now()
		if err := read(ks[r.reads%uint64(len(ks))]); err != nil {
			return r, err
		}
		r.total += time.Since(t0)
		r.reads++
		r.local += local() - l0
	}
	return r, nil
}

// pacedReads reads 20 warm keys at each of pacedRates, on a cache of its
// own with default options, and beside each a plain GET at the same rate,
// all at once for cfg.paced: how many reads the local tier answers, and
// how long a read takes on average.
func pacedReads(ctx context.Context, e *env, cfg config) ([]row, error) {
	ns, ks := e.ns("paced"), keys("p", 20)
	if err := e.populate(ctx, ns, ks, value); err != nil {
		return nil, err
	}
	caches := make([]*tiered.Cache[string], len(pacedRates))
	for i := range caches {
		c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{})
		if err != nil {
			return nil, err
		}
		if err := warm(ctx, c, ks); err != nil {
			return nil, err
		}
		caches[i] = c
	}
	plain := e.client(nil)
	get := func(k string) error { return plain.Get(ctx, ns+":"+k).Err() }
	none := func() uint64 { return 0 }
	runs := make([][2]pacedRun, len(pacedRates))
	errs := make([]error, 2*len(pacedRates))
	var wg sync.WaitGroup
	for i, rate := range pacedRates {
		c := caches[i]
		wg.Go(func() {
			runs[i][0], errs[2*i] = paced(ctx, rate, cfg.paced, ks, getter(ctx, c), func() uint64 { return c.Stats().LocalHits })
		})
		wg.Go(func() { runs[i][1], errs[2*i+1] = paced(ctx, rate, cfg.paced, ks, get, none) })
	}
	wg.Wait()
	var rows []row
	for i, rate := range pacedRates {
		t, g := runs[i][0], runs[i][1]
		if err := errs[2*i]; err != nil {
			return nil, err
		}
		if err := errs[2*i+1]; err != nil {
			return nil, err
		}
		share := float64(t.local) / float64(max(t.reads, 1))
		rows = append(rows, judge(row{
			Measure:  fmt.Sprintf("%d reads/s: local hits, mean", rate),
			Tiered:   fmt.Sprintf("%.0f %%, %s", 100*share, dur(t.mean())),
			Baseline: "GET " + dur(g.mean()),
			Target:   "≥ 90 %, ≤ ½ GET",
		}, share >= 0.9 && t.mean() <= g.mean()/2))
	}
	return rows, nil
}
