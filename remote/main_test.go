package remote_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/tiered"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// newStore returns a Store of namespace ns on a client of its own.
func newStore(t *testing.T, s *redistest.Server, ns string) *remote.Store {
	t.Helper()
	st, err := remote.New(s.NewClient(""), remote.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newCache returns a string cache of the server's namespace on a client and
// Hub of its own, as another process would have, once it is subscribed. The
// Hub's freshness proof is off: a read that finds the proof old goes to
// Redis, and would see a write that published nothing; with it off, only
// the invalidation message drops a local copy.
func newCache(t *testing.T, s *redistest.Server) *tiered.Cache[string] {
	t.Helper()
	client := s.NewClient("")
	hub, err := tiered.NewHub(client, tiered.HubOptions{MaxStaleness: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	c, err := tiered.NewCache(hub, tiered.Options[string]{Namespace: s.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// holdLocally writes value at key through c and checks that c's local tier
// holds it: a Get is a local hit.
func holdLocally(t *testing.T, c *tiered.Cache[string], key, value string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Set(ctx, key, value); err != nil {
		t.Fatal(err)
	}
	before := c.Stats().LocalHits
	if v, err := c.Get(ctx, key); err != nil || v != value {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, value)
	}
	if c.Stats().LocalHits != before+1 {
		t.Fatalf("Get(%q) was not a local hit", key)
	}
}

// invalidationBound is how soon a cache must show another writer's change.
// With the freshness proof off, only the invalidation message makes it: it
// typically arrives in well under a millisecond, and 100ms leaves room for
// a loaded machine (ten times the default MaxStaleness).
const invalidationBound = 100 * time.Millisecond

// eventually polls cond until it holds or invalidationBound has passed since
// start, and fails t with what cond last described if it never held.
func eventually(t *testing.T, start time.Time, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Since(start) > invalidationBound {
			t.Fatalf("%s: not within %v of the write; last: %s", what, invalidationBound, last)
		}
		time.Sleep(time.Millisecond)
	}
}

// rawClient returns a plain client of the server: what another program sees.
func rawClient(s *redistest.Server) *redis.Client { return s.NewClient("") }
