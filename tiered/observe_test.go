package tiered_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// recorder is an Observer that keeps every Event.
type recorder struct {
	mu     sync.Mutex
	events []tiered.Event
}

func (r *recorder) Observe(e tiered.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) of(k tiered.EventKind) []tiered.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []tiered.Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) count(k tiered.EventKind) int { return len(r.of(k)) }

// keys sums Keys over the events of kind k with operation op ("" for any).
func (r *recorder) keys(k tiered.EventKind, op string) int {
	n := 0
	for _, e := range r.of(k) {
		if op == "" || e.Op == op {
			n += e.Keys
		}
	}
	return n
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// observedInstance is a cache on a Hub of its own with the Hub options
// given (MaxStaleness off unless set).
func observedInstance(t *testing.T, s *redistest.Server, name string, hopts tiered.HubOptions, opts tiered.Options[string]) *tiered.Cache[string] {
	t.Helper()
	return newInstanceWith(t, s, name, opts, instanceConfig{hub: hopts}).Cache
}

// TestObserverSeesEveryKind drives two instances and checks the events of
// each kind that the first one's Observer receives.
func TestObserverSeesEveryKind(t *testing.T) {
	s := redistest.NewOwn(t)
	rec := &recorder{}
	a := observedInstance(t, s, "a", tiered.HubOptions{Observer: rec}, tiered.Options[string]{})
	b := observedInstance(t, s, "b", tiered.HubOptions{}, tiered.Options[string]{})
	ctx := context.Background()

	if n := rec.of(tiered.EventSubscription); len(n) != 1 || n[0].State != tiered.StateSubscribed || n[0].Namespace != s.Namespace {
		t.Errorf("subscription events at start = %+v; want one Subscribed for the namespace", n)
	}
	if err := b.Set(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	// Until its message is applied, a's fill of k could be refused.
	waitFor(t, 5*time.Second, "a applies b's first write", func() bool { return a.Stats().Invalidations >= 1 })
	if _, err := a.Get(ctx, "k"); err != nil { // a local miss, then Redis
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "k"); err != nil { // a local hit
		t.Fatal(err)
	}
	if got, err := a.GetMany(ctx, []string{"k", "x", "y"}); err != nil || got["k"] != "v1" {
		t.Fatal(got, err)
	}
	loadErr := errors.New("no such row")
	if _, err := a.Fetch(ctx, "f", func(context.Context) (string, error) { return "", loadErr }); !errors.Is(err, loadErr) {
		t.Fatal(err)
	}
	if _, err := a.Fetch(ctx, "g", func(context.Context) (string, error) {
		time.Sleep(20 * time.Millisecond)
		return "g", nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a applies b's second write", func() bool { return a.Stats().Invalidations >= 2 })

	if n := rec.keys(tiered.EventLocalHit, "Get"); n != 1 {
		t.Errorf("local hits by Get = %d, want 1", n)
	}
	if n := rec.keys(tiered.EventLocalHit, "GetMany"); n != 1 {
		t.Errorf("local hits by GetMany = %d, want 1 (k)", n)
	}
	if n := rec.keys(tiered.EventLocalMiss, "GetMany"); n != 2 {
		t.Errorf("local misses by GetMany = %d, want 2 (x, y)", n)
	}
	if n := rec.keys(tiered.EventLocalMiss, "Fetch"); n != 2 {
		t.Errorf("local misses by Fetch = %d, want 2", n)
	}
	if b := rec.of(tiered.EventBatch); len(b) != 1 || b[0].Op != "GetMany" || b[0].Keys != 3 {
		t.Errorf("batch events = %+v; want one get-many of 3 keys", b)
	}
	redisOps := map[string]int{}
	for _, e := range rec.of(tiered.EventRedis) {
		redisOps[e.Op]++
		if e.Duration <= 0 || e.Err != nil || e.Namespace != s.Namespace {
			t.Errorf("redis event %+v: want a duration, no error, the namespace", e)
		}
	}
	if redisOps["get"] != 1 || redisOps["get-many"] < 3 || redisOps["acquire"] != 2 || redisOps["write-many"] < 2 {
		t.Errorf("redis calls by op = %v; want get 1, get-many >= 3, acquire 2, write-many >= 2", redisOps)
	}
	loads := rec.of(tiered.EventLoad)
	if len(loads) != 2 || !errors.Is(loads[0].Err, loadErr) || loads[1].Err != nil ||
		loads[1].Duration < 20*time.Millisecond || loads[1].Op != "Fetch" || loads[1].Keys != 1 {
		t.Errorf("load events = %+v; want the failed load, then one of >= 20ms", loads)
	}
	// A loader that panics is a failed load too.
	if p := recovered(func() {
		_, _ = a.Fetch(ctx, "p", func(context.Context) (string, error) { panic("boom") })
	}); p == nil {
		t.Fatal("Fetch with a panicking loader did not panic")
	}
	if loads := rec.of(tiered.EventLoad); len(loads) != 3 || loads[2].Err == nil || !strings.Contains(loads[2].Err.Error(), "boom") {
		t.Errorf("load events after a panic = %+v; want a third, failed with the panic", loads)
	}
	if n := a.Stats().LoadErrors; n != 2 {
		t.Errorf("LoadErrors = %d, want 2 (an error and a panic)", n)
	}
	inv := rec.of(tiered.EventInvalidation)
	if len(inv) != 2 {
		t.Fatalf("invalidation events = %+v; want 2 (b's two writes)", inv)
	}
	for _, e := range inv {
		if e.Keys != 1 || e.Duration < 0 || e.Duration > 5*time.Second {
			t.Errorf("invalidation %+v: want 1 key and a lag in [0, 5s]", e)
		}
	}
	if n := rec.count(tiered.EventStale); n != 0 {
		t.Errorf("stale events = %d, want 0", n)
	}

	// The subscription breaks and comes back: Broken, then Repaired (the
	// messages missed meanwhile read back), and the reads in between are
	// bypassed.
	s.KillPubSub(s.Namespace + "-a")
	waitFor(t, 10*time.Second, "a subscribed again", func() bool {
		return len(rec.of(tiered.EventSubscription)) >= 3 && a.Subscribed()
	})
	subs := rec.of(tiered.EventSubscription)
	if subs[1].State != tiered.StateBroken || subs[1].Err == nil || subs[2].State != tiered.StateRepaired {
		t.Errorf("subscription events = %+v; want Subscribed, Broken (with its error), Repaired", subs)
	}
}

// TestObserverSeesBypassedReads: reads while the subscription is down are
// reported as bypassed ("unsubscribed"), and those the Hub cannot prove
// fresh as "unproven".
func TestObserverSeesBypassedReads(t *testing.T) {
	s := redistest.New(t)
	rec := &recorder{}
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	h, err := tiered.NewHub(client, tiered.HubOptions{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: s.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Get(ctxFor(t, time.Second), "k")
	if err == nil {
		t.Fatal("Get with no server succeeded")
	}
	by := rec.of(tiered.EventBypass)
	if len(by) != 1 || by[0].Op != "unsubscribed" || by[0].Keys != 1 {
		t.Errorf("bypass events = %+v; want one unsubscribed read", by)
	}
	if _, err := c.GetMany(ctxFor(t, time.Second), []string{"a", "b"}); err == nil {
		t.Fatal("GetMany with no server succeeded")
	}
	red := rec.of(tiered.EventRedis)
	if len(red) != 2 || red[0].Op != "get" || red[0].Err == nil || red[1].Op != "get-many" || red[1].Err == nil {
		t.Errorf("redis events = %+v; want a get and a get-many, both failed", red)
	}
}

// TestInvalidationLagAcrossWireVersions: a Hub publishes wire version 3
// (with its send time and its position) by default and version 1 when
// asked; a cache of this release applies both, observing the lag of
// version 3 only, and a message of version 1 (a release before this one)
// is applied, not taken for a gap.
func TestInvalidationLagAcrossWireVersions(t *testing.T) {
	s := redistest.New(t)
	rec := &recorder{}
	a := observedInstance(t, s, "a", tiered.HubOptions{Observer: rec}, tiered.Options[string]{})
	v3 := observedInstance(t, s, "v3", tiered.HubOptions{}, tiered.Options[string]{})
	v1 := observedInstance(t, s, "v1", tiered.HubOptions{WireVersion: 1}, tiered.Options[string]{})
	ctx := context.Background()

	// What each publishes on the wire.
	ps := s.Client.Subscribe(ctx, invalidate.Channel(s.Namespace))
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	wire := func(c *tiered.Cache[string], key string) invalidate.Message {
		t.Helper()
		if err := c.Set(ctx, key, "x"); err != nil {
			t.Fatal(err)
		}
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := invalidate.Decode([]byte(m.Payload))
		if err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
		if want := map[bool]byte{true: 3, false: 1}[!msg.Sent.IsZero()]; m.Payload[0] != want {
			t.Errorf("payload version %d with Sent %v", m.Payload[0], msg.Sent)
		}
		return msg
	}
	before := time.Now()
	if m := wire(v3, "k3"); m.Sent.Before(before.Add(-time.Second)) || m.Sent.After(time.Now()) || m.Seq == 0 {
		t.Errorf("default Hub: Sent = %v, Seq = %d; want the time of the write and a position", m.Sent, m.Seq)
	}
	if m := wire(v1, "k1"); !m.Sent.IsZero() {
		t.Errorf("WireVersion 1: Sent = %v; want none", m.Sent)
	}
	// A message exactly as a release before this one encodes it.
	old := invalidate.Message{Origin: invalidate.NewOrigin(), Keys: []string{"k0"}}.Append(nil)
	if old[0] != 1 {
		t.Fatalf("a Message without Sent encodes as version %d, want 1", old[0])
	}
	if err := s.Client.Publish(ctx, invalidate.Channel(s.Namespace), old).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a applies the three messages", func() bool { return a.Stats().Invalidations >= 3 })
	if st := a.Stats(); st.Malformed != 0 {
		t.Errorf("Malformed = %d; want 0: version 1 is still read", st.Malformed)
	}
	lags := map[bool]int{}
	for _, e := range rec.of(tiered.EventInvalidation) {
		lags[e.Duration >= 0]++
		if e.Duration > 5*time.Second {
			t.Errorf("lag %v, want < 5s", e.Duration)
		}
	}
	if lags[true] != 1 || lags[false] != 2 {
		t.Errorf("invalidations with a lag: %d, without: %d; want 1 and 2", lags[true], lags[false])
	}
}

func TestWireVersionValidation(t *testing.T) {
	s := redistest.New(t)
	for _, v := range []int{-1, 4} {
		_, err := tiered.NewHub(s.Client, tiered.HubOptions{WireVersion: v})
		if err == nil || !strings.Contains(err.Error(), "WireVersion") {
			t.Errorf("WireVersion %d: err = %v; want one naming WireVersion", v, err)
		}
	}
}

// nopObserver observes nothing, for the cost of an Observer on the hit path.
type nopObserver struct{}

func (nopObserver) Observe(tiered.Event) {}

// TestObservedLocalHitAllocatesNothing: with an Observer, a local hit still
// allocates nothing (the Event is passed by value).
func TestObservedLocalHitAllocatesNothing(t *testing.T) {
	s := redistest.New(t)
	c := observedInstance(t, s, "a", tiered.HubOptions{Observer: nopObserver{}}, tiered.Options[string]{})
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = c.Get(ctx, "k") }); n != 0 {
		t.Errorf("local hit with an Observer: %v allocs, want 0", n)
	}
}
