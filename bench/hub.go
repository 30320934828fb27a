package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tiercache/tiercache/tiered"
)

// hubResult is the hub scenario: what many idle caches cost on one Hub and
// with a Hub each, and a local hit on a Hub's cache with MaxStaleness on
// and off.
type hubResult struct {
	Embedded bool     `json:"embedded"`
	Hub      idleCost `json:"one_hub"`
	Own      idleCost `json:"tiered_new_each"`
	// Alone is the process with the clients but no cache, idle as long.
	Alone idleCost `json:"no_cache"`

	Keys          int      `json:"keys"`
	DefaultMaxSt  string   `json:"default_max_staleness"`
	OnNs          float64  `json:"fence_on_ns_per_op"`
	OffNs         float64  `json:"fence_off_ns_per_op"`
	BareNs        float64  `json:"bare_ns_per_op"`
	OnRatio       float64  `json:"fence_on_ratio"`
	OffRatio      float64  `json:"fence_off_ratio"`
	OnAllocs      float64  `json:"fence_on_allocs_per_op"`
	OffAllocs     float64  `json:"fence_off_allocs_per_op"`
	BareAllocs    float64  `json:"bare_allocs_per_op"`
	OnReads       uint64   `json:"fence_on_reads"`
	OnUnproven    uint64   `json:"fence_on_unproven"`
	Series        []series `json:"series"`
	HubGoroutines int      `json:"target_goroutines"`
}

// hub measures cfg.hubCaches idle caches on one Hub over one client, and the
// same made with tiered.New (a Hub each), then times a local hit on a Hub's
// cache with MaxStaleness at its default and off against a bare simplelru
// under a mutex.
func hub(ctx context.Context, e *env, cfg config) (*hubResult, error) {
	r := &hubResult{Embedded: e.embedded, Keys: cfg.warmKeys, DefaultMaxSt: tiered.DefaultMaxStaleness.String(), HubGoroutines: 4}
	r.Alone = idleCost{How: "no cache", IdleFor: cfg.idleFor, PubSub: -1}
	if err := r.Alone.idle(ctx, cfg); err != nil {
		return nil, err
	}
	var err error
	if r.Hub, err = hubCost(ctx, e, cfg, e.namespace+"-hub", true); err != nil {
		return nil, fmt.Errorf("bench: hub: %w", err)
	}
	if r.Own, err = hubCost(ctx, e, cfg, e.namespace+"-new", false); err != nil {
		return nil, fmt.Errorf("bench: hub: control: %w", err)
	}

	// A local hit on a Hub's cache, MaxStaleness at its default and off.
	ks := keys("hot:", max(cfg.warmKeys, 1))
	opts := tiered.Options[string]{Namespace: e.subNamespace("hub-hit"), LocalSize: max(tiered.DefaultLocalSize, len(ks))}
	on, err := newHubInstance(ctx, e, tiered.HubOptions{}, nil, opts)
	if err != nil {
		return nil, err
	}
	off, err := newHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: -1}, nil, opts)
	if err != nil {
		return nil, err
	}
	if err := fill(ctx, on.Cache, ks); err != nil {
		return nil, err
	}
	if err := warmLocal(ctx, off.Cache, ks); err != nil {
		return nil, err
	}
	s0 := on.Stats()
	series, err := compare(ctx, cfg.duration, cfg.rounds, cfg.progress, "hub",
		job{name: "hub cache, MaxStaleness default", workers: 1, batch: 1000, newOp: cycle(ks, getter(ctx, on.Cache))},
		job{name: "hub cache, MaxStaleness off", workers: 1, batch: 1000, newOp: cycle(ks, getter(ctx, off.Cache))},
		job{name: "simplelru+mutex", workers: 1, batch: 1000, newOp: cycle(ks, newMutexLRU(ks).read)},
	)
	if err != nil {
		return nil, err
	}
	s1 := on.Stats()
	r.Series = series
	r.OnNs, r.OffNs, r.BareNs = series[0].medianNsPerOp(), series[1].medianNsPerOp(), series[2].medianNsPerOp()
	r.OnRatio, r.OffRatio = r.OnNs/r.BareNs, r.OffNs/r.BareNs
	r.OnAllocs, r.OffAllocs, r.BareAllocs = series[0].allocsPerOp(), series[1].allocsPerOp(), series[2].allocsPerOp()
	r.OnUnproven = s1.Unproven - s0.Unproven
	r.OnReads = s1.LocalHits - s0.LocalHits + s1.RemoteHits - s0.RemoteHits
	return r, nil
}

