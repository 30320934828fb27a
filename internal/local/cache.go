package local

import (
	"hash/maphash"
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// Stats are a Cache's counters since New, and what it holds now.
type Stats struct {
	Hits        uint64 // Gets that found a live entry
	Misses      uint64 // Gets that did not (including those that found an expired one)
	Evictions   uint64 // entries removed to bring a shard within its bounds (entries or bytes; expired or not)
	Expirations uint64 // expired entries found, and removed, by Get
	Rejections  uint64 // stores that kept nothing: refused by admission, larger than a shard's byte bound, or of a key not equal to itself
	Bytes       int64  // bytes held now, as the Sizer counts them
}

// Cache is an expiring cache of a bounded number of entries and bytes,
// split into shards. It is safe for concurrent use. See the package doc.
type Cache[K comparable, V any] struct {
	// Set by New and never changed: read without a lock.
	seed   maphash.Seed
	mask   uint64 // len(shards) - 1
	shards []shard[K, V]
	sizer  func(V) int64 // nil: every entry costs 0
	clock  *clock
	owned  bool // the Cache started clock, and stops it on Close
}

// New returns an empty Cache configured by opts, or an error naming the
// first invalid field. The Cache starts a goroutine to advance its clock,
// unless opts.Clock is set; Close stops it.
func New[K comparable, V any](opts Options[V]) (*Cache[K, V], error) {
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if opts.Clock != nil {
		return newCache[K](cfg, opts.Clock.k), nil
	}
	c := newCache[K](cfg, startClock())
	c.owned = true
	// The goroutine holds only the clock, so a Cache dropped without Close
	// is still collected, and this stops the goroutine then.
	runtime.AddCleanup(c, (*clock).halt, c.clock)
	return c, nil
}

// newCache builds a Cache configured by cfg on clk. Tests use it with a
// manual clock.
func newCache[K comparable, V any](cfg config[V], clk *clock) *Cache[K, V] {
	c := &Cache[K, V]{
		seed:   maphash.MakeSeed(),
		mask:   uint64(cfg.shards - 1),
		shards: make([]shard[K, V], cfg.shards),
		sizer:  cfg.sizer,
		clock:  clk,
	}
	for i := range c.shards {
		n := share(cfg.size, cfg.shards, i, math.MaxInt)
		b := share(cfg.bytes, cfg.shards, i, math.MaxInt64)
		c.shards[i].init(n, b, cfg.policy)
	}
	return c
}

// shard returns the shard key belongs to.
func (c *Cache[K, V]) shard(key K) *shard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, key)&c.mask]
}

// locate returns the shard key belongs to, its stripe's generation counter
// and its hash. The shard is chosen by the low bits of the hash, the stripe
// by the high ones.
func (c *Cache[K, V]) locate(key K) (*shard[K, V], *atomic.Uint64, uint64) {
	h := maphash.Comparable(c.seed, key)
	s := &c.shards[h&c.mask]
	return s, &s.gens[h>>(64-stripeBits)], h
}

// newEntry returns an entry of key, to be stored with deadline d.
func (c *Cache[K, V]) newEntry(key K, h uint64, value V, d int64) *entry[K, V] {
	e := &entry[K, V]{key: key, hash: h, value: value, deadline: d}
	if c.sizer != nil {
		e.cost = max(c.sizer(value), 0)
	}
	return e
}

// Get returns the value stored under key and true, or the zero V and false
// if there is none or it has expired (an expired entry is removed). A hit
// takes no lock and does not allocate, but for the moves described in the
// package doc.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	s := c.shard(key)
	if p, ok := s.index.Load(key); ok {
		e := p.(*entry[K, V])
		if e.deadline > c.clock.read() {
			// See shard.go for what a hit writes.
			if f := e.freq.Load(); f != s.capped.Load() {
				s.count(e, f)
			}
			if int64(s.seq.Load()-e.seq.Load()) > int64(s.recent.Load()) {
				s.promote(e)
			}
			s.hits.add()
			return e.value, true
		}
		s.expire(e)
	}
	s.misses.add()
	var zero V
	return zero, false
}

// Set stores value under key, unconditionally but for admission (see the
// package doc), to live for life from now. If life is over at once (life
// <= 0, or a Tick or less, as entries expire a Tick early), or value is
// larger than a shard's byte bound, Set stores nothing and removes key:
// its old value is replaced all the same. Set does not change key's
// generation, and tiered never calls it: it stores through SetIf (a fill)
// and Commit (a write that must settle against concurrent ones). The
// public package local stores through it.
func (c *Cache[K, V]) Set(key K, value V, life time.Duration) {
	s, _, h := c.locate(key)
	now := c.clock.read()
	d, ok := deadline(now, life, now)
	var e *entry[K, V]
	if ok {
		e = c.newEntry(key, h, value, d)
	}
	s.mu.Lock()
	if ok {
		s.put(e, c.clock.read())
	} else {
		s.removeKey(key)
	}
	s.mu.Unlock()
}

// Delete removes key. It does not change key's generation, so a fill in
// flight may still store an older value afterwards; use Invalidate to stop
// that.
func (c *Cache[K, V]) Delete(key K) {
	s := c.shard(key)
	s.mu.Lock()
	s.removeKey(key)
	s.mu.Unlock()
}

// Len returns the number of entries held, including expired ones that no Get
// has found yet.
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		k, _ := s.held()
		n += k
		s.mu.Unlock()
	}
	return n
}

// Stats returns the Cache's counters, summed over its shards (each read
// under its own lock, so not one instant's snapshot under concurrent use).
func (c *Cache[K, V]) Stats() Stats {
	var st Stats
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.load()
		st.Misses += s.misses.load()
		s.mu.Lock()
		st.Evictions += s.evictions
		st.Expirations += s.expirations
		st.Rejections += s.rejections
		_, b := s.held()
		st.Bytes += b
		s.mu.Unlock()
	}
	return st
}

// Close stops the Cache's own clock goroutine and waits for it to exit; a
// shared Clock (Options.Clock) is left running. It is idempotent and safe to
// call concurrently with any method.
//
// A closed Cache with its own clock still answers every call (it is just
// memory), but its clock no longer advances: it is set past every deadline,
// so from then on every entry is expired (Get misses and removes it) and
// every store stores nothing. This way no entry outlives its source
// because time stopped. A Cache on a shared Clock follows that Clock,
// closed or not.
func (c *Cache[K, V]) Close() {
	if c.owned {
		c.clock.close()
	}
}

// deadline returns the clock time at which an entry living life from at
// expires: one Tick early, because the clock may lag real time by a Tick.
// ok reports whether that is after now, that is, whether the entry is worth
// storing; never for a life of a Tick or less. A deadline beyond the
// clock's range is clamped to its end.
func deadline(at int64, life time.Duration, now int64) (d int64, ok bool) {
	span := int64(life) - int64(Tick)
	if span <= 0 {
		return 0, false
	}
	if at > math.MaxInt64-span {
		d = math.MaxInt64
	} else {
		d = at + span
	}
	return d, d > now
}
