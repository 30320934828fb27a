package tiered

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/internal/remote"
)

// Defaults of the HubOptions fields. HealthCheck, MaxBackoff and LogLength
// are applied by the engines under the Hub (the subscriber and the store),
// whose constants these are.
const (
	DefaultHealthCheck  = invalidate.DefaultHealthCheck
	DefaultMaxBackoff   = invalidate.DefaultMaxBackoff
	DefaultMaxStaleness = 10 * time.Millisecond
	DefaultLogLength    = remote.DefaultLogLength
)

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
	// HealthCheck is how long the subscription may be silent before it is
	// pinged; no answer within another HealthCheck counts as a loss.
	// Default: DefaultHealthCheck (1s). Negative: off. Otherwise at least
	// 1ms.
	HealthCheck time.Duration

	// MaxBackoff caps the pause between attempts to subscribe again.
	// Default: DefaultMaxBackoff (1s). Must be >= 0.
	MaxBackoff time.Duration

	// MaxStaleness bounds how old a local hit may be (see the package doc);
	// while the Hub cannot prove its local tiers that fresh, reads go to
	// Redis. Default: DefaultMaxStaleness. Negative: no proof.
	MaxStaleness time.Duration

	// Observer receives the events of every cache on the Hub, for metrics.
	// Default: nil, nothing is observed and nothing costs.
	Observer Observer

	// WireVersion is the version of the invalidation messages the caches
	// publish: 0 or 3 (the default), or 2 or 1 during a rolling upgrade
	// from a release that reads only those (docs/redis.md). Below 3, a lost
	// subscription purges instead of reading back from the log.
	WireVersion int

	// LogLength is about how many invalidations each namespace's log keeps,
	// for Hubs that lost their subscription to read back; one that missed
	// more purges. On a Cluster, each of the 128 groups' logs keeps
	// ceil(LogLength/128), at least 16. Default: DefaultLogLength. Must be
	// >= 0.
	LogLength int

	// Tracking has Redis itself report every change to the namespaces'
	// keys, whoever makes it (CLIENT TRACKING, Redis 6 or later). A lost
	// subscription then purges. See docs/fleet.md.
	Tracking bool

	// TrackingOnly makes the caches write with plain SET and DEL, which
	// publish nothing: only once every instance of the namespaces has
	// Tracking (docs/fleet.md). Invalidate and InvalidateAll still
	// publish. Requires Tracking.
	TrackingOnly bool

	// Logger receives reports of the subscription: lost, failed attempts
	// (rate-limited), undecodable messages. Caches use it too unless their
	// Options name their own. Default: nil, silent.
	Logger *slog.Logger
}

func (o *HubOptions) validate() error {
	var wire, log, only error
	if o.WireVersion < 0 || o.WireVersion > 3 {
		wire = fmt.Errorf("tiered: WireVersion must be 0 (the default, 3), 1, 2 or 3, got %d", o.WireVersion)
	}
	if o.LogLength < 0 {
		log = fmt.Errorf("tiered: LogLength must be >= 0, got %d", o.LogLength)
	}
	if o.TrackingOnly && !o.Tracking {
		only = errors.New("tiered: TrackingOnly needs Tracking")
	}
	return joinFields(
		checkSubscriber(invalidate.Options{HealthCheck: o.HealthCheck, MaxBackoff: o.MaxBackoff,
			MaxStaleness: max(o.MaxStaleness, 0)}),
		wire, log, only,
	)
}

// Hub owns what is per connection: one pub/sub connection with one channel
// per namespace, one subscriber goroutine (with its health check and
// freshness proofs), and one clock for the local tiers. Caches of any value
// type attach to it with NewCache. A Hub is safe for concurrent use.
type Hub struct {
	client redis.UniversalClient
	sub    *invalidate.Subscriber
	down   *outage // whether Redis is known to be unreachable; see outage.go
	clock  *local.Clock
	log    *slog.Logger
	fenced bool // MaxStaleness > 0: local hits need a fresh proof
	obs    Observer
	wire   int  // the wire version the caches publish
	logLen int  // LogLength (0: the store's default)
	silent bool // TrackingOnly: writes publish nothing
	// maxStaleness is MaxStaleness when fenced, else 0.
	maxStaleness time.Duration

	// joins serializes attach and detach, so that a namespace's membership
	// and the subscriber's set change together: a cache that attaches never
	// finds its namespace on its way out of the set.
	joins sync.Mutex

	// confirmed is set once the connection has been confirmed (a namespace
	// Subscribed or Repaired, or Ready seen by a wait): a refused dial is
	// from then on a restart to wait through, not a wrong address.
	confirmed atomic.Bool

	mu      sync.RWMutex
	members map[string][]member // guarded by mu: attached caches by namespace
	closed  bool                // guarded by mu
}

