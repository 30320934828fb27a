package tiered

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/internal/remote"
)

// Refresh ahead (Options.RefreshAhead): a local hit on an entry that a
// loader filled, once the entry's Redis key is in the last RefreshAhead of
// its TTL (its window), loads the key again in the background and writes
// the new value over the old one, so that a key read often enough never
// expires and no caller waits for its load.
//
// A refresh:
//  1. takes the key's refresh lease (with leases on), so that one instance
//     of the fleet refreshes the key at a time; an instance that finds it
//     held leaves the refresh to its holder;
//  2. reads the key, and stops if it no longer holds a value in its window
//     (another instance refreshed it, or wrote it);
//  3. calls the loader, under LoadTimeout;
//  4. writes what it returned only if the key still holds the bytes read in
//     2 (so never over a newer write), with the write's invalidation;
//  5. settles this instance's local tier as a write of its own does, the
//     new entry carrying the loader and its next window;
//  6. releases the lease.
//
// The lease is taken before the read, not after: an instance that takes it
// just after another's refresh released it then reads the refreshed value,
// and stops, instead of loading a second time in the same window.

// maxRefreshes is how many refreshes of one cache run at once.
const maxRefreshes = 4

// maxRefreshRetry bounds how long a failed refresh (or one that found the
// lease held) holds back the next attempt of this instance on its entry.
const maxRefreshRetry = time.Second

// refreshing is ahead.next while a refresh of the entry runs (or ran and
// replaced it): no hit starts another.
const refreshing = math.MaxInt64

// ahead is what a local entry filled by a loader carries for refresh ahead.
type ahead[V any] struct {
	load loader[V]
	ttl  time.Duration // the TTL of which the window is the last RefreshAhead
	// next is the Hub clock's time before which no hit starts a refresh of
	// the entry: when its window opens, later after a failed attempt, and
	// refreshing once one runs.
	next atomic.Int64
}

// refreshSet is the keys a cache is refreshing: at most one refresh per
// key, and maxRefreshes in all.
type refreshSet struct {
	mu   sync.Mutex
	keys map[string]struct{} // guarded by mu
	n    atomic.Int32        // len(keys), for a look without mu
}

// start adds key, unless it is in already (busy) or the set is full.
func (s *refreshSet) start(key string) (started, busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[key]; ok {
		return false, true
	}
	if len(s.keys) >= maxRefreshes {
		return false, false
	}
	if s.keys == nil {
		s.keys = make(map[string]struct{}, maxRefreshes)
	}
	s.keys[key] = struct{}{}
	s.n.Store(int32(len(s.keys)))
	return true, false
}

func (s *refreshSet) done(key string) {
	s.mu.Lock()
	delete(s.keys, key)
	s.n.Store(int32(len(s.keys)))
	s.mu.Unlock()
}

// window is the length of the refresh window of a value written with ttl.
func (c *Cache[V]) window(ttl time.Duration) time.Duration {
	return time.Duration(c.refreshAhead * float64(ttl))
}

// aheadFor returns what a local entry of a value loaded by load carries for
// refresh ahead: its Redis key expires after remaining (NoExpiry: never),
// and its window is the last RefreshAhead of ttl. It returns nil when the
// value is not to be refreshed.
func (c *Cache[V]) aheadFor(load loader[V], remaining, ttl time.Duration) *ahead[V] {
	if c.refreshAhead == 0 || load == nil || ttl <= 0 || remaining <= 0 {
		return nil
	}
	a := &ahead[V]{load: load, ttl: ttl}
	a.next.Store(c.hub.clock.Now() + int64(remaining-c.window(ttl)))
	return a
}

// hitAhead is told of a hit on key's entry, which carries a: it starts the
// entry's refresh if its window is open. ctx is the caller's: the refresh
// keeps its values, not its cancellation.
func (c *Cache[V]) hitAhead(ctx context.Context, key string, a *ahead[V]) {
	next := a.next.Load()
	if next == refreshing || c.hub.clock.Now() < next {
		return
	}
	c.startRefresh(ctx, key, a, next)
}

