package local

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// The floor these benchmarks are read against, a bare simplelru.LRU behind
// one sync.Mutex, is measured once, in bench (its mutexLRU, the baseline of
// the report's local hits):
//
//	go test -run '^$' -bench 'GetHit|SimpleLRUMutex' ./internal/local ./bench

// benchKeys is the key set of the hit benchmarks: all of them fit.
var benchKeys = func() []string {
	ks := make([]string, 1024)
	for i := range ks {
		ks[i] = fmt.Sprintf("user:%08d", i)
	}
	return ks
}()

func newBenchCache(b *testing.B) *Cache[string, int] {
	c, err := New[string, int](Options[int]{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	for i, k := range benchKeys {
		c.Set(k, i, time.Hour)
	}
	return c
}

func BenchmarkGetHit(b *testing.B) {
	c := newBenchCache(b)
	mask := len(benchKeys) - 1
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(benchKeys[i&mask]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c := newBenchCache(b)
	mask := len(benchKeys) - 1
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(benchKeys))
		for pb.Next() {
			if _, ok := c.Get(benchKeys[i&mask]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkGetHotKeyParallel reads one key from every goroutine: hits on
// it must not write a cache line that every core reads.
func BenchmarkGetHotKeyParallel(b *testing.B) {
	c := newBenchCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get(benchKeys[0]); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// BenchmarkHitRatio fills a Cache of ratioSize entries from each workload
// of the hit-ratio tests, the way tiered does, from 4 goroutines (each
// drawing its own fixed sequence), after a warm-up of a million reads, and
// reports the hit ratio of the timed reads.
func BenchmarkHitRatio(b *testing.B) {
	for _, w := range []struct {
		name string
		load func(seed uint64) func() uint64
	}{
		{"zipf", func(seed uint64) func() uint64 {
			return rand.NewZipf(rand.New(rand.NewPCG(seed, 2)), 1.01, 1, ratioKeys-1).Uint64
		}},
		{"scan", func(seed uint64) func() uint64 {
			z := rand.NewZipf(rand.New(rand.NewPCG(seed, 2)), 1.01, 1, ratioKeys-1)
			cold, i := seed<<40, 0
			return func() uint64 {
				if i++; i%2 == 0 {
					return z.Uint64()
				}
				cold++
				return cold
			}
		}},
	} {
		for _, p := range []Policy{TinyLFU, LRU} {
			b.Run(w.name+"/"+p.String(), func(b *testing.B) {
				c, err := New[uint64, int](Options[int]{Size: ratioSize, Policy: p})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				warm := w.load(0)
				for range 1_000_000 {
					fill(c, warm(), one)
				}
				var seed atomic.Uint64
				before := c.Stats()
				b.SetParallelism((4 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					next := w.load(seed.Add(1))
					for pb.Next() {
						fill(c, next(), one)
					}
				})
				b.StopTimer()
				after := c.Stats()
				hits, misses := after.Hits-before.Hits, after.Misses-before.Misses
				b.ReportMetric(float64(hits)/float64(max(hits+misses, 1)), "hit-ratio")
			})
		}
	}
}
