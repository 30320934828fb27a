package tiered

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
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

// validate reports every invalid field of o, by name (errors.Join of one
// error each). It is the only check of a cache's options: the parts it
// builds the cache from are given only values it accepted. The local tier's
// and the subscription's rules are theirs (see wrapFields).
func (o *Options[V]) validate() error {
	var ns error
	if o.Namespace != "" {
		if err := remote.CheckNamespace(o.Namespace); err != nil {
			ns = fmt.Errorf("tiered: Namespace: %w", err)
		}
	}
	var codec error
	if o.Codec == nil {
		if _, err := defaultCodec[V](); err != nil {
			codec = fmt.Errorf("tiered: Codec: %w", err)
		}
	}
	return joinFields(
		ns, codec,
		o.validateLocal(),
		positiveMillis("TTL", o.TTL),
		positiveMillis("NotFoundTTL", o.NotFoundTTL),
		positiveMillis("StaleIfError", o.StaleIfError),
		nonNegative("LoadTimeout", o.LoadTimeout),
		orOff("LeaseTTL", o.LeaseTTL),
		checkSubscriber(invalidate.Options{HealthCheck: o.HealthCheck}),
		fraction("TTLJitter", o.TTLJitter),
		fraction("RefreshAhead", o.RefreshAhead),
	)
}

// validateLocal checks the fields of the local tier (by the local tier's
// own rules), and that the options that need one do not come without it.
func (o *Options[V]) validateLocal() error {
	if o.LocalSize >= 0 {
		return errors.Join(
			wrapFields(local.Check(o.localOptions()), localFields),
			positiveMillis("LocalTTL", o.LocalTTL),
		)
	}
	var errs []error
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
			errs = append(errs, fmt.Errorf("tiered: %s needs the local tier, which a negative LocalSize (%d) turns off", f.name, o.LocalSize))
		}
	}
	return errors.Join(errs...)
}

// localFields are the names of the local tier's options that Options
// gives under names of its own.
var localFields = map[string]string{"Size": "LocalSize", "MaxBytes": "LocalMaxBytes", "Shards": "LocalShards"}

// localOptions are the options of the local tier that o makes (the
// defaults of its fields not applied yet): LocalSize, or its default unless
// LocalMaxBytes alone bounds it; a negative LocalSize makes a tier of one
// entry, which nothing is ever stored in.
func (o *Options[V]) localOptions() local.Options[entry[V]] {
	size, shards := o.LocalSize, o.LocalShards
	switch {
	case size < 0:
		size, shards = 1, 1
	case size == 0 && o.LocalMaxBytes <= 0:
		size = DefaultLocalSize
	}
	return local.Options[entry[V]]{Size: size, MaxBytes: o.LocalMaxBytes, Sizer: entrySize[V], Shards: shards}
}
