package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/internal/remote"
)

// DefaultMaxStaleness is HubOptions.MaxStaleness when it is 0.
const DefaultMaxStaleness = 10 * time.Millisecond

// ErrHubClosed is returned by NewCache and WaitReady once the Hub is
// closed. errors.Is(ErrHubClosed, ErrClosed) holds: every call after Close
// is ErrClosed.
var ErrHubClosed error = hubClosedError{}

type hubClosedError struct{}

func (hubClosedError) Error() string        { return "tiered: hub is closed" }
func (hubClosedError) Is(target error) bool { return target == ErrClosed }

// HubOptions configures a Hub: what is per connection. The zero value of
// every field is its default; HealthCheck and MaxStaleness turn their
// feature off when negative.
type HubOptions struct {
	// HealthCheck is how often the invalidation subscription is pinged; no
	// answer within a HealthCheck of a PING counts as a lost connection, so
	// a silently dead one is noticed within twice HealthCheck. Default: 1s.
	// Negative: no health check (see the package doc). Must otherwise be at
	// least 1ms.
	HealthCheck time.Duration

	// MaxBackoff caps the pause between attempts to subscribe again.
	// Default: 1s. Must be >= 0.
	MaxBackoff time.Duration

	// MaxStaleness bounds how old a local hit may be: a local hit never
	// returns a value that had been overwritten by a Set or Delete
	// acknowledged more than MaxStaleness before the read began (see the
	// package doc). The Hub proves it with PINGs on the subscription
	// connection, every MaxStaleness/2 while the process reads (and for 2s
	// after); reads go to Redis while no proof is young enough. Negative:
	// no proof. Default: DefaultMaxStaleness (10ms).
	MaxStaleness time.Duration

	// Observer receives the events of every cache on the Hub, for metrics
	// (see Observer; the tiercache/otel module adapts it to
	// OpenTelemetry). Default: nil, nothing is observed and nothing costs.
	Observer Observer

	// WireVersion is the version of the invalidation messages the Hub's
	// caches publish. 2, the default, carries the publisher's send time, so
	// that receivers can observe invalidation lag. 1 is the format of
	// releases before it: set it while a rolling upgrade from such a release
	// is under way (they read a version 2 message as undecodable, and purge
	// their whole local tier for each), then remove it. This release reads
	// both. Must be 0, 1 or 2.
	WireVersion int

	// Logger receives reports of the subscription: lost, failed attempts
	// (rate-limited), undecodable messages. Caches use it too unless their
	// Options name their own. Default: nil, silent.
	Logger *slog.Logger
}

func (o *HubOptions) validate() error {
	var wire error
	if o.WireVersion < 0 || o.WireVersion > 2 {
		wire = fmt.Errorf("tiered: WireVersion must be 0 (the default, 2), 1 or 2, got %d", o.WireVersion)
	}
	return errors.Join(
		orOff("HealthCheck", o.HealthCheck),
		nonNegative("MaxBackoff", o.MaxBackoff),
		orOff("MaxStaleness", o.MaxStaleness),
		wire,
	)
}

// Hub owns what is per connection: one pub/sub connection with one channel
// per namespace, one subscriber goroutine (with its health check and
// freshness proofs), and one clock for the local tiers. Caches of any value
// type attach to it with NewCache. A Hub is safe for concurrent use.
type Hub struct {
	client redis.UniversalClient
	sub    *invalidate.Subscriber
	clock  *local.Clock
	log    *slog.Logger
	fenced bool // MaxStaleness > 0: local hits need a fresh proof
	obs    Observer
	wireV1 bool // publish wire version 1 (no send time)
	// maxStaleness is MaxStaleness when fenced, else 0.
	maxStaleness time.Duration

	// joins serializes attach and detach, so that a channel's membership
	// and the subscriber's set change together: a cache that attaches never
	// finds its channel on its way out of the set.
	joins sync.Mutex

	mu      sync.RWMutex
	members map[string][]member // guarded by mu: attached caches by channel
	closed  bool                // guarded by mu
}

// member is what a Hub needs of an attached Cache (of any value type). Its
// callbacks run on the subscriber goroutine, under the Hub's read lock.
type member interface {
	onMessage(invalidate.Message)
	onState(invalidate.State, error)
	Close() error
}

