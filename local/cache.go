package local

import (
	"math"
	"time"

	engine "github.com/tiercache/tiercache/internal/local"
)

// Defaults, for the Options fields left 0.
const (
	DefaultSize   = engine.DefaultSize   // entries, when MaxBytes is not set either
	DefaultShards = engine.DefaultShards // at most; fewer for a small Size
)

// Options configures a Cache. The zero value is valid: 10,000 entries in
// 16 shards, no byte bound.
type Options[V any] struct {
	// Size is the most entries the Cache holds. 0 means DefaultSize, or no
	// bound on entries when MaxBytes is set; a negative Size is an error.
	Size int

	// MaxBytes is the most bytes the Cache holds, as Sizer counts them. 0
	// (the default) means no byte bound; a negative MaxBytes is an error.
	// A value larger than MaxBytes/Shards is never stored.
	MaxBytes int64

	// Sizer returns the bytes a value is charged: its size, plus what the
	// caller wants to count of its key and overhead. A negative result
	// counts as 0. It is required with MaxBytes; without MaxBytes it may
	// be nil, and Stats.Bytes stays 0. Set calls it once per value,
	// outside the Cache's locks.
	Sizer func(V) int64

	// Shards is the number of independently locked parts the Cache is
	// split into. 0 means DefaultShards, or fewer, so that each shard holds
	// at least 64 entries of Size. Otherwise it must be a power of two, at
	// most Size and at most MaxBytes (those that are set).
	Shards int
}

// Stats are a Cache's counters since New, and what it holds now.
type Stats struct {
	Hits        uint64 // Gets that found a live value
	Misses      uint64 // Gets that did not
	Evictions   uint64 // entries removed to keep a shard within its bounds
	Expirations uint64 // expired entries found, and removed, by Get
	Rejections  uint64 // Sets that kept nothing: a value larger than a shard's bytes, a key not equal to itself (a NaN), or refused at once by admission
	Bytes       int64  // bytes held now, as the Sizer counts them
}

// Cache is an in-process cache of values of type V under keys of type K.
// It is safe for concurrent use; see the package doc for its promises.
type Cache[K comparable, V any] struct {
	c *engine.Cache[K, V]
}

// New returns an empty Cache configured by opts, or an error naming every
// invalid field. It starts the Cache's clock goroutine; Close stops
// it.
func New[K comparable, V any](opts Options[V]) (*Cache[K, V], error) {
	c, err := engine.New[K, V](engine.Options[V]{
		Size: opts.Size, MaxBytes: opts.MaxBytes, Sizer: opts.Sizer, Shards: opts.Shards,
	})
	if err != nil {
		return nil, err
	}
	return &Cache[K, V]{c: c}, nil
}

// Get returns the value stored under key and true, or the zero V and false
// if there is none or it has expired.
func (c *Cache[K, V]) Get(key K) (V, bool) { return c.c.Get(key) }

// Set stores value under key for ttl, replacing what key held: 0 means no
// expiry, and a negative ttl (or one of a millisecond or less) stores
// nothing and removes key. See the package doc for what stays when the
// Cache is full.
func (c *Cache[K, V]) Set(key K, value V, ttl time.Duration) {
	switch {
	case ttl == 0:
		ttl = math.MaxInt64 // the end of the clock
	case ttl < 0:
		ttl = 0 // over at once
	}
	c.c.Set(key, value, ttl)
}

// Delete removes key.
func (c *Cache[K, V]) Delete(key K) { c.c.Delete(key) }

// Purge removes every entry.
func (c *Cache[K, V]) Purge() { c.c.Purge() }

// Len returns the number of entries held, including expired ones that no
// Get has found yet.
func (c *Cache[K, V]) Len() int { return c.c.Len() }

// Stats returns the Cache's counters, summed over its shards (not one
// instant's snapshot under concurrent use).
func (c *Cache[K, V]) Stats() Stats {
	st := c.c.Stats()
	return Stats{
		Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions,
		Expirations: st.Expirations, Rejections: st.Rejections, Bytes: st.Bytes,
	}
}

// Close stops the Cache's clock goroutine and waits for it to exit. The
// Cache holds nothing from then on (see the package doc). Close is
// idempotent and safe to call concurrently with any method.
func (c *Cache[K, V]) Close() { c.c.Close() }
