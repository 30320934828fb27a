package local

import (
	"fmt"
	"math/rand/v2"
	"sync"
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
	c, err := New[string, int](Options{})
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

// BenchmarkZipfMix reads and fills Zipf-distributed keys from a key space
// ten times the cache, in parallel, and reports the hit ratio.
func BenchmarkZipfMix(b *testing.B) {
	const space = 10 * DefaultSize
	keys := make([]string, space)
	for i := range keys {
		keys[i] = fmt.Sprintf("item:%08d", i)
	}
	c, err := New[string, int](Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var seed sync.Mutex
	next := uint64(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		seed.Lock()
		next++
		z := rand.NewZipf(rand.New(rand.NewPCG(next, 0)), 1.1, 1, space-1)
		seed.Unlock()
		for pb.Next() {
			k := keys[z.Uint64()]
			if _, ok := c.Get(k); !ok {
				c.SetIf(k, 1, time.Minute, c.Token(k))
			}
		}
	})
	st := c.Stats()
	if total := st.Hits + st.Misses; total > 0 {
		b.ReportMetric(float64(st.Hits)/float64(total), "hit-ratio")
	}
}
