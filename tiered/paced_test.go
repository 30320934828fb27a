package tiered_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// With default options, a process that reads at 10 reads a second serves
// its warm keys from the local tier: the freshness proofs follow the
// traffic, so a read 100ms after the last still finds a proof younger than
// MaxStaleness. Counted in Redis round trips, not in time.
func TestLowReadRateHitsLocally(t *testing.T) {
	s := redistest.New(t)
	client := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = client.Close() })
	c, err := tiered.New(client, tiered.Options[string]{Namespace: s.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.WaitReady(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	const keys = 20
	for i := range keys {
		if err := c.Set(bg, fmt.Sprint(i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	calls := &redistest.RoundTrips{}
	client.AddHook(calls)
	const reads = 40
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range reads {
		<-tick.C
		if v, err := c.Get(bg, fmt.Sprint(i%keys)); err != nil || v != "v" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	// Before the proofs followed the traffic, every read went to Redis; on
	// an idle machine none does. A loaded machine runs the Subscriber late
	// now and then, and a read that finds its proof older than MaxStaleness
	// rightly goes to Redis: the bound is halfway between the two.
	if n := calls.Count(); n > reads/2 {
		t.Errorf("%d of %d reads at 10 a second went to Redis; want nearly none (%+v)", n, reads, c.Stats())
	}
	t.Logf("%d of %d reads went to Redis; %+v", calls.Count(), reads, c.Stats())
}
