package tiered_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// seenWithin polls c's key until it reads want (or, with want "", not
// found), and fails the test if that takes longer than within.
func seenWithin(t *testing.T, c *tiered.Cache[string], key, want string, within time.Duration, what string) {
	t.Helper()
	began := time.Now()
	for {
		v, err := c.Get(bg, key)
		if (want == "" && errors.Is(err, tiered.ErrNotFound)) || (want != "" && err == nil && v == want) {
			break
		}
		if time.Since(began) > 5*time.Second {
			t.Fatalf("%s: Get %s = %q, %v after 5s; want %q", what, key, v, err, want)
		}
		time.Sleep(time.Millisecond)
	}
	if took := time.Since(began); took > within {
		t.Errorf("%s: seen after %v, want within %v", what, took, within)
	}
}

// holdLocally reads key until it is a local hit.
func holdLocally(t *testing.T, c *tiered.Cache[string], key string) {
	t.Helper()
	waitFor(t, 5*time.Second, "a local hit of "+key, func() bool {
		hits := c.Stats().LocalHits
		_, _ = c.Get(bg, key)
		return c.Stats().LocalHits > hits
	})
}

// With Tracking, a cache sees every change to its keys in Redis, whoever
// makes it: another program's plain SET and DEL, an expiry, a FLUSHDB.
// MaxStaleness is off, so only the invalidation can make the cache read
// Redis again.
func TestTrackingSeesEveryWriter(t *testing.T) {
	s := redistest.NewReal(t) // FLUSHDB; the embedded server has no CLIENT TRACKING
	c := newInstanceWith(t, s, "c", tiered.Options[string]{}, instanceConfig{hub: tiered.HubOptions{Tracking: true}})
	other := s.NewClient("other")
	ctx := context.Background()
	key := s.Namespace + ":k"
	// Without its invalidation the cache would serve the old value for
	// LocalTTL (a minute): the bounds are far below that, and far above a
	// loaded machine's delays (an expiry waits for the server's active
	// expiry cycle too).
	steps := []struct {
		what   string
		do     func() error
		want   string
		within time.Duration
	}{
		{"a plain SET", func() error { return other.Set(ctx, key, "v2", 0).Err() }, "v2", time.Second},
		{"a DEL", func() error { return other.Del(ctx, key).Err() }, "", time.Second},
		{"PEXPIRE 1", func() error { return other.PExpire(ctx, key, time.Millisecond).Err() }, "", 2 * time.Second},
		{"FLUSHDB", func() error { return other.FlushDB(ctx).Err() }, "", time.Second},
	}
	for _, st := range steps {
		if err := other.Set(ctx, key, "v1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		seenWithin(t, c.Cache, "k", "v1", 5*time.Second, st.what+" (setup)")
		holdLocally(t, c.Cache, "k")
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		seenWithin(t, c.Cache, "k", st.want, st.within, st.what)
	}
	if c.Stats().Tracked == 0 {
		t.Errorf("stats %+v: no tracked invalidation counted", c.Stats())
	}
}

// With Tracking on a Cluster, a plain SET on each master is seen.
func TestTrackingOnCluster(t *testing.T) {
	cl := redistest.NewCluster(t)
	if !cl.Real {
		t.Skip("the embedded server has no CLIENT TRACKING")
	}
	client := cl.NewClient()
	h, err := tiered.NewHub(client, tiered.HubOptions{Tracking: true, MaxStaleness: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c := newHubCache(t, h, tiered.Options[string]{Namespace: cl.Namespace})
	other := cl.NewClient()
	for _, master := range cl.Masters() {
		k := cl.KeysOn(master, cl.Namespace+":", 1)[0]
		if err := other.Set(bg, cl.Namespace+":"+k, "v1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		seenWithin(t, c, k, "v1", 5*time.Second, "setup on "+master)
		holdLocally(t, c, k)
		if err := other.Set(bg, cl.Namespace+":"+k, "v2", 0).Err(); err != nil {
			t.Fatal(err)
		}
		seenWithin(t, c, k, "v2", time.Second, "a plain SET on "+master)
	}
}

// A server that cannot track (the embedded one has no CLIENT TRACKING) makes
// WaitReady fail at once, saying why, rather than wait out its ctx.
func TestTrackingUnavailableFailsFast(t *testing.T) {
	s := redistest.New(t)
	if s.Real() {
		t.Skip("the server at REDIS_ADDR can track")
	}
	client := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = client.Close() })
	h, err := tiered.NewHub(client, tiered.HubOptions{Tracking: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	began := time.Now()
	err = h.WaitReady(ctxFor(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "Tracking is not available") {
		t.Fatalf("WaitReady = %v; want the reason tracking is not available", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("WaitReady took %v to fail; want within a second", took)
	}
}

// TrackingOnly writes are plain SETs: nothing is published, and another
// tracking instance sees them all the same.
func TestTrackingOnlyPublishesNothing(t *testing.T) {
	s := redistest.NewReal(t)
	ctx := context.Background()
	w := newInstanceWith(t, s, "w", tiered.Options[string]{}, instanceConfig{hub: tiered.HubOptions{Tracking: true, TrackingOnly: true}})
	r := newInstanceWith(t, s, "r", tiered.Options[string]{}, instanceConfig{hub: tiered.HubOptions{Tracking: true}})
	ps := s.Client.Subscribe(ctx, "tiercache:invalidate:"+s.Namespace)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	seenWithin(t, r.Cache, "k", "v1", 5*time.Second, "setup")
	holdLocally(t, r.Cache, "k")
	if err := w.Set(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	seenWithin(t, r.Cache, "k", "v2", time.Second, "a TrackingOnly Set")
	if m, err := ps.ReceiveTimeout(ctx, 100*time.Millisecond); err == nil {
		t.Errorf("a TrackingOnly Set published %v", m)
	}
}

// With TrackingOnly, Invalidate and InvalidateAll still reach the other
// instances: Redis reports no change (none was made), so only their
// message can.
func TestTrackingOnlyInvalidateReachesOthers(t *testing.T) {
	s := redistest.NewReal(t)
	trk := instanceConfig{hub: tiered.HubOptions{Tracking: true, TrackingOnly: true}}
	w := newInstanceWith(t, s, "w", tiered.Options[string]{}, trk)
	r := newInstanceWith(t, s, "r", tiered.Options[string]{}, trk)
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"Invalidate", func() error { return w.Invalidate(bg, "k") }},
		{"InvalidateAll", func() error { return w.InvalidateAll(bg) }},
	} {
		if err := w.Set(bg, "k", "v1"); err != nil {
			t.Fatal(err)
		}
		seenWithin(t, r.Cache, "k", "v1", 5*time.Second, "setup")
		holdLocally(t, r.Cache, "k")
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "r drops k after w's "+step.what, func() bool {
			hits := r.Stats().LocalHits
			_, _ = r.Get(bg, "k")
			return r.Stats().LocalHits == hits
		})
	}
}
