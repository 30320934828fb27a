package tiered_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// Guarantee 6, the seed's auto-purge test through the two tiers: a value
// written with a 100 ms TTL is there at 50 ms and gone after 150 ms, on the
// writer and on another instance that read it. On the embedded server the
// test runs on synctest's fake clock and also checks every millisecond around
// the expiry that no instance answers once Redis has dropped the key.
func TestLocalEntryNeverOutlivesRedisKey(t *testing.T) {
	s := redistest.New(t)
	if s.Real() {
		a := newInstance(t, s, "a", tiered.Options[string]{})
		b := newInstance(t, s, "b", tiered.Options[string]{})
		autoPurge(t, a.Cache, b.Cache, s.Client, s.Namespace, time.Sleep, func() { applied(t, 1, b) }, false)
		return
	}
	synctest.Test(t, func(t *testing.T) {
		m := miniredis.NewMiniRedis()
		defer m.Close()
		m.ClockTTL(true) // TTLs follow the bubble's clock
		dial := func(context.Context, string, string) (net.Conn, error) { return m.Dial() }
		newClient := func() *redis.Client {
			// An IP literal, though Dial ignores it: go-redis resolves a
			// host name, and the resolver's state lives outside the bubble.
			return redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", Dialer: dial, Protocol: 2})
		}
		raw, ca, cb := newClient(), newClient(), newClient()
		defer raw.Close()
		defer ca.Close()
		defer cb.Close()
		// No freshness proof: on the bubble's clock it would age between
		// the steps below; this test is about expiry alone.
		ha, err := tiered.NewHub(ca, tiered.HubOptions{MaxStaleness: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer ha.Close()
		hb, err := tiered.NewHub(cb, tiered.HubOptions{MaxStaleness: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer hb.Close()
		a, err := tiered.NewCache(ha, tiered.Options[string]{Namespace: "ns"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := tiered.NewCache(hb, tiered.Options[string]{Namespace: "ns"})
		if err != nil {
			t.Fatal(err)
		}
		for !a.Subscribed() || !b.Subscribed() {
			time.Sleep(time.Millisecond)
		}
		autoPurge(t, a, b, raw, "ns", time.Sleep, synctest.Wait, true)
	})
}

// autoPurge runs the scenario; settle returns once b has applied the
// invalidation of a's write (else it could land after b's read and drop it).
func autoPurge(t *testing.T, a, b *tiered.Cache[string], raw *redis.Client, ns string, sleep func(time.Duration), settle func(), exact bool) {
	t.Helper()
	if err := a.SetWithTTL(bg, "key", "value", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	settle()
	if v, err := b.Get(bg, "key"); err != nil || v != "value" {
		t.Fatalf("b Get = %q, %v", v, err)
	}
	sleep(50 * time.Millisecond)
	for name, c := range map[string]*tiered.Cache[string]{"writer": a, "reader": b} {
		hits := c.Stats().LocalHits
		if v, err := c.Get(bg, "key"); err != nil || v != "value" {
			t.Fatalf("%s at 50ms: Get = %q, %v; want value", name, v, err)
		}
		if c.Stats().LocalHits != hits+1 {
			t.Fatalf("%s at 50ms answered from Redis, not its local tier", name)
		}
	}
	if exact {
		// Step through the expiry: once Redis has dropped the key, no
		// instance may still answer from its local tier.
		for range 60 {
			sleep(time.Millisecond)
			gone := raw.Exists(bg, ns+":key").Val() == 0
			for name, c := range map[string]*tiered.Cache[string]{"writer": a, "reader": b} {
				if _, err := c.Get(bg, "key"); gone && err == nil {
					t.Fatalf("%s answered after Redis dropped the key", name)
				}
			}
		}
	} else {
		sleep(100 * time.Millisecond)
	}
	for name, c := range map[string]*tiered.Cache[string]{"writer": a, "reader": b} {
		if _, err := c.Get(bg, "key"); !errors.Is(err, tiered.ErrNotFound) {
			t.Fatalf("%s after 150ms: err = %v, want ErrNotFound", name, err)
		}
	}
}
