package local

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

const (
	// DefaultSize is the capacity of a Cache whose Options.Size is 0.
	DefaultSize = 10_000
	// DefaultShards is the most shards New chooses when Options.Shards is 0.
	DefaultShards = 16

	// minShardSize is the fewest entries per shard New aims for when it
	// chooses the number of shards itself.
	minShardSize = 64

	// stripeBits is log2 of the number of generation counters per shard.
	stripeBits = 6
	stripes    = 1 << stripeBits
)

// Options configures a Cache. The zero value is valid: DefaultSize entries
// in up to DefaultShards shards.
type Options struct {
	// Size is the most entries the Cache holds in total; the least recently
	// used entry of a shard is evicted to make room. 0 means DefaultSize; a
	// negative Size is an error.
	Size int

	// Shards is the number of independently locked parts the Cache is split
	// into, by key hash; each holds Size/Shards entries (the first Size%Shards
	// one more), so recency is exact within a shard only. 0 means
	// DefaultShards, or fewer for a small Size so that each shard holds at
	// least 64 entries. Otherwise it must be a power of two between 1 and
	// Size.
	Shards int

	// Clock is the clock the Cache's deadlines follow. nil (the default):
	// the Cache starts a clock of its own, stopped by Close. Caches that
	// share a Clock share its one goroutine; Close leaves a shared Clock
	// running, and whoever made it closes it.
	Clock *Clock
}

// resolve applies the defaults and validates o.
func (o Options) resolve() (size, shards int, err error) {
	size = o.Size
	switch {
	case size < 0:
		return 0, 0, fmt.Errorf("local: Size must be >= 0, got %d", size)
	case size == 0:
		size = DefaultSize
	}
	shards = o.Shards
	switch {
	case shards == 0:
		shards = DefaultShards
		for shards > 1 && size/shards < minShardSize {
			shards /= 2
		}
	case shards < 0 || shards&(shards-1) != 0:
		return 0, 0, fmt.Errorf("local: Shards must be a power of two, got %d", shards)
	case shards > size:
		return 0, 0, fmt.Errorf("local: Shards must be <= Size (%d), got %d", size, shards)
	}
	return size, shards, nil
}

// Stats are a Cache's counters since New.
type Stats struct {
	Hits        uint64 // Gets that found a live entry
	Misses      uint64 // Gets that did not (including those that found an expired one)
	Evictions   uint64 // entries removed to make room (expired or not)
	Expirations uint64 // expired entries found, and removed, by Get
}

// Cache is a fixed-size LRU with a deadline on each entry, split into
// shards. It is safe for concurrent use. See the package doc.
type Cache[K comparable, V any] struct {
	// Set by New and never changed: read without a lock.
	seed   maphash.Seed
	mask   uint64 // len(shards) - 1
	shards []shard[K, V]
	clock  *clock
	owned  bool // the Cache started clock, and stops it on Close
}

// entry is what a shard holds for a key. value and deadline never change
// once the entry is published; a new value is a new entry.
type entry[V any] struct {
	value    V
	deadline int64 // on the Cache's clock: the entry is dead once the clock reaches it

	// seq is the shard's seq when the entry was last put at the front of the
	// LRU order. Written under the shard's mu, read without it.
	seq atomic.Uint64
}

// shard is one independently locked part of a Cache.
//
// Reads take no lock and write no memory shared with other keys: they look
// the key up in index (a sync.Map, whose loads do not write), and count in
// one of several counters picked at random. The LRU order is kept by lru
// under mu, and a hit moves its entry to the front only when the entry has
// fallen out of the most recent quarter of the shard (more than window
// entries were put in front of it since). Recency is therefore exact for
// shards of fewer than 4 entries and exact up to that quarter otherwise.
type shard[K comparable, V any] struct {
	// Read by every Get: kept off the cache lines that hits write.
	index  sync.Map      // K -> *entry[V]: what lru holds, written under mu, read without it
	seq    atomic.Uint64 // advanced under mu each time an entry is put at the front
	window uint64        // set by New: capacity / 4
	_      [64]byte

	hits, misses counter // read path: no lock; each cell on its own cache line

	mu                     sync.Mutex
	lru                    *simplelru.LRU[K, *entry[V]] // guarded by mu
	evictions, expirations uint64                       // guarded by mu

	// gens are the generation counters of the shard's stripes. Each is
	// modified only with mu held, so an operation holding mu sees it stay
	// put between its check and its store; Token reads it without mu.
	gens [stripes]atomic.Uint64

	_ [64]byte // keeps the next shard's fields off this shard's cache lines
}

// counter is split over padded cells, so that goroutines on different cores
// rarely add to the same cache line.
type counter [8]struct {
	n atomic.Uint64
	_ [56]byte
}

func (st *counter) add() { st[rand.Uint32()%uint32(len(st))].n.Add(1) }

func (st *counter) load() uint64 {
	var n uint64
	for i := range st {
		n += st[i].n.Load()
	}
	return n
}

