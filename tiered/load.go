package tiered

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tiercache/tiercache/internal/remote"
)

// loadAndStore calls the loader once with every key of r.loadIdx, writes
// what it returns to Redis as r.how says (in one round trip per node, with
// one invalidation message per write group, which wakes the instances
// waiting on this one's leases), fills the local tier with what was
// written, and finishes the keys. Callers get what the loader returned
// whether or not it could be stored.
func (r *fetchRun[V]) loadAndStore() {
	c := r.c
	idx := r.loadIdx
	keys := r.keysOf(idx)
	r.logFallbacks(idx)
	// A panic in the loader or the Codec must not leave the keys leased
	// until their leases expire: the other instances would wait that long.
	// A loader's panic is a failed load too.
	loading := true
	start := c.since()
	defer func() {
		if p := recover(); p != nil {
			if loading {
				c.stats.loadErrors.Add(1)
				if c.obs != nil {
					c.observe(Event{Kind: EventLoad, Op: r.op, Keys: len(keys), Duration: time.Since(start),
						Err: fmt.Errorf("the loader panicked: %v", p)})
				}
			}
			r.release(idx)
			panic(p)
		}
	}()
	ttls := &loadTTLs{}
	c.stats.loads.Add(1)
	lctx, cancel := context.WithTimeout(r.ctx, c.loadTimeout)
	defer cancel()
	stopRenewing := r.renewLeases(lctx, idx)
	defer stopRenewing() // also when the loader panics
	got, err := r.load(context.WithValue(lctx, loadTTLsKey{}, ttls), keys)
	stopRenewing()
	loading = false
	notFound := errors.Is(err, ErrNotFound)
	if c.obs != nil {
		c.observe(Event{Kind: EventLoad, Op: r.op, Keys: len(keys), Duration: time.Since(start), Err: nonNotFound(err)})
	}
	if err != nil && !notFound {
		c.stats.loadErrors.Add(1)
		r.release(idx)
		for _, i := range idx {
			r.finish(i, *new(V), &loadError{err: err, redis: r.how[i].redisErr})
		}
		return
	}
	if notFound {
		got = nil
	}

	writes, fills := r.writesOf(idx, got, ttls)
	for j, res := range r.write(writes) {
		f := fills[j]
		if f.i < 0 || res.Err != nil {
			continue
		}
		if !res.Applied {
			c.stats.discarded.Add(1) // the key was written, or its lease lost, during the load
			continue
		}
		life := remote.NoExpiry
		if f.ttl > 0 {
			life = f.ttl
		}
		if !f.e.absent {
			f.e.ahead = c.aheadFor(r.load, life, f.ttl)
		}
		c.storeFill(r.keys[f.i], f.e, life, r.toks[f.i])
	}
	for _, i := range idx {
		if fl := r.fls[i]; !fl.finished {
			fl.loaded = true
		}
		if v, ok := got[r.keys[i]]; ok {
			r.finish(i, v, nil)
		} else {
			r.finish(i, *new(V), ErrNotFound)
		}
	}
}

// writesOf is what loadAndStore writes for the keys of idx, given what the
// loader returned (got; absent keys were not found), with the local fill of
// each write (aligned with writes; i < 0 for none).
func (r *fetchRun[V]) writesOf(idx []int, got map[string]V, ttls *loadTTLs) (writes []remote.Write, fills []loadedFill[V]) {
	c := r.c
	for _, i := range idx {
		key, h := r.keys[i], r.how[i]
		v, ok := got[key]
		e := entry[V]{v: v, absent: !ok}
		switch {
		case !h.store:
			c.stats.fallbacks.Add(1)
			continue
		case h.cond == remote.IfAbsent && r.fls[i].overtaken.Load():
			c.stats.discarded.Add(1) // a write or invalidation of key reached us since: SET NX could land over a Delete
			continue
		}
		ttl, chosen := ttls.ttl(key)
		var w remote.Write
		switch {
		case ok:
			if !chosen {
				ttl = c.ttl
			}
			data, err := c.encode(v)
			if err != nil {
				r.unencodable(i, e, ttl, err)
				if h.leased {
					writes, fills = append(writes, r.doneWrite(key, h.expect, true)), append(fills, loadedFill[V]{i: -1})
				}
				continue
			}
			c.charge(&e, key, data)
			w = remote.Write{Key: key, Value: data, TTL: c.jitter(ttl), Cond: h.cond, Expect: h.expect}
		default:
			if !chosen {
				ttl = c.notFoundTTL
			}
			if ttl == 0 { // absence not remembered, but told to the instances waiting on the lease
				if h.leased {
					writes, fills = append(writes, r.doneWrite(key, h.expect, false)), append(fills, loadedFill[V]{i: -1})
				}
				continue
			}
			w = remote.Write{Key: key, Value: remote.AbsentMarker(), TTL: c.jitter(ttl), Cond: h.cond, Expect: h.expect}
			c.charge(&e, key, w.Value)
		}
		writes, fills = append(writes, w), append(fills, loadedFill[V]{i: i, e: e, ttl: w.TTL})
	}
	return writes, fills
}