// startRefresh starts a refresh of key's entry a, whose next was next,
// unless one runs already (for this entry or another of key) or
// maxRefreshes do.
func (c *Cache[V]) startRefresh(ctx context.Context, key string, a *ahead[V], next int64) {
	if c.refreshes.n.Load() >= maxRefreshes || !a.next.CompareAndSwap(next, refreshing) {
		return
	}
	started, busy := c.refreshes.start(key)
	switch {
	case busy: // an older entry's refresh: its end replaces this entry
		a.next.Store(c.hub.clock.Now() + int64(c.refreshRetry(a)))
		return
	case !started: // full: the next hit tries again
		a.next.Store(next)
		return
	}
	rctx := context.WithoutCancel(ctx)
	if err := c.launch(func() { c.refresh(rctx, key, a) }); err != nil {
		c.refreshes.done(key) // closed
	}
}

// refreshFailed counts a failed refresh of a's entry, and holds back the
// next attempt; a refresh that Close cut short has not failed.
func (c *Cache[V]) refreshFailed(a *ahead[V]) {
	a.next.Store(c.hub.clock.Now() + int64(c.refreshRetry(a)))
	if c.closing.Err() == nil {
		c.stats.refreshErrors.Add(1)
	}
}

// refreshRetry is how long after a failed attempt this instance waits to
// try a's entry again: a quarter of its window, a second at most.
func (c *Cache[V]) refreshRetry(a *ahead[V]) time.Duration {
	return min(max(c.window(a.ttl)/4, local.Tick), maxRefreshRetry)
}

// refresh refreshes key, whose local entry carries a; see the top of this
// file. It runs on a goroutine of its own (launch), stopped by Close.
func (c *Cache[V]) refresh(ctx context.Context, key string, a *ahead[V]) {
	defer c.refreshes.done(key)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.closing, cancel)
	defer stop()

	failed := func(what string, err error) {
		if c.closing.Err() == nil {
			c.warnLimited("tiered: refresh ahead failed: "+what, "namespace", c.namespace, "key", key, "err", err)
		}
		c.refreshFailed(a)
	}
	// A Codec runs here too, on no caller's goroutine: its panic must not
	// end the process. (The loader's is recovered where it is called.)
	defer func() {
		if p := recover(); p != nil {
			pe := newPanicError(p)
			c.log.Error("tiered: a Codec panicked in a refresh",
				append([]any{"namespace", c.namespace, "key", key}, pe.attrs()...)...)
			c.refreshFailed(a)
		}
	}()

	pctx, pcancel := context.WithTimeout(ctx, c.loadTimeout)
	defer pcancel()
	if c.leaseTTL > 0 {
		token := remote.NewLeaseToken()
		start := c.since()
		ok, err := c.store.AcquireRefresh(pctx, key, token, c.leaseTTL)
		c.observeRedis("acquire-refresh", 1, start, err)
		switch {
		case err != nil:
			failed("refresh lease", err)
			return
		case !ok: // another instance refreshes the key
			a.next.Store(c.hub.clock.Now() + int64(c.refreshRetry(a)))
			return
		}
		defer c.releaseRefresh(ctx, key, token)
	}

	tok := c.fillToken(key)
	start := c.since()
	old, remaining, err := c.store.GetWithTTL(pctx, key)
	c.observeRedis("get", 1, start, err)
	switch {
	case errors.Is(err, ErrNotFound):
		return // expired or deleted: the entry goes too
	case err != nil:
		failed("read", err)
		return
	}
	e, h, err := c.decode(key, old)
	if err != nil || h != heldValue {
		return // not a value any more: not a refresh's business
	}
	if remaining == remote.NoExpiry || remaining > c.window(a.ttl)+2*local.Tick {
		// Written since the entry was filled (refreshed elsewhere, say):
		// take what Redis holds.
		e.ahead = c.aheadFor(a.load, remaining, c.ttl)
		c.storeFill(key, e, remaining, tok)
		return
	}

	// LoadTimeout bounds the load and the write of what it returned, as
	// for Fetch.
	lctx, lcancel := context.WithTimeout(ctx, c.loadTimeout)
	defer lcancel()
	w, e, ok := c.reload(lctx, key, a, old)
	if !ok {
		return
	}
	c.storeRefresh(lctx, key, a, w, e, failed)
}

