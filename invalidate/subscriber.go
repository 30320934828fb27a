package invalidate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is the health of a subscription, as reported to Options.OnState.
type State int

const (
	// Subscribed means the server confirmed the subscription: every message
	// published from now on will be delivered, or reported as a Gap if it
	// cannot be decoded (until Broken).
	Subscribed State = iota + 1
	// Broken means the connection was lost or the health check failed:
	// messages may have been lost since the last Subscribed.
	Broken
	// Gap means messages may have been lost while the subscription itself
	// holds (a message arrived that this version cannot decode); the
	// receiver must drop everything it cached from before, and may keep
	// using its cache afterwards. It is an event, not a change of state: the
	// subscription is still Subscribed.
	Gap
)

// String returns "Subscribed", "Broken", "Gap" or "State(n)".
func (s State) String() string {
	switch s {
	case Subscribed:
		return "Subscribed"
	case Broken:
		return "Broken"
	case Gap:
		return "Gap"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Defaults for Options.
const (
	// DefaultHealthCheck is the HealthCheck used when Options.HealthCheck is 0.
	DefaultHealthCheck = time.Second
	// DefaultMaxBackoff is the MaxBackoff used when Options.MaxBackoff is 0.
	DefaultMaxBackoff = time.Second
)

// minBackoff is the first pause between reconnect attempts.
const minBackoff = 10 * time.Millisecond

// warnEvery is the least time between two Warn records about the same kind
// of repeated trouble (undecodable messages, failed subscribe attempts). A
// Subscriber reads it once, in Subscribe; tests may shorten it.
var warnEvery = 10 * time.Second

// Options configure a Subscriber.
type Options struct {
	// Channel to subscribe to, usually Channel(namespace). Required.
	Channel string
	// OnMessage receives each well-formed message. It is called from the
	// Subscriber's goroutine, one call at a time, in order. Required.
	OnMessage func(Message)
	// OnState is called on every change of state: Subscribed after each
	// (re)subscription is confirmed, Broken once per loss, with its cause.
	// It is also called with Gap, and its cause, for every message that
	// cannot be decoded (it may have named keys to drop); a Gap changes no
	// state, so it may come many times in a row, and the subscription is
	// still Subscribed after it. Called from the same goroutine as
	// OnMessage, in order with it. Required.
	OnState func(State, error)
	// HealthCheck: after this long with nothing received the Subscriber
	// sends PING, and if nothing arrives within another HealthCheck it
	// reports Broken and reconnects. Time spent in OnMessage and OnState does
	// not count. 0 means DefaultHealthCheck (1s); it must not be negative.
	HealthCheck time.Duration
	// MaxBackoff caps the pause between reconnect attempts, which starts at
	// 10ms and doubles after each failed attempt (each pause is drawn at
	// random from its upper half, so that many instances do not reconnect in
	// step). 0 means DefaultMaxBackoff (1s); it must not be negative.
	MaxBackoff time.Duration
	// Logger receives warnings (lost subscriptions; undecodable messages and
	// failed subscribe attempts, each kind at most once per 10s with the
	// number held back since) and debug details. nil means silent.
	Logger *slog.Logger
}

// SubscriberStats are counters of a Subscriber since it started.
type SubscriberStats struct {
	// Messages is the number of messages passed to OnMessage.
	Messages uint64
	// Malformed is the number of payloads that Decode rejected (each was
	// reported as a Gap).
	Malformed uint64
	// Reconnects is the number of connection attempts after the first.
	Reconnects uint64
}

// Subscriber receives invalidation messages on one channel, on its own
// goroutine, until Close.
type Subscriber struct {
	client    redis.UniversalClient
	opts      Options // validated, defaults filled in
	log       *slog.Logger
	warnEvery time.Duration // warnEvery when Subscribe ran

	cancel    context.CancelFunc // cancels the goroutine's context
	done      chan struct{}      // closed when the goroutine exits
	closeOnce sync.Once

	mu     sync.Mutex
	ps     *redis.PubSub // guarded by mu: the goroutine's current subscription, nil between attempts
	closed bool          // guarded by mu: Close has begun; no new subscription may be stored

	messages   atomic.Uint64
	malformed  atomic.Uint64
	reconnects atomic.Uint64
	lastErr    atomic.Pointer[error] // see LastError; nil while subscribed
}

// Subscribe validates opts and starts a Subscriber on its own goroutine. It
// returns at once: it never waits for Redis and does not fail because Redis
// is unreachable (the Subscriber keeps trying; OnState reports Subscribed
// when it succeeds, and until then LastError says why it has not). It fails
// only for a nil client (untyped, or a nil pointer such as a nil
// *redis.Client) or bad Options, naming the field.
func Subscribe(client redis.UniversalClient, opts Options) (*Subscriber, error) {
	switch {
	case client == nil:
		return nil, errors.New("invalidate: client must not be nil")
	case isNilPointer(client):
		return nil, fmt.Errorf("invalidate: client is a nil %T", client)
	case opts.Channel == "":
		return nil, errors.New("invalidate: Channel must not be empty")
	case opts.OnMessage == nil:
		return nil, errors.New("invalidate: OnMessage must not be nil")
	case opts.OnState == nil:
		return nil, errors.New("invalidate: OnState must not be nil")
	case opts.HealthCheck < 0:
		return nil, fmt.Errorf("invalidate: HealthCheck must be >= 0, got %v", opts.HealthCheck)
	case opts.MaxBackoff < 0:
		return nil, fmt.Errorf("invalidate: MaxBackoff must be >= 0, got %v", opts.MaxBackoff)
	}
	if opts.HealthCheck == 0 {
		opts.HealthCheck = DefaultHealthCheck
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{
		client:    client,
		opts:      opts,
		log:       log.With(slog.String("channel", opts.Channel)),
		warnEvery: warnEvery,
		cancel:    cancel,
		done:      make(chan struct{}),
	}
	go s.run(ctx)
	return s, nil
}

// isNilPointer reports whether client is a typed nil pointer, such as a nil
// *redis.Client: it passes client == nil, and would crash the goroutine at
// the first call.
func isNilPointer(client redis.UniversalClient) bool {
	v := reflect.ValueOf(client)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Close stops the Subscriber and waits for its goroutine to exit; no
// callback runs after Close returns. It is idempotent, safe to call
// concurrently, and always returns nil. It must not be called from
// OnMessage or OnState (it would wait for itself).
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.closed = true
		ps := s.ps
		s.ps = nil
		s.mu.Unlock()
		if ps != nil {
			// Unblocks a read in progress; the goroutine closes it too,
			// which is harmless.
			_ = ps.Close()
		}
	})
	<-s.done
	return nil
}

// Stats returns the Subscriber's counters.
func (s *Subscriber) Stats() SubscriberStats {
	return SubscriberStats{
		Messages:   s.messages.Load(),
		Malformed:  s.malformed.Load(),
		Reconnects: s.reconnects.Load(),
	}
}

// LastError returns the error of the most recent failed attempt to
// subscribe or of the most recent loss of the subscription, or nil while the
// subscription is confirmed (and before the first attempt has failed). The
// error wraps the one from go-redis, so a dial error shows as it is (say,
// "connection refused"). It is safe to call concurrently, from OnState too:
// there it returns nil with Subscribed and the cause of the loss with Broken.
func (s *Subscriber) LastError() error {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// setLastError records err for LastError; nil clears it.
func (s *Subscriber) setLastError(err error) {
	if err == nil {
		s.lastErr.Store(nil)
		return
	}
	s.lastErr.Store(&err)
}

// run is the Subscriber's goroutine: one subscription after another until
// ctx ends.
func (s *Subscriber) run(ctx context.Context) {
	defer close(s.done)
	l := loop{
		s:           s,
		backoff:     min(minBackoff, s.opts.MaxBackoff),
		gapWarn:     warnLimiter{every: s.warnEvery},
		attemptWarn: warnLimiter{every: s.warnEvery},
	}
	for first := true; ; first = false {
		if !first {
			if !l.pause(ctx) {
				return
			}
			s.reconnects.Add(1)
		}
		// Subscribe dials and sends SUBSCRIBE but reports no error: a
		// failure shows up in the first Receive.
		ps := s.client.Subscribe(ctx, s.opts.Channel)
		if !s.setPubSub(ps) {
			_ = ps.Close()
			return
		}
		err := l.receive(ctx, ps)
		s.setPubSub(nil)
		_ = ps.Close()
		if ctx.Err() != nil {
			return
		}
		l.lost(err)
	}
}

// setPubSub records the current subscription for Close. It reports false,
// storing nothing, once Close has begun.
func (s *Subscriber) setPubSub(ps *redis.PubSub) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.ps = ps
	return true
}

// loop is the state of the goroutine, touched by it alone.
type loop struct {
	s           *Subscriber
	reported    State         // last state reported to OnState (never Gap), 0 before the first
	backoff     time.Duration // the next pause's upper bound
	gapWarn     warnLimiter   // Warn records about undecodable messages
	attemptWarn warnLimiter   // Warn records about failed subscribe attempts
}

// receive reads from ps until the subscription fails, and returns why.
//
// It reads with no deadline: a read that times out in the middle of a reply
// has consumed part of it, and go-redis (ReceiveTimeout, which keeps the
// connection after a timeout) would parse the rest as a reply of its own,
// so a message could vanish without an error. The health check runs beside
// the read instead (see watchdog) and ends it by closing ps.
func (l *loop) receive(ctx context.Context, ps *redis.PubSub) error {
	s := l.s
	w := startWatchdog(ctx, ps, s.opts.HealthCheck)
	defer w.stop()
	confirmed := false // the server confirmed the subscription on ps
	for {
		w.reading()
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cause := w.failure(); cause != nil {
				return cause
			}
			return err
		}
		w.received()

		switch m := msg.(type) {
		case *redis.Message:
			if m.Channel != s.opts.Channel {
				s.log.Debug("invalidate: message on another channel", slog.String("other", m.Channel))
				continue
			}
			dec, err := Decode([]byte(m.Payload))
			if err != nil {
				l.gap(len(m.Payload), err)
				continue
			}
			s.messages.Add(1)
			s.opts.OnMessage(dec)
		case *redis.Subscription:
			if m.Channel != s.opts.Channel {
				continue
			}
			switch m.Kind {
			case "subscribe":
				if confirmed {
					// go-redis replaced the connection without reporting an
					// error (releaseConn reconnects an unusable connection
					// even after a successful read): messages may have been
					// lost in between.
					l.lost(errors.New("invalidate: connection replaced by the client"))
				}
				confirmed = true
				l.backoff = min(minBackoff, s.opts.MaxBackoff)
				s.setLastError(nil)
				l.report(Subscribed, nil)
			case "unsubscribe":
				return fmt.Errorf("invalidate: server unsubscribed the connection from %q", m.Channel)
			}
		case *redis.Pong:
			// The health check's answer; received() has noted it.
		default:
			s.log.Debug("invalidate: ignoring unexpected reply", slog.String("type", fmt.Sprintf("%T", msg)))
		}
	}
}

