package tiercacheotel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	tiercacheotel "github.com/tiercache/tiercache/otel"
	"github.com/tiercache/tiercache/tiered"
)

var (
	localHit  = tiered.Event{Kind: tiered.EventLocalHit, Namespace: "users", Op: "Get", Keys: 1}
	localMiss = tiered.Event{Kind: tiered.EventLocalMiss, Namespace: "users", Op: "Get", Keys: 1}
	redisCall = tiered.Event{Kind: tiered.EventRedis, Namespace: "users", Op: "get", Keys: 1, Duration: 150 * time.Microsecond}
)

// The local-hit path of the Observer allocates nothing, and neither does
// any other event once its attribute set exists.
func TestObserveAllocatesNothing(t *testing.T) {
	obs, _ := newObserver(t, tiercacheotel.Options{})
	timeout := fmt.Errorf("x: %w", context.DeadlineExceeded)
	for _, e := range []tiered.Event{
		localHit,
		localMiss,
		redisCall,
		{Kind: tiered.EventRedis, Namespace: "users", Op: "get", Keys: 1, Duration: time.Millisecond, Err: timeout},
		{Kind: tiered.EventLoad, Namespace: "users", Op: "Fetch", Keys: 1, Duration: time.Millisecond},
		{Kind: tiered.EventBatch, Namespace: "users", Op: "GetMany", Keys: 10},
		{Kind: tiered.EventInvalidation, Namespace: "users", Keys: 1, Duration: time.Millisecond},
		{Kind: tiered.EventSubscription, Namespace: "users", State: tiered.StateSubscribed},
		{Kind: tiered.EventBypass, Namespace: "users", Op: "unproven", Keys: 1},
		{Kind: tiered.EventRead, Namespace: "users", Op: "Get", Keys: 1, Result: tiered.ResultRemote},
		{Kind: tiered.EventStale, Namespace: "users", Op: "get", Keys: 1, Duration: time.Second, Err: timeout},
	} {
		obs.Observe(e) // the first builds the attribute set
		if n := testing.AllocsPerRun(1000, func() { obs.Observe(e) }); n != 0 {
			t.Errorf("Observe(%v) allocates %v times", e.Kind, n)
		}
	}
}

// BenchmarkObserveLocalHit is the cost the Observer adds to a local hit:
// on one goroutine, and on every core at once.
func BenchmarkObserveLocalHit(b *testing.B) { benchObserve(b, localHit) }

// BenchmarkObserveRedis is the cost of recording one Redis call into the
// SDK's histogram.
func BenchmarkObserveRedis(b *testing.B) { benchObserve(b, redisCall) }

// benchObserve times Observe(e) on one goroutine and on every core at once.
func benchObserve(b *testing.B, e tiered.Event) {
	b.Run("serial", func(b *testing.B) {
		obs, _ := newObserver(b, tiercacheotel.Options{})
		obs.Observe(e)
		b.ReportAllocs()
		for b.Loop() {
			obs.Observe(e)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		obs, _ := newObserver(b, tiercacheotel.Options{})
		obs.Observe(e)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				obs.Observe(e)
			}
		})
	})
}

// BenchmarkCacheLocalHit is a whole local hit of a cache (Get), without an
// Observer and with this one.
func BenchmarkCacheLocalHit(b *testing.B) {
	for _, withObs := range []bool{false, true} {
		name := "none"
		if withObs {
			name = "otel"
		}
		b.Run(name, func(b *testing.B) {
			s := redistest.New(b)
			var obs tiered.Observer
			if withObs {
				obs, _ = newObserver(b, tiercacheotel.Options{})
			}
			h, err := tiered.NewHub(s.Client, tiered.HubOptions{Observer: obs, MaxStaleness: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: s.Namespace})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.WaitReady(bg); err != nil {
				b.Fatal(err)
			}
			if err := c.Set(bg, "k", "v"); err != nil {
				b.Fatal(err)
			}
			before := c.Stats().LocalHits
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = c.Get(bg, "k")
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(c.Stats().LocalHits-before)/float64(b.N), "local/op")
		})
	}
}
