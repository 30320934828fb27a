package invalidate

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// With Tracking, Redis itself reports every change to a namespace's keys,
// whoever makes it: a plain SET, a DEL, an expiry. Keys outside the
// namespace are not reported.
func TestTrackingReportsEveryWriter(t *testing.T) {
	s := redistest.NewReal(t)
	ns := s.Namespace
	r := newRecorder()
	opts := r.options(ns)
	opts.Tracking = true
	start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, ns)

	ctx := context.Background()
	other := s.NewClient("")
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"SET", func() error { return other.Set(ctx, ns+":a", "1", 0).Err() }},
		{"DEL", func() error { return other.Del(ctx, ns+":a").Err() }},
		{"SET elsewhere, then SET", func() error {
			if err := other.Set(ctx, ns+"-other:x", "1", time.Second).Err(); err != nil {
				return err
			}
			return other.Set(ctx, ns+":b", "1", 0).Err()
		}},
		{"PEXPIRE 1", func() error { return other.PExpire(ctx, ns+":b", time.Millisecond).Err() }},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		d := r.nextDelivery(t)
		if d.channel != ns || !d.msg.Tracked || len(d.msg.Keys) != 1 {
			t.Fatalf("%s: delivered %+v, want one tracked key of %q", step.what, d, ns)
		}
		t.Logf("%s: %q", step.what, d.msg.Keys)
	}
	// The expiry is reported too, once Redis expires the key.
	d := r.nextDelivery(t)
	if !slices.Equal(d.msg.Keys, []string{"b"}) || !d.msg.Tracked {
		t.Fatalf("the expiry: delivered %+v, want b", d)
	}
	r.noMessage(t, 50*time.Millisecond)
}

// A server that cannot track never confirms the subscription, and says so
// at once: PermanentError names the cause, and no connection is
// confirmed. The embedded server has no CLIENT TRACKING.
func TestTrackingUnavailable(t *testing.T) {
	s := redistest.New(t)
	if s.Real() {
		t.Skip("the server at REDIS_ADDR can track; the embedded one cannot")
	}
	r := newRecorder()
	opts := r.options(s.Namespace)
	opts.Tracking = true
	sub := start(t, s.NewClient(""), opts)
	deadline := time.Now().Add(time.Second)
	for sub.PermanentError() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no PermanentError within 1s; LastError %v", sub.LastError())
		}
		time.Sleep(time.Millisecond)
	}
	if err := sub.PermanentError(); !strings.Contains(err.Error(), "Tracking is not available") {
		t.Errorf("PermanentError = %v", err)
	}
	if sub.Ready() {
		t.Error("Ready with a server that cannot track")
	}
}

// A namespace added while a connection is up makes it reconnect, so that
// its keys are tracked too: the new namespace is confirmed, and a plain SET
// of its keys is reported.
func TestTrackingFollowsAddedNamespaces(t *testing.T) {
	s := redistest.NewReal(t)
	a, b := s.Namespace+"-a", s.Namespace+"-b"
	r := newRecorder()
	opts := r.options(a)
	opts.Tracking = true
	sub := start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, a)
	if err := sub.Add(context.Background(), b); err != nil && !errors.Is(err, ErrClosed) {
		t.Logf("Add: %v (the connection is re-armed)", err)
	}
	waitFor(t, "b confirmed", func() bool { return sub.Current(b) && sub.Current(a) })
	if err := s.Client.Set(context.Background(), b+":k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		d := r.nextDelivery(t)
		if d.channel == b && slices.Equal(d.msg.Keys, []string{"k"}) {
			break
		}
	}
}

// The freshness fence holds with tracking: a PING sent after a write was
// acknowledged returns after that write's invalidation, so Fresh never
// reports true while a change made more than MaxStaleness ago is
// unhandled (as TestFreshAfterMessages, with plain SETs).
func TestFreshAfterTrackedWrites(t *testing.T) {
	const maxStale = 2 * time.Millisecond
	s := redistest.NewReal(t)
	ns := s.Namespace
	var handled atomic.Int64
	r := newRecorder()
	opts := r.options(ns)
	opts.MaxStaleness, opts.Tracking = maxStale, true
	opts.OnMessage = func(_ string, m Message) {
		time.Sleep(time.Duration(rand.N(3000)) * time.Microsecond)
		if len(m.Keys) == 1 {
			handled.Store(int64(len(m.Keys[0])))
		}
	}
	sub := start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, ns)
	const rounds = 100
	for i := 1; i <= rounds; i++ {
		key := strings.Repeat("k", i) // its length is the round
		if err := s.Client.Set(context.Background(), ns+":"+key, "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		sub.Fresh()
		for time.Since(acked) <= maxStale {
			time.Sleep(100 * time.Microsecond)
		}
		untilFresh(t, sub)
		if got := handled.Load(); got < int64(i) {
			t.Fatalf("round %d: Fresh() = true while the write acknowledged %v earlier was not handled (last handled: %d)",
				i, time.Since(acked), got)
		}
	}
}

// holdConn holds the write of the Subscriber's hello PING on the first
// connection that writes it, until release is closed: the connection is
// dialed and armed (its OnConnect hook has run), and not yet current.
type holdConn struct {
	net.Conn
	hold *helloHold
}

type helloHold struct {
	once    sync.Once
	sent    chan struct{} // closed when the first hello is about to be written
	release chan struct{} // closed by the test
}

func (c *holdConn) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(helloPayload)) {
		first := false
		c.hold.once.Do(func() { first = true; close(c.hold.sent) })
		if first {
			<-c.hold.release
		}
	}
	return c.Conn.Write(b)
}

// A namespace added while the connection is being dialed, after its
// tracking was armed with the set as it was, is tracked all the same: the
// connection re-arms once it is up (it never did: Add re-arms only a
// connection that is current, and the new one took the prefixes it was
// armed with for those of the set, so the namespace was never confirmed).
func TestTrackingAddWhileDialing(t *testing.T) {
	s := redistest.NewReal(t)
	ns := s.Namespace
	hold := &helloHold{sent: make(chan struct{}), release: make(chan struct{})}
	client := redis.NewClient(&redis.Options{
		Addr: s.Addr,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &holdConn{Conn: c, hold: hold}, nil
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	r := newRecorder()
	opts := r.options()
	opts.Tracking = true
	sub := start(t, client, opts)
	select {
	case <-hold.sent:
	case <-time.After(wait):
		t.Fatal("no hello PING written")
	}
	if err := sub.Add(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	close(hold.release)
	waitFor(t, "the namespace added while dialing is current", func() bool { return sub.Current(ns) })
	if err := s.Client.Set(context.Background(), ns+":k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		d := r.nextDelivery(t)
		if d.channel == ns && slices.Equal(d.msg.Keys, []string{"k"}) {
			break
		}
	}
}
