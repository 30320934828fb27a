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

	"github.com/tiercache/tiercache/invalidate"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
)

// ErrNotFound is returned for a key that is in neither tier. It is
// remote.ErrNotFound: errors.Is matches either.
var ErrNotFound = remote.ErrNotFound

// ErrClosed is returned by every call made after Close.
var ErrClosed = errors.New("tiered: cache is closed")

// Defaults of the Options fields.
const (
	DefaultNamespace   = remote.DefaultNamespace // "cache"
	DefaultLocalSize   = local.DefaultSize       // 10,000 entries
	DefaultLocalTTL    = time.Minute
	DefaultLoadTimeout = 10 * time.Second
)

// Options configures a Cache. The zero value of every field is its default.
type Options[V any] struct {
	// Namespace prefixes every Redis key ("Namespace:key") and names the
	// invalidation channel. Every instance that must agree on the same keys
	// uses the same Namespace. Default: "cache".
	Namespace string

	// TTL is the Redis lifetime of values written by Set and by Fetch's
	// loads. 0 means no expiry. Must be 0 or at least 1ms; it is sent to
	// Redis in whole milliseconds. Default: 0.
	TTL time.Duration

	// LocalSize is the number of entries the local tier holds.
	// Default: 10,000. Must be >= 0.
	LocalSize int

	// LocalShards splits the local tier into this many independently locked
	// parts, a power of two. Default: chosen from LocalSize (16 for large
	// tiers, fewer for small ones).
	LocalShards int

	// LocalTTL is the longest a value lives in the local tier. A value read
	// from Redis lives there min(LocalTTL, its remaining Redis TTL), minus one
	// millisecond tick, so it never outlives the Redis key. Default: 1 minute.
	// Must be 0 or at least 1ms.
	LocalTTL time.Duration

	// Codec encodes values for Redis. Default: raw bytes for string and
	// []byte, JSON for every other type.
	Codec Codec[V]

	// LoadTimeout bounds a Fetch loader and the Redis write of what it
	// returned. The load runs detached from every caller's cancellation (each
	// caller stops waiting when its own ctx ends), under this deadline.
	// Default: 10s. Must be >= 0.
	LoadTimeout time.Duration

	// HealthCheck is how long the invalidation subscription may stay silent
	// before it is pinged; no answer within another HealthCheck counts as a
	// lost connection. Default: invalidate.DefaultHealthCheck (1s).
	// Must be >= 0.
	HealthCheck time.Duration

	// Logger receives reports of lost subscriptions, malformed messages and
	// failed writes of loaded values. Default: nil, silent.
	Logger *slog.Logger
}

func (o *Options[V]) validate() error {
	if o.Namespace != "" {
		if err := remote.CheckNamespace(o.Namespace); err != nil {
			return fmt.Errorf("tiered: Namespace: %w", err)
		}
	}
	switch {
	case o.TTL < 0:
		return fmt.Errorf("tiered: TTL must be >= 0, got %v", o.TTL)
	case o.TTL > 0 && o.TTL < time.Millisecond:
		return fmt.Errorf("tiered: TTL must be 0 or at least 1ms, got %v", o.TTL)
	case o.LocalSize < 0:
		return fmt.Errorf("tiered: LocalSize must be >= 0, got %d", o.LocalSize)
	case o.LocalShards < 0:
		return fmt.Errorf("tiered: LocalShards must be >= 0, got %d", o.LocalShards)
	case o.LocalTTL < 0:
		return fmt.Errorf("tiered: LocalTTL must be >= 0, got %v", o.LocalTTL)
	case o.LocalTTL > 0 && o.LocalTTL < time.Millisecond:
		return fmt.Errorf("tiered: LocalTTL must be 0 or at least 1ms, got %v", o.LocalTTL)
	case o.LoadTimeout < 0:
		return fmt.Errorf("tiered: LoadTimeout must be >= 0, got %v", o.LoadTimeout)
	case o.HealthCheck < 0:
		return fmt.Errorf("tiered: HealthCheck must be >= 0, got %v", o.HealthCheck)
	}
	return nil
}

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
	client      redis.UniversalClient
	namespace   string
	store       *remote.Store
	local       *local.Cache[string, V]
	sub         *invalidate.Subscriber
	codec       Codec[V]
	log         *slog.Logger
	origin      invalidate.Origin
	channel     string
	ttl         time.Duration
	localTTL    time.Duration
	loadTimeout time.Duration

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

// counters are touched only off the local-hit path.
type counters struct {
	remoteHits, misses, bypassed    atomic.Uint64
	loads, loadErrors, decodeErrors atomic.Uint64
	invalidations, breaks           atomic.Uint64
	fallbacks                       atomic.Uint64
}

