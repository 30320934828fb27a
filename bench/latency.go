package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// ---------------------------------------------------------------- localhit

// LocalHitResult compares a local hit with a bare simplelru.LRU under a mutex.
type LocalHitResult struct {
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
	Series        []Series `json:"series"`
}

// WarmInstance returns an instance whose local tier holds ks (with values
// value(i)), checked by reading each once more as a local hit.
func WarmInstance(ctx context.Context, e *Env, ks []string) (*Instance[string], error) {
	in, err := NewInstance(ctx, e, tiered.Options[string]{LocalSize: max(tiered.DefaultLocalSize, len(ks))})
	if err != nil {
		return nil, err
	}
	for i, k := range ks {
		if err := in.Set(ctx, k, value(i)); err != nil {
			return nil, err
		}
	}
	if err := warmLocal(ctx, in.Cache, ks); err != nil {
		return nil, err
	}
	return in, nil
}

// warmLocal reads ks through c until one pass over them is answered by the
// local tier alone: at most 50 passes, 10ms apart. Passes before the last
// fill the local tier, or find it not yet proven fresh (a Hub with no
// recent proof of freshness sends reads to Redis; see Stats.Unproven).
func warmLocal[V any](ctx context.Context, c *tiered.Cache[V], ks []string) error {
	var got uint64
	for pass := range 50 {
		if pass > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		before := c.Stats().LocalHits
		for _, k := range ks {
			if _, err := c.Get(ctx, k); err != nil {
				return err
			}
		}
		if got = c.Stats().LocalHits - before; got == uint64(len(ks)) {
			return nil
		}
	}
	return fmt.Errorf("bench: the local tier answered %d of %d reads of warm keys (%d reads unproven so far)",
		got, len(ks), c.Stats().Unproven)
}

// MutexLRU is the baseline of a local hit: golang-lru's simplelru under one
// mutex.
type MutexLRU struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, string] // guarded by mu
}

// NewMutexLRU returns a MutexLRU holding ks, with values value(i).
func NewMutexLRU(ks []string) *MutexLRU {
	l, err := simplelru.NewLRU[string, string](len(ks), nil)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	for i, k := range ks {
		l.Add(k, value(i))
	}
	return &MutexLRU{lru: l}
}

// Get reads key.
func (m *MutexLRU) Get(key string) (string, bool) {
	m.mu.Lock()
	v, ok := m.lru.Get(key)
	m.mu.Unlock()
	return v, ok
}

// cursor is a worker's place in its keys, padded to two cache lines.
type cursor struct {
	i int
	_ [120]byte
}

// cycle returns worker w's Op that calls get on ks in turn, starting at a
// place of its own.
func cycle(ks []string, get func(string) error) func(w int) Op {
	return func(w int) Op {
		// The cursor lives in a cache line of its own: workers' cursors side
		// by side would make every read of one core stall the other.
		cur := &cursor{i: (w * 7919) % len(ks)}
		return func(n int) error {
			i := cur.i
			for range n {
				if err := get(ks[i]); err != nil {
					cur.i = i
					return err
				}
				if i++; i == len(ks) {
					i = 0
				}
			}
			cur.i = i
			return nil
		}
	}
}

