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

// Defaults of the Options fields.
const (
	DefaultNamespace   = "cache"
	DefaultLocalSize   = 10_000 // entries
	DefaultLocalTTL    = time.Minute
	DefaultLoadTimeout = 10 * time.Second
)

// Options configures a Cache. The zero value of every field is its default;
// LocalSize, LeaseTTL and HealthCheck turn their feature off when negative.
type Options[V any] struct {
	// Namespace prefixes every Redis key ("Namespace:key") and names the
	// invalidation channel. Every instance that must agree on the same keys
	// uses the same Namespace. Default: "cache".
	Namespace string

	// TTL is the Redis lifetime of values written by Set and by Fetch's
	// loads. 0 means no expiry. Must be 0 or at least 1ms; it is sent to
	// Redis in whole milliseconds. Default: 0.
	TTL time.Duration

	// LocalSize is the number of entries the local tier holds.
	// Default: 10,000. Negative: no local tier. Every read then goes to
	// Redis (still one shared read per key in this process), the cache
	// never waits for its subscription (WaitReady returns at once and
	// Subscribed reports false), and its writes still invalidate the local
	// tiers of the other instances. LocalShards, LocalTTL, StaleIfError and
	// RefreshAhead need the local tier: they must then be 0.
	LocalSize int

	// LocalShards splits the local tier into this many independently locked
	// parts: 0 or a power of two, at most the tier's size. Default: chosen
	// from LocalSize (16 for large tiers, fewer for small ones).
	LocalShards int

	// LocalMaxBytes bounds the local tier in bytes: it holds at most that
	// many bytes of keys and values (a value counts as the bytes Redis
	// holds for it, or what Sizer says), each of its shards its share; a
	// value larger than a shard's share is not kept. With LocalMaxBytes
	// and LocalSize left 0, the tier is bounded in bytes alone. Default: 0
	// (no byte bound). Must be >= 0.
	LocalMaxBytes int64

	// Sizer tells what a value costs against LocalMaxBytes, in bytes, in
	// place of the size of its encoding (which Redis holds); a Sizer that
	// counts the value's memory in the process makes the bound a bound on
	// memory. It must be fast and safe for concurrent use. Default: nil.
	Sizer func(V) int

	// LocalTTL is the longest a value lives in the local tier. A value read
	// from Redis lives there min(LocalTTL, its remaining Redis TTL), minus one
	// millisecond tick, so it never outlives the Redis key. Default: 1 minute.
	// Must be 0 or at least 1ms.
	LocalTTL time.Duration

	// Codec encodes values for Redis. Default: raw bytes for string and
	// []byte, JSON for every other type.
	Codec Codec[V]

	// LoadTimeout bounds a loader call of Fetch or FetchMany, from when it
	// is called, and the Redis write of what it returned. The shared work
	// runs detached from every caller's cancellation (each caller stops
	// waiting when its own ctx ends); in all, reads, a wait on another
	// instance's lease and the load take at most LoadTimeout + LeaseTTL.
	// Default: 10s. Must be >= 0.
	LoadTimeout time.Duration

	// NotFoundTTL is how long a key that a loader reported absent (it
	// returned ErrNotFound, or FetchMany's result left the key out) is
	// remembered as absent: Redis holds an absence marker at the key for
	// that long (honoured by every instance, whatever its own NotFoundTTL),
	// and Get, Fetch and the batch calls answer ErrNotFound for it without
	// loading. Any Set of the key replaces the marker. 0 means absence is
	// not remembered: every Fetch of a missing key calls the loader. Must be
	// 0 or at least 1ms. Default: 0. A loader can choose the TTL of one
	// absence with SetTTL.
	NotFoundTTL time.Duration

	// TTLJitter spreads every Redis TTL this cache writes (Set, SetWithTTL,
	// SetMany, loaded values, absences) by a random amount of up to ±
	// TTLJitter times the TTL, so that keys written together do not expire
	// together. The local tier follows the TTL actually written. 0.1 means
	// ±10%. Must be in [0, 1). Default: 0 (exact TTLs).
	TTLJitter float64

	// LeaseTTL is the lifetime of the lease a Fetch or FetchMany takes in
	// Redis on a cold key before it calls its loader, so that the loader
	// runs once across every instance of the namespace, not once per
	// instance: the other instances wait for the value (woken by the
	// invalidation message of the write that stores it) instead of loading.
	// While its loader runs, the holder renews the lease every third of
	// LeaseTTL, so a slow load still stores its value once; if the holder
	// dies, its lease expires after LeaseTTL and one waiter takes over (a
	// lease is a fence: only its holder's write lands, and only while the
	// key still holds the lease). Default: LoadTimeout.
	// Negative: no leases; each instance loads on its own (at most once per
	// key at a time) and stores with SET NX.
	LeaseTTL time.Duration

	// StaleIfError lets Get, Fetch, GetMany and FetchMany answer with the
	// value this instance last held for a key when Redis fails or does not
	// answer in time, instead of the error, if that value was last known
	// current less than StaleIfError ago (HTTP's stale-if-error, RFC 5861).
	// Such values are kept while the subscription is down (taken from the
	// local tier when it breaks, and from the reads Redis still answers),
	// and while the Hub cannot prove the local tier fresh; they are never
	// served while Redis answers, and are dropped when the subscription is
	// confirmed again. A value is last known current when this instance
	// found its subscription lost (or last proved it fresh), or when it read
	// the value since. Fetch still prefers its loader: a stale value answers
	// only when the loader fails too. A key this instance writes or deletes
	// is never served stale afterwards. The cost: a second LRU of LocalSize
	// entries, filled only while the subscription is down. Served values
	// are counted in Stats.StaleServed and observed (EventStale). Must be 0
	// or at least 1ms. Default: 0 (errors are returned).
	StaleIfError time.Duration

	// RefreshAhead refreshes a key in the background before it expires, so
	// that a key read often enough makes no caller wait for a load after
	// its first. It is a fraction of the key's TTL: a hit (Get, Fetch,
	// GetMany, FetchMany) on a key whose Redis TTL is in its last
	// RefreshAhead × TTL starts one refresh, through the loader of the
	// Fetch or FetchMany that last filled the key here (a FetchMany's is
	// called with that one key); so does a Fetch or
	// FetchMany that reads such a key from Redis. The TTL is the one this
	// instance wrote when its own load stored the value (after SetTTL and
	// TTLJitter), and Options.TTL for a value read from Redis. Never
	// refreshed: a value without expiry, an absence, and a key last filled
	// here by Get, GetMany or a write of this instance (no loader).
	//
	// A refresh runs detached from the caller that started it (with its
	// ctx's values, not its cancellation) under LoadTimeout, and Close
	// cancels and waits for it. At most one refresh of a key runs in this
	// process, and at most 4 per cache: a hit that finds them all busy
	// starts none, and a later hit does. With leases on (LeaseTTL), one
	// instance refreshes a key at a time across the fleet, holding a
	// refresh lease (a Redis key of its own,
	// "tiercache:refresh:<Namespace>:<key>", that expires after LeaseTTL);
	// without, each instance refreshes on its own. A refresh writes as Fetch does, never over a newer write: only if the
	// key still holds the bytes it read before loading (a write of those
	// very bytes meanwhile cannot be told apart), with its invalidation;
	// this instance's local tier takes the new value. A loader that returns
	// ErrNotFound deletes the key (or, with NotFoundTTL or SetTTL, marks it
	// absent). Failures (a loader error or panic, a Redis error) are logged
	// and counted in Stats.RefreshErrors; the value is served until it
	// expires, and this instance tries again after a quarter of the window
	// (a second at most).
	//
	// The cost: a key read within its window is loaded about every
	// (1 - RefreshAhead) × TTL, changed or not, plus four Redis round trips
	// per refresh (two without leases); an entry filled by a loader holds
	// one more small allocation, and a local hit on it reads the Hub's
	// clock. Local hits on other entries cost what they cost without it.
	// Must be in [0, 1). Default: 0 (off).
	RefreshAhead float64

	// HealthCheck is the HubOptions field of the same name for the Hub that
	// New makes for the cache; a cache made by NewCache uses its Hub's, and
	// this must then be 0. Negative: off (see HubOptions.HealthCheck).
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