// New returns a Cache over client. It does not wait for Redis: until the
// invalidation subscription is confirmed, reads and writes go to Redis and the
// local tier is not used. New fails for invalid Options, with an error
// naming the field; for a client whose routing would lose invalidations
// (see remote.CheckClient: a *redis.Client or a *redis.ClusterClient is
// required), naming its type; and for a value type the default Codec can
// never encode. The Cache never closes client.
func New[V any](client redis.UniversalClient, opts Options[V]) (*Cache[V], error) {
	if err := remote.CheckClient(client); err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
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
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lc, err := local.New[string, V](local.Options{Size: opts.LocalSize, Shards: opts.LocalShards})
	if err != nil {
		// LocalSize was checked above: local.New can only reject the shards.
		return nil, fmt.Errorf("tiered: LocalShards: %w", err)
	}
	c := &Cache[V]{
		client:      client,
		namespace:   opts.Namespace,
		store:       remote.New(client, remote.Options{Namespace: opts.Namespace}),
		local:       lc,
		codec:       opts.Codec,
		log:         opts.Logger,
		origin:      invalidate.NewOrigin(),
		channel:     invalidate.Channel(opts.Namespace),
		ttl:         opts.TTL,
		localTTL:    opts.LocalTTL,
		loadTimeout: opts.LoadTimeout,
	}
	onPanic := func(key string, p *panicError) {
		c.log.Error("tiered: a Codec or loader panicked", "namespace", c.namespace, "key", key,
			"panic", p.value, "stack", string(p.stack))
	}
	c.reads, c.loads = newFlights[V](onPanic), newFlights[V](onPanic)
	c.idle = sync.NewCond(&c.mu)
	c.closing, c.cancel = context.WithCancel(context.Background())
	c.sub, err = invalidate.Subscribe(client, invalidate.Options{
		Channel:     c.channel,
		OnMessage:   c.onMessage,
		OnState:     c.onState,
		HealthCheck: opts.HealthCheck,
		Logger:      opts.Logger,
	})
	if err != nil {
		lc.Close()
		c.cancel()
		return nil, fmt.Errorf("tiered: HealthCheck: %w", err)
	}
	return c, nil
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

// Subscribed reports whether the invalidation subscription is confirmed, that
// is whether the local tier is in use.
func (c *Cache[V]) Subscribed() bool { return c.state.Load() == stateLive }

// Stats are counts since New.
type Stats struct {
	LocalHits     uint64 // reads answered by the local tier
	RemoteHits    uint64 // reads answered by Redis
	Misses        uint64 // reads of keys Redis did not hold
	Bypassed      uint64 // Redis reads made while the subscription was not confirmed
	Loads         uint64 // Fetch loader calls
	LoadErrors    uint64 // loader calls that failed
	DecodeErrors  uint64 // Redis values that did not decode
	Invalidations uint64 // invalidation messages applied from other instances
	Malformed     uint64 // invalidation messages that did not decode (each purged the local tier)
	Fallbacks     uint64 // Fetch loads answered without storing because Redis could not be read
	Breaks        uint64 // times the subscription was lost (the local tier was purged)

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
		Malformed:        c.sub.Stats().Malformed,
		Fallbacks:        c.stats.fallbacks.Load(),
		Breaks:           c.stats.breaks.Load(),
		LocalEntries:     c.local.Len(),
		LocalEvictions:   ls.Evictions,
		LocalExpirations: ls.Expirations,
	}
}

// Close stops the subscriber and waits for it, cancels running loads and
// waits for them, and stops the local tier's
// clock. Every call after Close returns ErrClosed. Close is idempotent and
// safe to call concurrently with any other method. It does not close the
// Redis client.
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

	err := c.sub.Close()
	c.cancel()
	c.mu.Lock()
	for c.running > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
	c.local.Purge()
	c.local.Close()
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
		return
	}
	c.invalidateLocal(m.Keys...)
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
	switch s {
	case invalidate.Subscribed:
		c.purgeLocal()
		c.state.CompareAndSwap(stateBypass, stateLive)
	case invalidate.Gap:
		c.purgeLocal()
		c.log.Warn("tiered: an invalidation message did not decode; local tier purged",
			"namespace", c.namespace, "err", err)
	case invalidate.Broken:
		c.state.CompareAndSwap(stateLive, stateBypass)
		c.purgeLocal()
		c.stats.breaks.Add(1)
		c.log.Warn("tiered: invalidation subscription lost; local tier purged and bypassed until it is back",
			"channel", c.channel, "err", err)
	}
}
