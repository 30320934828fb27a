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
	"golang.org/x/sync/singleflight"

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
	reads *readFlights[V]
	loads singleflight.Group

	// closing is cancelled by Close, ending running loads.
	closing context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex // guards running, closeDone
	running   int        // loads executing now
	closeDone chan struct{}
	idle      *sync.Cond // signalled when running drops to 0; uses mu

	stats counters
}

// counters are touched only off the local-hit path.
type counters struct {
	remoteHits, misses, bypassed    atomic.Uint64
	loads, loadErrors, decodeErrors atomic.Uint64
	invalidations, breaks           atomic.Uint64
}

// New returns a Cache over client. It does not wait for Redis: until the
// invalidation subscription is confirmed, reads and writes go to Redis and the
// local tier is not used. New fails only for invalid Options, with an error
// naming the field. The Cache never closes client.
func New[V any](client redis.UniversalClient, opts Options[V]) (*Cache[V], error) {
	if client == nil {
		return nil, errors.New("tiered: client must not be nil")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.LocalTTL == 0 {
		opts.LocalTTL = DefaultLocalTTL
	}
	if opts.LoadTimeout == 0 {
		opts.LoadTimeout = DefaultLoadTimeout
	}
	if opts.Codec == nil {
		opts.Codec = defaultCodec[V]()
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
		store:       remote.New(client, remote.Options{Namespace: opts.Namespace}),
		local:       lc,
		codec:       opts.Codec,
		log:         opts.Logger,
		origin:      invalidate.NewOrigin(),
		channel:     invalidate.Channel(opts.Namespace),
		ttl:         opts.TTL,
		localTTL:    opts.LocalTTL,
		loadTimeout: opts.LoadTimeout,
		reads:       newReadFlights[V](),
	}
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

// Get returns the value of key: from the local tier when it holds it, else
// from Redis (one read shared by every concurrent Get of key in this
// process), filling the local tier. A key in neither is ErrNotFound; a Redis
// value that does not decode is an error naming the key.
func (c *Cache[V]) Get(ctx context.Context, key string) (V, error) {
	if v, ok, err := c.cached(key); ok || err != nil {
		return v, err
	}
	return c.reads.do(ctx, key, func(ctx context.Context) (V, error) { return c.read(ctx, key) })
}

// Fetch is Get that calls load for a key Redis does not hold (or holds bytes
// that do not decode), stores what load returns in Redis with the cache's
// TTL, and returns it. Concurrent Fetches of one key in this process share
// one Redis read and at most one load: the shared work runs on a goroutine
// of its own under LoadTimeout, detached from every caller's cancellation,
// and each caller stops waiting when its own ctx ends. A load error is
// returned and nothing is stored; a load that returns ErrNotFound makes Fetch
// return ErrNotFound. If storing the loaded value in Redis fails, Fetch still
// returns it (and logs the failure).
func (c *Cache[V]) Fetch(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	if load == nil {
		var zero V
		return zero, errors.New("tiered: Fetch with a nil load function")
	}
	if v, ok, err := c.cached(key); ok || err != nil {
		return v, err
	}
	ch := c.loads.DoChan(key, func() (any, error) {
		if !c.enterFlight() {
			return nil, ErrClosed
		}
		defer c.leaveFlight()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.loadTimeout)
		defer cancel()
		stop := context.AfterFunc(c.closing, cancel)
		defer stop()
		v, err := c.read(lctx, key)
		var decodeErr *decodeError
		switch {
		case err == nil:
			return v, nil
		case errors.As(err, &decodeErr):
			c.log.Warn("tiered: value in Redis does not decode; reloading", "key", key, "err", decodeErr.err)
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		return c.load(lctx, key, load)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			var zero V
			return zero, r.Err
		}
		return r.Val.(V), nil
	case <-ctx.Done():
		var zero V
		return zero, fmt.Errorf("tiered: fetch %q: %w", key, ctx.Err())
	}
}

// cached answers from the local tier when the subscription is live, and
// with ErrClosed after Close.
func (c *Cache[V]) cached(key string) (v V, ok bool, err error) {
	switch c.state.Load() {
	case stateLive:
		v, ok = c.local.Get(key)
	case stateClosed:
		err = ErrClosed
	}
	return v, ok, err
}

// decodeError is a Redis value that the Codec rejected.
type decodeError struct {
	key string
	err error
}

func (e *decodeError) Error() string { return fmt.Sprintf("tiered: get %q: decode: %v", e.key, e.err) }
func (e *decodeError) Unwrap() error { return e.err }

// read reads key from Redis and, when the subscription is live and nothing
// invalidated key meanwhile, stores it in the local tier. It runs once for
// all concurrent readers of key (see readFlights).
func (c *Cache[V]) read(ctx context.Context, key string) (V, error) {
	var zero V
	if c.state.Load() == stateLive {
		// A read that ended just before this one began may have filled it.
		if v, ok := c.local.Get(key); ok {
			return v, nil
		}
	} else {
		c.stats.bypassed.Add(1)
	}
	// The token is taken before the read: an invalidation that arrives after
	// it makes the store below a no-op, so a value read before the
	// invalidation never lands.
	tok := c.local.Token(key)
	data, ttl, err := c.store.GetWithTTL(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			c.stats.misses.Add(1)
		}
		return zero, err
	}
	v, err := c.codec.Unmarshal(data)
	if err != nil {
		c.stats.decodeErrors.Add(1)
		return zero, &decodeError{key: key, err: err}
	}
	c.stats.remoteHits.Add(1)
	c.storeFill(key, v, ttl, tok)
	return v, nil
}

// load calls the loader for key and writes what it returns, once for all
// concurrent Fetches of key, after their shared read found nothing.
func (c *Cache[V]) load(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	var zero V
	tok := c.local.Token(key)
	c.stats.loads.Add(1)
	v, err := load(ctx)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.stats.loadErrors.Add(1)
		}
		return zero, fmt.Errorf("tiered: load %q: %w", key, err)
	}
	if err := c.write(ctx, key, v, c.ttl, tok); err != nil {
		c.log.Warn("tiered: could not store a loaded value", "key", key, "err", err)
	}
	return v, nil
}

