package tiered_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The figures of Tracking mode (HubOptions.Tracking) beside the default
// messages, on a redis-server of the benchmark's own. Redis's CPU per write
// and the invalidation lag in both modes are BenchmarkFanout's
// (node/mode=messages and node/mode=tracking).

// trackingModes are the writers compared, each with 2 other instances
// subscribed to the namespace: mode=SET is a plain go-redis SET … PX among
// instances with the defaults (which do not hear it); mode=SET-tracked the
// same SET among instances with Tracking (which Redis tells of it: a
// writer's Hub with Tracking, idle, and 2 others), the baseline of Tracking
// mode, where another program's SET costs that; mode=messages a Set with
// the defaults (the write script: SET, INCR, XADD to the log, PUBLISH);
// mode=tracking a Set in Tracking mode (every Hub with Tracking, the
// writer's with TrackingOnly: a plain SET … PX, and Redis tells the
// others).
var trackingModes = []struct {
	name           string
	plain          bool
	writer, reader tiered.HubOptions
}{
	{name: "SET", plain: true},
	{name: "SET-tracked", plain: true, writer: tiered.HubOptions{Tracking: true}, reader: tiered.HubOptions{Tracking: true}},
	{name: "messages"},
	{name: "tracking", writer: tiered.HubOptions{Tracking: true, TrackingOnly: true}, reader: tiered.HubOptions{Tracking: true}},
}

// trackingCache returns a cache of namespace ns on a Hub of its own, made
// with hopts, over a client of its own, once it is subscribed.
func trackingCache(b *testing.B, addr, ns, name string, hopts tiered.HubOptions) *tiered.Cache[string] {
	b.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, ClientName: ns + "-" + name})
	b.Cleanup(func() { _ = client.Close() })
	h, err := tiered.NewHub(client, hopts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: ns, TTL: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// trackingValue is a 64-byte value, as the bench's.
func trackingValue(i int) string {
	s := fmt.Sprintf("value-%d-", i)
	for len(s) < 64 {
		s += "x"
	}
	return s
}

// BenchmarkTrackingSet times one write of 1,000 keys in turn, 64-byte
// values with a 10-minute TTL, in each of trackingModes: the writer's
// instance and 2 others, each with a client and a Hub of its own, all in
// this process (so the time of a write includes, on the 2 cores, the
// instances' handling of what Redis sends them). The target of issue 21 is
// mode=tracking ≤ 1.15× mode=SET-tracked.
//
// Run: go test -run '^$' -bench TrackingSet -count 10 ./tiered/ | tee out; benchstat -col /mode out
func BenchmarkTrackingSet(b *testing.B) {
	s := redistest.NewReal(b)
	keys := make([]string, 1000)
	vals := make([]string, len(keys))
	for i := range keys {
		keys[i], vals[i] = "w"+strconv.Itoa(i), trackingValue(i)
	}
	for _, mode := range trackingModes {
		b.Run("mode="+mode.name, func(b *testing.B) {
			ns := fmt.Sprintf("tset-%s-%d", mode.name, time.Now().UnixNano())
			plain := redis.NewClient(&redis.Options{Addr: s.Addr})
			b.Cleanup(func() { _ = plain.Close() })
			w := trackingCache(b, s.Addr, ns, "writer", mode.writer)
			for i := range 2 {
				trackingCache(b, s.Addr, ns, "other"+strconv.Itoa(i), mode.reader)
			}
			set := func(ctx context.Context, i int) error { return w.Set(ctx, keys[i], vals[i]) }
			if mode.plain {
				set = func(ctx context.Context, i int) error {
					return plain.Set(ctx, ns+":"+keys[i], vals[i], 10*time.Minute).Err()
				}
			}
			ctx := context.Background()
			for i := range keys { // warm: the script loaded, the pools filled
				if err := set(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := set(ctx, i); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkWriterBesideReaders is one writer beside readers that spin:
// the writer Sets 100 keys in turn on its cache (each op is one write)
// while 2 goroutines read the same keys as fast as they can, each on a
// cache of another Hub (as other processes would, but in this one: they
// compete with the writer for the 2 cores). Modes as BenchmarkTrackingSet's
// but mode=SET, whose readers, never invalidated, would spin on local hits
// alone. Metrics: writes/s, the readers' reads/s, and the share of their
// reads answered locally.
//
// Run: go test -run '^$' -bench WriterBesideReaders -count 10 ./tiered/ | tee out; benchstat -col /mode out
func BenchmarkWriterBesideReaders(b *testing.B) {
	s := redistest.NewReal(b)
	const n, readers = 100, 2
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "r" + strconv.Itoa(i)
	}
	for _, mode := range trackingModes[1:] { // mode=SET: readers that never hear the writer spin on local hits alone
		b.Run("mode="+mode.name, func(b *testing.B) {
			ns := fmt.Sprintf("tspin-%s-%d", mode.name, time.Now().UnixNano())
			ctx := context.Background()
			w := trackingCache(b, s.Addr, ns, "writer", mode.writer)
			set := func(i int) error { return w.Set(ctx, keys[i], trackingValue(i)) }
			if mode.plain {
				plain := redis.NewClient(&redis.Options{Addr: s.Addr})
				b.Cleanup(func() { _ = plain.Close() })
				set = func(i int) error { return plain.Set(ctx, ns+":"+keys[i], trackingValue(i), 10*time.Minute).Err() }
			}
			rs := make([]*tiered.Cache[string], readers)
			for r := range rs {
				rs[r] = trackingCache(b, s.Addr, ns, "reader"+strconv.Itoa(r), mode.reader)
			}
			for i := range keys {
				if err := set(i); err != nil {
					b.Fatal(err)
				}
			}
			var stop atomic.Bool
			var reads atomic.Uint64
			var wg sync.WaitGroup
			before := make([]tiered.Stats, readers)
			for r, c := range rs {
				before[r] = c.Stats()
				wg.Go(func() {
					var k uint64
					for i := 0; !stop.Load(); i = (i + 1) % n {
						if _, err := c.Get(ctx, keys[i]); err != nil {
							b.Error(err)
							return
						}
						k++
					}
					reads.Add(k)
				})
			}
			start := time.Now()
			writes := 0
			for b.Loop() {
				if err := set(writes % n); err != nil {
					b.Fatal(err)
				}
				writes++
			}
			elapsed := time.Since(start)
			stop.Store(true)
			wg.Wait()
			var local uint64
			for r, c := range rs {
				local += c.Stats().LocalHits - before[r].LocalHits
			}
			b.ReportMetric(float64(writes)/elapsed.Seconds(), "writes/s")
			b.ReportMetric(float64(reads.Load())/elapsed.Seconds(), "reads/s")
			b.ReportMetric(float64(local)/float64(max(reads.Load(), 1)), "local-hit-ratio")
		})
	}
}
