package tiered

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tiercache/tiercache/internal/remote"
)

// Fetch is Get that calls load for a key Redis does not hold (or holds bytes
// that do not decode), stores what load returns in Redis with the cache's
// TTL (or the one load chose with SetTTL), and returns it.
//
// Concurrent Fetches and FetchManys of one key in this process share one
// Redis read and at most one load: the shared work runs on a goroutine of
// its own under LoadTimeout, detached from every caller's cancellation, and
// each caller stops waiting when its own ctx ends. A Fetch that begins after
// key was invalidated here (by another instance's write, or this one's) does
// not join work that began before.
//
// Across instances, with leases on (the default; see Options.LeaseTTL), the
// first instance to find key cold takes a lease on it in Redis and loads;
// the others wait for the value it stores, woken by that write's
// invalidation message, so load runs once in the whole fleet.
//
// What load returns is stored only if nothing wrote key since: with a
// lease, only while key still holds this instance's lease (a Set or Delete
// meanwhile replaced it); without, only if key is still absent and no write
// or invalidation of key reached this instance meanwhile. Either way the
// callers get what load returned.
//
// A load error is returned and nothing is stored. A load that returns
// ErrNotFound makes Fetch return ErrNotFound, and with NotFoundTTL (or SetTTL)
// the absence is remembered in both tiers. If Redis cannot be read (it is
// down), Fetch answers from load and stores nothing anywhere (counted in
// Stats.Fallbacks). If storing the loaded value fails, Fetch still returns it
// (and logs the failure). A loaded value the Codec cannot encode is returned
// and held in the local tier alone, as a value read from Redis would be
// (invalidations drop it), so that the next Fetches do not load it again;
// it is counted in Stats.EncodeErrors, observed (EventEncode) and logged. A panic in load, or in the Codec, reaches the
// caller whose Fetch started the shared work as a panic, and the other
// callers as an error.
func (c *Cache[V]) Fetch(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	var zero V
	if load == nil {
		return zero, c.fail("fetch", key, errors.New("nil load function"))
	}
	if e, ok, err := c.cached(ctx, "fetch", key); ok || err != nil {
		if err == nil && e.absent {
			err = c.fail("fetch", key, ErrNotFound)
		}
		return e.v, err
	}
	fls, err := c.fetchFlights(ctx, opFetch, []string{key}, func(ctx context.Context, _ []string) (map[string]V, error) {
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]V{key: v}, nil
	})
	loaded := false
	if err == nil {
		err, loaded = fls[0].err, fls[0].loaded
	}
	switch {
	case loaded: // a value, or the loader's "not found"
		c.observeReads(opFetch, reads{loader: 1})
	case err == nil:
		c.observeReads(opFetch, reads{remote: 1})
	}
	if err != nil {
		v, final := c.orStale("fetch", key, err)
		if !loaded {
			c.observeReads(opFetch, readFailed(err, final))
		}
		return v, final
	}
	return fls[0].v, nil
}

// loader is FetchMany's load function; Fetch's is adapted to it.
type loader[V any] func(ctx context.Context, missing []string) (map[string]V, error)

// fetchFlights runs (or joins) the shared work of keys, distinct and not
// answered locally, and returns their flights aligned with keys (nil for
// those not landed when ctx ended, with ctx's error).
func (c *Cache[V]) fetchFlights(ctx context.Context, op string, keys []string, load loader[V]) ([]*flight[V], error) {
	return c.loads.detachedMany(ctx, keys, c.launch, func(led []string, fls []*flight[V]) {
		c.fetchWork(ctx, op, led, fls, load)
	})
}

// fetchRun is the state of one shared read-and-load of some keys.
type fetchRun[V any] struct {
	c     *Cache[V]
	op    string          // the call that started it: opFetch or opFetchMany
	ctx   context.Context // under LoadTimeout, ended by Close
	load  loader[V]
	keys  []string
	fls   []*flight[V]
	toks  []fillToken
	token string // this run's lease owner token

	// What each key needs after a read, by index into keys.
	claim    []int          // absent from Redis: take a lease (or, without leases, load and SET NX)
	loadIdx  []int          // to load
	how      map[int]howTo  // for each key to load: how to store what the load returns
	waiting  []int          // leased by another instance
	waitedOn map[int]string // the token of the lease each key waited on
	waitTill time.Time      // when the first of their leases expires
	loaded   bool           // the loader has been called
}

