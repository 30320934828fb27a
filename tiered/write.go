package tiered

import (
	"context"
	"strings"
	"time"

	"github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/internal/remote"
)

// Set stores value under key in Redis with the cache's TTL and publishes an
// invalidation in the same atomic round trip; when Set returns nil, Get on
// this instance returns value (or a newer one) and every other instance has
// been told to drop key.
//
// Set returns when ctx ends, whatever the client's options; the write may
// then still reach Redis afterwards (as with any Redis client), and this
// instance's local tier settles when it does.
func (c *Cache[V]) Set(ctx context.Context, key string, value V) error {
	return c.SetWithTTL(ctx, key, value, c.ttl)
}

// SetWithTTL is Set with a TTL for this call: 0 means no expiry; it must be 0
// or at least 1ms. TTLJitter applies to it.
func (c *Cache[V]) SetWithTTL(ctx context.Context, key string, value V, ttl time.Duration) error {
	if err := c.closedErr(); err != nil {
		return err
	}
	data, err := c.encode(value)
	if err != nil {
		return c.fail("set", key, err)
	}
	w := setWork[V]{c: c, key: key, value: value, data: data, ttl: c.jitter(ttl), tok: c.local.Token(key)}
	if ctx.Done() == nil {
		err = w.run(ctx) // what bounded does, without making w a closure
	} else {
		err = c.bounded(ctx, w.run, key)
	}
	if err != nil {
		return c.fail("set", key, err)
	}
	return nil
}

// setWork is the work of a Set: its Redis write, then the settling of the
// local tier.
type setWork[V any] struct {
	c     *Cache[V]
	key   string
	value V
	data  []byte // value, encoded
	ttl   time.Duration
	tok   local.Token // taken before the write
}

func (w setWork[V]) run(ctx context.Context) error {
	c := w.c
	start := c.since()
	err := c.store.SetAndPublish(ctx, w.key, w.data, w.ttl, c.message([]string{w.key}))
	c.observeRedis("set", 1, start, err)
	c.settleWrite(w.key, c.sized(w.key, w.value, w.data), w.ttl, w.tok, err)
	return err
}

// settleWrite settles the local tier once a write of key reached Redis (err
// nil) or failed: it keeps e only if nothing touched key since tok (another
// write of this process, an invalidation, a lost subscription), and always
// advances key's generation and overtakes the flights of key in progress, so
// that of two racing writes of this process the local tier ends holding
// Redis's value or nothing, and no read that began before the write is
// handed to a caller that begins after it.
func (c *Cache[V]) settleWrite(key string, e entry[V], ttl time.Duration, tok local.Token, err error) {
	c.reads.overtake(key)
	c.loads.overtake(key)
	c.wakers.wake(key)
	if err != nil || c.state.Load() != stateLive {
		c.local.Invalidate(key)
		c.dropSuspect(key)
		return
	}
	life := c.localTTL
	if ttl > 0 && ttl < life {
		life = ttl
	}
	c.local.Commit(key, e, life, tok)
	// The subscription may be breaking: the local tier may have been kept
	// as suspect before this commit (see keepSuspect), with a token that
	// this makes stale.
	c.dropSuspect(key)
}

// Delete removes keys from Redis and publishes one invalidation for all of
// them in the same atomic round trip (on a Redis Cluster, one per hash slot),
// then drops them from the local tier. Like Set, it returns when ctx ends.
func (c *Cache[V]) Delete(ctx context.Context, keys ...string) error {
	if err := c.closedErr(); err != nil || len(keys) == 0 {
		return err
	}
	err := c.bounded(ctx, func(ctx context.Context) error {
		start := c.since()
		err := c.store.DeleteAndPublish(ctx, c.message, keys...)
		c.observeRedis("delete", len(keys), start, err)
		c.invalidateLocal(keys...)
		return err
	}, keys...)
	if err != nil {
		return c.fail("delete", strings.Join(keys, ","), err)
	}
	return nil
}

// Invalidate tells every instance, this one included, to drop keys from its
// local tier, without touching Redis. Use it after another program changed
// those keys in Redis.
func (c *Cache[V]) Invalidate(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return c.closedErr()
	}
	return c.broadcast(ctx, keys, func() { c.invalidateLocal(keys...) })
}

// InvalidateAll tells every instance, this one included, to empty its local
// tier. Redis is not touched.
func (c *Cache[V]) InvalidateAll(ctx context.Context) error {
	return c.broadcast(ctx, nil, c.purgeLocal)
}

// broadcast applies the invalidation of keys (of every key, for none) here,
// with apply, and publishes it to the others.
func (c *Cache[V]) broadcast(ctx context.Context, keys []string, apply func()) error {
	if err := c.closedErr(); err != nil {
		return err
	}
	apply()
	err := c.bounded(ctx, func(ctx context.Context) error {
		start := c.since()
		err := c.publisher().Publish(ctx, keys...)
		c.observeRedis("publish", len(keys), start, err)
		return err
	})
	if err != nil {
		return c.fail("invalidate", strings.Join(keys, ","), err)
	}
	return nil
}

// publisher is the engine's publisher of this instance's invalidations,
// in the Hub's wire version.
func (c *Cache[V]) publisher() remote.Publisher {
	return remote.Publisher{Store: c.store, Origin: c.origin, Wire: c.hub.wire}
}

// message encodes the invalidation of keys (of every key, for nil) by this
// instance: the payload of its writes.
func (c *Cache[V]) message(keys []string) []byte { return c.publisher().Message(keys) }

// bounded runs work, a Redis write that settles the local tier itself when
// it ends, and returns its error, or ctx's error as soon as ctx ends (the
// client may not enforce ctx: go-redis ignores it unless
// ContextTimeoutEnabled is set). It is the store's own deadline mechanism,
// remote.Detach: work runs to its end under the client's own timeouts.
// Returning early, bounded drops keys from the local tier at once; work
// settles them again when it ends.
func (c *Cache[V]) bounded(ctx context.Context, work func(context.Context) error, keys ...string) error {
	return remote.Detach(ctx, work, func() { c.invalidateLocal(keys...) })
}

// invalidateLocal drops keys from the local tier, stops fills that began
// before, and overtakes the flights of keys in progress.
func (c *Cache[V]) invalidateLocal(keys ...string) {
	c.local.Invalidate(keys...)
	c.dropSuspect(keys...)
	c.reads.overtake(keys...)
	c.loads.overtake(keys...)
	c.wakers.wake(keys...)
}

// purgeLocal empties the local tier and the suspect tier, stops every fill
// that began before, and overtakes every flight in progress.
func (c *Cache[V]) purgeLocal() {
	if c.suspect != nil {
		c.suspect.Purge()
	}
	c.purgeLive()
}

// purgeLive is purgeLocal but for the suspect tier.
func (c *Cache[V]) purgeLive() {
	c.local.Purge()
	c.reads.overtakeAll()
	c.loads.overtakeAll()
	c.wakers.wakeAll()
}