func (r *hubResult) name() string { return "hub" }
func (r *hubResult) title() string {
	return fmt.Sprintf("hub: %d idle caches (%d namespaces, %d value types) on one Hub and one client, "+
		"vs %d × tiered.New; idle %v each", r.Hub.Caches, r.Hub.Caches, min(r.Hub.Caches, len(hubCacheKinds)),
		r.Own.Caches, r.Hub.IdleFor)
}

func (r *hubResult) rows() []row {
	conns := "pub/sub connections (CLIENT LIST)"
	if r.Embedded {
		conns = "pub/sub connections (embedded: the client's count)"
	}
	cpuOK := r.Hub.IdleCPU >= 0 && r.Hub.IdleCPU <= 0.005
	return []row{
		{Measure: conns, Tiered: strconv.Itoa(r.Hub.pubsubFigure()), Target: "1", OK: r.Hub.pubsubFigure() == 1, RedisBound: r.Embedded},
		{Measure: "goroutines added", Tiered: strconv.Itoa(r.Hub.Goroutines),
			Target: "<= " + strconv.Itoa(r.HubGoroutines), OK: r.Hub.Goroutines <= r.HubGoroutines},
		{Measure: "idle CPU, share of one core", Tiered: cpuFigure(r.Hub), Target: "<= 0.5%", OK: cpuOK},
		{Measure: "time until every cache was ready", Tiered: dur(r.Hub.Ready)},
		{Measure: fmt.Sprintf("  control, %d × New: pub/sub connections", r.Own.Caches), Tiered: strconv.Itoa(r.Own.pubsubFigure())},
		{Measure: fmt.Sprintf("  control, %d × New: goroutines added", r.Own.Caches), Tiered: strconv.Itoa(r.Own.Goroutines)},
		{Measure: fmt.Sprintf("  control, %d × New: idle CPU", r.Own.Caches), Tiered: cpuFigure(r.Own)},
		{Measure: "  control, no cache: idle CPU", Tiered: cpuFigure(r.Alone)},
		{Measure: "local hit ns/op, MaxStaleness " + r.DefaultMaxSt + " (default)", Tiered: ns(r.OnNs), Baseline: ns(r.BareNs),
			Ratio: ratio(r.OnRatio), Target: "<= 2.0x bare", OK: r.OnRatio <= 2},
		{Measure: "local hit ns/op, MaxStaleness off", Tiered: ns(r.OffNs), Baseline: ns(r.BareNs),
			Ratio: ratio(r.OffRatio), Target: "<= 2.0x bare", OK: r.OffRatio <= 2},
		{Measure: "local hit allocs/op, MaxStaleness " + r.DefaultMaxSt, Tiered: allocs(r.OnAllocs), Baseline: allocs(r.BareAllocs),
			Target: "0", OK: r.OnAllocs < 0.01},
		{Measure: "local hit allocs/op, MaxStaleness off", Tiered: allocs(r.OffAllocs), Baseline: allocs(r.BareAllocs),
			Target: "0", OK: r.OffAllocs < 0.01},
		{Measure: "reads sent to Redis unproven, MaxStaleness " + r.DefaultMaxSt,
			Tiered: fmt.Sprintf("%d of %d", r.OnUnproven, r.OnReads)},
	}
}

func (r *hubResult) notes() []string {
	notes := []string{
		"goroutines added: counted from before the Hub until every cache was ready, beyond the " +
			"client's own and the embedded server's; started: " + strings.Join(r.Hub.Started, ", "),
		fmt.Sprintf("control, %d × New, started: %s", r.Own.Caches, strings.Join(r.Own.Started, ", ")),
		"idle CPU: user+sys time of the whole process (getrusage) over wall time while nothing " +
			"reads or writes; baseline of the local hit: golang-lru simplelru.LRU Get under a sync.Mutex, " +
			fmt.Sprintf("%d keys in turn, 1 goroutine, medians of %d rounds", r.Keys, len(r.Series[0].Samples)),
	}
	if r.Embedded {
		notes = append(notes, "embedded: the server runs in this process; its goroutines are left out of "+
			"the count, its CPU (answering health-check PINGs) is in the idle figure")
	}
	for _, c := range []idleCost{r.Alone, r.Hub, r.Own} {
		if c.IdleCPUNote != "" {
			notes = append(notes, c.How+": idle CPU not measured: "+c.IdleCPUNote)
		}
	}
	return notes
}