// howTo says how a loaded key's value is written to Redis.
type howTo struct {
	store  bool // false: Redis could not be read; store nothing
	cond   remote.Cond
	expect []byte // for IfEqual: this instance's lease marker, or bytes that did not decode
	leased bool   // expect is this instance's lease: release it if nothing is stored

	redisErr error // !store: the Redis error that made the load a fallback
}

// fetchWork is the shared work of Fetch and FetchMany for keys: read them
// from Redis; for the cold ones, take a lease (when leases are on) and call
// the loader once with every key this run must load; store what it returns;
// and wait, woken by invalidations, for the keys other instances are loading.
// It finishes each key's flight as soon as the key's result is known.
func (c *Cache[V]) fetchWork(ctx context.Context, op string, keys []string, fls []*flight[V], load loader[V]) {
	// The run reads, may wait out another instance's lease (at most
	// LeaseTTL, if its holder died), and loads under a LoadTimeout of its
	// own from when the load begins (see loadAndStore).
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.loadTimeout+max(c.leaseTTL, 0))
	defer cancel()
	stop := context.AfterFunc(c.closing, cancel)
	defer stop()

	r := &fetchRun[V]{c: c, op: op, ctx: lctx, load: load, keys: keys, fls: fls, toks: make([]fillToken, len(keys))}
	if c.leaseTTL > 0 {
		r.token = remote.NewLeaseToken()
	}
	todo := make([]int, len(keys))
	for i := range todo {
		todo[i] = i
	}
	w := newWaiter()
	for len(todo) > 0 {
		// Registered before the read, so that the message of a write made
		// just after it (the holder storing its value) cannot be missed.
		watched := r.keysOf(todo)
		c.wakers.watch(w, watched)
		r.pass(todo)
		ok := len(r.waiting) == 0 || r.wait(w)
		c.wakers.unwatch(w, watched)
		if !ok {
			for _, i := range r.waiting {
				r.finish(i, *new(V), fmt.Errorf("waiting for another instance's load: %w", context.Cause(lctx)))
			}
			return
		}
		todo = append(todo[:0], r.waiting...)
	}
}

// pass reads the keys of todo and acts on what it finds; it leaves in
// r.waiting the keys that another instance is loading.
func (r *fetchRun[V]) pass(todo []int) {
	c := r.c
	r.claim, r.loadIdx, r.waiting, r.how = r.claim[:0], r.loadIdx[:0], r.waiting[:0], make(map[int]howTo)
	r.waitTill = time.Time{}
	for _, i := range todo {
		r.toks[i] = c.fillToken(r.keys[i])
	}
	if c.state.Load() != stateLive {
		c.bypassed("unsubscribed", len(todo))
	}
	start := c.since()
	items, err := c.store.GetMany(r.ctx, r.keysOf(todo))
	c.observeRedis("get-many", len(todo), start, manyErr(err, items))
	for j, i := range todo {
		switch {
		case err == nil:
			r.found(i, items[j].Value, items[j].TTL, items[j].Err)
		case r.ctx.Err() != nil: // LoadTimeout passed, or Close
			r.finish(i, *new(V), err)
		default:
			r.found(i, nil, 0, err)
		}
	}
	if len(r.claim) > 0 {
		if r.token == "" {
			for _, i := range r.claim {
				r.toLoad(i, howTo{store: true, cond: remote.IfAbsent})
			}
		} else {
			r.acquire()
		}
	}
	if len(r.loadIdx) > 0 {
		r.loadAndStore()
	}
}

