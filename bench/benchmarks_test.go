package main

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// The report's measurements as Go benchmarks:
//
//	go test -run '^$' -bench . ./bench
//
// One op of the batch benchmarks is one call on 100 keys (or 100 Gets), so
// that `go test -bench '100' -count 10 ./bench | tee new.txt; benchstat
// new.txt` sets GetMany beside 100 Gets and MGET, and SetMany beside the
// pipeline.

func BenchmarkLocalHit(b *testing.B) {
	ctx := context.Background()
	ks := keys("hot:", 1000)
	in := must[*instance[string]](b)(warmInstance(ctx, newEnv(b), ks))
	loop(b, ks, getter(ctx, in.Cache))
}

func BenchmarkLocalHitParallel(b *testing.B) {
	ctx := context.Background()
	ks := keys("hot:", 1000)
	in := must[*instance[string]](b)(warmInstance(ctx, newEnv(b), ks))
	loopParallel(b, ks, getter(ctx, in.Cache))
}

// BenchmarkSimpleLRUMutex is the floor of a local hit (see mutexLRU), for
// BenchmarkLocalHit here and internal/local's BenchmarkGetHit alike.
func BenchmarkSimpleLRUMutex(b *testing.B) {
	ks := keys("hot:", 1000)
	loop(b, ks, newMutexLRU(ks).read)
}

func BenchmarkSimpleLRUMutexParallel(b *testing.B) {
	ks := keys("hot:", 1000)
	loopParallel(b, ks, newMutexLRU(ks).read)
}

// BenchmarkHubLocalHit is BenchmarkLocalHit on a cache made with NewCache on
// a Hub, MaxStaleness at its default and off; unproven/op counts the reads
// the Hub sent to Redis because it could not prove its local tier fresh.
func BenchmarkHubLocalHit(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	ks := keys("hot:", 1000)
	for _, bc := range []struct {
		name string
		ms   time.Duration
	}{{"MaxStaleness=default", 0}, {"MaxStaleness=off", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			in := must[*instance[string]](b)(newHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: bc.ms}, nil, tiered.Options[string]{}))
			defer in.close()
			if err := fill(ctx, in.Cache, ks); err != nil {
				b.Fatal(err)
			}
			u0 := in.Stats().Unproven
			n, get := 0, getter(ctx, in.Cache)
			loop(b, ks, func(k string) error { n++; return get(k) })
			b.ReportMetric(float64(in.Stats().Unproven-u0)/float64(max(n, 1)), "unproven/op")
		})
	}
}

func BenchmarkRemoteHit(b *testing.B) {
	ctx := context.Background()
	ks := keys("cold:", 1000)
	in := must[*instance[string]](b)(coldInstance(ctx, newEnv(b), ks))
	loop(b, ks, getter(ctx, in.Cache))
}

func BenchmarkPlainGET(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	ks := keys("cold:", 1000)
	if err := e.populate(ctx, ks, value); err != nil {
		b.Fatal(err)
	}
	c := e.newClient(nil)
	loop(b, ks, func(k string) error { return c.Get(ctx, e.key(k)).Err() })
}

func BenchmarkSet(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	ins := must[[]*instance[string]](b)(newCacheInstances(ctx, e, defaultConfig().instances, tiered.Options[string]{}))
	w := ins[0]
	ks := keys("w:", 1000)
	c0 := w.calls.snapshot()
	n := 0
	loop(b, indexes(len(ks)), func(i int) error { n++; return w.Set(ctx, ks[i], value(i)) })
	b.ReportMetric(float64(w.calls.snapshot().sub(c0).Trips)/float64(n), "round-trips/op")
}

func BenchmarkPlainSET(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	c := e.newClient(nil)
	ks := keys("w:", 1000)
	loop(b, indexes(len(ks)), func(i int) error { return c.Set(ctx, e.key(ks[i]), value(i), keyTTL).Err() })
}

// benchColdReads runs the read op that newOp makes on an instance with a
// LocalSize of 1 over 10 groups of 100 keys stored in Redis, and reports
// its round trips and the share of keys Redis answered.
func benchColdReads(b *testing.B, newOp func(context.Context, *instance[string], [][]string) func(int) error) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(batchKeys(ctx, e, "batch:cold:", true))
	in := must[*instance[string]](b)(newCacheInstance(ctx, e, tiered.Options[string]{LocalSize: 1}))
	op := newOp(ctx, in, groups)
	s0, c0 := in.Stats(), in.calls.snapshot()
	n := 0
	loop(b, indexes(len(groups)), func(g int) error { n++; return op(g) })
	s1, c1 := in.Stats(), in.calls.snapshot()
	b.ReportMetric(float64(c1.sub(c0).Trips)/float64(n), "round-trips/op")
	b.ReportMetric(float64(s1.RemoteHits-s0.RemoteHits)/float64(n*batchSize), "redis-share")
}

func BenchmarkGetMany100Cold(b *testing.B) { benchColdReads(b, getManyOp) }

func BenchmarkSequentialGets100Cold(b *testing.B) { benchColdReads(b, getsOp) }