// unencodable handles keys[i]'s loaded value e, which the Codec could not
// encode (err): it is counted, observed and logged, and, since Redis
// cannot hold it, kept in the local tier alone (as a fill: unless key was
// invalidated since the read, and no longer than its TTL would have kept
// it in Redis), so that the next Fetches of key do not call the loader
// again, each to fail the same way. Invalidations drop it as any entry.
func (r *fetchRun[V]) unencodable(i int, e entry[V], ttl time.Duration, err error) {
	c, key := r.c, r.keys[i]
	c.encodeFailed(r.op, key, err)
	life := remote.NoExpiry
	if ttl > 0 {
		life = ttl
	}
	c.charge(&e, key, nil)
	c.storeFill(key, e, life, r.toks[i])
}

// encodeFailed counts, observes and logs a loaded value of key that the
// Codec could not encode, under op.
func (c *Cache[V]) encodeFailed(op, key string, err error) {
	c.stats.encodeErrors.Add(1)
	if c.obs != nil {
		c.observe(Event{Kind: EventEncode, Op: op, Keys: 1, Err: err})
	}
	c.warnLimited("tiered: could not encode a loaded value; not stored in Redis", "op", op,
		"namespace", c.namespace, "key", key, "err", err)
}

// logFallbacks logs, once for the lot, the keys of idx that are loaded
// without storing because Redis could not be read.
func (r *fetchRun[V]) logFallbacks(idx []int) {
	n, first := 0, -1
	for _, i := range idx {
		if r.how[i].redisErr != nil {
			if n++; first < 0 {
				first = i
			}
		}
	}
	if n > 0 {
		r.c.warnLimited("tiered: Redis read failed; answering from the loader without storing", "op", r.op,
			"namespace", r.c.namespace, "keys", n, "key", r.keys[first], "err", unlabel(r.how[first].redisErr))
	}
}

// loadedFill is what the local tier gets once a loaded write has landed;
// i < 0 for a write that fills nothing (a lease released).
type loadedFill[V any] struct {
	i   int
	e   entry[V]
	ttl time.Duration
}

// doneWrite replaces this run's lease of key, if the key still holds it,
// with the load's outcome when it stored no value: absent, or failed (see
// the protocol in internal/remote's lease.go). The instances that waited
// on the lease are woken by the write's message and share the outcome
// instead of loading again one after another. The second parameter, this
// run's lease marker, is unused (remote.DoneWrite makes it from the token);
// it goes when loadAndStore, its caller, is split.
func (r *fetchRun[V]) doneWrite(key string, _ []byte, failed bool) remote.Write {
	return remote.DoneWrite(key, r.token, failed)
}

// release ends the leases this run holds among idx after a failed load, so
// that the instances waiting on them learn it at once instead of at the
// leases' expiry.
func (r *fetchRun[V]) release(idx []int) {
	var ws []remote.Write
	for _, i := range idx {
		if h := r.how[i]; h.leased {
			ws = append(ws, r.doneWrite(r.keys[i], h.expect, true))
		}
	}
	if len(ws) == 0 {
		return
	}
	// r.ctx may have ended (a loader that ran out its LoadTimeout): a
	// release is still worth a short try.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), releaseTimeout)
	defer cancel()
	r.writeCtx(ctx, ws)
}

// releaseTimeout bounds the release of leases after a failed load.
const releaseTimeout = time.Second

// write applies ws with the invalidation message of their keys, logging
// what failed, and wakes this instance's own waiters on those keys (its own
// messages do not reach it). It returns the results aligned with ws, or
// nil when the whole call failed.
func (r *fetchRun[V]) write(ws []remote.Write) []remote.Result { return r.writeCtx(r.ctx, ws) }

func (r *fetchRun[V]) writeCtx(ctx context.Context, ws []remote.Write) []remote.Result {
	if len(ws) == 0 {
		return nil
	}
	c := r.c
	start := c.since()
	res, err := c.store.WriteMany(ctx, ws, c.message)
	c.observeRedis("write-many", len(ws), start, err)
	keys := make([]string, len(ws))
	for j, w := range ws {
		keys[j] = w.Key
	}
	c.wakers.wake(keys...)
	if err == nil {
		for j := range res {
			if err = res[j].Err; err != nil {
				break
			}
		}
	}
	if err != nil {
		c.warnLimited("tiered: could not store loaded values (or release their leases)",
			"namespace", c.namespace, "keys", len(ws), "key", ws[0].Key, "err", err)
	}
	return res
}

// renewLeases keeps the leases this run holds among idx alive while their
// load runs, so that a load slower than LeaseTTL still stores its value
// once: every third of LeaseTTL it extends them to LeaseTTL from then, on a
// goroutine of its own. The returned stop ends it and waits for it; it may
// be called more than once. A holder that dies stops renewing, and its
// leases expire after LeaseTTL as before.
func (r *fetchRun[V]) renewLeases(ctx context.Context, idx []int) (stop func()) {
	c := r.c
	var keys []string
	for _, i := range idx {
		if r.how[i].leased {
			keys = append(keys, r.keys[i])
		}
	}
	if len(keys) == 0 {
		return func() {}
	}
	every := max(c.leaseTTL/3, time.Millisecond)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(ctx, every)
			start := c.since()
			_, err := c.store.Renew(rctx, keys, r.token, c.leaseTTL)
			cancel()
			c.observeRedis("renew", len(keys), start, err)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}
