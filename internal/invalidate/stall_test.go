//go:build linux

package invalidate

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// A peer that is alive but reads nothing (a frozen proxy, a stuck load
// balancer) fills the subscription's send buffer: the PINGs' writes block,
// for up to the client's WriteTimeout. The health check still notices the
// loss within twice HealthCheck, while readers keep asking for proofs, over
// TCP and over a unix socket: no judgement waits behind a write.
func TestHealthCheckNoticesAStalledPeer(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			s := redistest.New(t)
			var p *redistest.Proxy
			if network == "unix" {
				p = redistest.NewUnixProxy(t, s.Addr)
			} else {
				p = redistest.NewProxy(t, s.Addr)
			}
			p.SmallBuffers()
			client := redis.NewClient(&redis.Options{
				Network: network, Addr: p.Addr(), WriteTimeout: 10 * time.Second,
				Dialer: smallSendBuffer(network),
			})
			t.Cleanup(func() { _ = client.Close() })
			ch := s.Namespace
			r := newRecorder()
			opts := r.options(ch)
			const hc = 300 * time.Millisecond
			opts.HealthCheck, opts.MaxStaleness = hc, 2*time.Millisecond
			sub := start(t, client, opts)
			r.nextStateOn(t, Subscribed, ch)

			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			go func() { // readers keep asking for proofs
				for ctx.Err() == nil {
					sub.Fresh()
					time.Sleep(100 * time.Microsecond)
				}
			}()
			untilFresh(t, sub)
			p.StallPubSub()
			stalled := time.Now()
			r.nextState(t, Broken, 5*time.Second)
			took := time.Since(stalled)
			// Twice HealthCheck, and a margin for a loaded machine: far
			// below the 10s a write would wait.
			if limit := 2*hc + time.Second; took > limit {
				t.Errorf("the stalled peer was noticed %v after the stall, want within %v (2 x HealthCheck %v + margin)", took, limit, hc)
			}
			t.Logf("noticed %v after the stall; %+v", took, sub.Stats())
		})
	}
}

// A peer that is alive but reads nothing fills the subscription's send
// buffer, and a PING's write holds the connection's mutex (go-redis's) for
// up to the client's WriteTimeout; a Remove, which writes its UNSUBSCRIBE
// there while holding the Subscriber's, waits behind it until the health
// check closes the connection. A Close meanwhile closes every socket first:
// it returns within closeBound, and so does the Remove.
func TestCloseEndsARemoveBehindAStuckWrite(t *testing.T) {
	s := redistest.NewOwn(t)
	p := redistest.NewProxy(t, s.Addr)
	p.SmallBuffers()
	client := redis.NewClient(&redis.Options{Addr: p.Addr(), WriteTimeout: 10 * time.Second, Dialer: smallSendBuffer("tcp")})
	t.Cleanup(func() { _ = client.Close() })
	r := newRecorder()
	opts := r.options(s.Namespace, s.Namespace+"-2")
	const hc = 3 * time.Second // its kill comes 3 to 6 s after the stall
	opts.HealthCheck, opts.MaxStaleness = hc, 2*time.Millisecond
	sub, err := Subscribe(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.subscribed(t, s.Namespace, s.Namespace+"-2")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { // readers keep asking for proofs: PINGs fill the buffer
		for ctx.Err() == nil {
			sub.Fresh()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	untilFresh(t, sub)
	p.StallPubSub()
	// The PINGs' writes block: the count of those sent stops moving while
	// readers keep asking.
	for last, began := sub.Stats().FencePings, time.Now(); ; {
		time.Sleep(50 * time.Millisecond)
		n := sub.Stats().FencePings
		if n == last {
			break
		}
		if time.Since(began) > 2*hc/3 { // before the health check can end the connection
			t.Fatalf("the PINGs' writes did not block within %v of the stall (%d sent)", 2*hc/3, n)
		}
		last = n
	}
	removed := make(chan time.Time, 1)
	go func() {
		_ = sub.Remove(context.Background(), s.Namespace)
		removed <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond) // Remove waits behind the write
	t0 := time.Now()
	_ = sub.Close()
	closed := time.Since(t0)
	end := <-removed
	if closed > closeBound || end.Sub(t0) > closeBound {
		t.Errorf("Close took %v behind a stuck write, and Remove ended %v after Close began; want each within %v",
			closed, end.Sub(t0), closeBound)
	}
	t.Logf("Close %v, Remove ended %v after Close began", closed, end.Sub(t0))
}

// smallSendBuffer dials with a small socket send buffer, so that a peer that
// reads nothing blocks the writes after a few kilobytes.
func smallSendBuffer(network string) func(ctx context.Context, _, addr string) (net.Conn, error) {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	return func(ctx context.Context, _, addr string) (net.Conn, error) { return d.DialContext(ctx, network, addr) }
}
