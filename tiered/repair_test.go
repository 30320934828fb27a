package tiered_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// aclReader is a cache whose Redis user the test can stop subscribing (its
// right to SUBSCRIBE revoked, its connections killed) and let subscribe
// again: a reader that misses messages for as long as the test says, while
// its reads still work. On a server of the test's own.
type aclReader struct {
	*tiered.Cache[string]
	admin *redis.Client
	calls *redistest.RoundTrips
	user  string
}

func newACLReader(t *testing.T, s *redistest.Server, opts tiered.Options[string]) *aclReader {
	t.Helper()
	admin := s.NewClient("admin")
	user := "reader"
	if err := admin.Do(bg, "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: s.Addr, Username: user, Password: "pw"})
	t.Cleanup(func() { _ = client.Close() })
	calls := &redistest.RoundTrips{}
	client.AddHook(calls)
	if opts.Namespace == "" {
		opts.Namespace = s.Namespace
	}
	h, err := tiered.NewHub(client, tiered.HubOptions{HealthCheck: 100 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := tiered.NewCache(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.WaitReady(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return &aclReader{Cache: c, admin: admin, calls: calls, user: user}
}

// deafen revokes the right to subscribe and kills the reader's
// connections: it cannot subscribe again until hear.
func (r *aclReader) deafen(t *testing.T) {
	t.Helper()
	if err := r.admin.Do(bg, "ACL", "SETUSER", r.user, "-subscribe", "-ssubscribe").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.admin.Do(bg, "CLIENT", "KILL", "USER", r.user).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reader loses its subscription", func() bool { return !r.Subscribed() })
}

// hear gives the reader its right back and waits until it is subscribed.
func (r *aclReader) hear(t *testing.T) {
	t.Helper()
	if err := r.admin.Do(bg, "ACL", "SETUSER", r.user, "+subscribe", "+ssubscribe").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitReady(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// A reader that lost its subscription while another instance wrote 5 of
// the 200 keys it holds reads the messages it missed back from the log once
// it is subscribed again: it returns the 5 new values and serves the other
// 195 from its local tier, in a handful of Redis round trips (a purge would
// have read all 200).
func TestRepairAfterALostSubscription(t *testing.T) {
	s := redistest.NewReal(t)
	w := newInstance(t, s, "w", tiered.Options[string]{})
	r := newACLReader(t, s, tiered.Options[string]{})
	const n = 200
	for i := range n {
		if err := w.Set(bg, fmt.Sprint(i), "v1"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the reader applies the writes", func() bool { return r.Stats().Invalidations >= n })
	for i := range n {
		if v, err := r.Get(bg, fmt.Sprint(i)); err != nil || v != "v1" {
			t.Fatalf("Get %d = %q, %v", i, v, err)
		}
	}
	r.deafen(t)
	for i := range 5 {
		if err := w.Set(bg, fmt.Sprint(i*40), "v2"); err != nil {
			t.Fatal(err)
		}
	}
	r.hear(t)
	st := r.Stats()
	if st.Repairs != 1 {
		t.Fatalf("stats %+v: want 1 repair", st)
	}
	r.calls.Reset()
	for i := range n {
		want := "v1"
		if i%40 == 0 {
			want = "v2"
		}
		if v, err := r.Get(bg, fmt.Sprint(i)); err != nil || v != want {
			t.Fatalf("after the repair: Get %d = %q, %v; want %q", i, v, err, want)
		}
	}
	if got := r.calls.Count(); got > 20 {
		t.Errorf("after the repair, reading the %d keys took %d Redis round trips; want at most 20", n, got)
	}
	t.Logf("%d round trips for %d reads after the repair; %+v", r.calls.Count(), n, r.Stats())
}

// When the messages missed cannot be read back, the reader purges, and no
// read returns an old value: the log trimmed past the reader's position,
// the log deleted, the server restarted (empty, without persistence).
func TestNoRepairWithoutTheLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, s *redistest.Server, ns string)
	}{
		{"trimmed", func(t *testing.T, s *redistest.Server, ns string) {
			if err := s.Client.XTrimMaxLen(bg, "tiercache:log:"+ns, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, s *redistest.Server, ns string) {
			if err := s.Client.Del(bg, "tiercache:log:"+ns, "tiercache:seq:"+ns).Err(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := redistest.NewReal(t)
			w := newInstance(t, s, "w", tiered.Options[string]{})
			r := newACLReader(t, s, tiered.Options[string]{})
			for i := range 20 {
				if err := w.Set(bg, fmt.Sprint(i), "v1"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 5*time.Second, "the reader applies the writes", func() bool { return r.Stats().Invalidations >= 20 })
			for i := range 20 {
				if _, err := r.Get(bg, fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			r.deafen(t)
			for i := range 20 {
				if err := w.Set(bg, fmt.Sprint(i), "v2"); err != nil {
					t.Fatal(err)
				}
			}
			tc.break_(t, s, s.Namespace)
			r.hear(t)
			if st := r.Stats(); st.Repairs != 0 {
				t.Fatalf("stats %+v: repaired without the log", st)
			}
			for i := range 20 {
				if v, err := r.Get(bg, fmt.Sprint(i)); err != nil || v != "v2" {
					t.Fatalf("Get %d = %q, %v; want v2", i, v, err)
				}
			}
		})
	}
}

// A restarted server (without persistence) comes back empty, its logs and
// counters gone: positions start over, and a reader that kept its local
// tier through the outage must not take the new log for the old one.
func TestNoRepairAcrossARestart(t *testing.T) {
	s := redistest.NewReal(t)
	w := newInstance(t, s, "w", tiered.Options[string]{})
	r := outageInstance(t, s, "r", tiered.Options[string]{}, nil)
	for i := range 10 {
		if err := w.Set(bg, fmt.Sprint(i), "v1"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "r applies the writes", func() bool { return r.Stats().Invalidations >= 10 })
	for i := range 10 {
		if _, err := r.Get(bg, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Restart()
	// New positions from 1 again, as many messages as before, and more.
	for i := range 12 {
		k := fmt.Sprint(i % 10)
		if err := w.Set(context.Background(), k, "v2"); err != nil {
			waitFor(t, 5*time.Second, "w writes again", func() bool { return w.Set(bg, k, "v2") == nil })
		}
	}
	waitFor(t, 10*time.Second, "r subscribed again", r.Subscribed)
	for i := range 10 {
		waitFor(t, 2*time.Second, fmt.Sprintf("Get %d = v2", i), func() bool {
			v, err := r.Get(bg, fmt.Sprint(i))
			return err == nil && v == "v2"
		})
	}
	if st := r.Stats(); st.Repairs != 0 {
		t.Errorf("stats %+v: a restarted server's new log was taken for the old one", st)
	}
}

// A message lost on a live subscription (its position skipped) is read
// back as soon as the next one arrives: a writer whose message went astray
// is simulated by a log entry published on no channel.
func TestGapOnALiveSubscriptionIsRepaired(t *testing.T) {
	s := redistest.NewReal(t)
	w := newInstance(t, s, "w", tiered.Options[string]{})
	r := newInstance(t, s, "r", tiered.Options[string]{})
	for _, k := range []string{"a", "b"} {
		if err := w.Set(bg, k, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "r applies the writes", func() bool { return r.Stats().Invalidations >= 2 })
	for _, k := range []string{"a", "b"} {
		if _, err := r.Get(bg, k); err != nil {
			t.Fatal(err)
		}
	}
	// a changes, with its log entry, but its message reaches no one.
	if err := s.Client.Set(bg, s.Namespace+":a", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	seq, err := s.Client.Incr(bg, "tiercache:seq:"+s.Namespace).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Client.XAdd(bg, &redis.XAddArgs{Stream: "tiercache:log:" + s.Namespace, ID: fmt.Sprintf("%d-0", seq),
		Values: []any{"m", lostMessage(seq, "a")}}).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Get(bg, "a"); v != "v1" {
		t.Fatalf("before the next message: Get a = %q; the lost message reached r", v)
	}
	// The next message, for b, shows the gap.
	if err := w.Set(bg, "b", "v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "r reads the lost message back", func() bool {
		v, err := r.Get(bg, "a")
		return err == nil && v == "v2"
	})
}

// lostMessage is the message of an invalidation of key at position seq, as
// the write script logs it.
func lostMessage(seq int64, key string) string {
	return string(invalidate.Message{Origin: invalidate.NewOrigin(), Keys: []string{key}, Seq: uint64(seq)}.AppendVersion(nil, 3))
}

// A writer that logs nothing (a release before the log, or another program
// that PUBLISHes a version 1 or 2 message) cannot be read back: once a Hub
// has heard one on a namespace, a loss there is purged, not repaired, and
// no read returns the old value of what such a writer wrote meanwhile.
func TestUnloggedWriterMakesRepairAPurge(t *testing.T) {
	s := redistest.NewReal(t)
	w := newInstance(t, s, "w", tiered.Options[string]{})
	r := newACLReader(t, s, tiered.Options[string]{})
	raw := s.NewClient("raw")
	rk := s.Namespace + ":k"
	unlogged := func(value string) {
		t.Helper()
		msg := invalidate.Message{Origin: invalidate.NewOrigin(), Sent: time.Now(), Keys: []string{"k"}}.AppendVersion(nil, 2)
		if err := raw.Set(bg, rk, value, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := raw.Publish(bg, invalidate.Channel(s.Namespace), msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the reader hears the write", func() bool { return r.Stats().Invalidations >= 1 })
	unlogged("v2") // heard live
	waitFor(t, 5*time.Second, "the reader hears the unlogged write", func() bool { return r.Stats().Invalidations >= 2 })
	if v, err := r.Get(bg, "k"); err != nil || v != "v2" {
		t.Fatalf("Get = %q, %v; want v2", v, err)
	}
	r.deafen(t)
	unlogged("v3")                                  // missed, and in no log
	if err := w.Set(bg, "other", "x"); err != nil { // missed, and logged
		t.Fatal(err)
	}
	r.hear(t)
	if v, err := r.Get(bg, "k"); err != nil || v != "v3" {
		t.Fatalf("after the loss: Get = %q, %v; want v3 (stats %+v)", v, err, r.Stats())
	}
	if st := r.Stats(); st.Repairs != 0 {
		t.Errorf("stats %+v: a repair, where an unlogged writer was heard", st)
	}
}

// A rolling upgrade: a writer of wire version 2 beside one of version 3.
// The version 2 writes take no position in the log (they carry none), so
// the version 3 Hubs see no gap in the positions and read nothing back:
// before, each version 2 write made every such Hub read the log.
func TestMixedWireReadsNoLog(t *testing.T) {
	s := redistest.NewReal(t)
	w2 := newInstanceWith(t, s, "w2", tiered.Options[string]{}, instanceConfig{hub: tiered.HubOptions{WireVersion: 2}})
	w3 := newInstanceWith(t, s, "w3", tiered.Options[string]{}, instanceConfig{})
	r := newInstanceWith(t, s, "r", tiered.Options[string]{}, instanceConfig{})
	const n = 50
	before := commandCalls(t, []string{s.Addr})
	for i := range n {
		if err := w2.Set(bg, fmt.Sprint("a", i), "x"); err != nil {
			t.Fatal(err)
		}
		if err := w3.Set(bg, fmt.Sprint("b", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	applied(t, 2*n, r)
	applied(t, n, w2, w3) // a Hub applies the others' messages
	after := commandCalls(t, []string{s.Addr})
	if reads := after["xrange"] - before["xrange"]; reads > 0 {
		t.Errorf("%d writes by a version 2 writer beside a version 3 one made the Hubs read the log %d times; want none", n, reads)
	}
}

// A write of wire version 2 (a writer set to it for a rolling upgrade)
// takes no position in the log, so a Hub that missed one during a loss,
// and had heard none before, cannot read it back: the write marks the log,
// and the Hub purges instead of repairing, returning the new value.
func TestVersion2WriteMissedIsPurged(t *testing.T) {
	s := redistest.NewReal(t)
	w3 := newInstance(t, s, "w3", tiered.Options[string]{})
	w2 := newInstanceWith(t, s, "w2", tiered.Options[string]{}, instanceConfig{hub: tiered.HubOptions{WireVersion: 2}})
	r := newACLReader(t, s, tiered.Options[string]{})
	if err := w3.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the reader hears the write", func() bool { return r.Stats().Invalidations >= 1 })
	if v, err := r.Get(bg, "k"); err != nil || v != "v1" {
		t.Fatalf("Get = %q, %v; want v1", v, err)
	}
	r.deafen(t)
	if err := w2.Set(bg, "k", "v2"); err != nil { // missed, and in no log
		t.Fatal(err)
	}
	if err := w3.Set(bg, "other", "x"); err != nil { // missed, and logged
		t.Fatal(err)
	}
	r.hear(t)
	if v, err := r.Get(bg, "k"); err != nil || v != "v2" {
		t.Fatalf("after the loss: Get = %q, %v; want v2 (stats %+v)", v, err, r.Stats())
	}
}