// storeRefresh writes w, what a refresh of key loaded, if Redis still holds
// what the refresh read, and settles the local tier's entry e with it.
func (c *Cache[V]) storeRefresh(ctx context.Context, key string, a *ahead[V], w remote.Write, e entry[V], failed func(string, error)) {
	ltok := c.local.Token(key)
	start := c.since()
	res, err := c.store.WriteMany(ctx, []remote.Write{w}, c.message)
	c.observeRedis("write-many", 1, start, err)
	if err == nil {
		err = res[0].Err
	}
	switch {
	case err != nil:
		c.settleWrite(key, e, w.TTL, ltok, err) // it may have landed: drop the key
		failed("write", err)
	case !res[0].Applied:
		// The key changed (its writer's invalidation drops it here) or
		// expired: the refresh lost to it.
	case w.Delete:
		c.invalidateLocal(key)
	default:
		if !e.absent {
			e.ahead = c.aheadFor(a.load, w.TTL, w.TTL)
		}
		c.settleWrite(key, e, w.TTL, ltok, nil)
	}
}

// reload calls a's loader for key, and returns the write of what it
// returned over old (the bytes it replaces) and the entry it makes; ok is
// false when there is nothing to write (the failure is counted and logged).
func (c *Cache[V]) reload(ctx context.Context, key string, a *ahead[V], old []byte) (w remote.Write, e entry[V], ok bool) {
	c.stats.loads.Add(1)
	c.stats.refreshes.Add(1)
	ttls := &loadTTLs{}
	start := c.since()
	got, err := c.callRefreshLoader(context.WithValue(ctx, loadTTLsKey{}, ttls), key, a.load)
	if c.obs != nil {
		c.observe(Event{Kind: EventLoad, Op: "refresh", Keys: 1, Duration: time.Since(start), Err: nonNotFound(err)})
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		c.stats.loadErrors.Add(1)
		if c.closing.Err() == nil {
			c.warnLimited("tiered: refresh ahead failed: load", "namespace", c.namespace, "key", key, "err", err)
		}
		c.refreshFailed(a)
		return w, e, false
	}
	w = remote.Write{Key: key, Cond: remote.IfEqual, Expect: old}
	ttl, chosen := ttls.ttl(key)
	v, found := got[key]
	switch {
	case err == nil && found:
		data, err := c.encode(v)
		if err != nil {
			c.encodeFailed(opRefresh, key, err)
			c.refreshFailed(a)
			return w, e, false
		}
		if !chosen {
			ttl = c.ttl
		}
		w.Value, w.TTL = data, c.jitter(ttl)
		return w, c.sized(key, v, data), true
	default: // the source no longer has the key
		if !chosen {
			ttl = c.notFoundTTL
		}
		if ttl == 0 {
			w.Delete = true
			return w, entry[V]{absent: true}, true
		}
		w.Value, w.TTL = remote.AbsentMarker(), c.jitter(ttl)
		return w, entry[V]{absent: true}, true
	}
}

// callRefreshLoader calls load for key. A panic in it has no caller to
// reach: it is logged, and returned as a *panicError.
func (c *Cache[V]) callRefreshLoader(ctx context.Context, key string, load loader[V]) (got map[string]V, err error) {
	defer func() {
		if p := recover(); p != nil {
			pe := newPanicError(p)
			c.log.Error("tiered: a loader panicked in a refresh",
				append([]any{"namespace", c.namespace, "key", key}, pe.attrs()...)...)
			got, err = nil, pe
		}
	}()
	return load(ctx, []string{key})
}

// releaseRefresh ends the refresh lease of key held with token; ctx may have
// ended (Close, LoadTimeout): the release is still worth a short try,
// since the other instances leave the key alone until the lease expires.
func (c *Cache[V]) releaseRefresh(ctx context.Context, key, token string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	start := c.since()
	_, err := c.store.ReleaseRefresh(rctx, key, token)
	c.observeRedis("release-refresh", 1, start, err)
	if err != nil {
		c.warnLimited("tiered: could not release a refresh lease", "namespace", c.namespace, "key", key, "err", err)
	}
}
