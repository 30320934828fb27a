package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/internal/remote"
)

// ErrNotFound is returned for a key that is in neither tier. It is
// remote.ErrNotFound: errors.Is matches either.
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
	channel     string
	ttl         time.Duration
	localTTL    time.Duration
	loadTimeout time.Duration
	notFoundTTL time.Duration
	ttlJitter   float64
	leaseTTL    time.Duration // <= 0: no leases

	refreshAhead float64    // 0: off
	refreshes    refreshSet // the keys being refreshed ahead; see refresh.go

	staleIfError time.Duration                       // 0: off
	suspect      *local.Cache[string, staleEntry[V]] // with StaleIfError: what was held when the subscription broke; see stale.go

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
	absent bool
	ahead  *ahead[V] // filled by a loader, with RefreshAhead: see refresh.go; nil otherwise
}

// counters are touched only off the local-hit path.
type counters struct {
	remoteHits, misses, bypassed    atomic.Uint64
	loads, loadErrors, decodeErrors atomic.Uint64
	invalidations, breaks, gaps     atomic.Uint64
	fallbacks, unproven             atomic.Uint64
	leaseWaits, staleServed         atomic.Uint64
	refreshes, refreshErrors        atomic.Uint64
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
// (see remote.CheckClient: a *redis.Client or a *redis.ClusterClient is
// required), naming its type; and for a value type the default Codec can
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
// on h. It fails as New does, and if h is closed; Options.HealthCheck must
// be 0 (it is the Hub's). Close the cache when done with it; Hub.Close
// closes the caches still attached.
func NewCache[V any](h *Hub, opts Options[V]) (*Cache[V], error) {
	if h == nil {
		return nil, errors.New("tiered: NewCache with a nil Hub")
	}
	if opts.HealthCheck != 0 {
		return nil, fmt.Errorf("tiered: HealthCheck is the Hub's (HubOptions.HealthCheck) for a cache made by NewCache, got %v", opts.HealthCheck)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return newCache(h, opts, false)
}

// newCache builds a cache on h from validated opts and attaches it.
func newCache[V any](h *Hub, opts Options[V], ownHub bool) (*Cache[V], error) {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Codec == nil {
		codec, err := defaultCodec[V]()
		if err != nil {
			return nil, fmt.Errorf("tiered: Codec: %w", err)
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
	lc, err := local.New[string, entry[V]](local.Options{Size: opts.LocalSize, Shards: opts.LocalShards, Clock: h.clock})
	if err != nil {
		// LocalSize was checked: local.New can only reject the shards.
		return nil, fmt.Errorf("tiered: LocalShards: %w", err)
	}
	store, err := remote.New(h.client, remote.Options{Namespace: opts.Namespace})
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
		channel:     invalidate.Channel(opts.Namespace),
		ttl:         opts.TTL,
		localTTL:    opts.LocalTTL,
		loadTimeout: opts.LoadTimeout,
		notFoundTTL: opts.NotFoundTTL,
		ttlJitter:   opts.TTLJitter,
		leaseTTL:    opts.LeaseTTL,

		refreshAhead: opts.RefreshAhead,
		staleIfError: opts.StaleIfError,
	}
	if opts.StaleIfError > 0 {
		c.suspect, err = local.New[string, staleEntry[V]](local.Options{Size: opts.LocalSize, Shards: opts.LocalShards, Clock: h.clock})
		if err != nil {
			lc.Close()
			return nil, fmt.Errorf("tiered: LocalShards: %w", err)
		}
	}
	onPanic := func(key string, p *panicError) {
		c.log.Error("tiered: a Codec or loader panicked", "namespace", c.namespace, "key", key,
			"panic", p.value, "stack", string(p.stack))
	}
	// A Get's shared read is joined only while younger than MaxStaleness;
	// a Fetch's shared load is joined until it lands (or is overtaken), so
	// that a slow loader still runs once per key.
	c.reads, c.loads = newFlights[V](onPanic, h.maxStaleness), newFlights[V](onPanic, 0)
	c.idle = sync.NewCond(&c.mu)
	c.closing, c.cancel = context.WithCancel(context.Background())
	live, err := h.attach(c.channel, c)
	if err != nil {
		lc.Close()
		if c.suspect != nil {
			c.suspect.Close()
		}
		c.cancel()
		return nil, err
	}
	if live {
		c.state.CompareAndSwap(stateBypass, stateLive)
	}
	return c, nil
}

// WaitReady returns nil once the cache's invalidation channel is confirmed
// (from then on its local tier is in use), or, when ctx ends first, an error
// that carries the last connection error.
func (c *Cache[V]) WaitReady(ctx context.Context) error {
	return c.hub.wait(ctx, fmt.Sprintf("cache of namespace %q", c.namespace), func() bool {
		return c.state.Load() != stateBypass
	})
}

// Keys lists the keys of the namespace in Redis (with SCAN), sorted.
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

// Namespace returns the cache's namespace.
func (c *Cache[V]) Namespace() string { return c.namespace }

// Subscribed reports whether the invalidation subscription is confirmed, that
// is whether the local tier is in use.
func (c *Cache[V]) Subscribed() bool { return c.state.Load() == stateLive }

// Stats are counts since New.
type Stats struct {
	LocalHits     uint64 // reads answered by the local tier
	RemoteHits    uint64 // reads answered by Redis
	Misses        uint64 // reads of keys Redis did not hold
	Bypassed      uint64 // Redis reads made while the subscription was not confirmed
	Loads         uint64 // loader calls (Fetch, FetchMany, refreshes)
	LoadErrors    uint64 // loader calls that failed
	DecodeErrors  uint64 // Redis values that did not decode
	Invalidations uint64 // invalidation messages applied from other instances
	Malformed     uint64 // invalidation messages that did not decode (each purged the local tier)
	Unproven      uint64 // reads sent to Redis because the Hub could not prove the local tier fresh (MaxStaleness)
	Fallbacks     uint64 // keys loaded without storing because Redis could not be read
	LeaseWaits    uint64 // times a Fetch waited for another instance's load of a key (its lease)
	Breaks        uint64 // times the subscription was lost (the local tier was purged)
	StaleServed   uint64 // values served stale in place of a Redis error (StaleIfError)
	Refreshes     uint64 // loader calls of refreshes ahead of expiry (RefreshAhead; counted in Loads too)
	RefreshErrors uint64 // refreshes that failed: a loader error or panic (counted in LoadErrors too), a Redis error

	LocalEntries     int    // entries in the local tier now
	LocalEvictions   uint64 // local entries evicted for room
	LocalExpirations uint64 // local entries found expired
}

// Stats returns the cache's counters.
func (c *Cache[V]) Stats() Stats {
	ls := c.local.Stats()
	return Stats{
		LocalHits:        ls.Hits,
		RemoteHits:       c.stats.remoteHits.Load(),
		Misses:           c.stats.misses.Load(),
		Bypassed:         c.stats.bypassed.Load(),
		Loads:            c.stats.loads.Load(),
		LoadErrors:       c.stats.loadErrors.Load(),
		DecodeErrors:     c.stats.decodeErrors.Load(),
		Invalidations:    c.stats.invalidations.Load(),
		Malformed:        c.stats.gaps.Load(),
		Unproven:         c.stats.unproven.Load(),
		Fallbacks:        c.stats.fallbacks.Load(),
		LeaseWaits:       c.stats.leaseWaits.Load(),
		Breaks:           c.stats.breaks.Load(),
		StaleServed:      c.stats.staleServed.Load(),
		Refreshes:        c.stats.refreshes.Load(),
		RefreshErrors:    c.stats.refreshErrors.Load(),
		LocalEntries:     c.local.Len(),
		LocalEvictions:   ls.Evictions,
		LocalExpirations: ls.Expirations,
	}
}

// Close detaches the cache from its Hub (no invalidation reaches it from
// then on), cancels running loads and waits for them, and empties the local
// tier; a cache made by New closes its Hub too. Every call after Close
// returns ErrClosed. Close is idempotent and safe to call concurrently with
// any other method. It does not close the Redis client.
func (c *Cache[V]) Close() error {
	c.mu.Lock()
	if c.closeDone != nil {
		done := c.closeDone
		c.mu.Unlock()
		<-done
		return nil
	}
	c.closeDone = make(chan struct{})
	c.state.Store(stateClosed)
	c.mu.Unlock()

	c.hub.detach(c.channel, c)
	c.cancel()
	c.mu.Lock()
	for c.running > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
	c.local.Purge()
	c.local.Close()
	if c.suspect != nil {
		c.suspect.Purge()
		c.suspect.Close()
	}
	var err error
	if c.ownHub {
		err = c.hub.Close()
	}
	close(c.closeDone)
	return err
}

// enterFlight counts a load in, unless the cache is closing.
func (c *Cache[V]) enterFlight() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeDone != nil {
		return false
	}
	c.running++
	return true
}

func (c *Cache[V]) leaveFlight() {
	c.mu.Lock()
	c.running--
	if c.running == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// onMessage applies another instance's invalidation. Runs on the subscriber
// goroutine.
func (c *Cache[V]) onMessage(m invalidate.Message) {
	if m.Origin == c.origin {
		return // our own writes settled the local tier themselves (see settleWrite)
	}
	c.stats.invalidations.Add(1)
	if m.All {
		c.purgeLocal()
	} else {
		c.invalidateLocal(m.Keys...)
	}
	if c.obs != nil {
		e := Event{Kind: EventInvalidation, Keys: len(m.Keys), Duration: -1}
		if m.All {
			e.Op = "all"
		}
		if !m.Sent.IsZero() {
			e.Duration = max(time.Since(m.Sent), 0) // below 0 only by clock skew
		}
		c.observe(e)
	}
}

// onState follows the subscription. Messages may have been lost while it was
// down, so the local tier is purged both when it breaks and when it is
// confirmed again; between the two, the local tier is bypassed. The purge
// bumps every generation, so no read or write that began before it can fill
// the local tier after it, and overtakes every flight, so no call that begins
// after it joins one that began before. A message that did not decode may
// have carried invalidations (a newer release's wire version, say): that gap
// purges too, and the local tier stays in use.
func (c *Cache[V]) onState(s invalidate.State, err error) {
	if c.obs != nil {
		c.observe(Event{Kind: EventSubscription, State: stateOf(s), Err: err})
	}
	switch s {
	case invalidate.Subscribed:
		c.purgeLocal()
		c.state.CompareAndSwap(stateBypass, stateLive)
	case invalidate.Gap:
		c.purgeLocal()
		c.stats.gaps.Add(1)
		c.log.Warn("tiered: an invalidation message did not decode; local tier purged",
			"namespace", c.namespace, "err", err)
	case invalidate.Broken:
		// StaleIfError: keep what the local tier holds as suspect, before
		// the switch to bypass, so that no read in between finds neither
		// (until the switch, a read that Redis fails is answered from the
		// local tier itself: the proof of freshness is gone already).
		if c.suspect != nil && c.state.Load() == stateLive {
			c.keepSuspect()
		}
		c.state.CompareAndSwap(stateLive, stateBypass)
		c.purgeLive()
		c.stats.breaks.Add(1)
		c.log.Warn("tiered: invalidation subscription lost; local tier purged and bypassed until it is back",
			"channel", c.channel, "err", err)
	}
}