// NewHub returns a Hub over client. It does not wait for Redis (see
// WaitReady). It fails for invalid options, naming the field, and for a
// client whose routing would lose invalidations (a Ring), naming its type. Close it after the caches on it (or let it close them).
// The Hub never closes client.
func NewHub(client redis.UniversalClient, opts HubOptions) (*Hub, error) {
	if err := remote.CheckClient(client); err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.MaxStaleness == 0 {
		opts.MaxStaleness = DefaultMaxStaleness
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		client:       client,
		log:          opts.Logger,
		fenced:       opts.MaxStaleness > 0,
		obs:          opts.Observer,
		wireV1:       opts.WireVersion == 1,
		maxStaleness: max(opts.MaxStaleness, 0),
		members:      make(map[string][]member),
	}
	sub, err := invalidate.Subscribe(client, invalidate.Options{
		OnMessage:    h.onMessage,
		OnState:      h.onState,
		HealthCheck:  opts.HealthCheck,
		MaxBackoff:   opts.MaxBackoff,
		MaxStaleness: max(opts.MaxStaleness, 0),
		Logger:       opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	h.sub = sub
	h.clock = local.NewClock()
	return h, nil
}

// WaitReady returns nil once the Hub's connection is confirmed, or, when ctx
// ends first, an error that carries the last connection error (say "dial
// tcp …: connection refused"), so that a wrong address shows at startup.
func (h *Hub) WaitReady(ctx context.Context) error {
	return h.wait(ctx, "hub", h.sub.Ready)
}

// wait polls ready until it holds, ctx ends, or the Hub closes.
func (h *Hub) wait(ctx context.Context, what string, ready func() bool) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if h.isClosed() {
			return ErrHubClosed
		}
		if ready() {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			if last := h.sub.LastError(); last != nil {
				return fmt.Errorf("tiered: %s not ready: %w (last Redis connection error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("tiered: %s not ready: %w", what, ctx.Err())
		}
	}
}

func (h *Hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

// fresh reports whether a local hit may be served now (see MaxStaleness).
func (h *Hub) fresh() bool { return !h.fenced || h.sub.Fresh() }

// attach adds m, a new cache, on channel. It reports whether the channel is
// already confirmed on the current connection (Current): m may then use its
// (empty) local tier at once, since every message published from now on
// reaches it. Otherwise m waits for its channel's Subscribed.
func (h *Hub) attach(channel string, m member) (live bool, err error) {
	h.joins.Lock()
	defer h.joins.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false, ErrHubClosed
	}
	first := len(h.members[channel]) == 0
	h.members[channel] = append(h.members[channel], m)
	live = !first && h.sub.Current(channel)
	h.mu.Unlock()
	if first {
		// Errors are the connection's: the subscriber subscribes every
		// channel of its set again on each new connection.
		_ = h.sub.Add(context.Background(), channel)
	}
	return live, nil
}

// detach removes m from channel; after it returns, no callback reaches m.
// The last cache of a channel takes it out of the subscriber's set: the
// next cache of that channel waits for its new SUBSCRIBE's confirmation.
func (h *Hub) detach(channel string, m member) {
	h.joins.Lock()
	defer h.joins.Unlock()
	h.mu.Lock()
	list := h.members[channel]
	for i, x := range list {
		if x == m {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	last := len(list) == 0
	if last {
		delete(h.members, channel)
	} else {
		h.members[channel] = list
	}
	closed := h.closed
	h.mu.Unlock()
	if last && !closed {
		_ = h.sub.Remove(context.Background(), channel)
	}
}

// onMessage hands a message to the caches of its channel. Runs on the
// subscriber goroutine.
func (h *Hub) onMessage(channel string, msg invalidate.Message) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, m := range h.members[channel] {
		m.onMessage(msg)
	}
}

// onState follows the subscription: a channel confirmed or with a gap
// concerns its caches, a lost connection every cache. A confirmation that a
// Remove and a new Add of its channel have overtaken (the subscriber found
// it just before) is no longer Current: it is ignored, and the caches wait
// for the confirmation of the new Add. The check and the callbacks run
// under mu, so no cache attaches or detaches in between.
func (h *Hub) onState(st invalidate.State, channel string, err error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if st == invalidate.Broken {
		for _, list := range h.members {
			for _, m := range list {
				m.onState(st, err)
			}
		}
		return
	}
	if st == invalidate.Subscribed && !h.sub.Current(channel) {
		return
	}
	for _, m := range h.members[channel] {
		m.onState(st, err)
	}
}

// Close closes every cache still attached (each returns ErrClosed from then
// on), then stops the subscriber and the clock and waits for their
// goroutines. It is idempotent and safe to call concurrently. It does not
// close the Redis client.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.sub.Close() // waits for a Close in progress
		return nil
	}
	h.closed = true
	var all []member
	for _, list := range h.members {
		all = append(all, list...)
	}
	h.mu.Unlock()
	for _, m := range all {
		_ = m.Close()
	}
	err := h.sub.Close()
	h.clock.Close()
	return err
}
