package tiered

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"

	"github.com/tiercache/tiercache/internal/remote"
)

// GetMany returns the values of keys that either tier holds: keys that
// neither holds (or that are remembered as absent, or being loaded) are
// simply not in the map. Local hits are answered locally; the rest are read
// from Redis in one round trip per Redis node (on a Cluster, the keys of
// each hash slot are one command, and each node gets its commands in one
// round trip), with every guarantee Get gives per key: a value read before
// an invalidation of its key arrived is not stored locally, a local entry
// never outlives its Redis key, and the local tier is bypassed while the
// subscription is not confirmed. GetMany does not share reads with
// concurrent Gets.
//
// If some keys cannot be read (a Cluster node is down, a value does not
// decode), GetMany returns the values it found and a *BatchError naming
// each failed key and its cause. Duplicate keys are read once.
func (c *Cache[V]) GetMany(ctx context.Context, keys []string) (map[string]V, error) {
	out, rest, err := c.startBatch(ctx, "get-many", keys)
	if err != nil || len(rest) == 0 {
		return out, err
	}
	if c.state.Load() != stateLive {
		c.bypassed("unsubscribed", len(rest))
	}
	toks := c.tokens(rest)
	start := c.since()
	items, err := c.store.GetMany(ctx, rest)
	c.observeRedis("get-many", len(rest), start, manyErr(err, items))
	if err != nil {
		failed := make(map[string]error, len(rest))
		for _, k := range rest {
			failed[k] = err
		}
		return out, c.endBatch(opGetMany, rest, out, failed, nil)
	}
	var failed map[string]error
	for j, it := range items {
		key := rest[j]
		if it.Err != nil {
			if errors.Is(it.Err, ErrNotFound) {
				c.stats.misses.Add(1)
				c.foundNone(key)
			} else {
				failed = addFailure(failed, key, it.Err)
			}
			continue
		}
		e, h, err := c.decode(key, it.Value)
		switch {
		case err != nil:
			failed = addFailure(failed, key, err)
		case h != heldValue:
			c.stats.misses.Add(1)
			if h == heldAbsent {
				c.storeFill(key, e, it.TTL, toks[j])
			} else {
				c.foundNone(key)
			}
		default:
			c.stats.remoteHits.Add(1)
			c.storeFill(key, e, it.TTL, toks[j])
			out[key] = e.v
		}
	}
	return out, c.endBatch(opGetMany, rest, out, failed, nil)
}

// FetchMany is GetMany that calls load, once, with every key that neither
// tier holds (missing, in the order of keys), and stores what it returns
// in Redis, in one round trip per node, under the same rules as Fetch: a
// load never overwrites a newer write, and with leases on (the default),
// the keys another instance is already loading are waited for rather than
// loaded. Keys missing from load's result are not found (remembered as
// absent with NotFoundTTL or SetTTL); keys it returns that were not asked
// for are ignored.
//
// FetchMany shares work per key with the concurrent Fetches and FetchManys
// of this process: a key already being read or loaded is not read or loaded
// again, but waited for. The keys a FetchMany does read and load are read
// in one round trip per node and loaded in one call (a key whose lease
// holder died is loaded in a later call, once its lease expires).
//
// A load error fails the keys that were loaded, and FetchMany returns the
// values it found for the others with a *BatchError naming the failed keys.
// A load that returns ErrNotFound means none of the keys it was given
// exist. When ctx ends, FetchMany returns what has arrived and a
// *BatchError for the rest.
func (c *Cache[V]) FetchMany(ctx context.Context, keys []string,
	load func(ctx context.Context, missing []string) (map[string]V, error)) (map[string]V, error) {
	if load == nil {
		return nil, c.fail("fetch-many", "", errors.New("nil load function"))
	}
	out, rest, err := c.startBatch(ctx, "fetch-many", keys)
	if err != nil || len(rest) == 0 {
		return out, err
	}
	fls, err := c.fetchFlights(ctx, opFetchMany, rest, load)
	var failed map[string]error
	for i, fl := range fls {
		switch {
		case fl == nil:
			failed = addFailure(failed, rest[i], err)
		case fl.err == nil:
			out[rest[i]] = fl.v
		case !errors.Is(fl.err, ErrNotFound):
			failed = addFailure(failed, rest[i], fl.err)
		}
	}
	return out, c.endBatch(opFetchMany, rest, out, failed, fls)
}

