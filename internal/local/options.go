package local

import (
	"errors"
	"fmt"
	"math"

	"github.com/tiercache/tiercache/internal/field"
)

const (
	// DefaultSize is the capacity of a Cache whose Options.Size and
	// Options.MaxBytes are both 0.
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

// Policy is what a full shard admits and evicts; see the package doc.
type Policy int

const (
	// TinyLFU (the default) keeps the keys used most often: a new key
	// enters a small window, and leaves it for the main part of the shard
	// only if it was used more often than the entry it would evict there.
	TinyLFU Policy = iota
	// LRU admits every store and evicts the least recently used entry.
	LRU
)

func (p Policy) String() string {
	switch p {
	case TinyLFU:
		return "TinyLFU"
	case LRU:
		return "LRU"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Options configures a Cache. The zero value is valid: DefaultSize entries
// in up to DefaultShards shards, TinyLFU, no byte bound.
type Options[V any] struct {
	// Size is the most entries the Cache holds in total. 0 means
	// DefaultSize, or no bound on entries if MaxBytes is set; a negative
	// Size is an error.
	Size int

	// MaxBytes is the most bytes the Cache holds in total, as Sizer counts
	// them; each shard holds MaxBytes/Shards. 0 (the default) means no
	// byte bound; a negative MaxBytes is an error. A value larger than a
	// shard's share is never stored.
	MaxBytes int64

	// Sizer returns the bytes an entry is charged (a negative result counts
	// as 0). It is required with MaxBytes; without MaxBytes, nil means
	// every entry is charged 0 and Stats.Bytes stays 0. It is called
	// outside the Cache's locks, once per store.
	Sizer func(V) int64

	// Shards is the number of independently locked parts the Cache is split
	// into, by key hash; each holds Size/Shards entries (the first Size%Shards
	// one more), so recency and frequency are kept within a shard only. 0
	// means DefaultShards, or fewer for a small Size so that each shard holds
	// at least 64 entries. Otherwise it must be a power of two, at most Size
	// and at most MaxBytes (those that are set).
	Shards int

	// Policy is what a full shard admits and evicts: TinyLFU (the default)
	// or LRU.
	Policy Policy

	// Clock is the clock the Cache's deadlines follow. nil (the default):
	// the Cache starts a clock of its own, stopped by Close. Caches that
	// share a Clock share its one goroutine; Close leaves a shared Clock
	// running, and whoever made it closes it.
	Clock *Clock
}

// config is Options resolved: defaults applied, validated.
type config[V any] struct {
	size   int   // entries in all; math.MaxInt: no bound
	bytes  int64 // bytes in all; math.MaxInt64: no bound
	shards int
	sizer  func(V) int64 // nil: every entry costs 0
	policy Policy
}

// resolve applies the defaults and validates o, naming every invalid field
// (errors.Join of one *field.Error each).
func (o Options[V]) resolve() (config[V], error) {
	cfg := config[V]{size: o.Size, bytes: o.MaxBytes, sizer: o.Sizer, policy: o.Policy}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, field.Errorf("local", name, format, args...))
	}
	if o.Size < 0 {
		bad("Size", "must be >= 0, got %d", o.Size)
	}
	if o.MaxBytes < 0 {
		bad("MaxBytes", "must be >= 0, got %d", o.MaxBytes)
	} else if o.MaxBytes > 0 && o.Sizer == nil {
		bad("Sizer", "is required with MaxBytes (%d)", o.MaxBytes)
	}
	if o.Policy != TinyLFU && o.Policy != LRU {
		bad("Policy", "must be TinyLFU or LRU, got %v", o.Policy)
	}
	switch {
	case o.Size == 0 && o.MaxBytes == 0:
		cfg.size = DefaultSize
	case o.Size <= 0:
		cfg.size = math.MaxInt
	}
	if o.MaxBytes <= 0 {
		cfg.bytes = math.MaxInt64
	}
	cfg.shards = o.Shards
	switch {
	case cfg.shards == 0:
		cfg.shards = DefaultShards
		for cfg.shards > 1 && cfg.size/cfg.shards < minShardSize {
			cfg.shards /= 2
		}
		for cfg.shards > 1 && cfg.bytes < int64(cfg.shards) {
			cfg.shards /= 2
		}
	case cfg.shards < 0 || cfg.shards&(cfg.shards-1) != 0:
		bad("Shards", "must be a power of two, got %d", cfg.shards)
	case cfg.shards > cfg.size:
		bad("Shards", "must be <= Size (%d), got %d", cfg.size, cfg.shards)
	case int64(cfg.shards) > cfg.bytes:
		bad("Shards", "must be <= MaxBytes (%d), got %d", cfg.bytes, cfg.shards)
	}
	return cfg, errors.Join(errs...)
}

// Check validates o as New does: nil, or every invalid field (errors.Join
// of one *field.Error each).
func Check[V any](o Options[V]) error {
	_, err := o.resolve()
	return err
}

// Validate reports every invalid field of o, as New does, without making a
// Cache: nil, or errors.Join of one *field.Error each.
func (o Options[V]) Validate() error { return Check(o) }

// share returns shard i's part of total split over n shards: total/n, one
// more for the first total%n. An unbounded total (max) stays unbounded.
func share[T int | int64](total T, n, i int, unbounded T) T {
	if total == unbounded {
		return unbounded
	}
	s := total / T(n)
	if T(i) < total%T(n) {
		s++
	}
	return s
}
