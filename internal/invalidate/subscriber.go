package invalidate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is the health of a subscription, as reported to Options.OnState.
type State int

const (
	// Subscribed means the server confirmed a channel on the current
	// connection: every message published on it from now on will be
	// delivered, or reported as a Gap if it cannot be decoded (until
	// Broken, or until the channel is removed).
	Subscribed State = iota + 1
	// Broken means the connection was lost or the health check failed:
	// messages on every channel may have been lost since their last
	// Subscribed.
	Broken
	// Gap means messages on one channel may have been lost while the
	// subscription itself holds (a message arrived that this version cannot
	// decode); the receiver must drop everything it cached from before for
	// that channel, and may keep using its cache afterwards. It is an event,
	// not a change of state: the channel is still Subscribed.
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

// Defaults and limits for Options.
const (
	// DefaultHealthCheck is the HealthCheck used when Options.HealthCheck is 0.
	DefaultHealthCheck = time.Second
	// DefaultMaxBackoff is the MaxBackoff used when Options.MaxBackoff is 0.
	DefaultMaxBackoff = time.Second
	// MinMaxStaleness is the least positive Options.MaxStaleness: a fence
	// PING at most every 500µs, 2000 a second.
	MinMaxStaleness = time.Millisecond
)

// ErrClosed is returned by Add and Remove once Close has begun.
var ErrClosed = errors.New("invalidate: Subscriber is closed")

// minBackoff is the first pause between reconnect attempts.
const minBackoff = 10 * time.Millisecond

// warnEvery is the least time between two Warn records about the same kind
// of repeated trouble (undecodable messages, failed subscribe attempts). A
// Subscriber reads it once, in Subscribe; tests may shorten it.
var warnEvery = 10 * time.Second

// Options configure a Subscriber.
type Options struct {
	// Channels is the initial set of channels, usually Channel(namespace)
	// for each namespace served; Add and Remove change the set later. It
	// may be empty. A channel must not be empty or appear twice.
	Channels []string
	// OnMessage receives each well-formed message on a channel of the set,
	// with its channel. It is called from the Subscriber's goroutine, one
	// call at a time, in order. Required.
	OnMessage func(channel string, m Message)
	// OnState is called on every change of state: Subscribed with a
	// channel each time the server confirms it on a connection, Broken
	// with channel "" once per loss of a connection, with its cause. It is
	// also called with Gap, the channel and the cause, for every message on
	// a channel of the set that cannot be decoded (it may have named keys
	// to drop); a Gap changes no state, so it may come many times in a row,
	// and the channel is still Subscribed after it. Called from the same
	// goroutine as OnMessage, in order with it. Required.
	OnState func(st State, channel string, err error)
	// HealthCheck: every HealthCheck the Subscriber sends PING, and if
	// nothing arrives within a HealthCheck of it, it reports Broken and
	// reconnects (time spent in the callbacks does not count). 0 means
	// DefaultHealthCheck (1s). Negative turns the health check off (see the
	// package doc for what then ends a silently dead connection).
	HealthCheck time.Duration
	// MaxBackoff caps the pause between reconnect attempts, which starts at
	// 10ms and doubles after each failed attempt (each pause is drawn at
	// random from its upper half, so that many instances do not reconnect in
	// step). 0 means DefaultMaxBackoff (1s); it must not be negative.
	MaxBackoff time.Duration
	// MaxStaleness turns on the freshness fence: Fresh reports true only
	// while every message published on the channels more than MaxStaleness
	// before the call has been handled (see Subscriber.Fresh). 0 or
	// negative means no fence: Fresh always reports true. A positive value
	// must be at least MinMaxStaleness (1ms).
	MaxStaleness time.Duration
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
	// FencePings is the number of PINGs sent to prove freshness (see
	// Subscriber.Fresh).
	FencePings uint64
	// HealthPings is the number of PINGs the health check sent.
	HealthPings uint64
}

// Subscriber receives invalidation messages on a set of channels, over one
// pub/sub connection, on its own goroutine, until Close.
type Subscriber struct {
	client    redis.UniversalClient // the Subscriber's own (see ownClient), closed by Close
	conns     *connSet              // what client dialed: see connSet
	opts      Options               // validated, defaults filled in; Channels is nil (see set)
	log       *slog.Logger
	warnEvery time.Duration // warnEvery when Subscribe ran

	cancel    context.CancelFunc // cancels the goroutine's context
	done      chan struct{}      // closed when the goroutine exits
	closeOnce sync.Once

	mu     sync.Mutex
	ps     *redis.PubSub  // guarded by mu: the goroutine's current connection, nil between attempts
	closed bool           // guarded by mu: Close has begun; no new connection may be stored
	unsubs map[string]int // guarded by mu: UNSUBSCRIBEs sent on ps and not yet confirmed, per channel; nil with each new ps
	epochs uint64         // guarded by mu: the last epoch given to a channel by Add (see set)
	// pending holds, per channel, the epochs of the SUBSCRIBEs sent on ps
	// and not yet confirmed, oldest first; current, the epoch of each
	// channel's latest confirmation on ps. Both are guarded by mu and
	// reset with each new ps.
	pending map[string][]uint64
	current map[string]uint64

	// set is the set of channels, each with the epoch of the Add that put
	// it there (a channel removed and added again has a new one). It is
	// replaced under mu, never modified, so that the goroutine may read it
	// without mu.
	set atomic.Pointer[map[string]uint64]

	messages   atomic.Uint64
	malformed  atomic.Uint64
	reconnects atomic.Uint64
	lastErr    atomic.Pointer[error] // see LastError; nil while the connection is confirmed
	ready      atomic.Bool           // see Ready

	fence fence
}

// Subscribe validates opts and starts a Subscriber on its own goroutine. It
// returns at once: it never waits for Redis and does not fail because Redis
// is unreachable (the Subscriber keeps trying; Ready reports true and OnState
// reports Subscribed for each channel when it succeeds, and until then
// LastError says why it has not). It fails only for a nil client (untyped,
// or a nil pointer such as a nil *redis.Client), a client that is neither a
// *redis.Client nor a *redis.ClusterClient, or bad Options, naming the
// field. The Subscriber dials its connections with a client of its own, made
// from the options of the one it is given (see ownClient); it never closes
// the one it is given.
func Subscribe(client redis.UniversalClient, opts Options) (*Subscriber, error) {
	switch {
	case client == nil:
		return nil, errors.New("invalidate: client must not be nil")
	case isNilPointer(client):
		return nil, fmt.Errorf("invalidate: client is a nil %T", client)
	case opts.OnMessage == nil:
		return nil, errors.New("invalidate: OnMessage must not be nil")
	case opts.OnState == nil:
		return nil, errors.New("invalidate: OnState must not be nil")
	case opts.MaxBackoff < 0:
		return nil, fmt.Errorf("invalidate: MaxBackoff must be >= 0, got %v", opts.MaxBackoff)
	case opts.MaxStaleness > 0 && opts.MaxStaleness < MinMaxStaleness:
		return nil, fmt.Errorf("invalidate: MaxStaleness must be <= 0 (no fence) or at least %v, got %v",
			MinMaxStaleness, opts.MaxStaleness)
	}
	set := make(map[string]uint64, len(opts.Channels))
	for i, ch := range opts.Channels {
		if ch == "" {
			return nil, fmt.Errorf("invalidate: Channels[%d] must not be empty", i)
		}
		if _, dup := set[ch]; dup {
			return nil, fmt.Errorf("invalidate: Channels[%d] repeats %q", i, ch)
		}
		set[ch] = uint64(i + 1)
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
	conns := &connSet{}
	own, err := ownClient(client, conns)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{
		client:    own,
		conns:     conns,
		opts:      opts,
		log:       log,
		warnEvery: warnEvery,
		cancel:    cancel,
		done:      make(chan struct{}),
	}
	s.opts.Channels = nil
	s.epochs = uint64(len(set))
	s.set.Store(&set)
	s.fence.init(opts.MaxStaleness)
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

// Add puts channel in the set and, if a connection is up, sends SUBSCRIBE
// for it on that connection; OnState reports Subscribed for it once the
// server confirms. Each later connection subscribes to it too, until Remove.
// Adding a channel already in the set does nothing. The channel is in the
// set when Add returns, even with an error: an error means SUBSCRIBE could
// not be sent, which ends the connection (reported as Broken if it was
// confirmed), and the next one subscribes to the channel. Add fails for an
// empty channel and, with ErrClosed, once Close has begun. It is safe to
// call concurrently, from OnMessage and OnState too.
func (s *Subscriber) Add(ctx context.Context, channel string) error {
	if channel == "" {
		return errors.New("invalidate: Add: channel must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old := *s.set.Load()
	if _, ok := old[channel]; ok {
		return nil
	}
	set := maps.Clone(old)
	if set == nil {
		set = make(map[string]uint64, 1)
	}
	s.epochs++
	set[channel] = s.epochs
	s.set.Store(&set)
	if s.ps == nil {
		return nil // the next connection subscribes to the whole set
	}
	s.pending[channel] = append(s.pending[channel], s.epochs)
	if err := s.ps.Subscribe(ctx, channel); err != nil {
		return fmt.Errorf("invalidate: subscribe to %q: %w", channel, err)
	}
	return nil
}

// Remove takes channel out of the set and, if a connection is up, sends
// UNSUBSCRIBE for it on that connection. Messages on it that arrive after
// Remove returns are ignored; one whose delivery had begun may still reach
// OnMessage. Removing a channel not in the set does nothing. The channel is
// out of the set when Remove returns, even with an error (UNSUBSCRIBE could
// not be sent, which ends the connection). Remove fails with ErrClosed once
// Close has begun. It is safe to call concurrently, from OnMessage and
// OnState too.
func (s *Subscriber) Remove(ctx context.Context, channel string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old := *s.set.Load()
	if _, ok := old[channel]; !ok {
		return nil
	}
	set := maps.Clone(old)
	delete(set, channel)
	s.set.Store(&set)
	delete(s.current, channel)
	if s.ps == nil {
		return nil
	}
	if s.unsubs == nil {
		s.unsubs = make(map[string]int)
	}
	s.unsubs[channel]++ // its confirmation is no loss (see loop.unsubscribed)
	if err := s.ps.Unsubscribe(ctx, channel); err != nil {
		return fmt.Errorf("invalidate: unsubscribe from %q: %w", channel, err)
	}
	return nil
}

// inSet reports whether channel is in the set.
func (s *Subscriber) inSet(channel string) bool {
	_, ok := (*s.set.Load())[channel]
	return ok
}

// Current reports whether channel is in the set and the current connection
// has confirmed the SUBSCRIBE of the Add that put it there: every message
// published on it from now on will be delivered (until Broken, or Remove).
// A Subscribed that a Remove and a new Add have overtaken (reported as the
// loop found it, just before) leaves Current false: an owner that acts on
// Subscribed checks Current first. It is safe to call concurrently, from
// the callbacks too.
func (s *Subscriber) Current(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := (*s.set.Load())[channel]
	return ok && s.current[channel] == e
}

// Close stops the Subscriber and waits for its goroutines to exit; no
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
		// Unblocks a read, or a write stuck on a peer that reads nothing,
		// in progress; the goroutine closes ps too, which is harmless.
		s.conns.closeAll()
		if ps != nil {
			_ = ps.Close()
		}
	})
	<-s.done
	_ = s.client.Close()
	return nil
}

// Stats returns the Subscriber's counters.
func (s *Subscriber) Stats() SubscriberStats {
	return SubscriberStats{
		Messages:    s.messages.Load(),
		Malformed:   s.malformed.Load(),
		Reconnects:  s.reconnects.Load(),
		FencePings:  s.fence.pings.Load(),
		HealthPings: s.fence.healthPings.Load(),
	}
}

// Ready reports whether the current connection is confirmed: the server
// confirmed a channel of the set on it or, while the set is empty, answered
// a PING on it. It turns false when the connection is lost (before OnState
// reports Broken) and true again when the next one is confirmed (before
// OnState reports its first Subscribed). It is safe to call concurrently.
func (s *Subscriber) Ready() bool { return s.ready.Load() }

// LastError returns the error of the most recent failed attempt to
// subscribe or of the most recent loss of the connection, or nil while the
// connection is confirmed (and before the first attempt has failed). The
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
