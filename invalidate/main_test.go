package invalidate_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/tiered"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// newCache returns a string cache of namespace ns on client, once it is
// subscribed. The Hub's freshness proof is off: a read that finds the proof
// old goes to Redis, and would see a change that no message announced;
// with it off, only the invalidation message drops a local copy.
func newCache(t *testing.T, client redis.UniversalClient, ns string) *tiered.Cache[string] {
	t.Helper()
	hub, err := tiered.NewHub(client, tiered.HubOptions{MaxStaleness: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	c, err := tiered.NewCache(hub, tiered.Options[string]{Namespace: ns})
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

// invalidationBound is how soon a cache must show a change once its
// message is published. With the freshness proof off, only the message
// makes it: it typically arrives in well under a millisecond, and 100ms
// leaves room for a loaded machine (ten times the default MaxStaleness).
const invalidationBound = 100 * time.Millisecond

// eventuallyGets polls c's Get of key until it returns want, and fails t if
// it does not within invalidationBound of start.
func eventuallyGets(t *testing.T, start time.Time, c *tiered.Cache[string], key, want string) {
	t.Helper()
	for {
		v, err := c.Get(context.Background(), key)
		if err == nil && v == want {
			return
		}
		if time.Since(start) > invalidationBound {
			t.Fatalf("Get(%q) = %q, %v, not %q within %v of the message", key, v, err, want, invalidationBound)
		}
		time.Sleep(time.Millisecond)
	}
}

// docComment returns the text of the package doc comment of doc.go, without
// its "// " prefixes.
func docComment(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for line := range strings.Lines(string(src)) {
		if rest, ok := strings.CutPrefix(line, "//"); ok {
			fmt.Fprint(&b, strings.TrimPrefix(rest, " "))
		}
	}
	return b.String()
}
