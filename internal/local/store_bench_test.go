package local

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// The benchmarks of the paths that move entries between segments or add
// and remove them: stores of new keys (admission, eviction), updates of
// present keys, and hits that move an entry from probation to protected.

// churnKeys are more keys than a default Cache holds, stored in turn.
var churnKeys = func() []string {
	ks := make([]string, 1<<16)
	for i := range ks {
		ks[i] = fmt.Sprintf("churn:%08d", i)
	}
	return ks
}()

// BenchmarkSetNew stores keys the Cache does not hold into a full Cache:
// every store admits or rejects, and evicts.
func BenchmarkSetNew(b *testing.B) {
	for _, p := range []Policy{TinyLFU, LRU} {
		b.Run(p.String(), func(b *testing.B) {
			c, err := New[string, int](Options[int]{Policy: p})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			mask := len(churnKeys) - 1
			for i := range DefaultSize {
				c.Set(churnKeys[i&mask], i, time.Hour)
			}
			b.ReportAllocs()
			i := DefaultSize
			for b.Loop() {
				c.Set(churnKeys[i&mask], i, time.Hour)
				i++
			}
		})
	}
}

// BenchmarkSetUpdate stores new values under keys the Cache holds.
func BenchmarkSetUpdate(b *testing.B) {
	c := newBenchCache(b)
	mask := len(benchKeys) - 1
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Set(benchKeys[i&mask], i, time.Hour)
		i++
	}
}

// BenchmarkGetPromote reads, in turn, more keys than protected holds, all
// of them held: nearly every hit moves its entry from probation to
// protected, and protected's oldest back to probation.
func BenchmarkGetPromote(b *testing.B) {
	c, err := New[string, int](Options[int]{Size: 1000, Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	keys := benchKeys[:980] // within the shard: window 10, probation and protected 990
	for i, k := range keys {
		c.Set(k, i, time.Hour)
	}
	for range 2 { // every key out of the window, into probation or protected
		for _, k := range keys {
			c.Get(k)
		}
	}
	s := &c.shards[0]
	moves := s.seq.Load()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(keys[i%len(keys)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
	if moved := s.seq.Load() - moves; moved < uint64(i)*9/10 {
		b.Fatalf("%d of %d hits moved their entry, want nearly all", moved, i)
	}
}

// BenchmarkMemoryPerEntry reports the heap a full Cache takes per entry
// (B/entry), keys and values aside: DefaultSize keys stored in one shard
// that holds them all, then each read once, so that entries are spread over
// the segments as they are in use.
func BenchmarkMemoryPerEntry(b *testing.B) {
	for _, p := range []Policy{TinyLFU, LRU} {
		b.Run(p.String(), func(b *testing.B) {
			cfg, err := Options[int]{Shards: 1, Policy: p}.resolve()
			if err != nil {
				b.Fatal(err)
			}
			keys := churnKeys[:DefaultSize]
			var per float64
			runs := 0
			for b.Loop() {
				before := heapInUse()
				c := newCache[string](cfg, manualClock())
				for i, k := range keys {
					c.Set(k, i, time.Hour)
				}
				for _, k := range keys {
					c.Get(k)
				}
				if n := c.Len(); n != len(keys) {
					b.Fatalf("Len = %d, want %d", n, len(keys))
				}
				per += float64(heapInUse()-before) / float64(len(keys))
				runs++
				runtime.KeepAlive(c)
			}
			b.ReportMetric(per/float64(runs), "B/entry")
		})
	}
}

// heapInUse returns the bytes of live heap objects, after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