func BenchmarkMGet100(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(batchKeys(ctx, e, "batch:cold:", true))
	loop(b, indexes(len(groups)), mGetOp(ctx, e, e.newClient(nil), groups))
}

func BenchmarkSetMany100(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(batchKeys(ctx, e, "batch:w:", false))
	w := must[*instance[string]](b)(newCacheInstance(ctx, e, tiered.Options[string]{}))
	op := setManyOp(ctx, w, groups)
	c0 := w.calls.snapshot()
	n := 0
	loop(b, indexes(len(groups)), func(g int) error { n++; return op(g) })
	b.ReportMetric(float64(w.calls.snapshot().sub(c0).Trips)/float64(n), "round-trips/op")
}

func BenchmarkPipelineSet100(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(batchKeys(ctx, e, "batch:w:", false))
	loop(b, indexes(len(groups)), pipelineSetOp(ctx, e, e.newClient(nil), groups))
}

// BenchmarkZipf reads 100,000 keys drawn with Zipf s=1.01 through one
// instance with a LocalSize of 10,000, from GOMAXPROCS goroutines, after a
// warm-up, and reports the local hit ratio.
func BenchmarkZipf(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	cfg := defaultConfig()
	in := must[*instance[string]](b)(newCacheInstance(ctx, e, tiered.Options[string]{LocalSize: cfg.zipfLocalSize}))
	ks := must[[]string](b)(zipfKeys(ctx, e, cfg.zipfKeys))
	if err := zipfOp(ctx, in, ks, 0)(5 * cfg.zipfLocalSize); err != nil {
		b.Fatal(err)
	}
	b.Run("s=1.01", func(b *testing.B) {
		s0 := in.Stats()
		var worker atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			op := zipfOp(ctx, in, ks, worker.Add(1))
			for pb.Next() {
				if err := op(1); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		s1 := in.Stats()
		local := s1.LocalHits - s0.LocalHits
		all := local + s1.RemoteHits - s0.RemoteHits + s1.Misses - s0.Misses
		b.ReportMetric(float64(local)/float64(max(all, 1)), "hit-ratio")
	})
}

// benchTrials runs trial once per op and reports what the trials saw, as
// the report's latencies summarize them.
func benchTrials(b *testing.B, trial func(i int) (trialResult, error)) {
	var lats latencies
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr, err := trial(i)
		if err != nil {
			b.Fatal(err)
		}
		lats.add(tr)
	}
	lats.finish()
	b.ReportMetric(float64(lats.P50), "p50-ns")
	b.ReportMetric(float64(lats.P99), "p99-ns")
	b.ReportMetric(float64(lats.Max), "max-ns")
	b.ReportMetric(float64(lats.NeverSeen), "never-seen")
	b.ReportMetric(float64(lats.StaleFor), "stale-for-max-ns")
}

// BenchmarkInvalidation times, per op, A's Set of a key that B holds until
// B's polling Get returns the new value.
func BenchmarkInvalidation(b *testing.B) {
	ctx := context.Background()
	ins := must[[]*instance[string]](b)(newCacheInstances(ctx, newEnv(b), 2, tiered.Options[string]{}))
	p := must[*invalidationProbe](b)(newInvalidationProbe(ctx, ins[0], ins[1], "inv:key", time.Second))
	benchTrials(b, func(int) (trialResult, error) { return p.trial(ctx) })
}

// BenchmarkInvalidationNanosleep is BenchmarkInvalidation with B polled
// between raw nanosleeps of 75µs, MaxStaleness 5ms and off.
func BenchmarkInvalidationNanosleep(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	for _, bc := range []struct {
		name string
		ms   time.Duration
	}{{"MaxStaleness=5ms", 5 * time.Millisecond}, {"MaxStaleness=off", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			ins := must[[]*instance[string]](b)(newHubInstances(ctx, e, 2, tiered.HubOptions{MaxStaleness: bc.ms}, tiered.Options[string]{}))
			defer func() {
				for _, in := range ins {
					_ = in.close()
				}
			}()
			p := must[*invalidationProbe](b)(newInvalidationProbe(ctx, ins[0], ins[1], "sleepy:"+bc.name, time.Second))
			p.pause = defaultConfig().pollPause
			benchTrials(b, func(int) (trialResult, error) { return p.trial(ctx) })
		})
	}
}

// BenchmarkFrozenSubscription times, per op, how long B (a new instance per
// op, MaxStaleness 5ms, HealthCheck 10s) keeps returning an old value once
// its pub/sub connection is frozen and A writes a new one.
func BenchmarkFrozenSubscription(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	cfg := defaultConfig()
	px := must[*proxy](b)(newProxy(e.opts.Network, e.opts.Addr))
	if err := e.track(px.close); err != nil {
		b.Fatal(err)
	}
	a := must[*instance[string]](b)(newHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: cfg.maxStaleness}, nil, tiered.Options[string]{}))
	benchTrials(b, func(i int) (trialResult, error) {
		return frozenTrial(ctx, e, cfg, a, px, cfg.maxStaleness, "frozen:"+strconv.Itoa(i))
	})
}
