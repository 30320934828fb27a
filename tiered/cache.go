package tiered

import (
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

// ErrNotFound is returned for a key that is in neither tier (errors.Is
// matches it in every error that carries it).
var ErrNotFound = remote.ErrNotFound

// ErrClosed is returned by every call made after Close.
var ErrClosed = errors.New("tiered: cache is closed")

// The states of a Cache. Only in stateLive does the local tier answer reads
// or take fills: the subscription is confirmed, so every invalidation
// published from then on reaches this instance.
const (
	stateBypass int32 = iota // subscription not (yet, or no longer) confirmed
	stateLive
	stateClosed
)

// Cache is a two-tier cache: a per-process LRU in front of a namespaced Redis
// store, kept consistent across instances by invalidation messages. It is
// safe for concurrent use. See the package doc for its guarantees.
type Cache[V any] struct {
	hub         *Hub
	ownHub      bool // made by New: Close closes the hub too
	client      redis.UniversalClient
	namespace   string
	store       *remote.Store
	local       *local.Cache[string, entry[V]]
	codec       Codec[V]
	log         *slog.Logger
	obs         Observer // the Hub's; nil: nothing observed
	origin      invalidate.Origin
	ttl         time.Duration
	localTTL    time.Duration
	loadTimeout time.Duration
	notFoundTTL time.Duration
	ttlJitter   float64
	leaseTTL    time.Duration // <= 0: no leases
	sizer       func(V) int   // Options.Sizer; nil: the encoded size
	localOff    bool          // LocalSize < 0: no local tier; the cache never goes live

	refreshAhead float64    // 0: off
	refreshes    refreshSet // the keys being refreshed ahead; see refresh.go

	staleIfError time.Duration                       // 0: off
	suspect      *local.Cache[string, staleEntry[V]] // with StaleIfError: what was held when the subscription broke; see stale.go
	// retained: the subscription is back, and the suspect tier stays
	// servable (in place of a Redis failure) until a Redis call succeeds.
	retained atomic.Bool

	logs logLimiter // spaces out the Warn records that calls can repeat

	wakers wakers // Fetches waiting on another instance's lease

	state atomic.Int32 // stateBypass, stateLive or stateClosed
	reads *flights[V]  // Get's shared reads
	loads *flights[V]  // Fetch's shared reads and loads

	// closing is cancelled by Close, ending running loads.
	closing context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex // guards running, closeDone
	running   int        // detached flights executing now
	closeDone chan struct{}
	idle      *sync.Cond // signalled when running drops to 0; uses mu

	stats counters
}

// entry is what the local tier holds for a key: a value, or the knowledge
// that the key is absent (an absence marker read from Redis).
type entry[V any] struct {
	v      V
	size   int64 // the bytes the local tier charges it: see Cache.charge
	absent bool
	ahead  *ahead[V] // filled by a loader, with RefreshAhead: see refresh.go; nil otherwise
}

// New returns a Cache over client with a Hub of its own (default HubOptions
// but for Options.HealthCheck and Options.Logger), closed with it. A service
// with several caches should share one Hub instead (NewHub, NewCache): one
// pub/sub connection and one subscriber goroutine for them all.
//
// New does not wait for Redis: until the invalidation subscription is
// confirmed, reads and writes go to Redis and the local tier is not used
// (WaitReady waits for it). New fails for invalid Options, with an error
// naming the field; for a client whose routing would lose invalidations
// (a Ring shards keys without knowing about the channel; a *redis.Client,
// a failover client or a *redis.ClusterClient is required), naming its type; and for a value type the default Codec can
// never encode. The Cache never closes client.
func New[V any](client redis.UniversalClient, opts Options[V]) (*Cache[V], error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	h, err := NewHub(client, HubOptions{HealthCheck: opts.HealthCheck, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	opts.HealthCheck = 0 // the hub's now
	c, err := newCache(h, opts, true)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	return c, nil
}

// NewCache returns a Cache on h: it shares h's pub/sub connection, subscriber
// goroutine, health check, freshness proofs and clock with every other cache
// on h. It fails as New does, if h is closed, and if h has caches of the
// namespace with another value type (they would decode each other's
// values); Options.HealthCheck must be 0 (it is the Hub's). Close the cache when done with it; Hub.Close
// closes the caches still attached.
func NewCache[V any](h *Hub, opts Options[V]) (*Cache[V], error) {
	if h == nil {
		return nil, errors.New("tiered: NewCache with a nil Hub")
	}
	var hc error
	if opts.HealthCheck != 0 {
		hc = fmt.Errorf("tiered: HealthCheck is the Hub's (HubOptions.HealthCheck) for a cache made by NewCache, got %v", opts.HealthCheck)
		opts.HealthCheck = 0 // reported once
	}
	if err := joinFields(hc, opts.validate()); err != nil {
		return nil, err
	}
	return newCache(h, opts, false)
}

// newCache builds a cache on h from validated opts and attaches it.
func newCache[V any](h *Hub, opts Options[V], ownHub bool) (*Cache[V], error) {
	if err := opts.fill(h); err != nil {
		return nil, err
	}
	localOff := opts.LocalSize < 0
	lopts := opts.localOptions()
	lopts.Clock = h.clock
	lc, err := local.New[string, entry[V]](lopts)
	if err != nil {
		return nil, fmt.Errorf("tiered: local tier: %w", err)
	}
	store, err := remote.New(h.client, remote.Options{Namespace: opts.Namespace,
		LogLength: h.logLen, Silent: h.silent, ClassicPubSub: h.wire < invalidate.Version,
		Gate: h.down.down})
	if err != nil {
		lc.Close()
		return nil, fmt.Errorf("tiered: %w", err)
	}
	c := &Cache[V]{
		hub:         h,
		ownHub:      ownHub,
		client:      h.client,
		namespace:   opts.Namespace,
		store:       store,
		local:       lc,
		codec:       opts.Codec,
		log:         opts.Logger,
		obs:         h.obs,
		origin:      invalidate.NewOrigin(),
		ttl:         opts.TTL,
		localTTL:    opts.LocalTTL,
		loadTimeout: opts.LoadTimeout,
		notFoundTTL: opts.NotFoundTTL,
		ttlJitter:   opts.TTLJitter,
		leaseTTL:    opts.LeaseTTL,
		sizer:       opts.Sizer,

		localOff:     localOff,
		refreshAhead: opts.RefreshAhead,
		staleIfError: opts.StaleIfError,
	}
	if opts.StaleIfError > 0 {
		if c.suspect, err = local.New[string, staleEntry[V]](staleOptions(lopts)); err != nil {
			lc.Close()
			return nil, fmt.Errorf("tiered: suspect tier: %w", err)
		}
	}
	c.initFlights()
	live, err := h.attach(c.namespace, c)
	if err != nil {
		lc.Close()
		if c.suspect != nil {
			c.suspect.Close()
		}
		c.cancel()
		return nil, err
	}
	if live {
		c.goLive()
	}
	return c, nil
}

// fill applies the defaults of the options that opts leaves zero: those of
// the package, and the Hub's Logger.
func (opts *Options[V]) fill(h *Hub) error {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Codec == nil {
		codec, err := defaultCodec[V]()
		if err != nil {
			return fmt.Errorf("tiered: Codec: %w", err)
		}
		opts.Codec = codec
	}
	if opts.LocalTTL == 0 {
		opts.LocalTTL = DefaultLocalTTL
	}
	if opts.LoadTimeout == 0 {
		opts.LoadTimeout = DefaultLoadTimeout
	}
	if opts.Logger == nil {
		opts.Logger = h.log
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = opts.LoadTimeout
	}
	return nil
}

// staleOptions are the suspect tier's options: those of the local tier,
// lo, but LRU: a copy of the local tier, every entry goes in, none is
// refused.
func staleOptions[V any](lo local.Options[entry[V]]) local.Options[staleEntry[V]] {
	return local.Options[staleEntry[V]]{Size: lo.Size, MaxBytes: lo.MaxBytes, Sizer: staleSize[V],
		Shards: lo.Shards, Clock: lo.Clock, Policy: local.LRU}
}

// initFlights makes what runs the cache's shared reads and loads, and
// what Close ends and waits for.
func (c *Cache[V]) initFlights() {
	onPanic := func(key string, p *panicError) {
		c.log.Error("tiered: a Codec or loader panicked",
			append([]any{"namespace", c.namespace, "key", key}, p.attrs()...)...)
	}
	// A Get's shared read is joined only while younger than MaxStaleness;
	// a Fetch's shared load is joined until it lands (or is overtaken), so
	// that a slow loader still runs once per key.
	c.reads, c.loads = newFlights[V](onPanic, c.hub.maxStaleness), newFlights[V](onPanic, 0)
	c.idle = sync.NewCond(&c.mu)
	c.closing, c.cancel = context.WithCancel(context.Background())
}

// Keys lists the keys of the namespace in Redis (with SCAN), sorted. It
// lists every key Redis holds in the namespace, also those that hold no
// value a Get would return: an absence remembered for NotFoundTTL, and a
// key being loaded by a Fetch on some instance (its lease).
func (c *Cache[V]) Keys(ctx context.Context) ([]string, error) {
	if err := c.closedErr(); err != nil {
		return nil, err
	}
	keys, err := c.store.Keys(ctx)
	if err != nil {
		return nil, c.fail("keys", "", err)
	}
	return keys, nil
}

// valueType is V: the caches of a namespace on a Hub share one.
func (c *Cache[V]) valueType() reflect.Type { return reflect.TypeFor[V]() }

// Namespace returns the cache's namespace.
func (c *Cache[V]) Namespace() string { return c.namespace }

// Subscribed reports whether the local tier is in use: the invalidation
// subscription is confirmed (and the local tier is not off).
func (c *Cache[V]) Subscribed() bool { return c.state.Load() == stateLive }

// goLive puts the local tier in use, unless it is off: the subscription is
// confirmed.
func (c *Cache[V]) goLive() {
	if !c.localOff {
		c.state.CompareAndSwap(stateBypass, stateLive)
	}
}
