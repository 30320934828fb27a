package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/tiered"
)

const (
	batchSize   = 100 // keys per batch call
	batchGroups = 10  // groups of batchSize keys used in turn
)

// batchKeys returns batchGroups groups of batchSize keys named prefix0 …,
// each with value(i) for its place i in the whole list, and stores them in
// Redis (plain SETs) when store is set.
func batchKeys(ctx context.Context, e *env, prefix string, store bool) ([][]string, error) {
	ks := keys(prefix, batchSize*batchGroups)
	if store {
		if err := e.populate(ctx, ks, value); err != nil {
			return nil, err
		}
	}
	groups := make([][]string, batchGroups)
	for g := range groups {
		groups[g] = ks[g*batchSize : (g+1)*batchSize]
	}
	return groups, nil
}

// getManyOp reads group g with one GetMany and checks that every key was
// found. With a LocalSize of 1, in holds none of a group when it reads it.
func getManyOp(ctx context.Context, in *instance[string], groups [][]string) func(g int) error {
	return func(g int) error {
		m, err := in.GetMany(ctx, groups[g])
		if err == nil && len(m) != len(groups[g]) {
			err = fmt.Errorf("GetMany found %d of %d keys", len(m), len(groups[g]))
		}
		return err
	}
}

// getsOp reads group g with one Get per key, in turn.
func getsOp(ctx context.Context, in *instance[string], groups [][]string) func(g int) error {
	return func(g int) error {
		for _, k := range groups[g] {
			if _, err := in.Get(ctx, k); err != nil {
				return err
			}
		}
		return nil
	}
}

// mGetOp reads group g's Redis keys with one plain MGET.
func mGetOp(ctx context.Context, e *env, c *redis.Client, groups [][]string) func(g int) error {
	rks := redisKeys(e, groups)
	return func(g int) error {
		vs, err := c.MGet(ctx, rks[g]...).Result()
		if err == nil && slices.Contains(vs, nil) {
			err = errors.New("MGET found a key missing")
		}
		return err
	}
}

// setManyOp writes group g with one SetMany.
func setManyOp(ctx context.Context, in *instance[string], groups [][]string) func(g int) error {
	items := make([]map[string]string, len(groups))
	for g, ks := range groups {
		items[g] = make(map[string]string, len(ks))
		for j, k := range ks {
			items[g][k] = value(g*batchSize + j)
		}
	}
	return func(g int) error { return in.SetMany(ctx, items[g]) }
}

// pipelineSetOp writes group g with one go-redis pipeline of SET key value
// PX keyTTL per key and one PUBLISH of a message the size of SetMany's (the
// group's keys) to a channel of the run's namespace that no one reads.
func pipelineSetOp(ctx context.Context, e *env, c *redis.Client, groups [][]string) func(g int) error {
	rks := redisKeys(e, groups)
	channel := e.key("bench-throwaway")
	origin := invalidate.NewOrigin()
	payloads := make([][]byte, len(groups))
	for g, ks := range groups {
		payloads[g] = invalidate.Message{Origin: origin, Keys: ks}.Append(nil)
	}
	px := keyTTL.Milliseconds()
	return func(g int) error {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, rk := range rks[g] {
				p.Do(ctx, "set", rk, value(g*batchSize+j), "px", px)
			}
			p.Publish(ctx, channel, payloads[g])
			return nil
		})
		return err
	}
}

func redisKeys(e *env, groups [][]string) [][]string {
	out := make([][]string, len(groups))
	for g, ks := range groups {
		out[g] = make([]string, len(ks))
		for j, k := range ks {
			out[g][j] = e.key(k)
		}
	}
	return out
}

