package tiered

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
)

// ErrRedisDown is wrapped by the error of a call that the Hub failed at
// once, without sending it, because it knows Redis to be unreachable; the
// error wraps the cause too (say, "connection refused"). See the package
// doc for what the caches do meanwhile.
var ErrRedisDown = errors.New("tiered: Redis is unreachable")

// downError is the error of a call that the Hub did not send: it is
// ErrRedisDown, and unwraps to the evidence.
type downError struct{ cause error }

func (e *downError) Error() string        { return "Redis is unreachable: " + e.cause.Error() }
func (e *downError) Is(target error) bool { return target == ErrRedisDown }
func (e *downError) Unwrap() error        { return e.cause }

// outage knows, from evidence, when Redis is unreachable, so that calls
// stop waiting for a client's redial of a server that is down: the caches'
// Stores ask it (remote.Options.Gate) before every call.
//
// Redis is down when the subscription is not confirmed and the
// Subscriber's latest attempt to connect got no answer at all (its opening
// PING was refused, reset or timed out: invalidate.Subscriber.Unreachable);
// the Subscriber's own attempts to connect again (every MaxBackoff at most)
// are then the probe, and the first that the server answers ends the
// outage.
//
// On a single node it is down too when at least downStreak data calls in a
// row failed for the network or ran out of time, the server answered none
// of the Subscriber's attempts since the first of them, and the
// subscription is not confirmed or has heard nothing for two health
// checks (a hung server: connections open, nothing answered). Then one
// call per MaxBackoff goes to Redis as the probe; its success ends the
// outage. One slow call is never enough, and a subscription that hears
// the server always wins.
type outage struct {
	sub     *invalidate.Subscriber
	cluster bool          // data calls fail per node: only the Subscriber's evidence counts
	silent  time.Duration // twice HealthCheck: a subscription that heard nothing for that long; 0: no health check
	every   time.Duration // MaxBackoff: how often a call probes while data calls are the evidence
	probe   atomic.Int64  // when (UnixNano) the next call may probe

	streak atomic.Int64          // data calls in a row that failed for the network or the clock
	since  atomic.Uint64         // sub.Answers() when the streak began
	last   atomic.Pointer[error] // the streak's latest failure
}

// downStreak is how many data calls in a row must fail, with the
// subscription down, for the Hub to take Redis for unreachable.
const downStreak = 3

// down returns nil while calls should go to Redis, and otherwise the error
// to fail them with.
func (o *outage) down() error {
	ready := o.sub.Ready()
	if !ready {
		if err := o.sub.Unreachable(); err != nil {
			return &downError{cause: err}
		}
	}
	if o.cluster || o.streak.Load() < downStreak || o.since.Load() != o.sub.Answers() || (ready && !o.unheard()) {
		return nil
	}
	p := o.last.Load()
	if p == nil {
		return nil
	}
	now := time.Now().UnixNano()
	if next := o.probe.Load(); now >= next && o.probe.CompareAndSwap(next, now+int64(o.every)) {
		return nil // this call is the probe
	}
	return &downError{cause: *p}
}

// unheard reports whether the subscription has heard nothing from the
// server (no PONG proved it) for two health checks.
func (o *outage) unheard() bool {
	last := o.sub.LastProof()
	return o.silent > 0 && !last.IsZero() && time.Since(last) > o.silent
}

// record takes the outcome of a data call that was sent to Redis (not one
// that down failed).
func (o *outage) record(err error) {
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
		if o.streak.Load() != 0 {
			o.streak.Store(0)
		}
	case errors.Is(err, ErrRedisDown), errors.Is(err, ErrClosed):
	case invalidate.IsNetworkError(err), errors.Is(err, context.DeadlineExceeded):
		cause := err // a copy: taking err's address would move it to the heap on every call
		o.last.Store(&cause)
		if o.streak.Add(1) == 1 {
			o.since.Store(o.sub.Answers())
		}
	}
}
