package invalidate

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// pingConn counts the PING commands written on a connection.
type pingConn struct {
	net.Conn
	pings *atomic.Int64
}

// pingCommand is how go-redis writes the name of a PING command, with or
// without a payload: a bulk string "ping" after the array header.
var pingCommand = []byte("\r\n$4\r\nping\r\n")

func (c pingConn) Write(b []byte) (int, error) {
	c.pings.Add(int64(bytes.Count(bytes.ToLower(b), pingCommand)))
	return c.Conn.Write(b)
}

// pingCountingClient returns a client of addr, closed when the test ends,
// and the number of PINGs written on its connections so far.
func pingCountingClient(t *testing.T, addr string) (*redis.Client, *atomic.Int64) {
	t.Helper()
	pings := new(atomic.Int64)
	client := redis.NewClient(&redis.Options{
		Addr: addr,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return pingConn{Conn: c, pings: pings}, nil
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	return client, pings
}

// With a negative HealthCheck there is no health check: an idle
// subscription sends no PING over several intervals of the default health
// check, and still delivers. With a health check on, the same count sees
// its PINGs.
func TestSubscriberHealthCheckOff(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace

	on, onPings := pingCountingClient(t, s.Addr)
	onRec := newRecorder()
	onOpts := onRec.options(ch)
	onOpts.HealthCheck = 50 * time.Millisecond
	start(t, on, onOpts)
	onRec.nextStateOn(t, Subscribed, ch)

	off, offPings := pingCountingClient(t, s.Addr)
	r := newRecorder()
	opts := r.options(ch)
	opts.HealthCheck = -1
	sub := start(t, off, opts)
	r.nextStateOn(t, Subscribed, ch)
	if offPings.Load() == 0 {
		t.Fatal("the hello PING of the connection was not counted: the count proves nothing")
	}
	// The connection's first proof (LastProof) goes out once it is
	// confirmed, health check or not; nothing after it.
	waitFor(t, "the first proof", func() bool { return sub.Stats().HealthPings == 1 })
	time.Sleep(10 * time.Millisecond)
	onBefore, offBefore := onPings.Load(), offPings.Load()

	const idle = 2*DefaultHealthCheck + DefaultHealthCheck/2
	r.noState(t, idle)
	if n := onPings.Load() - onBefore; n < 2 {
		t.Fatalf("a subscription with a 50ms health check sent %d PINGs in %v idle, want several: the count proves nothing", n, idle)
	}
	if n := offPings.Load() - offBefore; n != 0 {
		t.Fatalf("with the health check off, an idle subscription sent %d PINGs in %v", n, idle)
	}

	want := Message{Keys: []string{"after idle"}}
	publish(t, s.Client, ch, want.Append(nil))
	if got := r.nextMessage(t); !equal(got, want) {
		t.Fatalf("delivered %+v, want %+v", got, want)
	}
	if st := sub.Stats(); st.Reconnects != 0 || st.FencePings != 0 {
		t.Fatalf("Stats() = %+v, want no reconnection and no fence PING", st)
	}
}

// With the health check off, freshness proofs still work: Fresh asks for
// them and they are answered. A frozen connection stops answering, so Fresh
// turns false; but it ends no connection, and no Broken is reported (as
// HealthCheck's doc says).
func TestFenceWithHealthCheckOff(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	p := redistest.NewProxy(t, s.Addr)
	client, pings := pingCountingClient(t, p.Addr())
	r := newRecorder()
	opts := r.options(ch)
	opts.HealthCheck = -1
	opts.MaxStaleness = 20 * time.Millisecond
	sub := start(t, client, opts)
	r.nextStateOn(t, Subscribed, ch)
	waitFor(t, "the connection's first proof", func() bool { return sub.Stats().HealthPings == 1 })
	// The hook counts it after the write; and the proof it brings ages
	// past MaxStaleness, so that only fence PINGs can make Fresh true.
	time.Sleep(2 * opts.MaxStaleness)
	before := pings.Load()

	untilFresh(t, sub)
	fence := sub.Stats().FencePings
	if fence == 0 {
		t.Fatal("Fresh() turned true with no fence PING")
	}
	if n := uint64(pings.Load() - before); n != fence {
		t.Errorf("%d PINGs sent, %d of them fence PINGs: want only fence PINGs", n, fence)
	}

	p.Freeze()
	frozen := time.Now()
	for sub.Fresh() {
		if time.Since(frozen) > wait {
			t.Fatal("Fresh() still true long after the connection froze")
		}
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(frozen); d > opts.MaxStaleness+time.Second {
		t.Errorf("Fresh() turned false %v after the freeze, want about MaxStaleness", d)
	}
	r.noState(t, 20*opts.MaxStaleness) // Fresh keeps asking meanwhile
	if sub.Stats().FencePings <= fence {
		t.Error("no fence PING sent on the frozen connection")
	}
	if !sub.Ready() {
		t.Error("Ready() = false: the frozen connection was judged")
	}
}