// LocalHit times Get of warm keys against simplelru under a mutex, with one
// goroutine and with GOMAXPROCS goroutines.
func LocalHit(ctx context.Context, e *Env, cfg Config) (*LocalHitResult, error) {
	ks := keys("hot:", cfg.WarmKeys)
	in, err := WarmInstance(ctx, e, ks)
	if err != nil {
		return nil, err
	}
	bare := NewMutexLRU(ks)
	tget := func(k string) error { _, err := in.Get(ctx, k); return err }
	bget := func(k string) error {
		if _, ok := bare.Get(k); !ok {
			return fmt.Errorf("bare LRU lost %q", k)
		}
		return nil
	}
	procs := runtime.GOMAXPROCS(0)
	par := fmt.Sprintf("%d goroutines", procs)
	series, err := Compare(ctx, cfg.Duration, cfg.Rounds, cfg.Progress, "localhit",
		Job{Name: "tiered, 1 goroutine", Workers: 1, Batch: 1000, New: cycle(ks, tget)},
		Job{Name: "simplelru+mutex, 1 goroutine", Workers: 1, Batch: 1000, New: cycle(ks, bget)},
		Job{Name: "tiered, " + par, Workers: procs, Batch: 1000, New: cycle(ks, tget)},
		Job{Name: "simplelru+mutex, " + par, Workers: procs, Batch: 1000, New: cycle(ks, bget)},
	)
	if err != nil {
		return nil, err
	}
	r := &LocalHitResult{Keys: len(ks), Procs: procs, Series: series}
	r.TieredNs, r.BareNs = series[0].MedianNsPerOp(), series[1].MedianNsPerOp()
	r.TieredParNs, r.BareParNs = series[2].MedianNsPerOp(), series[3].MedianNsPerOp()
	r.Ratio, r.ParRatio = r.TieredNs/r.BareNs, r.TieredParNs/r.BareParNs
	r.TieredAllocs, r.BareAllocs = series[0].AllocsPerOp(), series[1].AllocsPerOp()
	r.TieredPAllocs, r.BarePAllocs = series[2].AllocsPerOp(), series[3].AllocsPerOp()
	r.TieredSpeedUp = series[2].MedianOpsPerSec() / series[0].MedianOpsPerSec()
	r.BareSpeedUp = series[3].MedianOpsPerSec() / series[1].MedianOpsPerSec()
	return r, nil
}