// watchdog is the health check of one subscription. While the reader
// waits, it sends PING after every interval with nothing received, and
// closes the subscription (ending the read) if nothing arrives within an
// interval after a PING. Time the reader spends in callbacks is not held
// against the connection.
type watchdog struct {
	ps      *redis.PubSub
	every   time.Duration
	busy    atomic.Bool   // the reader is handling a reply, not reading
	traffic chan struct{} // capacity 1: the reader received a reply
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when run returns

	mu  sync.Mutex
	err error // guarded by mu: why the watchdog closed ps
}

func startWatchdog(ctx context.Context, ps *redis.PubSub, every time.Duration) *watchdog {
	w := &watchdog{
		ps:      ps,
		every:   every,
		traffic: make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go w.run(ctx)
	return w
}

// received tells the watchdog the reader got a reply and is handling it.
func (w *watchdog) received() {
	w.busy.Store(true) // before the signal: a timer that fires in between must not judge
	select {
	case w.traffic <- struct{}{}:
	default:
	}
}

// reading tells the watchdog the reader is waiting for the next reply.
func (w *watchdog) reading() { w.busy.Store(false) }

// failure returns why the watchdog closed the subscription, or nil.
func (w *watchdog) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// stop ends the watchdog and waits for it.
func (w *watchdog) stop() {
	close(w.quit)
	<-w.done
}

func (w *watchdog) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTimer(w.every)
	defer t.Stop()
	pinged := false // a PING is outstanding: nothing received since it was sent
	for {
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		case <-w.traffic:
			pinged = false
			t.Reset(w.every)
		case <-t.C:
			select {
			case <-w.traffic: // a reply came as the timer fired
				pinged = false
				t.Reset(w.every)
				continue
			default:
			}
			if w.busy.Load() {
				t.Reset(w.every)
				continue
			}
			if pinged {
				w.fail(fmt.Errorf("invalidate: health check: no reply to PING within %v", w.every))
				return
			}
			if err := w.ps.Ping(ctx); err != nil {
				w.fail(fmt.Errorf("invalidate: health check: PING: %w", err))
				return
			}
			pinged = true
			t.Reset(w.every)
		}
	}
}

