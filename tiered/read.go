package tiered

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
)

// Get returns the value of key: from the local tier when it holds it, else
// from Redis (one read shared by the concurrent Gets of key in this process
// that began since key was last invalidated here), filling the local tier. A
// key in neither is ErrNotFound; a Redis value that does not decode is an
// error naming the key. Get returns when ctx ends, whatever the client's
// options.
func (c *Cache[V]) Get(ctx context.Context, key string) (V, error) {
	if v, ok, err := c.cached(key); ok || err != nil {
		return v, err
	}
	v, err := c.reads.do(ctx, key, func(ctx context.Context, _ *flight[V]) (V, error) { return c.read(ctx, key) })
	if err != nil {
		return v, c.fail("get", key, err)
	}
	return v, nil
}

// Fetch is Get that calls load for a key Redis does not hold (or holds bytes
// that do not decode), stores what load returns in Redis with the cache's
// TTL, and returns it.
//
// Concurrent Fetches of one key in this process share one Redis read and at
// most one load: the shared work runs on a goroutine of its own under
// LoadTimeout, detached from every caller's cancellation, and each caller
// stops waiting when its own ctx ends. A Fetch that begins after key was
// invalidated here (by another instance's write, or this one's) does not
// join work that began before.
//
// What load returns is stored only if nothing wrote key since: a key that
// Redis holds by then (another instance's Set) is left alone, and a load
// that a write or invalidation of key overtook here stores nothing. Either
// way the callers get what load returned.
//
// A load error is returned and nothing is stored; a load that returns
// ErrNotFound makes Fetch return ErrNotFound. If Redis cannot be read (it is
// down), Fetch answers from load and stores nothing anywhere (counted in
// Stats.Fallbacks). If storing the loaded value fails, Fetch still returns
// it (and logs the failure). A panic in load, or in the Codec, reaches the
// caller whose Fetch started the shared work as a panic, and the other
// callers as an error.
func (c *Cache[V]) Fetch(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	if load == nil {
		var zero V
		return zero, c.fail("fetch", key, errors.New("nil load function"))
	}
	if v, ok, err := c.cached(key); ok || err != nil {
		return v, err
	}
	v, err := c.loads.detached(ctx, key, c.launch, func(fl *flight[V]) (V, error) {
		return c.readOrLoad(ctx, key, fl, load)
	})
	if err != nil {
		return v, c.fail("fetch", key, err)
	}
	return v, nil
}

// cached answers from the local tier when the subscription is live and the
// Hub can prove it fresh (counting the reads it cannot), and with ErrClosed
// after Close.
func (c *Cache[V]) cached(key string) (v V, ok bool, err error) {
	switch c.state.Load() {
	case stateLive:
		if !c.hub.fresh() {
			c.stats.unproven.Add(1)
			return v, false, nil
		}
		v, ok = c.local.Get(key)
	case stateClosed:
		err = ErrClosed
	}
	return v, ok, err
}

// launch starts a detached flight's goroutine, counted so that Close waits
// for it; it refuses once Close has begun.
func (c *Cache[V]) launch(run func()) error {
	if !c.enterFlight() {
		return ErrClosed
	}
	go func() {
		defer c.leaveFlight()
		run()
	}()
	return nil
}

// decodeError is a Redis value that the Codec rejected.
type decodeError struct {
	data []byte // the bytes Redis holds
	err  error
}

func (e *decodeError) Error() string { return "decode: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// read reads key from Redis and, when the subscription is live and nothing
// invalidated key meanwhile, stores it in the local tier.
func (c *Cache[V]) read(ctx context.Context, key string) (V, error) {
	var zero V
	if c.state.Load() == stateLive {
		// A read that ended just before this one began may have filled it.
		if c.hub.fresh() {
			if v, ok := c.local.Get(key); ok {
				return v, nil
			}
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
		return zero, &decodeError{data: data, err: err}
	}
	c.stats.remoteHits.Add(1)
	c.storeFill(key, v, ttl, tok)
	return v, nil
}

// readOrLoad is the shared work of a Fetch: read key from Redis and, if it
// is not there (or does not decode, or Redis cannot be read), call load.
func (c *Cache[V]) readOrLoad(ctx context.Context, key string, fl *flight[V], load func(context.Context) (V, error)) (V, error) {
	var zero V
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.loadTimeout)
	defer cancel()
	stop := context.AfterFunc(c.closing, cancel)
	defer stop()

	tok := c.local.Token(key)
	v, err := c.read(lctx, key)
	var (
		decodeErr *decodeError
		expect    []byte // what Redis must still hold for the loaded value to be stored; nil: nothing
	)
	switch {
	case err == nil:
		return v, nil
	case errors.As(err, &decodeErr):
		c.log.Warn("tiered: value in Redis does not decode; reloading",
			"namespace", c.namespace, "key", key, "err", decodeErr.err)
		expect = decodeErr.data
	case errors.Is(err, ErrNotFound):
	case lctx.Err() != nil:
		return zero, err // LoadTimeout passed, or Close
	default:
		// Redis cannot be read: the source of truth can still answer. What
		// it returns is stored nowhere, since nothing could tell this
		// instance when it changes.
		c.stats.fallbacks.Add(1)
		c.log.Warn("tiered: Redis read failed; answering from the loader without storing",
			"namespace", c.namespace, "key", key, "err", err)
		return c.callLoad(lctx, key, load)
	}
	if v, err = c.callLoad(lctx, key, load); err != nil {
		return zero, err
	}
	c.storeLoaded(lctx, key, v, fl, tok, expect)
	return v, nil
}

// callLoad calls the loader, counting it.
func (c *Cache[V]) callLoad(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	c.stats.loads.Add(1)
	v, err := load(ctx)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.stats.loadErrors.Add(1)
		}
		var zero V
		return zero, fmt.Errorf("load: %w", err)
	}
	return v, nil
}

// storeLoaded stores a loaded value in Redis, and then in the local tier,
// unless something wrote key since the flight began: a write or
// invalidation applied here overtook the flight, or Redis no longer holds
// expect (nil: no value at all). A value loaded before a write may be older
// than it, and must not replace it.
func (c *Cache[V]) storeLoaded(ctx context.Context, key string, v V, fl *flight[V], tok local.Token, expect []byte) {
	if fl.overtaken.Load() {
		return
	}
	data, err := c.codec.Marshal(v)
	if err != nil {
		c.log.Warn("tiered: could not encode a loaded value", "namespace", c.namespace, "key", key, "err", err)
		return
	}
	var stored bool
	if expect == nil {
		stored, err = c.store.SetIfAbsent(ctx, key, data, c.ttl)
	} else {
		stored, err = c.store.ReplaceIf(ctx, key, expect, data, c.ttl)
	}
	if err != nil {
		c.log.Warn("tiered: could not store a loaded value", "namespace", c.namespace, "key", key, "err", err)
		return
	}
	if stored {
		life := remote.NoExpiry
		if c.ttl > 0 {
			life = c.ttl
		}
		c.storeFill(key, v, life, tok)
	}
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
