package invalidate

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// A wrong address is loud: the dial error is in LastError and logged at
// Warn, but only a few times however many attempts fail.
func TestSubscriberLastErrorOnClosedPort(t *testing.T) {
	// One dial per attempt (go-redis retries a failed dial 5 times by
	// default), so that attempts come fast.
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	r := newRecorder()
	logger, logs := newCapture()
	opts := r.options("closed-port")
	opts.MaxBackoff = 2 * time.Millisecond
	opts.Logger = logger
	sub := start(t, client, opts)

	const attempts = 100
	deadline := time.Now().Add(wait)
	for sub.Stats().Reconnects < attempts || sub.LastError() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: Stats() = %+v, LastError() = %v; want %d attempts and an error",
				wait, sub.Stats(), sub.LastError(), attempts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	err := sub.LastError()
	if !strings.Contains(err.Error(), "connection refused") || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("LastError() = %v, want the dial error (connection refused)", err)
	}
	warns := logs.at(slog.LevelWarn)
	// One at once; a second only if the test took longer than warnEvery.
	if len(warns) == 0 || len(warns) > 2 {
		t.Fatalf("%d Warn records for %d failed attempts, want 1 or 2: %+v", len(warns), sub.Stats().Reconnects+1, warns)
	}
	if e := warns[0].attrs["error"]; !strings.Contains(e, "connection refused") {
		t.Errorf("Warn record carries error %q, want the dial error", e)
	}
	if len(r.states) > 0 {
		t.Fatalf("state %v reported without a subscription", <-r.states)
	}
}

// LastError follows the subscription: nil while it is confirmed, the cause
// once it is lost, and each failed attempt to get it back is reported too.
// Ready agrees with it.
func TestSubscriberLastErrorClearedOnSubscribed(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	p, client := viaProxy(t, s)
	r := newRecorder()
	logger, logs := newCapture()
	opts := r.options(ch)
	opts.MaxBackoff = 5 * time.Millisecond
	opts.Logger = logger

	// What OnState sees in LastError: nil on Subscribed, its own cause on
	// Broken.
	var subp atomic.Pointer[Subscriber]
	var wrong atomic.Int32
	opts.OnState = func(st State, channel string, err error) {
		if sub := subp.Load(); sub != nil {
			switch last := sub.LastError(); st {
			case Subscribed:
				if last != nil || !sub.Ready() {
					wrong.Add(1)
				}
			case Broken:
				if last != err || sub.Ready() {
					wrong.Add(1)
				}
			}
		}
		r.onState(st, channel, err)
	}
	sub := start(t, client, opts)
	subp.Store(sub)
	r.nextState(t, Subscribed, wait)
	if err := sub.LastError(); err != nil {
		t.Fatalf("LastError() = %v while subscribed", err)
	}

	p.CutPubSub(true)
	ev := r.nextState(t, Broken, wait)
	if err := sub.LastError(); err == nil {
		t.Fatalf("LastError() = nil after Broken (%v)", ev.err)
	}
	// The attempts to subscribe again fail; they are warned about too.
	deadline := time.Now().Add(wait)
	for !hasWarn(logs, "cannot subscribe") {
		if time.Now().After(deadline) {
			t.Fatalf("no Warn for failed attempts after the loss within %v; Warns: %+v", wait, logs.at(slog.LevelWarn))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sub.LastError(); err == nil {
		t.Fatal("LastError() = nil while attempts fail")
	}

	p.CutPubSub(false)
	r.nextState(t, Subscribed, wait)
	if err := sub.LastError(); err != nil {
		t.Fatalf("LastError() = %v after Subscribed", err)
	}
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d OnState call(s) saw a LastError or Ready that did not match the state", n)
	}
}

func hasWarn(h *captureHandler, substr string) bool {
	for _, c := range h.at(slog.LevelWarn) {
		if strings.Contains(c.msg, substr) {
			return true
		}
	}
	return false
}

func TestSubscribeRejectsTypedNilClient(t *testing.T) {
	r := newRecorder()
	var single *redis.Client
	var cluster *redis.ClusterClient
	for _, tc := range []struct {
		client redis.UniversalClient
		want   string
	}{
		{nil, "invalidate: client is nil"},
		{single, "invalidate: client is a nil *redis.Client"},
		{cluster, "invalidate: client is a nil *redis.ClusterClient"},
	} {
		sub, err := Subscribe(tc.client, r.options("c"))
		if err == nil {
			_ = sub.Close()
			t.Errorf("Subscribe(%T(nil)) accepted the client", tc.client)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Subscribe(%T(nil)) = %q, want %q", tc.client, err, tc.want)
		}
	}
}
