package main

import (
	"context"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The report's timed rows as Go benchmarks, each beside its baseline, for
// benchstat:
//
//	go test -run '^$' -bench . -count 10 ./bench | tee new.txt
//	REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench . -count 10 ./bench
//
// One op of the batch benchmarks is one call on 100 keys (or 100 Gets).

// benchEnv returns an env on the server at REDIS_ADDR, or an embedded one,
// closed when b ends.
func benchEnv(b *testing.B) *env {
	e, err := openEnv(context.Background(), os.Getenv(redistest.EnvAddr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := e.close(); err != nil {
			b.Error(err)
		}
	})
	return e
}

// loop times op over items in turn, b.N times, from one goroutine.
func loop[T any](b *testing.B, items []T, f func(T) error) {
	op := cycle(items, f)(0)
	b.ReportAllocs()
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
}

// loopParallel is loop from GOMAXPROCS goroutines.
func loopParallel[T any](b *testing.B, items []T, f func(T) error) {
	var w atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		op := cycle(items, f)(int(w.Add(1)))
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func warmKeys(b *testing.B) ([]string, *tiered.Cache[string]) {
	ks := keys("hot", 1000)
	e := benchEnv(b)
	c, err := warmCache(context.Background(), e, e.ns("b"), ks)
	if err != nil {
		b.Fatal(err)
	}
	return ks, c
}

func BenchmarkLocalHit(b *testing.B) {
	ks, c := warmKeys(b)
	loop(b, ks, getter(context.Background(), c))
}

func BenchmarkLocalHitParallel(b *testing.B) {
	ks, c := warmKeys(b)
	loopParallel(b, ks, getter(context.Background(), c))
}

// BenchmarkSimpleLRUMutex is the bare LRU, the baseline of a local hit
// (internal/local's benchmarks are read against it too).
func BenchmarkSimpleLRUMutex(b *testing.B) {
	ks := keys("hot", 1000)
	loop(b, ks, newMutexLRU(len(ks), ks).read)
}

func BenchmarkSimpleLRUMutexParallel(b *testing.B) {
	ks := keys("hot", 1000)
	loopParallel(b, ks, newMutexLRU(len(ks), ks).read)
}

// stored returns an env whose namespace ns holds 1,000 keys.
func stored(b *testing.B) (*env, string, []string) {
	e := benchEnv(b)
	ns, ks := e.ns("b"), keys("cold", 1000)
	if err := e.populate(context.Background(), ns, ks, value); err != nil {
		b.Fatal(err)
	}
	return e, ns, ks
}

func BenchmarkRemoteHit(b *testing.B) {
	ctx := context.Background()
	e, ns, ks := stored(b)
	c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{LocalSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	loop(b, ks, getter(ctx, c))
}

func BenchmarkPlainGET(b *testing.B) {
	ctx := context.Background()
	e, ns, ks := stored(b)
	c := e.client(nil)
	loop(b, ks, func(k string) error { return c.Get(ctx, ns+":"+k).Err() })
}

func BenchmarkSet(b *testing.B) {
	ctx := context.Background()
	e := benchEnv(b)
	c, err := newCache(ctx, e, e.ns("b"), tiered.HubOptions{}, tiered.Options[string]{})
	if err != nil {
		b.Fatal(err)
	}
	loop(b, keys("w", 1000), func(k string) error { return c.Set(ctx, k, value(0)) })
}

func BenchmarkPlainSET(b *testing.B) {
	ctx := context.Background()
	e := benchEnv(b)
	c, ns := e.client(nil), e.ns("b")
	loop(b, keys("w", 1000), func(k string) error { return c.Set(ctx, ns+":"+k, value(0), keyTTL).Err() })
}

// cold returns an env whose namespace ns holds the batch keys, and a cache
// of it whose local tier never holds them.
func cold(b *testing.B) (*env, string, [][]string, *tiered.Cache[string]) {
	ctx := context.Background()
	e := benchEnv(b)
	ns, groups := e.ns("b"), batchKeys("cold")
	if err := e.populate(ctx, ns, slices.Concat(groups...), value); err != nil {
		b.Fatal(err)
	}
	c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{LocalSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	return e, ns, groups, c
}

func BenchmarkGetMany100(b *testing.B) {
	_, _, groups, c := cold(b)
	loop(b, groups, getManyOp(context.Background(), c))
}

func BenchmarkMGet100(b *testing.B) {
	e, ns, groups, _ := cold(b)
	loop(b, indexes(len(groups)), mGetOp(context.Background(), e.client(nil), ns, groups))
}

func BenchmarkSetMany100(b *testing.B) {
	_, _, groups, c := cold(b)
	loop(b, indexes(len(groups)), setManyOp(context.Background(), c, groups))
}

func BenchmarkPipelineSet100(b *testing.B) {
	e, ns, groups, _ := cold(b)
	loop(b, indexes(len(groups)), pipelineOp(context.Background(), e.client(nil), ns, groups))
}

func warmGroup(b *testing.B) ([][]string, *tiered.Cache[string]) {
	e := benchEnv(b)
	hot := batchKeys("hot")[:1]
	c, err := warmCache(context.Background(), e, e.ns("b"), hot[0])
	if err != nil {
		b.Fatal(err)
	}
	return hot, c
}

func BenchmarkGetMany100Warm(b *testing.B) {
	hot, c := warmGroup(b)
	loop(b, hot, getManyOp(context.Background(), c))
}

func BenchmarkGets100Warm(b *testing.B) {
	hot, c := warmGroup(b)
	loop(b, hot, getsOp(context.Background(), c))
}

// BenchmarkZipf reads keys drawn with Zipf s=1.01 through a cache and
// through the bare LRU (a plain GET on a miss), after filling each, and
// reports the share of reads answered locally.
func BenchmarkZipf(b *testing.B) {
	ctx := context.Background()
	cfg := defaultConfig()
	e := benchEnv(b)
	ns, ks := e.ns("b"), keys("z", cfg.zipfKeys)
	if err := e.populate(ctx, ns, ks, value); err != nil {
		b.Fatal(err)
	}
	c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{LocalSize: cfg.zipfSize})
	if err != nil {
		b.Fatal(err)
	}
	j := zipfJob(ks, 1, getter(ctx, c))
	if err := fill(ctx, j, func() bool { return c.Stats().LocalEntries >= cfg.zipfSize*9/10 }); err != nil {
		b.Fatal(err)
	}
	s0 := c.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	var w atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		op := j.op(int(w.Add(1)-1) % j.workers)
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	s1 := c.Stats()
	local := s1.LocalHits - s0.LocalHits
	b.ReportMetric(float64(local)/float64(max(1, local+s1.RemoteHits-s0.RemoteHits)), "hit-ratio")
}