func (r *LocalHitResult) Name() string { return "localhit" }
func (r *LocalHitResult) Title() string {
	return fmt.Sprintf("localhit: Get of %d warm keys vs golang-lru simplelru.LRU under a sync.Mutex", r.Keys)
}
func (r *LocalHitResult) Rows() []Row {
	p := r.Procs
	return []Row{
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
func (r *LocalHitResult) Notes() []string {
	return []string{
		fmt.Sprintf("medians of %d rounds; allocs/op counts every allocation in the process during the rounds (subscriber, clock), so 0.00 means fewer than 1 in 200", len(r.Series[0].Samples)),
	}
}

// --------------------------------------------------------------- remotehit

// RemoteHitResult compares a Get that misses the local tier with a plain GET.
type RemoteHitResult struct {
	Keys          int      `json:"keys"`
	TieredNs      float64  `json:"tiered_ns_per_op"`
	PlainNs       float64  `json:"plain_get_ns_per_op"`
	Ratio         float64  `json:"ratio"`
	StoreNs       float64  `json:"store_get_with_ttl_ns_per_op"`
	StoreRatio    float64  `json:"store_ratio"`
	RemoteShare   float64  `json:"share_answered_by_redis"`
	TripsPerGet   float64  `json:"round_trips_per_get"`
	TieredAllocs  float64  `json:"tiered_allocs_per_op"`
	PlainAllocs   float64  `json:"plain_allocs_per_op"`
	Series        []Series `json:"series"`
	TieredCommand string   `json:"tiered_commands"`
}

// ColdInstance returns an instance with a one-entry local tier, so that
// reading ks in turn misses it every time.
func ColdInstance(ctx context.Context, e *Env, ks []string) (*Instance[string], error) {
	if err := e.Populate(ctx, len(ks), func(i int) string { return ks[i] }, value); err != nil {
		return nil, err
	}
	return NewInstance(ctx, e, tiered.Options[string]{LocalSize: 1})
}

// RemoteHit times Get on an instance whose local tier never holds the key
// read, against a plain GET of the same keys.
func RemoteHit(ctx context.Context, e *Env, cfg Config) (*RemoteHitResult, error) {
	ks := keys("cold:", max(cfg.WarmKeys, 2))
	in, err := ColdInstance(ctx, e, ks)
	if err != nil {
		return nil, err
	}
	plain := e.NewClient(nil)
	var gets uint64
	tget := func(k string) error {
		gets++
		_, err := in.Get(ctx, k)
		return err
	}
	pget := func(k string) error { return plain.Get(ctx, e.Key(k)).Err() }
	store, err := remote.New(e.NewClient(nil), remote.Options{Namespace: e.Namespace})
	if err != nil {
		return nil, err
	}
	sget := func(k string) error { _, _, err := store.GetWithTTL(ctx, k); return err }
	s0, c0 := in.Stats(), in.Calls.Snapshot()
	series, err := Compare(ctx, cfg.Duration, cfg.Rounds, cfg.Progress, "remotehit",
		Job{Name: "tiered Get, local miss", Workers: 1, Batch: 8, New: cycle(ks, tget)},
		Job{Name: "plain GET", Workers: 1, Batch: 8, New: cycle(ks, pget)},
		Job{Name: "remote.Store.GetWithTTL", Workers: 1, Batch: 8, New: cycle(ks, sget)},
	)
	if err != nil {
		return nil, err
	}
	s1, c1 := in.Stats(), in.Calls.Snapshot()
	calls := c1.Sub(c0)
	r := &RemoteHitResult{Keys: len(ks), Series: series, TieredCommand: calls.String()}
	r.TieredNs, r.PlainNs, r.StoreNs = series[0].MedianNsPerOp(), series[1].MedianNsPerOp(), series[2].MedianNsPerOp()
	r.Ratio, r.StoreRatio = r.TieredNs/r.PlainNs, r.StoreNs/r.PlainNs
	r.TieredAllocs, r.PlainAllocs = series[0].AllocsPerOp(), series[1].AllocsPerOp()
	r.RemoteShare = float64(s1.RemoteHits-s0.RemoteHits) / float64(gets)
	r.TripsPerGet = float64(calls.Trips) / float64(gets)
	return r, nil
}

func (r *RemoteHitResult) Name() string { return "remotehit" }
func (r *RemoteHitResult) Title() string {
	return fmt.Sprintf("remotehit: Get that misses the local tier (LocalSize 1, %d keys in turn) vs plain go-redis GET", r.Keys)
}
func (r *RemoteHitResult) Rows() []Row {
	return []Row{
		{Measure: "ns/op", Tiered: ns(r.TieredNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.Ratio),
			Target: "<= 1.1x GET", OK: r.Ratio <= 1.1, RedisBound: true},
		{Measure: "  layer: remote.Store.GetWithTTL alone (ns/op)", Tiered: ns(r.StoreNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.StoreRatio)},
		{Measure: "allocs/op", Tiered: allocs(r.TieredAllocs), Baseline: allocs(r.PlainAllocs)},
		{Measure: "reads answered by Redis", Tiered: pct(r.RemoteShare), Baseline: "100%"},
		{Measure: "round trips per Get", Tiered: fmt.Sprintf("%.3f", r.TripsPerGet), Baseline: "1"},
	}
}
func (r *RemoteHitResult) Notes() []string {
	return []string{
		fmt.Sprintf("medians of %d rounds; tiercache's read is one MULTI GET PTTL EXEC round trip, shared per key; commands sent: %s",
			len(r.Series[0].Samples), r.TieredCommand),
	}
}

// ------------------------------------------------------------------- write

// WriteResult compares Set with a plain SET of the same TTL.
type WriteResult struct {
	Instances    int      `json:"instances"`
	TieredNs     float64  `json:"tiered_ns_per_op"`
	PlainNs      float64  `json:"plain_set_ns_per_op"`
	Ratio        float64  `json:"ratio"`
	StoreNs      float64  `json:"store_set_and_publish_ns_per_op"`
	StoreRatio   float64  `json:"store_ratio"`
	PublishNs    float64  `json:"plain_publish_ns_per_op"`
	PublishRatio float64  `json:"publish_ratio"`
	Sets         uint64   `json:"sets_counted"`
	TripsPerSet  float64  `json:"round_trips_per_set"`
	TieredAllocs float64  `json:"tiered_allocs_per_op"`
	PlainAllocs  float64  `json:"plain_allocs_per_op"`
	Commands     string   `json:"commands"`
	Series       []Series `json:"series"`
}

// Write times Set on one of cfg.Instances subscribed instances (so each Set
// publishes to all of them) against a plain SET with the same TTL, and counts
// the writer's round trips.
func Write(ctx context.Context, e *Env, cfg Config) (*WriteResult, error) {
	ins, err := NewInstances(ctx, e, max(cfg.Instances, 1), tiered.Options[string]{TTL: keyTTL})
	if err != nil {
		return nil, err
	}
	w := ins[0]
	ks := keys("w:", max(cfg.WarmKeys, 1))
	vals := make(map[string]string, len(ks))
	for i, k := range ks {
		vals[k] = value(i)
	}
	plain := e.NewClient(nil)
	var sets uint64
	tset := func(k string) error {
		sets++
		return w.Set(ctx, k, vals[k])
	}
	pset := func(k string) error { return plain.Set(ctx, e.Key(k), vals[k], keyTTL).Err() }
	// The same script as Set, with a payload of the same size, published on
	// the same channel, so the subscribed instances receive (and ignore) it.
	store, err := remote.New(e.NewClient(nil), remote.Options{Namespace: e.Namespace})
	if err != nil {
		return nil, err
	}
	channel := invalidate.Channel(e.Namespace)
	payload := invalidate.Message{Origin: invalidate.NewOrigin(), Keys: []string{ks[0]}}.Append(nil)
	sset := func(k string) error {
		return store.SetAndPublish(ctx, k, []byte(vals[k]), keyTTL, channel, payload)
	}
	ppub := func(string) error { return plain.Publish(ctx, channel, payload).Err() }
	c0 := w.Calls.Snapshot()
	series, err := Compare(ctx, cfg.Duration, cfg.Rounds, cfg.Progress, "write",
		Job{Name: "tiered Set", Workers: 1, Batch: 8, New: cycle(ks, tset)},
		Job{Name: "plain SET PX", Workers: 1, Batch: 8, New: cycle(ks, pset)},
		Job{Name: "remote.Store.SetAndPublish", Workers: 1, Batch: 8, New: cycle(ks, sset)},
		Job{Name: "plain PUBLISH", Workers: 1, Batch: 8, New: cycle(ks, ppub)},
	)
	if err != nil {
		return nil, err
	}
	calls := w.Calls.Snapshot().Sub(c0)
	r := &WriteResult{Instances: len(ins), Series: series, Sets: sets, Commands: calls.String()}
	r.TieredNs, r.PlainNs, r.StoreNs = series[0].MedianNsPerOp(), series[1].MedianNsPerOp(), series[2].MedianNsPerOp()
	r.Ratio, r.StoreRatio = r.TieredNs/r.PlainNs, r.StoreNs/r.PlainNs
	r.PublishNs = series[3].MedianNsPerOp()
	r.PublishRatio = r.PublishNs / r.PlainNs
	r.TieredAllocs, r.PlainAllocs = series[0].AllocsPerOp(), series[1].AllocsPerOp()
	r.TripsPerSet = float64(calls.Trips) / float64(sets)
	return r, nil
}

func (r *WriteResult) Name() string { return "write" }
func (r *WriteResult) Title() string {
	return fmt.Sprintf("write: Set (TTL %v, %d instances subscribed) vs plain go-redis SET … PX", keyTTL, r.Instances)
}
func (r *WriteResult) Rows() []Row {
	return []Row{
		{Measure: "ns/op", Tiered: ns(r.TieredNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.Ratio),
			Target: "<= 1.2x SET", OK: r.Ratio <= 1.2, RedisBound: true},
		{Measure: "  layer: remote.Store.SetAndPublish alone (ns/op)", Tiered: ns(r.StoreNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.StoreRatio)},
		{Measure: fmt.Sprintf("  control: plain PUBLISH to the same %d subscribers (ns/op)", r.Instances), Tiered: ns(r.PublishNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.PublishRatio)},
		{Measure: "round trips per Set", Tiered: fmt.Sprintf("%.3f", r.TripsPerSet), Baseline: "1",
			Target: "exactly 1", OK: r.TripsPerSet == 1},
		{Measure: "allocs/op", Tiered: allocs(r.TieredAllocs), Baseline: allocs(r.PlainAllocs)},
	}
}
func (r *WriteResult) Notes() []string {
	return []string{fmt.Sprintf("medians of %d rounds; the writer's client sent %s for %d Sets (counted by a go-redis hook)",
		len(r.Series[0].Samples), r.Commands, r.Sets)}
}
