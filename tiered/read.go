package tiered

import (
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/tiercache/tiercache/internal/remote"
)

// Get returns the value of key: from the local tier when it holds it, else
// from Redis (one read shared by the concurrent Gets of key in this process
// that began since key was last invalidated here), filling the local tier. A
// key in neither is ErrNotFound, and so is a key remembered as absent
// (NotFoundTTL) or being loaded by a Fetch (a lease, no value yet); a Redis
// value that does not decode is an error naming the key. Get returns when
// ctx ends, whatever the client's options.
func (c *Cache[V]) Get(ctx context.Context, key string) (V, error) {
	if e, ok, err := c.cached(ctx, "get", key); ok || err != nil {
		if err == nil && e.absent {
			err = c.fail("get", key, ErrNotFound)
		}
		return e.v, err
	}
	v, err := c.reads.do(ctx, key, func(ctx context.Context, _ *flight[V]) (V, error) { return c.read(ctx, key) })
	if err != nil {
		v, final := c.orStale("get", key, err)
		c.observeReads(opGet, readFailed(err, final))
		return v, final
	}
	c.observeReads(opGet, reads{remote: 1})
	return v, nil
}

// cached answers from the local tier when the subscription is live and the
// Hub can prove it fresh (counting the reads it cannot), and with ErrClosed
// after Close. An entry may be an absence: ok, with e.absent. A hit on an
// entry in its refresh window starts its refresh, with ctx's values.
func (c *Cache[V]) cached(ctx context.Context, op, key string) (e entry[V], ok bool, err error) {
	switch c.state.Load() {
	case stateLive:
		if !c.hub.fresh() {
			c.bypassed("unproven", 1)
			return e, false, nil
		}
		e, ok = c.local.Get(key)
		if ok && e.ahead != nil {
			c.hitAhead(ctx, key, e.ahead)
		}
		if c.obs != nil {
			c.observeLocal(op, b2i(ok), b2i(!ok))
		}
	case stateClosed:
		err = ErrClosed
	}
	return e, ok, err
}

// read reads key from Redis and, when the subscription is live and nothing
// invalidated key meanwhile, stores it in the local tier.
func (c *Cache[V]) read(ctx context.Context, key string) (V, error) {
	var zero V
	if c.state.Load() == stateLive {
		// A read that ended just before this one began may have filled it.
		if c.hub.fresh() {
			if e, ok := c.local.Get(key); ok {
				if e.absent {
					return zero, ErrNotFound
				}
				return e.v, nil
			}
		}
	} else {
		c.bypassed("unsubscribed", 1)
	}
	// The token is taken before the read: an invalidation that arrives after
	// it makes the store below a no-op, so a value read before the
	// invalidation never lands.
	tok := c.fillToken(key)
	start := c.since()
	data, ttl, err := c.store.GetWithTTL(ctx, key)
	c.observeRedis("get", 1, start, err)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			c.stats.misses.Add(1)
			c.foundNone(key)
		}
		return zero, err
	}
	e, h, err := c.decodeRead(key, data)
	switch {
	case err != nil:
		return zero, err
	case h != heldValue:
		c.stats.misses.Add(1)
		if h == heldAbsent {
			c.storeFill(key, e, ttl, tok)
		} else {
			c.foundNone(key)
		}
		return zero, ErrNotFound
	}
	c.stats.remoteHits.Add(1)
	c.storeFill(key, e, ttl, tok)
	return e.v, nil
}

// storeFill puts an entry read from Redis into the local tier for
// min(LocalTTL, its remaining Redis TTL), unless key was invalidated since
// tok; while the subscription is not live, also into the suspect tier (with
// StaleIfError), never to be served as a hit.
func (c *Cache[V]) storeFill(key string, e entry[V], remaining time.Duration, tok fillToken) {
	life := c.localTTL
	if remaining != remote.NoExpiry && remaining < life {
		life = remaining
	}
	switch c.state.Load() {
	case stateLive:
		c.local.SetIf(key, e, life, tok.local)
	case stateBypass:
		if c.suspect != nil {
			c.suspect.SetIf(key, staleEntry[V]{e: e, since: time.Now()}, c.staleIfError, tok.suspect)
		}
		if !c.localOff {
			// Kept for when the subscription is back: not served until then,
			// and dropped then by the purge, or by the replay of the writes
			// made since (Repaired), like every other entry.
			c.local.SetIf(key, e, life, tok.local)
		}
	}
}

// decodeRead is decode for the bytes of a single-key read: GetWithTTL's
// value, which backs a string and which no one writes, is taken as it is by
// the default Codec of strings, without a copy. (GetMany's values share one
// buffer, which one string kept in the local tier would keep whole: they
// are copied.)
func (c *Cache[V]) decodeRead(key string, data []byte) (entry[V], held, error) {
	if d, ok := c.codec.(ownDecoder[V]); ok && !remote.IsMarker(data) {
		e := entry[V]{v: d.unmarshalOwn(data)}
		c.charge(&e, key, data)
		return e, heldValue, nil
	}
	return c.decode(key, data)
}

// An ownDecoder decodes bytes that it may keep: no one writes them again.
type ownDecoder[V any] interface {
	unmarshalOwn(data []byte) V
}

// unmarshalOwn makes data, which no one writes again, the string itself.
func (stringCodec) unmarshalOwn(data []byte) string {
	return unsafe.String(unsafe.SliceData(data), len(data))
}