// fail records err and closes the subscription, which ends the reader's
// Receive with an error.
func (w *watchdog) fail(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	_ = w.ps.Close()
}

// gap handles a payload on the channel that Decode rejected, of n bytes: it
// may have named keys to drop, so it is counted and reported as a Gap. The
// Warn is rate-limited, since a writer of a newer version sends one with
// every write.
func (l *loop) gap(n int, err error) {
	s := l.s
	s.malformed.Add(1)
	err = fmt.Errorf("invalidate: message of %d bytes on %q cannot be decoded: %w", n, s.opts.Channel, err)
	if ok, suppressed := l.gapWarn.allow(time.Now()); ok {
		s.log.Warn("invalidate: cannot decode a message; reporting a gap",
			slog.Any("error", err), slog.Int("suppressed", suppressed))
	} else {
		s.log.Debug("invalidate: cannot decode a message; reporting a gap", slog.Any("error", err))
	}
	l.report(Gap, err)
}

// lost handles the end of a subscription or of an attempt at one; err
// becomes LastError. If the last report was Subscribed, the loss is logged
// and reported as Broken. Otherwise an attempt failed: that is logged at
// Warn at most once per warnEvery (with the number held back since), and
// at Debug the other times.
func (l *loop) lost(err error) {
	s := l.s
	if l.reported != Subscribed {
		err = fmt.Errorf("invalidate: subscribe to %q: %w", s.opts.Channel, err)
		s.setLastError(err)
		if ok, suppressed := l.attemptWarn.allow(time.Now()); ok {
			s.log.Warn("invalidate: cannot subscribe; retrying",
				slog.Any("error", err), slog.Int("suppressed", suppressed))
		} else {
			s.log.Debug("invalidate: subscribe attempt failed", slog.Any("error", err))
		}
		return
	}
	err = fmt.Errorf("invalidate: subscription to %q lost: %w", s.opts.Channel, err)
	s.setLastError(err)
	s.log.Warn("invalidate: subscription lost; messages may have been missed", slog.Any("error", err))
	l.report(Broken, err)
}

// report calls OnState: with Gap every time, leaving the state reported as
// it was; with Subscribed or Broken unless st was the last state reported.
func (l *loop) report(st State, err error) {
	if st == Gap {
		l.s.opts.OnState(Gap, err)
		return
	}
	if l.reported == st {
		return
	}
	if st == Subscribed && l.reported != 0 {
		l.s.log.Info("invalidate: subscribed again")
	}
	l.reported = st
	l.s.opts.OnState(st, err)
}

// pause waits before the next attempt: a random time in the upper half of
// the current backoff, which then doubles up to MaxBackoff. It reports
// false if ctx ended first.
func (l *loop) pause(ctx context.Context) bool {
	d := l.backoff/2 + rand.N(l.backoff/2+1)
	l.backoff = min(2*l.backoff, l.s.opts.MaxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