// storeFill puts a value read from Redis into the local tier for
// min(LocalTTL, its remaining Redis TTL), unless key was invalidated since tok
// or the subscription is not live.
func (c *Cache[V]) storeFill(key string, v V, remaining time.Duration, tok local.Token) {
	if c.state.Load() != stateLive {
		return
	}
	life := c.localTTL
	if remaining != remote.NoExpiry && remaining < life {
		life = remaining
	}
	c.local.SetIf(key, v, life, tok)
}

// Set stores value under key in Redis with the cache's TTL and publishes an
// invalidation in the same atomic round trip; when Set returns nil, Get on
// this instance returns value (or a newer one) and every other instance has
// been told to drop key.
func (c *Cache[V]) Set(ctx context.Context, key string, value V) error {
	return c.SetWithTTL(ctx, key, value, c.ttl)
}

// SetWithTTL is Set with a TTL for this call: 0 means no expiry; it must be 0
// or at least 1ms.
func (c *Cache[V]) SetWithTTL(ctx context.Context, key string, value V, ttl time.Duration) error {
	if err := c.closedErr(); err != nil {
		return err
	}
	return c.write(ctx, key, value, ttl, c.local.Token(key))
}

// write stores v in Redis, publishing the invalidation atomically, then
// settles the local tier: it keeps v only if nothing touched key since tok
// (another write of this process, an invalidation, a lost subscription), and
// always bumps key's generation, so that of two racing writes of this process
// the local tier ends holding Redis's value or nothing.
func (c *Cache[V]) write(ctx context.Context, key string, v V, ttl time.Duration, tok local.Token) error {
	data, err := c.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("tiered: set %q: encode: %w", key, err)
	}
	msg := invalidate.Message{Origin: c.origin, Keys: []string{key}}
	err = c.store.SetAndPublish(ctx, key, data, ttl, c.channel, msg.Append(nil))
	if err != nil || c.state.Load() != stateLive {
		c.local.Invalidate(key)
		return err
	}
	life := c.localTTL
	if ttl > 0 && ttl < life {
		life = ttl
	}
	c.local.Commit(key, v, life, tok)
	return nil
}

// Delete removes keys from Redis and publishes one invalidation for all of
// them in the same atomic round trip (on a Redis Cluster, one per hash slot),
// then drops them from the local tier.
func (c *Cache[V]) Delete(ctx context.Context, keys ...string) error {
	if err := c.closedErr(); err != nil || len(keys) == 0 {
		return err
	}
	payload := func(ks []string) []byte {
		return invalidate.Message{Origin: c.origin, Keys: ks}.Append(nil)
	}
	err := c.store.DeleteAndPublish(ctx, c.channel, payload, keys...)
	c.local.Invalidate(keys...)
	return err
}

// Invalidate tells every instance, this one included, to drop keys from its
// local tier, without touching Redis. Use it after another program changed
// those keys in Redis.
func (c *Cache[V]) Invalidate(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return c.closedErr()
	}
	return c.broadcast(ctx, invalidate.Message{Origin: c.origin, Keys: keys}, func() { c.local.Invalidate(keys...) })
}

// InvalidateAll tells every instance, this one included, to empty its local
// tier. Redis is not touched.
func (c *Cache[V]) InvalidateAll(ctx context.Context) error {
	return c.broadcast(ctx, invalidate.Message{Origin: c.origin, All: true}, c.local.Purge)
}

// broadcast applies msg here (with apply) and publishes it to the others.
func (c *Cache[V]) broadcast(ctx context.Context, msg invalidate.Message, apply func()) error {
	if err := c.closedErr(); err != nil {
		return err
	}
	apply()
	if err := c.client.Publish(ctx, c.channel, msg.Append(nil)).Err(); err != nil {
		return fmt.Errorf("tiered: invalidate: %w", err)
	}
	return nil
}

// closedErr returns ErrClosed once Close has begun.
func (c *Cache[V]) closedErr() error {
	if c.state.Load() == stateClosed {
		return ErrClosed
	}
	return nil
}

// Keys lists the keys of the namespace in Redis (with SCAN), sorted.
func (c *Cache[V]) Keys(ctx context.Context) ([]string, error) {
	if err := c.closedErr(); err != nil {
		return nil, err
	}
	return c.store.Keys(ctx)
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
	Malformed     uint64 // invalidation messages that did not decode (ignored)
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
		return // our own writes settled the local tier themselves (see write)
	}
	c.stats.invalidations.Add(1)
	if m.All {
		c.local.Purge()
		return
	}
	c.local.Invalidate(m.Keys...)
}

// onState follows the subscription. Messages may have been lost while it was
// down, so the local tier is purged both when it breaks and when it is
// confirmed again; between the two, the local tier is bypassed. The purge
// bumps every generation, so no read or write that began before it can fill
// the local tier after it.
func (c *Cache[V]) onState(s invalidate.State, err error) {
	switch s {
	case invalidate.Subscribed:
		c.local.Purge()
		c.state.CompareAndSwap(stateBypass, stateLive)
	case invalidate.Broken:
		c.state.CompareAndSwap(stateLive, stateBypass)
		c.local.Purge()
		c.stats.breaks.Add(1)
		c.log.Warn("tiered: invalidation subscription lost; local tier purged and bypassed until it is back",
			"channel", c.channel, "err", err)
	}
}
