package faults

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// TestFrozenSubscription: B's pub/sub connection freezes (a proxy passes
// nothing on it any more, its other connections work, and its health
// check is 10s away), then A Sets a new value. With MaxStaleness on, no
// read on B that began more than MaxStaleness after the Set returned
// returns the old value: B's freshness PINGs go unanswered, so its reads
// go to Redis. With MaxStaleness off, the control, B still returns the old
// value half a second after the Set and more: the freeze bites.
func TestFrozenSubscription(t *testing.T) {
	needRealServer(t)
	const (
		maxStaleness = 5 * time.Millisecond
		healthCheck  = 10 * time.Second
		n            = 5
		limit        = time.Second
	)
	ctx := context.Background()
	s := redistest.New(t)
	proxy := redistest.NewProxy(t, s.Addr)
	a := newNode(t, &redis.Options{Addr: s.Addr}, s.Namespace, tiered.HubOptions{MaxStaleness: maxStaleness}, tiered.Options[string]{})
	run := func(m time.Duration, key string) trial {
		t.Helper()
		b := newNode(t, &redis.Options{Addr: proxy.Addr()}, s.Namespace,
			tiered.HubOptions{MaxStaleness: m, HealthCheck: healthCheck}, tiered.Options[string]{})
		defer b.close()
		p, err := newProbe(ctx, a, b, key, 0)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := p.run(ctx, limit, proxy.FreezePubSub)
		if err != nil {
			t.Fatal(err)
		}
		if !b.Subscribed() {
			t.Errorf("B lost its subscription during the trial: the health check (%v) was not to notice", healthCheck)
		}
		return tr
	}
	var on []trial
	for i := range n {
		tr := run(maxStaleness, "frozen-"+strconv.Itoa(i))
		on = append(on, tr)
		if tr.lastOld > maxStaleness || !tr.seen {
			t.Errorf("trial %d: a Get on B that began %s after A's Set returned returned the old value "+
				"(MaxStaleness %v; new value seen: %v)", i, ms(tr.lastOld), maxStaleness, tr.seen)
		}
	}
	_, lastOld, p50, worst := trials(on)
	t.Logf("MaxStaleness %v: Set returned → B returned the new value: median %s, worst %s; last old value "+
		"read begun %s after", maxStaleness, ms(p50), ms(worst), ms(lastOld))
	off := run(-1, "frozen-off")
	t.Logf("MaxStaleness off: B still returned the old value %s after the Set (seen: %v)", ms(off.lastOld), off.seen)
	if off.seen || off.lastOld < limit/2 {
		t.Errorf("MaxStaleness off: B returned the new value %s after the Set, and the old one %s after: "+
			"the freeze did not keep the invalidation from B", ms(off.latency), ms(off.lastOld))
	}
}
