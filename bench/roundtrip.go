package main

import (
	"context"
	"fmt"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// remotehit and write: a call that goes to Redis against the plain go-redis
// command it stands for.

// remoteHitResult compares a Get that misses the local tier with a plain GET.
type remoteHitResult struct {
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
	Series        []series `json:"series"`
	TieredCommand string   `json:"tiered_commands"`
}

// remoteHit times Get on an instance whose local tier never holds the key
// read, against a plain GET of the same keys.
func remoteHit(ctx context.Context, e *env, cfg config) (*remoteHitResult, error) {
	ks := keys("cold:", max(cfg.warmKeys, 2))
	in, err := coldInstance(ctx, e, ks)
	if err != nil {
		return nil, err
	}
	plain := e.newClient(nil)
	var gets uint64
	tget := func(k string) error {
		gets++
		_, err := in.Get(ctx, k)
		return err
	}
	pget := func(k string) error { return plain.Get(ctx, e.key(k)).Err() }
	store, err := remote.New(e.newClient(nil), remote.Options{Namespace: e.namespace})
	if err != nil {
		return nil, err
	}
	sget := func(k string) error { _, _, err := store.GetWithTTL(ctx, k); return err }
	s0, c0 := in.Stats(), in.calls.snapshot()
	series, err := compare(ctx, cfg.duration, cfg.rounds, cfg.progress, "remotehit",
		job{name: "tiered Get, local miss", workers: 1, batch: 8, newOp: cycle(ks, tget)},
		job{name: "plain GET", workers: 1, batch: 8, newOp: cycle(ks, pget)},
		job{name: "remote.Store.GetWithTTL", workers: 1, batch: 8, newOp: cycle(ks, sget)},
	)
	if err != nil {
		return nil, err
	}
	s1, c1 := in.Stats(), in.calls.snapshot()
	calls := c1.sub(c0)
	r := &remoteHitResult{Keys: len(ks), Series: series, TieredCommand: calls.text()}
	r.TieredNs, r.PlainNs, r.StoreNs = series[0].medianNsPerOp(), series[1].medianNsPerOp(), series[2].medianNsPerOp()
	r.Ratio, r.StoreRatio = r.TieredNs/r.PlainNs, r.StoreNs/r.PlainNs
	r.TieredAllocs, r.PlainAllocs = series[0].allocsPerOp(), series[1].allocsPerOp()
	r.RemoteShare = float64(s1.RemoteHits-s0.RemoteHits) / float64(gets)
	r.TripsPerGet = float64(calls.Trips) / float64(gets)
	return r, nil
}

func (r *remoteHitResult) name() string { return "remotehit" }
func (r *remoteHitResult) title() string {
	return fmt.Sprintf("remotehit: Get that misses the local tier (LocalSize 1, %d keys in turn) vs plain go-redis GET", r.Keys)
}
func (r *remoteHitResult) rows() []row {
	return []row{
		{Measure: "ns/op", Tiered: ns(r.TieredNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.Ratio),
			Target: "<= 1.1x GET", OK: r.Ratio <= 1.1, RedisBound: true, serverWork: true},
		{Measure: "  layer: remote.Store.GetWithTTL alone (ns/op)", Tiered: ns(r.StoreNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.StoreRatio), serverWork: true},
		{Measure: "allocs/op", Tiered: allocs(r.TieredAllocs), Baseline: allocs(r.PlainAllocs), serverWork: true},
		{Measure: "reads answered by Redis", Tiered: pct(r.RemoteShare), Baseline: "100%"},
		{Measure: "round trips per Get", Tiered: fmt.Sprintf("%.3f", r.TripsPerGet), Baseline: "1"},
	}
}
func (r *remoteHitResult) notes() []string {
	return []string{
		fmt.Sprintf("medians of %d rounds; tiercache's read is one MULTI GET PTTL EXEC round trip, shared per key; commands sent: %s",
			len(r.Series[0].Samples), r.TieredCommand),
	}
}

// writeResult compares Set with a plain SET of the same TTL.
type writeResult struct {
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
	Series       []series `json:"series"`
}

// write times Set on one of cfg.instances subscribed instances (so each Set
// publishes to all of them) against a plain SET with the same TTL, and counts
// the writer's round trips.
func write(ctx context.Context, e *env, cfg config) (*writeResult, error) {
	ins, err := newCacheInstances(ctx, e, max(cfg.instances, 1), tiered.Options[string]{TTL: keyTTL})
	if err != nil {
		return nil, err
	}
	w := ins[0]
	ks := keys("w:", max(cfg.warmKeys, 1))
	vals := make(map[string]string, len(ks))
	for i, k := range ks {
		vals[k] = value(i)
	}
	plain := e.newClient(nil)
	var sets uint64
	tset := func(k string) error {
		sets++
		return w.Set(ctx, k, vals[k])
	}
	pset := func(k string) error { return plain.Set(ctx, e.key(k), vals[k], keyTTL).Err() }
	// The same script as Set, with a payload of the same size, published on
	// the same channel, so the subscribed instances receive (and ignore) it.
	store, err := remote.New(e.newClient(nil), remote.Options{Namespace: e.namespace})
	if err != nil {
		return nil, err
	}
	channel := invalidate.Channel(e.namespace)
	payload := invalidate.Message{Origin: invalidate.NewOrigin(), Keys: []string{ks[0]}}.Append(nil)
	sset := func(k string) error {
		return store.SetAndPublish(ctx, k, []byte(vals[k]), keyTTL, payload)
	}
	ppub := func(string) error { return plain.Publish(ctx, channel, payload).Err() }
	c0 := w.calls.snapshot()
	series, err := compare(ctx, cfg.duration, cfg.rounds, cfg.progress, "write",
		job{name: "tiered Set", workers: 1, batch: 8, newOp: cycle(ks, tset)},
		job{name: "plain SET PX", workers: 1, batch: 8, newOp: cycle(ks, pset)},
		job{name: "remote.Store.SetAndPublish", workers: 1, batch: 8, newOp: cycle(ks, sset)},
		job{name: "plain PUBLISH", workers: 1, batch: 8, newOp: cycle(ks, ppub)},
	)
	if err != nil {
		return nil, err
	}
	calls := w.calls.snapshot().sub(c0)
	r := &writeResult{Instances: len(ins), Series: series, Sets: sets, Commands: calls.text()}
	r.TieredNs, r.PlainNs, r.StoreNs = series[0].medianNsPerOp(), series[1].medianNsPerOp(), series[2].medianNsPerOp()
	r.Ratio, r.StoreRatio = r.TieredNs/r.PlainNs, r.StoreNs/r.PlainNs
	r.PublishNs = series[3].medianNsPerOp()
	r.PublishRatio = r.PublishNs / r.PlainNs
	r.TieredAllocs, r.PlainAllocs = series[0].allocsPerOp(), series[1].allocsPerOp()
	r.TripsPerSet = float64(calls.Trips) / float64(sets)
	return r, nil
}

func (r *writeResult) name() string { return "write" }
func (r *writeResult) title() string {
	return fmt.Sprintf("write: Set (TTL %v, %d instances subscribed) vs plain go-redis SET … PX", keyTTL, r.Instances)
}
func (r *writeResult) rows() []row {
	return []row{
		{Measure: "ns/op", Tiered: ns(r.TieredNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.Ratio),
			Target: "<= 1.2x SET", OK: r.Ratio <= 1.2, RedisBound: true, serverWork: true},
		{Measure: "  layer: remote.Store.SetAndPublish alone (ns/op)", Tiered: ns(r.StoreNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.StoreRatio), serverWork: true},
		{Measure: fmt.Sprintf("  control: plain PUBLISH to the same %d subscribers (ns/op)", r.Instances), Tiered: ns(r.PublishNs), Baseline: ns(r.PlainNs), Ratio: ratio(r.PublishRatio), serverWork: true},
		{Measure: "round trips per Set", Tiered: fmt.Sprintf("%.3f", r.TripsPerSet), Baseline: "1",
			Target: "exactly 1", OK: r.TripsPerSet == 1},
		{Measure: "allocs/op", Tiered: allocs(r.TieredAllocs), Baseline: allocs(r.PlainAllocs), serverWork: true},
	}
}
func (r *writeResult) notes() []string {
	return []string{fmt.Sprintf("medians of %d rounds; the writer's client sent %s for %d Sets (counted by a go-redis hook)",
		len(r.Series[0].Samples), r.Commands, r.Sets)}
}
