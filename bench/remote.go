package main

import (
	"context"
	"strings"

	"github.com/tiercache/tiercache/tiered"
)

// remoteHit times a Get that misses the local tier (LocalSize 1, 1,000 keys
// read in turn) against a plain GET of the same keys.
func remoteHit(ctx context.Context, e *env, cfg config) ([]row, error) {
	ns, ks := e.ns("remote"), keys("cold", 1000)
	if err := e.populate(ctx, ns, ks, value); err != nil {
		return nil, err
	}
	c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{LocalSize: 1})
	if err != nil {
		return nil, err
	}
	plain := e.client(nil)
	f, err := compare(ctx, cfg.duration, cfg.rounds,
		job{batch: 8, op: cycle(ks, getter(ctx, c))},
		job{batch: 8, op: cycle(ks, func(k string) error { return plain.Get(ctx, ns+":"+k).Err() })},
	)
	if err != nil {
		return nil, err
	}
	return []row{
		judge(row{Measure: "remote hit", Tiered: dur(f[0].ns),
			Baseline: "GET " + dur(f[1].ns), Target: "≤ 1.1× GET"}, f[0].ns <= 1.1*f[1].ns),
		{Measure: "remote hit: allocs", Tiered: allocs(f[0].allocs), Baseline: "GET " + allocs(f[1].allocs)},
	}, nil
}

// write times a Set, with 3 instances subscribed to the namespace (so each
// Set's invalidation reaches 2 others), against a plain SET … PX.
func write(ctx context.Context, e *env, cfg config) ([]row, error) {
	ns, ks := e.ns("write"), keys("w", 1000)
	var w *tiered.Cache[string]
	for i := range 3 {
		c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{})
		if err != nil {
			return nil, err
		}
		if i == 0 {
			w = c
		}
	}
	vals := make(map[string]string, len(ks))
	for i, k := range ks {
		vals[k] = value(i)
	}
	plain := e.client(nil)
	jobs := []job{
		{batch: 8, op: cycle(ks, func(k string) error { return w.Set(ctx, k, vals[k]) })},
		{batch: 8, op: cycle(ks, func(k string) error { return plain.Set(ctx, ns+":"+k, vals[k], keyTTL).Err() })},
	}
	tracking, na, err := trackingJobs(ctx, e, ns, ks, vals)
	if err != nil {
		return nil, err
	}
	jobs = append(jobs, tracking...)
	f, err := compare(ctx, cfg.duration, cfg.rounds, jobs...)
	if err != nil {
		return nil, err
	}
	rows := []row{
		judge(row{Measure: "Set", Tiered: dur(f[0].ns), Baseline: "SET " + dur(f[1].ns),
			Target: "≤ 1.2× SET"}, f[0].ns <= 1.2*f[1].ns),
		{Measure: "Set: allocs", Tiered: allocs(f[0].allocs), Baseline: "SET " + allocs(f[1].allocs)},
	}
	if tracking != nil {
		rows = append(rows, judge(row{Measure: "Set in Tracking mode", Tiered: dur(f[2].ns),
			Baseline: "tracked SET " + dur(f[3].ns), Target: "≤ 1.15× tracked SET"}, f[2].ns <= 1.15*f[3].ns))
	} else {
		rows = append(rows, row{Measure: "Set in Tracking mode", Tiered: na, Baseline: "SET " + dur(f[1].ns)})
	}
	return rows, nil
}

// trackingJobs times a Set in Tracking mode: 3 instances of namespace
// ns-tracking, every Hub with HubOptions.Tracking, the writer's with
// TrackingOnly too, so that its Set is a plain SET … PX that publishes and
// logs nothing, and Redis itself tells the instances (CLIENT TRACKING
// BCAST). Its baseline, the second job, is a plain SET … PX of the same
// keys beside the same instances, which Redis tells of it alike: what any
// program's write costs where every instance tracks. Where the server
// cannot track (the embedded miniredis, Redis before 6, CLIENT refused by
// an ACL or a proxy) there are no jobs: it returns what the row shows
// instead.
func trackingJobs(ctx context.Context, e *env, ns string, ks []string, vals map[string]string) ([]job, string, error) {
	if e.embedded {
		return nil, "n/a (miniredis)", nil
	}
	ns += "-tracking"
	var w *tiered.Cache[string]
	for i := range 3 {
		c, err := newCache(ctx, e, ns, tiered.HubOptions{Tracking: true, TrackingOnly: i == 0}, tiered.Options[string]{})
		if err != nil {
			if strings.Contains(err.Error(), "Tracking is not available") {
				return nil, "n/a (no tracking)", nil
			}
			return nil, "", err
		}
		if i == 0 {
			w = c
		}
	}
	plain := e.client(nil)
	return []job{
		{batch: 8, op: cycle(ks, func(k string) error { return w.Set(ctx, k, vals[k]) })},
		{batch: 8, op: cycle(ks, func(k string) error { return plain.Set(ctx, ns+":"+k, vals[k], keyTTL).Err() })},
	}, "", nil
}