// SetMany stores items in Redis with the cache's TTL (each spread by
// TTLJitter on its own) and publishes their invalidation, in one round trip
// per node: on a single node, one script writes every key (by groups of
// 1000) and publishes one message for them, so that the writes and their
// message happen together or not at all; on a Cluster, each hash slot's
// keys are one such script. Once SetMany returns nil, Get on this instance
// returns each value (or a newer one), as after Set.
//
// A value that does not encode fails the call before anything is written.
// If some groups fail (a Cluster node down), SetMany returns a *BatchError
// naming their keys; the other groups were written. Like Set, it returns
// when ctx ends, with the writes perhaps still to land.
func (c *Cache[V]) SetMany(ctx context.Context, items map[string]V) error {
	if err := c.closedErr(); err != nil || len(items) == 0 {
		return err
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if c.obs != nil {
		c.observe(Event{Kind: EventBatch, Op: "set-many", Keys: len(keys)})
	}
	writes := make([]remote.Write, len(keys))
	for j, k := range keys {
		data, err := c.encode(items[k])
		if err != nil {
			return c.fail("set-many", k, err)
		}
		writes[j] = remote.Write{Key: k, Value: data, TTL: c.jitter(c.ttl), Cond: remote.Always}
	}
	toks := c.tokens(keys)
	err := c.bounded(ctx, func(ctx context.Context) error {
		start := c.since()
		res, err := c.store.WriteMany(ctx, writes, c.message)
		c.observeRedis("write-many", len(writes), start, err)
		var failed map[string]error
		for j, w := range writes {
			werr := err
			if werr == nil {
				werr = res[j].Err
			}
			c.settleWrite(w.Key, c.sized(w.Key, items[w.Key], w.Value), w.TTL, toks[j].local, werr)
			if werr != nil {
				failed = addFailure(failed, w.Key, werr)
			}
		}
		return c.batchError("set-many", failed)
	}, keys...)
	var be *BatchError
	if err != nil && !errors.As(err, &be) {
		return c.batchFailed("set-many", keys, err)
	}
	return err
}

// startBatch begins GetMany or FetchMany: it answers what it can from the
// local tier, and returns the map of answers and the distinct keys left
// for Redis (in order of first appearance), or ErrClosed.
func (c *Cache[V]) startBatch(ctx context.Context, op string, keys []string) (out map[string]V, rest []string, err error) {
	if err := c.closedErr(); err != nil {
		return nil, nil, err
	}
	out = make(map[string]V, len(keys))
	return out, c.fromLocal(ctx, op, keys, out), nil
}

// fromLocal puts the local tier's answers for keys into out (an absence
// answers too, by leaving its key out), and returns the distinct keys it
// could not answer; it observes the batch (its distinct keys) and the
// local tier's answers. Each distinct key is looked up once. A hit in its
// refresh window starts its refresh (see cached).
func (c *Cache[V]) fromLocal(ctx context.Context, op string, keys []string, out map[string]V) []string {
	if c.state.Load() != stateLive {
		rest := distinct(keys)
		c.observeBatch(op, len(rest))
		return rest
	}
	if !c.hub.fresh() {
		rest := distinct(keys)
		c.observeBatch(op, len(rest))
		c.bypassed("unproven", len(rest))
		return rest
	}
	// Unless the keys are surely distinct, a key is skipped once seen: in
	// out if the local tier answered it with a value, in seen otherwise.
	check := !surelyDistinct(keys)
	var rest []string
	var seen map[string]struct{}
	for _, k := range keys {
		if check {
			if _, dup := out[k]; dup {
				continue
			}
			if _, dup := seen[k]; dup {
				continue
			}
		}
		e, ok := c.local.Get(k)
		switch {
		case ok && !e.absent:
			out[k] = e.v
			if e.ahead != nil {
				c.hitAhead(ctx, k, e.ahead)
			}
			continue
		case !ok:
			rest = append(rest, k)
		}
		if check {
			if seen == nil {
				seen = make(map[string]struct{})
			}
			seen[k] = struct{}{}
		}
	}
	if c.obs != nil {
		n := len(keys)
		if check {
			n = len(out) + len(seen)
		}
		c.observeBatch(op, n)
		c.observeLocal(op, n-len(rest), len(rest))
	}
	return rest
}

// observeBatch reports a batch of n distinct keys.
func (c *Cache[V]) observeBatch(op string, n int) {
	if c.obs != nil {
		c.observe(Event{Kind: EventBatch, Op: op, Keys: n})
	}
}

// distinctSeed seeds the hashes of surelyDistinct.
var distinctSeed = maphash.MakeSeed()

// surelyDistinct reports whether keys has no repeat, by their hashes in a
// table on the stack: false for a batch too large for the table, and for
// two keys of one hash (equal, or in the rarest of cases merely alike). It
// costs a batch a fraction of what a map of its keys would.
func surelyDistinct(keys []string) bool {
	const size = 256 // a power of two, at least twice the keys it takes
	if len(keys) > size/2 {
		return false
	}
	var table [size]uint64
	for _, k := range keys {
		h := maphash.String(distinctSeed, k) | 1 // 0 marks an empty slot
		i := h % size
		for table[i] != 0 {
			if table[i] == h {
				return false
			}
			i = (i + 1) % size
		}
		table[i] = h
	}
	return true
}

// tokens takes a fill token for each key, before the read.
func (c *Cache[V]) tokens(keys []string) []fillToken {
	toks := make([]fillToken, len(keys))
	for i, k := range keys {
		toks[i] = c.fillToken(k)
	}
	return toks
}

// distinct returns keys without repeats, in order of first appearance, in
// a slice of its own.
func distinct(keys []string) []string {
	if surelyDistinct(keys) {
		return slices.Clone(keys)
	}
	seen := make(map[string]struct{}, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}
