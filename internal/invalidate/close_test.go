package invalidate

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// closeBound is how long Remove and Close may take whatever Redis does: they
// wait for no reply and no timeout of go-redis's (whose ReadTimeout, 3s by
// default, bounds a redial's handshake), only for goroutines that closed
// sockets have woken; the rest is a margin for a loaded machine.
const closeBound = 500 * time.Millisecond

// A real server behind a proxy that stops reading and forwarding (a hung
// Redis: connections open, nothing answered). Remove and Close (called in
// that order by an owner's Close) return within closeBound, and leave no
// goroutine (TestMain): before the health check notices; while go-redis,
// its socket closed by the health check, dials again inside Receive and
// waits for the handshake's answer (on a real server; the embedded one
// does not show it); and once the loss is reported, which takes no longer
// than the health check either.
func TestCloseWhileRedisHangs(t *testing.T) {
	const hc = 100 * time.Millisecond
	for _, tc := range []struct {
		name string
		wait func(*testing.T, *recorder)
	}{
		{"at once", func(*testing.T, *recorder) {}},
		{"once the health check closed the socket", func(*testing.T, *recorder) { time.Sleep(10 * hc) }},
		{"after Broken", func(t *testing.T, r *recorder) {
			// Two health checks, and a margin for a loaded machine: far
			// below go-redis's handshake timeout.
			r.nextState(t, Broken, 2*hc+time.Second)
			time.Sleep(5 * hc) // attempts to connect again
		}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			s := redistest.NewReal(t)
			p := redistest.NewProxy(t, s.Addr)
			client := redis.NewClient(&redis.Options{Addr: p.Addr()})
			t.Cleanup(func() { _ = client.Close() })
			r := newRecorder()
			opts := r.options(s.Namespace, s.Namespace+"-2")
			opts.HealthCheck, opts.MaxBackoff = hc, 50*time.Millisecond
			sub, err := Subscribe(client, opts)
			if err != nil {
				t.Fatal(err)
			}
			r.subscribed(t, s.Namespace, s.Namespace+"-2")

			p.Stall(true)
			defer p.Stall(false) // after Close: the proxy's links end with the test
			tc.wait(t, r)
			t0 := time.Now()
			rerr := sub.Remove(context.Background(), s.Namespace)
			removed := time.Since(t0)
			t1 := time.Now()
			done := make(chan struct{})
			go func() {
				_ = sub.Close()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(wait):
				buf := make([]byte, 1<<20)
				t.Fatalf("Close still running %v after it began:\n%s", wait, buf[:runtime.Stack(buf, true)])
			}
			closed := time.Since(t1)
			if removed > closeBound || closed > closeBound {
				t.Errorf("Remove took %v (error %v) and Close %v while Redis hung, want each within %v",
					removed, rerr, closed, closeBound)
			}
			t.Logf("Remove %v (error %v), Close %v", removed, rerr, closed)
		})
	}
}
