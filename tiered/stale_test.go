package tiered_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// outageInstance is a cache on its own Hub for the outage tests: a short
// health check and backoff, so that a stopped server is noticed and a
// restarted one is back within a second, and clients that fail fast (by
// default go-redis dials 5 times, 100ms apart, before it reports a server
// down).
func outageInstance(t *testing.T, s *redistest.Server, name string, opts tiered.Options[string], obs tiered.Observer) *tiered.Cache[string] {
	t.Helper()
	return outageInstanceAt(t, s, s.Addr, name, opts, obs)
}

// outageInstanceAt is outageInstance with the client dialing addr.
func outageInstanceAt(t *testing.T, s *redistest.Server, addr, name string, opts tiered.Options[string], obs tiered.Observer) *tiered.Cache[string] {
	t.Helper()
	return newInstanceWith(t, s, name, opts, instanceConfig{
		addr: addr,
		hub:  tiered.HubOptions{HealthCheck: 100 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Observer: obs},
		client: func(o *redis.Options) {
			o.MaxRetries, o.DialTimeout, o.ReadTimeout = -1, 200*time.Millisecond, 300*time.Millisecond
			o.DialerRetries, o.DialerRetryTimeout = 1, 10*time.Millisecond
		},
	}).Cache
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestStaleIfErrorServesThroughAnOutage stops the server the test started,
// and checks what a cache with StaleIfError serves while it is down, beside
// one without: exactly the values it last held, never one older than
// StaleIfError, never one older than its own write, nothing suspect once
// Redis answers, and nothing suspect kept once the subscription is back.
func TestStaleIfErrorServesThroughAnOutage(t *testing.T) {
	s := redistest.NewOwn(t)
	const window = 1500 * time.Millisecond
	rec := &recorder{}
	a := outageInstance(t, s, "a", tiered.Options[string]{StaleIfError: window}, rec)
	off := outageInstance(t, s, "off", tiered.Options[string]{}, nil)
	ctx := context.Background()

	// Another instance writes (7 messages); once a has applied them all (a
	// late one would drop what a reads), a reads and holds k1 at v2, k2
	// and mine at v1; it never reads k3.
	for _, k := range []string{"k1", "k2", "k3", "mine", "gone"} {
		if err := off.Set(ctx, k, k+"-v1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := off.Set(ctx, "k1", "k1-v2"); err != nil {
		t.Fatal(err)
	}
	if err := off.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a applies off's 7 messages", func() bool { return a.Stats().Invalidations >= 7 })
	for _, k := range []string{"k1", "k2", "mine"} {
		if _, err := a.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := off.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	hits := a.Stats().LocalHits
	for _, k := range []string{"k1", "k2", "mine"} {
		if v, err := a.Get(ctx, k); err != nil || (k == "k1" && v != "k1-v2") {
			t.Fatalf("before the outage: Get %s = %q, %v", k, v, err)
		}
	}
	if n := a.Stats().LocalHits - hits; n != 3 {
		t.Fatalf("before the outage: %d of k1, k2, mine held locally, want 3", n)
	}

	s.Stop()
	stopped := time.Now()
	waitFor(t, 5*time.Second, "a notices the outage", func() bool { return !a.Subscribed() })
	waitFor(t, 5*time.Second, "off notices the outage", func() bool { return !off.Subscribed() })

	// Served stale: exactly what a held.
	if v, err := a.Get(ctxFor(t, time.Second), "k1"); v != "k1-v2" || err != nil {
		t.Errorf("outage: Get k1 = %q, %v; want the last value held, k1-v2", v, err)
	}
	if v, err := a.Fetch(ctxFor(t, time.Second), "k2", func(context.Context) (string, error) {
		return "", errors.New("source down too")
	}); v != "k2-v1" || err != nil {
		t.Errorf("outage: Fetch k2 with a failing loader = %q, %v; want k2-v1", v, err)
	}
	// The loader is preferred when it answers.
	if v, err := a.Fetch(ctxFor(t, time.Second), "k2", func(context.Context) (string, error) {
		return "k2-from-loader", nil
	}); v != "k2-from-loader" || err != nil {
		t.Errorf("outage: Fetch k2 with a working loader = %q, %v; want the loader's value", v, err)
	}
	got, err := a.GetMany(ctxFor(t, time.Second), []string{"k1", "k3"})
	var be *tiered.BatchError
	if got["k1"] != "k1-v2" || !errors.As(err, &be) || len(be.Keys) != 1 || be.Keys["k3"] == nil {
		t.Errorf("outage: GetMany k1,k3 = %v, %v; want k1-v2 and an error for k3 only", got, err)
	}
	// Never held: the error.
	if _, err := a.Get(ctxFor(t, time.Second), "k3"); err == nil || errors.Is(err, tiered.ErrNotFound) {
		t.Errorf("outage: Get k3 (never held) = %v; want Redis's error", err)
	}
	// Never an older value than this instance's own write.
	if err := a.Set(ctxFor(t, time.Second), "mine", "mine-v2"); err == nil {
		t.Fatal("outage: Set succeeded with Redis stopped")
	}
	if v, err := a.Get(ctxFor(t, time.Second), "mine"); err == nil {
		t.Errorf("outage: Get mine after a failed Set = %q; want an error, not the value the Set may have replaced", v)
	}
	// The cache without StaleIfError fails.
	if v, err := off.Get(ctxFor(t, time.Second), "k1"); err == nil {
		t.Errorf("outage, StaleIfError off: Get k1 = %q, nil; want an error", v)
	}
	st := a.Stats()
	if st.StaleServed != 3 {
		t.Errorf("StaleServed = %d, want 3 (Get k1, Fetch k2, GetMany k1)", st.StaleServed)
	}
	if n := rec.count(tiered.EventStale); n != 3 {
		t.Errorf("EventStale events = %d, want 3", n)
	}
	for _, e := range rec.of(tiered.EventStale) {
		if e.Duration < 0 || e.Duration > window || e.Err == nil || e.Namespace != s.Namespace {
			t.Errorf("EventStale %+v: want an age in [0, %v], the hidden error and the namespace", e, window)
		}
	}

	// No older than StaleIfError.
	time.Sleep(time.Until(stopped.Add(window + 100*time.Millisecond)))
	if v, err := a.Get(ctxFor(t, time.Second), "k1"); err == nil {
		t.Errorf("outage past StaleIfError: Get k1 = %q, nil; want an error", v)
	}

	// Redis answers again: whatever it holds wins over anything suspect,
	// subscribed or not (a redis-server comes back empty, the embedded one
	// keeps its data, so write what the test expects).
	s.Start()
	raw := s.NewClient("raw")
	if err := raw.Set(ctx, s.Namespace+":k2", "k2-v3", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Until the Hub's probe (its subscriber's next attempt, within
	// MaxBackoff) finds Redis back, calls fail at once with ErrRedisDown.
	var v string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if v, err = a.Get(ctxFor(t, 2*time.Second), "k2"); !errors.Is(err, tiered.ErrRedisDown) {
			break
		}
	}
	if v != "k2-v3" || err != nil {
		t.Errorf("back: Get k2 = %q, %v; want what Redis holds, k2-v3", v, err)
	}
	waitFor(t, 10*time.Second, "a subscribed again", a.Subscribed)
	if err := a.Set(ctx, "k1", "k1-v3"); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "k1"); v != "k1-v3" || err != nil {
		t.Errorf("reconverged: Get k1 = %q, %v; want k1-v3", v, err)
	}

	// A second outage serves what was held since.
	before := a.Stats().StaleServed
	s.Stop()
	waitFor(t, 5*time.Second, "a notices the second outage", func() bool { return !a.Subscribed() })
	if v, err := a.Get(ctxFor(t, time.Second), "k1"); v != "k1-v3" || err != nil {
		t.Errorf("second outage: Get k1 = %q, %v; want k1-v3", v, err)
	}
	if n := a.Stats().StaleServed - before; n != 1 {
		t.Errorf("second outage: StaleServed grew by %d, want 1", n)
	}
	s.Start()
	waitFor(t, 10*time.Second, "a subscribed after the second outage", a.Subscribed)
}

// TestStaleIfErrorKeepsReadsMadeDuringTheOutage: while the subscription is
// down but Redis still answers, what reads find becomes what the instance
// holds: a newer value replaces the suspect one, and a key found deleted is
// not served stale once Redis fails.
func TestStaleIfErrorKeepsReadsMadeDuringTheOutage(t *testing.T) {
	s := redistest.NewOwn(t)
	proxy := redistest.NewProxy(t, s.Addr)
	a := outageInstanceAt(t, s, proxy.Addr(), "a", tiered.Options[string]{StaleIfError: 5 * time.Second}, nil)
	ctx := context.Background()
	for _, k := range []string{"k", "del"} {
		if err := a.Set(ctx, k, k+"-v1"); err != nil {
			t.Fatal(err)
		}
	}
	proxy.CutPubSub(true) // the subscription is lost and stays so; reads still reach Redis
	waitFor(t, 5*time.Second, "a notices the lost subscription", func() bool { return !a.Subscribed() })

	raw := s.NewClient("raw")
	if err := raw.Set(ctx, s.Namespace+":k", "k-v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Del(ctx, s.Namespace+":del").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "k"); v != "k-v2" || err != nil {
		t.Fatalf("Get k while Redis answers = %q, %v; want k-v2", v, err)
	}
	if _, err := a.Get(ctx, "del"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Get del while Redis answers = %v; want ErrNotFound", err)
	}
	if a.Stats().StaleServed != 0 {
		t.Fatalf("StaleServed = %d while Redis answers; want 0", a.Stats().StaleServed)
	}

	s.Stop()
	if v, err := a.Get(ctxFor(t, time.Second), "k"); v != "k-v2" || err != nil {
		t.Errorf("Redis down: Get k = %q, %v; want k-v2, the last value read (never k-v1)", v, err)
	}
	if v, err := a.Get(ctxFor(t, time.Second), "del"); err == nil || errors.Is(err, tiered.ErrNotFound) {
		t.Errorf("Redis down: Get del = %q, %v; want Redis's error (the key was found deleted), never del-v1", v, err)
	}
	s.Start()
	proxy.CutPubSub(false)
	waitFor(t, 10*time.Second, "a subscribed again", a.Subscribed)

	// Once the subscription is confirmed, what was suspect is dropped, and
	// the local tier, repaired, holds what was read meanwhile: in a later
	// outage, k-v2 (the last value this instance read) may be served, never
	// k-v1, and del stays deleted.
	proxy.CutPubSub(true)
	waitFor(t, 5*time.Second, "a loses the subscription again", func() bool { return !a.Subscribed() })
	s.Stop()
	if v, err := a.Get(ctxFor(t, time.Second), "k"); v == "k-v1" || (err == nil && v != "k-v2") {
		t.Errorf("a later outage: Get k = %q, %v; want k-v2 or an error, never k-v1", v, err)
	}
	if v, err := a.Get(ctxFor(t, time.Second), "del"); err == nil || errors.Is(err, tiered.ErrNotFound) {
		t.Errorf("a later outage: Get del = %q, %v; want Redis's error, never del-v1", v, err)
	}
	s.Start()
	proxy.CutPubSub(false)
	waitFor(t, 10*time.Second, "a subscribed once more", a.Subscribed)
}

// TestStaleIfErrorWhileUnproven: Redis stops answering without closing the
// connections (CLIENT PAUSE on a server the test started), so the
// subscription is not yet found lost, but the Hub can no longer prove the
// local tier fresh: reads go to Redis, time out, and are answered with the
// local value, last proven current less than StaleIfError ago.
func TestStaleIfErrorWhileUnproven(t *testing.T) {
	s := redistest.NewReal(t)
	client := redis.NewClient(&redis.Options{Addr: s.Addr, ClientName: s.Namespace + "-a"})
	t.Cleanup(func() { _ = client.Close() })
	h, err := tiered.NewHub(client, tiered.HubOptions{HealthCheck: 5 * time.Second, MaxStaleness: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: s.Namespace, StaleIfError: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	waitFor(t, 10*time.Second, "subscribed", c.Subscribed)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a local hit", func() bool {
		v, err := c.Get(ctx, "k")
		return err == nil && v == "v" && c.Stats().LocalHits > 0
	})

	s.Pause("ALL", 1500*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // past MaxStaleness: no proof can arrive
	v, err := c.Get(ctxFor(t, 300*time.Millisecond), "k")
	if v != "v" || err != nil {
		t.Errorf("paused: Get k = %q, %v; want the local value, served stale", v, err)
	}
	if st := c.Stats(); st.StaleServed != 1 || st.Unproven == 0 {
		t.Errorf("paused: StaleServed %d (want 1), Unproven %d (want > 0)", st.StaleServed, st.Unproven)
	}
	// A key never held: the error.
	if _, err := c.Get(ctxFor(t, 300*time.Millisecond), "other"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("paused: Get other = %v; want the deadline", err)
	}
	waitFor(t, 10*time.Second, "proven again", func() bool {
		_, err := c.Get(ctxFor(t, time.Second), "k")
		return err == nil && c.Stats().StaleServed == 1
	})
}

func TestStaleIfErrorValidation(t *testing.T) {
	s := redistest.New(t)
	for _, d := range []time.Duration{-time.Second, time.Microsecond} {
		_, err := tiered.New(s.Client, tiered.Options[string]{Namespace: s.Namespace, StaleIfError: d})
		if err == nil || !containsAll(err.Error(), "StaleIfError") {
			t.Errorf("StaleIfError %v: err = %v; want one naming StaleIfError", d, err)
		}
	}
}

// A subscription that dies silently (no FIN, no RST) is noticed late, up to
// twice HealthCheck after the last proof of freshness, and every
// invalidation since may have been lost: what the cache then keeps as
// suspect is dated by that last proof, not by the moment the loss was
// noticed. No value is served stale more than StaleIfError after the last
// proof, which came before the freeze.
func TestStaleIfErrorDatesBySilentLossByTheLastProof(t *testing.T) {
	s := redistest.New(t)
	p := redistest.NewProxy(t, s.Addr)
	const window = 500 * time.Millisecond
	b := newInstanceWith(t, s, "b", tiered.Options[string]{StaleIfError: window}, instanceConfig{
		addr: p.Addr(),
		hub:  tiered.HubOptions{HealthCheck: window, MaxStaleness: 10 * time.Millisecond},
		client: func(o *redis.Options) {
			o.MaxRetries, o.DialTimeout = -1, 50*time.Millisecond
			o.DialerRetries, o.DialerRetryTimeout = 1, 10*time.Millisecond
		},
	})
	a := newInstance(t, s, "a", tiered.Options[string]{})
	if err := a.Set(bg, "k", "old"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b holds k", func() bool {
		v, err := b.Get(bg, "k")
		return err == nil && v == "old" && b.Stats().LocalHits > 0
	})
	p.FreezePubSub() // silent: no FIN, no RST
	p.CutData(true)  // and Redis cannot be read
	frozen := time.Now()
	if err := a.Set(bg, "k", "new"); err != nil {
		t.Fatal(err)
	}
	lastStale := time.Duration(-1)
	for time.Since(frozen) < 4*window {
		began := time.Since(frozen)
		if v, err := b.Get(ctxFor(t, 30*time.Millisecond), "k"); err == nil && v == "old" {
			lastStale = began
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b.Stats().Breaks == 0 {
		t.Fatal("the loss was never noticed")
	}
	// The margin: the local tier's clock tick and a call's own time.
	if lastStale > window+20*time.Millisecond {
		t.Errorf("the overwritten value was served stale %v after the freeze, with StaleIfError %v: "+
			"the last proof came before the freeze", lastStale, window)
	}
	t.Logf("served stale until %v after the freeze (StaleIfError %v, HealthCheck %v)", lastStale, window, window)
}
