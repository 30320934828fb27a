package tiered

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/internal/remote"
)

// Defaults of the Options fields. DefaultNamespace is the remote store's
// own default, so that a cache and a remote.Store left at their defaults
// share keys.
const (
	DefaultNamespace   = remote.DefaultNamespace
	DefaultLocalSize   = local.DefaultSize // entries
	DefaultLocalTTL    = time.Minute
	DefaultLoadTimeout = 10 * time.Second
)

// Options configures a Cache. The zero value of every field is its default;
// LocalSize, LeaseTTL and HealthCheck turn their feature off when negative.
// docs/options.md has every field in one table.
type Options[V any] struct {
	// Namespace prefixes every Redis key ("Namespace:key") and names the
	// invalidation channel; the same in every instance that shares the
	// keys. Default: "cache".
	Namespace string

	// TTL is the Redis lifetime of what Set and loads write. 0: no
	// expiry; else at least 1ms. Default: 0.
	TTL time.Duration

	// LocalSize is the number of entries the local tier holds. Default:
	// 10,000. Negative: no local tier (every read goes to Redis; the
	// options of the local tier must then be 0).
	LocalSize int

	// LocalShards is the number of independently locked parts of the local
	// tier: 0 or a power of two, at most its size. Default: up to 16.
	LocalShards int

	// LocalMaxBytes bounds the local tier in bytes of keys and values (as
	// Redis holds them, or as Sizer counts them); a value larger than a
	// shard's share is not kept. Default: 0, no byte bound.
	LocalMaxBytes int64

	// Sizer tells what a value costs against LocalMaxBytes; it must be fast
	// and safe for concurrent use. Default: nil, the size of its encoding.
	Sizer func(V) int

	// LocalTTL is the longest a value lives in the local tier, never beyond
	// its Redis TTL. 0 or at least 1ms. Default: 1 minute.
	LocalTTL time.Duration

	// Codec encodes values for Redis. Default: raw bytes for string and
	// []byte, JSON for every other type.
	Codec Codec[V]

	// LoadTimeout bounds a loader call of Fetch or FetchMany and the write
	// of what it returned; the load runs detached from every caller's
	// cancellation. Default: 10s.
	LoadTimeout time.Duration

	// NotFoundTTL is how long a key a loader reported absent is remembered
	// as absent, by a marker in Redis that every instance honours and any
	// Set replaces. 0: not remembered; else at least 1ms. Default: 0.
	NotFoundTTL time.Duration

	// TTLJitter spreads every Redis TTL written by up to ± this fraction,
	// so that keys written together do not expire together. In [0, 1).
	// Default: 0, exact TTLs.
	TTLJitter float64

	// LeaseTTL is the lifetime of the lease that makes a cold key load once
	// across the fleet; its holder renews it while loading, and a dead
	// holder's lease passes to a waiter after it. Default: LoadTimeout.
	// Negative: no leases (each instance loads on its own).
	LeaseTTL time.Duration

	// StaleIfError lets reads answer with the value this instance last held
	// for a key, when Redis fails, if that value was last known current
	// less than StaleIfError ago (docs/guarantees.md says when). 0 or at
	// least 1ms. Default: 0, errors are returned.
	StaleIfError time.Duration

	// RefreshAhead is a fraction of the TTL: a hit on a key a loader filled,
	// in the last RefreshAhead × TTL of its Redis TTL, reloads it in the
	// background through that loader, once at a time across the fleet with
	// leases. In [0, 1). Default: 0, off.
	RefreshAhead float64

	// HealthCheck is HubOptions.HealthCheck for the Hub that New makes; it
	// must be 0 with NewCache. Negative: off.
	HealthCheck time.Duration

	// Logger receives reports of lost subscriptions, panics in a Codec or a
	// loader, Redis fallbacks and failed writes of loaded values. Default:
	// the Hub's Logger (for New: nil, silent).
	Logger *slog.Logger
}

// validate reports the first invalid field of o, by name. It is the only
// check of a cache's options: the parts it builds the cache from are given
// only values it accepted.
func (o *Options[V]) validate() error {
	if o.Namespace != "" {
		if err := remote.CheckNamespace(o.Namespace); err != nil {
			return fmt.Errorf("tiered: Namespace: %w", err)
		}
	}
	if err := o.validateLocal(); err != nil {
		return err
	}
	return errors.Join(
		positiveMillis("TTL", o.TTL),
		positiveMillis("NotFoundTTL", o.NotFoundTTL),
		positiveMillis("StaleIfError", o.StaleIfError),
		nonNegative("LoadTimeout", o.LoadTimeout),
		orOff("LeaseTTL", o.LeaseTTL),
		orOff("HealthCheck", o.HealthCheck),
		fraction("TTLJitter", o.TTLJitter),
		fraction("RefreshAhead", o.RefreshAhead),
	)
}

// validateLocal checks the fields of the local tier, and that the options
// that need one do not come without it.
func (o *Options[V]) validateLocal() error {
	if o.LocalSize < 0 {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"LocalShards", o.LocalShards != 0},
			{"LocalMaxBytes", o.LocalMaxBytes != 0},
			{"LocalTTL", o.LocalTTL != 0},
			{"StaleIfError", o.StaleIfError != 0},
			{"RefreshAhead", o.RefreshAhead != 0},
		} {
			if f.set {
				return fmt.Errorf("tiered: %s needs the local tier, which a negative LocalSize (%d) turns off", f.name, o.LocalSize)
			}
		}
		return nil
	}
	size := o.LocalSize
	if size == 0 {
		size = DefaultLocalSize
	}
	switch n := o.LocalShards; {
	case n < 0 || n&(n-1) != 0:
		return fmt.Errorf("tiered: LocalShards must be 0 (the default) or a power of two, got %d", n)
	case n > size:
		return fmt.Errorf("tiered: LocalShards must be at most the local tier's size (%d), got %d", size, n)
	}
	if o.LocalMaxBytes < 0 {
		return fmt.Errorf("tiered: LocalMaxBytes must be >= 0 (0: no byte bound), got %d", o.LocalMaxBytes)
	}
	return positiveMillis("LocalTTL", o.LocalTTL)
}