// found acts on what Redis holds at keys[i] (data, with ttl), or on the
// error of reading it.
func (r *fetchRun[V]) found(i int, data []byte, ttl time.Duration, err error) {
	c, key := r.c, r.keys[i]
	switch {
	case errors.Is(err, ErrNotFound):
		c.stats.misses.Add(1)
		c.foundNone(key)
		r.claim = append(r.claim, i)
		return
	case err != nil:
		// Redis cannot be read: the source of truth can still answer. What
		// it returns is stored nowhere, since nothing could tell this
		// instance when it changes.
		r.toLoad(i, howTo{redisErr: err})
		return
	}
	e, h, err := c.decode(key, data)
	var decodeErr *decodeError
	switch {
	case errors.As(err, &decodeErr):
		c.warnLimited("tiered: value in Redis does not decode; reloading", "op", r.op,
			"namespace", c.namespace, "key", key, "err", decodeErr.err)
		r.toLoad(i, howTo{store: true, cond: remote.IfEqual, expect: decodeErr.data})
	case h == heldDone:
		c.foundNone(key)
		token, failed, _ := remote.ParseDoneMarker(data)
		switch {
		case token != r.waitedOn[i]: // an older load's outcome: the key holds nothing
			c.stats.misses.Add(1)
			r.claim = append(r.claim, i)
		case failed:
			r.finish(i, *new(V), errLoadFailedElsewhere)
		default:
			c.stats.misses.Add(1)
			r.finish(i, *new(V), ErrNotFound)
		}
	case h == heldLease:
		c.foundNone(key)
		if r.waitedOn == nil {
			r.waitedOn = make(map[int]string)
		}
		r.waitedOn[i], _ = remote.LeaseToken(data)
		r.waiting = append(r.waiting, i)
		if until := time.Now().Add(ttl); ttl != remote.NoExpiry && (r.waitTill.IsZero() || until.Before(r.waitTill)) {
			r.waitTill = until
		}
	case h == heldAbsent:
		c.stats.misses.Add(1)
		c.storeFill(key, e, ttl, r.toks[i])
		r.finish(i, e.v, ErrNotFound)
	default:
		c.stats.remoteHits.Add(1)
		e.ahead = c.aheadFor(r.load, ttl, c.ttl)
		c.storeFill(key, e, ttl, r.toks[i])
		if e.ahead != nil { // a value already in its window starts its refresh
			c.hitAhead(r.ctx, key, e.ahead)
		}
		r.finish(i, e.v, nil)
	}
}

func (r *fetchRun[V]) toLoad(i int, h howTo) {
	r.loadIdx = append(r.loadIdx, i)
	r.how[i] = h
}

// acquire takes a lease on each key of r.claim; a key that another
// instance leased, or wrote, meanwhile is handled as if read so.
func (r *fetchRun[V]) acquire() {
	c := r.c
	start := c.since()
	claims, err := c.store.Acquire(r.ctx, r.keysOf(r.claim), r.token, c.leaseTTL)
	c.observeRedis("acquire", len(r.claim), start, err)
	if err != nil {
		for _, i := range r.claim {
			if r.ctx.Err() != nil {
				r.finish(i, *new(V), err)
			} else {
				r.found(i, nil, 0, err)
			}
		}
		return
	}
	lease := remote.LeaseMarker(r.token)
	for j, i := range r.claim {
		cl := claims[j]
		switch {
		case cl.Acquired:
			r.toLoad(i, howTo{store: true, cond: remote.IfEqual, expect: lease, leased: true})
		case cl.Err != nil && !errors.Is(cl.Err, ErrNotFound):
			r.found(i, nil, 0, cl.Err) // a write Redis refused: load without storing
		case cl.Value == nil: // cannot be: read it again shortly
			r.waiting = append(r.waiting, i)
		default:
			r.found(i, cl.Value, cl.TTL, nil)
		}
	}
}

// wait sleeps, with w watching the keys of the last pass, until an
// invalidation reaches one of them (or the
// local tier is purged), until the first of their leases expires, or, while
// the subscription is not live (no message can be trusted to arrive), for
// at most bypassPoll. It reports false when r.ctx ended.
func (r *fetchRun[V]) wait(w chan struct{}) bool {
	c := r.c
	c.stats.leaseWaits.Add(1)
	d := bypassPoll
	if !r.waitTill.IsZero() {
		d = time.Until(r.waitTill) + time.Millisecond
		if c.state.Load() != stateLive {
			d = min(d, bypassPoll)
		}
	}
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-w:
	case <-t.C:
	case <-r.ctx.Done():
		return false
	}
	select { // a wake that raced the timer would only cause one more read
	case <-w:
	default:
	}
	return true
}

// errLoadFailedElsewhere is the result of a key whose load failed on the
// instance holding its lease, for the instances that waited on it: they
// share the outcome, as the callers of one process share a failed load.
var errLoadFailedElsewhere = errors.New("the load failed on the instance that held the key's lease")

// bypassPoll is how often a Fetch waiting for another instance's load
// re-reads Redis while no invalidation message can be relied on to wake it
// (the subscription is not confirmed), or when the lease has no TTL.
const bypassPoll = 10 * time.Millisecond

func (r *fetchRun[V]) finish(i int, v V, err error) {
	r.c.loads.finish(r.keys[i], r.fls[i], v, err)
}

func (r *fetchRun[V]) keysOf(idx []int) []string {
	ks := make([]string, len(idx))
	for j, i := range idx {
		ks[j] = r.keys[i]
	}
	return ks
}