// New returns an empty Cache configured by opts, or an error naming the
// first invalid field. The Cache starts a goroutine to advance its clock;
// Close stops it.
func New[K comparable, V any](opts Options) (*Cache[K, V], error) {
	size, shards, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if opts.Clock != nil {
		return newCache[K, V](size, shards, opts.Clock.k), nil
	}
	c := newCache[K, V](size, shards, startClock())
	c.owned = true
	// The goroutine holds only the clock, so a Cache dropped without Close
	// is still collected, and this stops the goroutine then.
	runtime.AddCleanup(c, (*clock).halt, c.clock)
	return c, nil
}

// newCache builds a Cache of size entries in shards shards (both valid) on
// clk. Tests use it with a manual clock.
func newCache[K comparable, V any](size, shards int, clk *clock) *Cache[K, V] {
	c := &Cache[K, V]{
		seed:   maphash.MakeSeed(),
		mask:   uint64(shards - 1),
		shards: make([]shard[K, V], shards),
		clock:  clk,
	}
	for i := range c.shards {
		s := &c.shards[i]
		n := size / shards
		if i < size%shards {
			n++
		}
		lru, err := simplelru.NewLRU(n, func(k K, e *entry[V]) { s.index.CompareAndDelete(k, e) })
		if err != nil {
			panic("local: " + err.Error()) // n >= 1 since shards <= size
		}
		s.lru = lru
		s.window = uint64(n / 4)
		// Generations start at 1 so that the zero Token is never current.
		for j := range s.gens {
			s.gens[j].Store(1)
		}
	}
	return c
}

// shard returns the shard key belongs to.
func (c *Cache[K, V]) shard(key K) *shard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, key)&c.mask]
}

// locate returns the shard key belongs to and its stripe's generation
// counter. The shard is chosen by the low bits of the hash, the stripe by
// the high ones.
func (c *Cache[K, V]) locate(key K) (*shard[K, V], *atomic.Uint64) {
	h := maphash.Comparable(c.seed, key)
	s := &c.shards[h&c.mask]
	return s, &s.gens[h>>(64-stripeBits)]
}

// Get returns the value stored under key and true, or the zero V and false
// if there is none or it has expired (an expired entry is removed). A hit
// takes no lock and does not allocate; it makes key the most recently used
// of its shard when key has fallen out of the shard's most recent quarter.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	s := c.shard(key)
	if p, ok := s.index.Load(key); ok {
		e := p.(*entry[V])
		if e.deadline > c.clock.read() {
			if s.seq.Load()-e.seq.Load() > s.window {
				s.promote(key, e)
			}
			s.hits.add()
			return e.value, true
		}
		s.expire(key, e)
	}
	s.misses.add()
	var zero V
	return zero, false
}

// promote moves key to the front of the LRU order, if e is still its entry.
func (s *shard[K, V]) promote(key K, e *entry[V]) {
	s.mu.Lock()
	if cur, ok := s.lru.Peek(key); ok && cur == e {
		s.lru.Get(key)
		e.seq.Store(s.seq.Add(1))
	}
	s.mu.Unlock()
}

// expire removes e, found expired under key, if it is still key's entry.
func (s *shard[K, V]) expire(key K, e *entry[V]) {
	s.mu.Lock()
	if cur, ok := s.lru.Peek(key); ok && cur == e {
		s.lru.Remove(key)
		s.expirations++
	}
	s.mu.Unlock()
}

// Set stores value under key, unconditionally, to live for life from now
// (see the package doc). If life is over at once (life <= 0, or a Tick or
// less, as entries expire a Tick early), Set stores nothing and removes
// key: its old value is replaced all the same. Set does not change key's
// generation, and tiered never calls it: it stores through SetIf (a fill)
// and Commit (a write that must settle against concurrent ones). Tests and
// benchmarks use it to fill a Cache.
func (c *Cache[K, V]) Set(key K, value V, life time.Duration) {
	s := c.shard(key)
	s.mu.Lock()
	now := c.clock.read()
	if d, ok := deadline(now, life, now); ok {
		s.add(key, &entry[V]{value: value, deadline: d})
	} else {
		s.lru.Remove(key)
	}
	s.mu.Unlock()
}

// Delete removes key. It does not change key's generation, so a fill in
// flight may still store an older value afterwards; use Invalidate to stop
// that.
func (c *Cache[K, V]) Delete(key K) {
	s := c.shard(key)
	s.mu.Lock()
	s.lru.Remove(key)
	s.mu.Unlock()
}

// Len returns the number of entries held, including expired ones that no Get
// has found yet.
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
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

// add stores e under key, at the front of the LRU order, and counts an
// eviction. s.mu must be held.
func (s *shard[K, V]) add(key K, e *entry[V]) {
	e.seq.Store(s.seq.Add(1))
	if s.lru.Add(key, e) {
		s.evictions++
	}
	s.index.Store(key, e)
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