// fetchManyRound is one FetchMany of batchSize fresh keys, half of them in
// Redis.
type fetchManyRound struct {
	Trips    uint64        `json:"round_trips"`
	Commands string        `json:"commands"`
	Loads    uint64        `json:"loader_calls"`
	Asked    int           `json:"keys_given_to_loader"`
	Wrong    int           `json:"values_wrong_or_missing"`
	Stored   int           `json:"loaded_values_in_redis"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// runFetchMany stores the even keys of batchSize fresh keys named prefix…
// in Redis, then FetchManys all of them on in (whose local tier has never
// seen them) with a loader that returns a value for every key it is given,
// and counts in's round trips and the loader's calls.
func runFetchMany(ctx context.Context, e *env, in *instance[string], prefix string) (fetchManyRound, error) {
	var f fetchManyRound
	ks := keys(prefix, batchSize)
	even := make([]string, 0, batchSize/2)
	for i := 0; i < batchSize; i += 2 {
		even = append(even, ks[i])
	}
	if err := e.populate(ctx, even, func(i int) string { return value(2 * i) }); err != nil {
		return f, err
	}
	loaded := func(k string) string { return "loaded " + k }
	var loads atomic.Uint64
	var asked atomic.Int64
	c0 := in.calls.snapshot()
	t0 := time.Now()
	got, err := in.FetchMany(ctx, ks, func(_ context.Context, missing []string) (map[string]string, error) {
		loads.Add(1)
		asked.Add(int64(len(missing)))
		out := make(map[string]string, len(missing))
		for _, k := range missing {
			out[k] = loaded(k)
		}
		return out, nil
	})
	f.Elapsed = time.Since(t0)
	calls := in.calls.snapshot().sub(c0)
	f.Trips, f.Commands, f.Loads, f.Asked = calls.Trips, calls.text(), loads.Load(), int(asked.Load())
	if err != nil {
		return f, fmt.Errorf("FetchMany: %w", err)
	}
	var rks []string
	for i, k := range ks {
		want := value(i)
		if i%2 == 1 {
			want = loaded(k)
			rks = append(rks, e.key(k))
		}
		if v, ok := got[k]; !ok || v != want {
			f.Wrong++
		}
	}
	vs, err := e.admin.MGet(ctx, rks...).Result()
	if err != nil {
		return f, fmt.Errorf("read the loaded keys: %w", err)
	}
	for j, v := range vs {
		if v == loaded(ks[2*j+1]) {
			f.Stored++
		}
	}
	return f, nil
}

// batchResult compares the batch calls with their plain go-redis
// equivalents, and counts FetchMany's round trips and loads.
type batchResult struct {
	GetManyNs     float64          `json:"getmany_ns_per_call"`
	GetsNs        float64          `json:"sequential_gets_ns_per_100"`
	MGetNs        float64          `json:"mget_ns_per_call"`
	SpeedUp       float64          `json:"getmany_speedup_over_gets"`
	MGetRatio     float64          `json:"getmany_mget_ratio"`
	RemoteShare   float64          `json:"getmany_share_answered_by_redis"`
	GetsShare     float64          `json:"gets_share_answered_by_redis"`
	TripsPerMany  float64          `json:"round_trips_per_getmany"`
	GetManyAllocs float64          `json:"getmany_allocs_per_call"`
	MGetAllocs    float64          `json:"mget_allocs_per_call"`
	GetCommands   string           `json:"getmany_commands"`
	SetManyNs     float64          `json:"setmany_ns_per_call"`
	PipelineNs    float64          `json:"pipeline_ns_per_call"`
	SetRatio      float64          `json:"setmany_pipeline_ratio"`
	TripsPerSet   float64          `json:"round_trips_per_setmany"`
	SetCommands   string           `json:"setmany_commands"`
	Fetch         []fetchManyRound `json:"fetchmany_rounds"`
	Series        []series         `json:"series"`
}

// batch times GetMany of 100 cold keys against 100 sequential Gets and one
// plain MGET, and SetMany of 100 keys against a pipeline of 100 SETs and a
// PUBLISH; then runs cfg.rounds FetchManys of 100 fresh keys, 50 of them in
// Redis.
func batch(ctx context.Context, e *env, cfg config) (*batchResult, error) {
	cfg.progress.update("batch: storing %d keys in Redis", batchSize*batchGroups)
	groups, err := batchKeys(ctx, e, "batch:cold:", true)
	if err != nil {
		return nil, err
	}
	// LocalSize 1: a group never finds one of its keys in the local tier.
	many, err := newCacheInstance(ctx, e, tiered.Options[string]{LocalSize: 1})
	if err != nil {
		return nil, err
	}
	each, err := newCacheInstance(ctx, e, tiered.Options[string]{LocalSize: 1})
	if err != nil {
		return nil, err
	}
	writer, err := newCacheInstance(ctx, e, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	wgroups, err := batchKeys(ctx, e, "batch:w:", false)
	if err != nil {
		return nil, err
	}
	plain := e.newClient(nil)
	var gm, gs, sm uint64
	getMany, gets, setMany := getManyOp(ctx, many, groups), getsOp(ctx, each, groups), setManyOp(ctx, writer, wgroups)
	count := func(n *uint64, op func(int) error) func(int) error {
		return func(g int) error { *n++; return op(g) }
	}
	sm0, cm0, se0, cw0 := many.Stats(), many.calls.snapshot(), each.Stats(), writer.calls.snapshot()
	ids := indexes(batchGroups) // the groups, in turn
	series, err := compare(ctx, cfg.duration, cfg.rounds, cfg.progress, "batch",
		job{name: "tiered GetMany of 100 cold keys", workers: 1, batch: 1, newOp: cycle(ids, count(&gm, getMany))},
		job{name: "100 sequential tiered Gets", workers: 1, batch: 1, newOp: cycle(ids, count(&gs, gets))},
		job{name: "plain MGET of 100", workers: 1, batch: 1, newOp: cycle(ids, mGetOp(ctx, e, plain, groups))},
		job{name: "tiered SetMany of 100", workers: 1, batch: 1, newOp: cycle(ids, count(&sm, setMany))},
		job{name: "pipelined 100 SET PX + PUBLISH", workers: 1, batch: 1, newOp: cycle(ids, pipelineSetOp(ctx, e, plain, wgroups))},
	)
	if err != nil {
		return nil, err
	}
	sm1, cm1, se1, cw1 := many.Stats(), many.calls.snapshot(), each.Stats(), writer.calls.snapshot()
	r := &batchResult{Series: series}
	r.GetManyNs, r.GetsNs, r.MGetNs = series[0].medianNsPerOp(), series[1].medianNsPerOp(), series[2].medianNsPerOp()
	r.SpeedUp, r.MGetRatio = r.GetsNs/r.GetManyNs, r.GetManyNs/r.MGetNs
	r.GetManyAllocs, r.MGetAllocs = series[0].allocsPerOp(), series[2].allocsPerOp()
	r.RemoteShare = float64(sm1.RemoteHits-sm0.RemoteHits) / float64(gm*batchSize)
	r.GetsShare = float64(se1.RemoteHits-se0.RemoteHits) / float64(gs*batchSize)
	getCalls := cm1.sub(cm0)
	r.TripsPerMany, r.GetCommands = float64(getCalls.Trips)/float64(gm), getCalls.text()
	r.SetManyNs, r.PipelineNs = series[3].medianNsPerOp(), series[4].medianNsPerOp()
	r.SetRatio = r.SetManyNs / r.PipelineNs
	setCalls := cw1.sub(cw0)
	r.TripsPerSet, r.SetCommands = float64(setCalls.Trips)/float64(sm), setCalls.text()

	fetcher, err := newCacheInstance(ctx, e, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	for i := range cfg.rounds {
		cfg.progress.update("batch: FetchMany, round %d/%d", i+1, cfg.rounds)
		f, err := runFetchMany(ctx, e, fetcher, "batch:fetch:"+strconv.Itoa(i)+":")
		if err != nil {
			return nil, err
		}
		r.Fetch = append(r.Fetch, f)
	}
	cfg.progress.done()
	return r, nil
}

func (r *batchResult) name() string { return "batch" }
func (r *batchResult) title() string {
	return fmt.Sprintf("batch: GetMany, SetMany and FetchMany of %d keys vs plain go-redis MGET and pipeline", batchSize)
}

// spread formats the median of v, and its range when the rounds differ.
func spread(v []float64, format func(float64) string) string {
	lo, hi := slices.Min(v), slices.Max(v)
	m := median(slices.Clone(v))
	if lo == hi {
		return format(m)
	}
	return fmt.Sprintf("%s (%s–%s)", format(m), format(lo), format(hi))
}

func (r *batchResult) rows() []row {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	var trips, loads, asked, elapsed []float64
	wrong, stored, want := 0, 0, 0
	for _, f := range r.Fetch {
		trips, loads = append(trips, float64(f.Trips)), append(loads, float64(f.Loads))
		asked, elapsed = append(asked, float64(f.Asked)), append(elapsed, float64(f.Elapsed))
		wrong, stored, want = wrong+f.Wrong, stored+f.Stored, want+batchSize/2
	}
	rounds := len(r.Fetch)
	us := func(v float64) string { return dur(time.Duration(v)) }
	return []row{
		section(fmt.Sprintf("GetMany of %d cold keys (LocalSize 1, %d groups in turn):", batchSize, batchGroups)),
		{Measure: "  time vs 100 sequential Gets", Tiered: us(r.GetManyNs), Baseline: us(r.GetsNs),
			Ratio: ratio(r.GetManyNs / r.GetsNs), serverWork: true},
		{Measure: "  throughput vs 100 sequential Gets", Tiered: ratio(r.SpeedUp),
			Target: ">= 20x", OK: r.SpeedUp >= 20, RedisBound: true, serverWork: true},
		{Measure: "  time vs one plain MGET", Tiered: us(r.GetManyNs), Baseline: us(r.MGetNs),
			Ratio: ratio(r.MGetRatio), Target: "<= 1.5x", OK: r.MGetRatio <= 1.5, RedisBound: true,
			serverWork: true},
		{Measure: "  keys answered by Redis (vs the Gets)", Tiered: pct(r.RemoteShare), Baseline: pct(r.GetsShare)},
		{Measure: "  round trips per call (vs MGET)", Tiered: fmt.Sprintf("%.3f", r.TripsPerMany), Baseline: "1"},
		{Measure: "  allocs per call (vs MGET)", Tiered: allocs(r.GetManyAllocs), Baseline: allocs(r.MGetAllocs),
			serverWork: true},
		section(fmt.Sprintf("SetMany of %d keys (TTL %v) vs a pipeline of %d SET … PX and a PUBLISH:", batchSize, keyTTL, batchSize)),
		{Measure: "  time per call", Tiered: us(r.SetManyNs), Baseline: us(r.PipelineNs),
			Ratio: ratio(r.SetRatio), Target: "<= 1.5x", OK: r.SetRatio <= 1.5, RedisBound: true, serverWork: true},
		{Measure: "  round trips per call", Tiered: fmt.Sprintf("%.3f", r.TripsPerSet), Baseline: "1"},
		section(fmt.Sprintf("FetchMany of %d fresh keys, %d in Redis and %d loaded, %d rounds:", batchSize, batchSize/2, batchSize/2, rounds)),
		{Measure: "  Redis round trips (median, range)", Tiered: spread(trips, num), Target: "<= 3", OK: slices.Max(trips) <= 3},
		{Measure: "  loader calls (median, range)", Tiered: spread(loads, num),
			Target: "1", OK: slices.Min(loads) == 1 && slices.Max(loads) == 1},
		{Measure: "  keys given to the loader", Tiered: spread(asked, num), Baseline: strconv.Itoa(batchSize / 2)},
		{Measure: "  values wrong or missing", Tiered: fmt.Sprintf("%d of %d", wrong, rounds*batchSize), Target: "0", OK: wrong == 0},
		{Measure: "  loaded values stored in Redis", Tiered: fmt.Sprintf("%d of %d", stored, want)},
		{Measure: "  time per call (median)", Tiered: us(median(elapsed)), serverWork: true},
	}
}
func (r *batchResult) notes() []string {
	notes := []string{
		fmt.Sprintf("medians of %d rounds; throughput is 100 sequential Gets' time over GetMany's; "+
			"FetchMany's targets hold in every round", len(r.Series[0].Samples)),
		"GetMany sent " + r.GetCommands + "; SetMany sent " + r.SetCommands +
			" (the writer's own subscription is the only one on its channel; the pipeline publishes " +
			"a message of the same size to a channel no one reads)",
	}
	if len(r.Fetch) > 0 {
		notes = append(notes, "FetchMany's first round sent "+r.Fetch[0].Commands)
	}
	return notes
}
