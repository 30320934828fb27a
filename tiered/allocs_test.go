package tiered_test

import (
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/allocs"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// callStacks selects the allocations a call of the cache makes itself, on
// its goroutine or on the one its Redis work was handed to: not those of
// the embedded server, of the subscriber's goroutines (which receive, among
// others, the invalidations the cache publishes itself) or of the clock.
var callStacks = allocs.Stacks{
	In: []string{
		"github.com/tiercache/tiercache/tiered.",
		"github.com/tiercache/tiercache/internal/remote.",
	},
	Out: []string{
		"github.com/tiercache/tiercache/internal/invalidate.(*Subscriber).run",
		"github.com/tiercache/tiercache/internal/invalidate.(*watchdog).",
	},
}

// The allocation budgets of the hot paths, with string values, the default
// Codec and default options.
const (
	remoteHitBudget = 12 // a Get that the local tier misses and Redis answers
	setBudget       = 15 // the write script's reply is the message's position in the log: one more
)

// perCall returns what f allocates per call, over runs calls, on
// callStacks, failing t if that is nothing at all (the count would then
// prove nothing).
func perCall(t *testing.T, runs int, f func()) float64 {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector")
	}
	n, err := allocs.PerRun(runs, callStacks, f)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no allocation counted: the stacks selected are not the call's")
	}
	return n
}

// A remote hit allocates at most remoteHitBudget times, whatever the ctx.
func TestRemoteHitAllocations(t *testing.T) {
	s := redistest.New(t)
	c := hotCache(t, s, tiered.HubOptions{}, tiered.Options[string]{TTL: time.Hour, LocalSize: 1})
	next := cycle(hotKeys(t, s, 100, true))
	for _, k := range ctxKinds(t) {
		before := c.Stats().RemoteHits
		n := perCall(t, 1000, func() {
			key := next()
			if v, err := c.Get(k.ctx, key); err != nil || v != "value-"+key {
				t.Fatalf("Get(%s) = %q, %v", key, v, err)
			}
		})
		if hits := c.Stats().RemoteHits - before; hits != 1001 {
			t.Fatalf("%s: %d remote hits in 1001 Gets: not what is measured", k.name, hits)
		}
		t.Logf("%s: %.2f allocations per remote hit", k.name, n)
		if n > remoteHitBudget {
			t.Errorf("%s: a remote hit allocates %.2f times, more than %d", k.name, n, remoteHitBudget)
		}
	}
}

// A Set allocates at most setBudget times, whatever the ctx.
func TestSetAllocations(t *testing.T) {
	s := redistest.New(t)
	c := hotCache(t, s, tiered.HubOptions{}, tiered.Options[string]{TTL: time.Hour})
	next := cycle(hotKeys(t, s, 100, false))
	for _, k := range ctxKinds(t) {
		// Fewer runs: the embedded server allocates much for each script
		// it runs, and every allocation is sampled while counting.
		n := perCall(t, 200, func() {
			if err := c.Set(k.ctx, next(), "value"); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%s: %.2f allocations per Set", k.name, n)
		if n > setBudget {
			t.Errorf("%s: a Set allocates %.2f times, more than %d", k.name, n, setBudget)
		}
	}
}

// A warm GetMany (every key a local hit) allocates what its map of answers
// takes, and nothing more. (The freshness proof is off, so that no GetMany
// counted can go to Redis for want of one on a loaded machine.)
func TestWarmGetManyAllocations(t *testing.T) {
	s := redistest.New(t)
	c := hotCache(t, s, tiered.HubOptions{MaxStaleness: -1}, tiered.Options[string]{TTL: time.Hour})
	ks := warmKeys(t, s, c)
	before := c.Stats().LocalHits
	n := perCall(t, 1000, func() {
		if m, err := c.GetMany(bg, ks); err != nil || len(m) != len(ks) {
			t.Fatalf("GetMany = %d values, %v", len(m), err)
		}
	})
	if hits := c.Stats().LocalHits - before; hits != 1001*uint64(len(ks)) {
		t.Fatalf("%d local hits in 1001 GetManys of %d keys: not what is measured", hits, len(ks))
	}
	var sink map[string]string
	answers := testing.AllocsPerRun(100, func() {
		sink = make(map[string]string, len(ks))
		for _, k := range ks {
			sink[k] = k
		}
	})
	t.Logf("%.2f allocations per warm GetMany of %d keys; its map alone %.2f", n, len(ks), answers)
	if n > answers {
		t.Errorf("a warm GetMany allocates %.2f times, its map alone %.2f", n, answers)
	}
}
