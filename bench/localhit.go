package main

import (
	"context"
	"fmt"
	"runtime"
)

// localHitResult compares a local hit with a bare simplelru.LRU under a mutex.
type localHitResult struct {
	Keys          int      `json:"keys"`
	Procs         int      `json:"gomaxprocs"`
	TieredNs      float64  `json:"tiered_ns_per_op"`
	BareNs        float64  `json:"bare_ns_per_op"`
	Ratio         float64  `json:"ratio"`
	TieredParNs   float64  `json:"tiered_parallel_ns_per_op"`
	BareParNs     float64  `json:"bare_parallel_ns_per_op"`
	ParRatio      float64  `json:"parallel_ratio"`
	TieredAllocs  float64  `json:"tiered_allocs_per_op"`
	BareAllocs    float64  `json:"bare_allocs_per_op"`
	TieredPAllocs float64  `json:"tiered_parallel_allocs_per_op"`
	BarePAllocs   float64  `json:"bare_parallel_allocs_per_op"`
	TieredSpeedUp float64  `json:"tiered_parallel_speedup"`
	BareSpeedUp   float64  `json:"bare_parallel_speedup"`
	Series        []series `json:"series"`
}

// localHit times Get of warm keys against simplelru under a mutex, with one
// goroutine and with GOMAXPROCS goroutines.
func localHit(ctx context.Context, e *env, cfg config) (*localHitResult, error) {
	ks := keys("hot:", cfg.warmKeys)
	in, err := warmInstance(ctx, e, ks)
	if err != nil {
		return nil, err
	}
	tget, bget := getter(ctx, in.Cache), newMutexLRU(ks).read
	procs := runtime.GOMAXPROCS(0)
	par := fmt.Sprintf("%d goroutines", procs)
	series, err := compare(ctx, cfg.duration, cfg.rounds, cfg.progress, "localhit",
		job{name: "tiered, 1 goroutine", workers: 1, batch: 1000, newOp: cycle(ks, tget)},
		job{name: "simplelru+mutex, 1 goroutine", workers: 1, batch: 1000, newOp: cycle(ks, bget)},
		job{name: "tiered, " + par, workers: procs, batch: 1000, newOp: cycle(ks, tget)},
		job{name: "simplelru+mutex, " + par, workers: procs, batch: 1000, newOp: cycle(ks, bget)},
	)
	if err != nil {
		return nil, err
	}
	r := &localHitResult{Keys: len(ks), Procs: procs, Series: series}
	r.TieredNs, r.BareNs = series[0].medianNsPerOp(), series[1].medianNsPerOp()
	r.TieredParNs, r.BareParNs = series[2].medianNsPerOp(), series[3].medianNsPerOp()
	r.Ratio, r.ParRatio = r.TieredNs/r.BareNs, r.TieredParNs/r.BareParNs
	r.TieredAllocs, r.BareAllocs = series[0].allocsPerOp(), series[1].allocsPerOp()
	r.TieredPAllocs, r.BarePAllocs = series[2].allocsPerOp(), series[3].allocsPerOp()
	r.TieredSpeedUp = series[2].medianOpsPerSec() / series[0].medianOpsPerSec()
	r.BareSpeedUp = series[3].medianOpsPerSec() / series[1].medianOpsPerSec()
	return r, nil
}

func (r *localHitResult) name() string { return "localhit" }
func (r *localHitResult) title() string {
	return fmt.Sprintf("localhit: Get of %d warm keys vs golang-lru simplelru.LRU under a sync.Mutex", r.Keys)
}
func (r *localHitResult) rows() []row {
	p := r.Procs
	return []row{
		{Measure: "ns/op, 1 goroutine", Tiered: ns(r.TieredNs), Baseline: ns(r.BareNs), Ratio: ratio(r.Ratio),
			Target: "<= 2.0x bare", OK: r.Ratio <= 2},
		{Measure: fmt.Sprintf("ns/op, %d goroutines (wall/ops)", p), Tiered: ns(r.TieredParNs), Baseline: ns(r.BareParNs), Ratio: ratio(r.ParRatio)},
		{Measure: "allocs/op, 1 goroutine", Tiered: allocs(r.TieredAllocs), Baseline: allocs(r.BareAllocs),
			Target: "0", OK: r.TieredAllocs < 0.01},
		{Measure: fmt.Sprintf("allocs/op, %d goroutines", p), Tiered: allocs(r.TieredPAllocs), Baseline: allocs(r.BarePAllocs),
			Target: "0", OK: r.TieredPAllocs < 0.01},
		{Measure: fmt.Sprintf("speed-up, %d goroutines / 1", p), Tiered: ratio(r.TieredSpeedUp), Baseline: ratio(r.BareSpeedUp),
			Target: ">= 1.6x", OK: r.TieredSpeedUp >= 1.6},
	}
}
func (r *localHitResult) notes() []string {
	return []string{
		fmt.Sprintf("medians of %d rounds; allocs/op counts every allocation in the process during the rounds (subscriber, clock), so 0.00 means fewer than 1 in 200", len(r.Series[0].Samples)),
	}
}