// member is what a Hub needs of an attached Cache (of any value type). Its
// callbacks run on the subscriber goroutine, under the Hub's read lock.
type member interface {
	onMessage(invalidate.Message)
	onState(invalidate.State, error)
	valueType() reflect.Type
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
	if opts.WireVersion == 0 {
		opts.WireVersion = invalidate.Version
	}
	h := &Hub{
		client:       client,
		log:          opts.Logger,
		fenced:       opts.MaxStaleness > 0,
		obs:          opts.Observer,
		wire:         opts.WireVersion,
		logLen:       opts.LogLength,
		silent:       opts.TrackingOnly,
		maxStaleness: max(opts.MaxStaleness, 0),
		members:      make(map[string][]member),
	}
	sub, err := invalidate.Subscribe(client, invalidate.Options{
		OnMessage:    h.onMessage,
		OnState:      h.onState,
		HealthCheck:  opts.HealthCheck,
		MaxBackoff:   opts.MaxBackoff,
		MaxStaleness: max(opts.MaxStaleness, 0),
		Repair:       opts.WireVersion >= 3 && !opts.Tracking,
		Tracking:     opts.Tracking,
		Logger:       opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	h.sub = sub
	_, cluster := client.(*redis.ClusterClient)
	h.down = &outage{sub: sub, cluster: cluster, every: cmp.Or(opts.MaxBackoff, invalidate.DefaultMaxBackoff)}
	if hc := cmp.Or(opts.HealthCheck, invalidate.DefaultHealthCheck); hc > 0 {
		h.down.silent = 2 * hc
	}
	h.clock = local.NewClock()
	return h, nil
}

// WaitReady returns nil once the Hub's connection is confirmed. It fails
// fast, with an error that wraps the cause, when the Hub has never been
// confirmed and its dial is refused (nothing listens at the address: a
// wrong address, or Redis not running); it waits through everything else
// (a server that does not answer yet, or is loading, and a refused dial
// once the Hub has been confirmed: a restart). When ctx ends first, its
// error carries the last connection error.
func (h *Hub) WaitReady(ctx context.Context) error {
	return h.wait(ctx, "hub", h.sub.Ready)
}

func (h *Hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

// fresh reports whether a local hit may be served now (see MaxStaleness).
func (h *Hub) fresh() bool { return !h.fenced || h.sub.Fresh() }

// attach adds m, a new cache, in namespace. It reports whether the
// namespace is already confirmed on every connection (Current): m may then
// use its (empty) local tier at once, since every message published from
// now on reaches it. Otherwise m waits for its namespace's Subscribed.
func (h *Hub) attach(namespace string, m member) (live bool, err error) {
	h.joins.Lock()
	defer h.joins.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false, ErrHubClosed
	}
	first := len(h.members[namespace]) == 0
	if !first {
		// Caches of one namespace read each other's values: of two types,
		// each would decode the other's bytes as its own.
		if have, want := h.members[namespace][0].valueType(), m.valueType(); have != want {
			h.mu.Unlock()
			return false, fmt.Errorf("tiered: namespace %q already has a cache of %v on this Hub, which a cache of %v would read the values of; give it a namespace of its own", namespace, have, want)
		}
	}
	h.members[namespace] = append(h.members[namespace], m)
	live = !first && h.sub.Current(namespace)
	h.mu.Unlock()
	if first {
		// Errors are the connection's: the subscriber subscribes every
		// namespace of its set again on each new connection.
		_ = h.sub.Add(context.Background(), namespace)
	}
	return live, nil
}

// detach removes m from namespace; after it returns, no callback reaches m.
// The last cache of a namespace takes it out of the subscriber's set: the
// next cache of that namespace waits for its new subscriptions'
// confirmation.
func (h *Hub) detach(namespace string, m member) {
	h.joins.Lock()
	defer h.joins.Unlock()
	h.mu.Lock()
	list := h.members[namespace]
	for i, x := range list {
		if x == m {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	last := len(list) == 0
	if last {
		delete(h.members, namespace)
	} else {
		h.members[namespace] = list
	}
	closed := h.closed
	h.mu.Unlock()
	if last && !closed {
		_ = h.sub.Remove(context.Background(), namespace)
	}
}

// onMessage hands a message to the caches of its namespace. Runs on a
// subscriber goroutine.
func (h *Hub) onMessage(namespace string, msg invalidate.Message) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, m := range h.members[namespace] {
		m.onMessage(msg)
	}
}

// onState follows the subscription: a namespace confirmed or with a gap
// concerns its caches, a lost connection every cache. A confirmation that a
// Remove and a new Add of its namespace have overtaken (the subscriber
// found it just before) is no longer Current: it is ignored, and the
// caches wait for the confirmation of the new Add. The check and the
// callbacks run under mu, so no cache attaches or detaches in between.
func (h *Hub) onState(st invalidate.State, namespace string, err error) {
	if st == invalidate.Subscribed || st == invalidate.Repaired {
		h.confirmed.Store(true)
	}
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
	if st == invalidate.Subscribed && !h.sub.Current(namespace) {
		return
	}
	for _, m := range h.members[namespace] {
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
