package tiered_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// A local hit with the freshness proof on (the default) allocates nothing
// either: the proof is a clock read and two atomic loads.
func TestFencedLocalHitAllocatesNothing(t *testing.T) {
	s := redistest.New(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	c := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace})
	if err := c.Set(bg, "k", "v"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a proven local hit", func() bool {
		before := c.Stats().LocalHits
		_, _ = c.Get(bg, "k")
		return c.Stats().LocalHits > before
	})
	// A loaded machine delays a proof now and then, and a read that finds
	// none rightly goes to Redis, which allocates: only a measurement in
	// which every read was a local hit counts.
	const runs = 1000
	for attempt := 1; ; attempt++ {
		before := c.Stats().LocalHits
		allocs := testing.AllocsPerRun(runs, func() {
			if v, err := c.Get(bg, "k"); err != nil || v != "v" {
				panic("not a hit")
			}
		})
		if hits := c.Stats().LocalHits - before; hits <= runs { // AllocsPerRun makes one more call
			if attempt == 20 {
				t.Fatalf("no run of %d reads in %d was all local hits: %+v", runs, attempt, c.Stats())
			}
			continue
		}
		if allocs != 0 {
			t.Fatalf("a fenced local hit allocates %v times", allocs)
		}
		return
	}
}

// BenchmarkLocalHit measures a local hit with the freshness proof on
// (MaxStaleness 10ms, the default) and off, with an Observer that does
// nothing (the cost of building and passing each Event), and on an entry
// filled by a loader with RefreshAhead (outside its window: a clock read).
func BenchmarkLocalHit(b *testing.B) {
	for _, bc := range []struct {
		name      string
		staleness int64
		obs       tiered.Observer
		refresh   float64
	}{
		{"fence", 0, nil, 0}, {"nofence", -1, nil, 0}, {"fence-observed", 0, nopObserver{}, 0},
		{"fence-fetched", 0, nil, 0}, {"fence-fetched-refresh", 0, nil, 0.2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := redistest.New(b)
			h, err := tiered.NewHub(s.Client, tiered.HubOptions{MaxStaleness: timeDuration(bc.staleness), Observer: bc.obs})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: s.Namespace, TTL: time.Hour, RefreshAhead: bc.refresh})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.WaitReady(bg); err != nil {
				b.Fatal(err)
			}
			if strings.Contains(bc.name, "fetched") {
				if _, err := c.Fetch(bg, "k", func(context.Context) (string, error) { return "v", nil }); err != nil {
					b.Fatal(err)
				}
			} else if err := c.Set(bg, "k", "v"); err != nil {
				b.Fatal(err)
			}
			for range 1000 {
				_, _ = c.Get(bg, "k")
			}
			before := c.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_, _ = c.Get(bg, "k")
			}
			b.StopTimer()
			st := c.Stats()
			b.ReportMetric(float64(st.LocalHits-before.LocalHits)/float64(b.N), "local/op")
		})
	}
}

func timeDuration(n int64) time.Duration { return time.Duration(n) }
