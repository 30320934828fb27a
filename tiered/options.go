package tiered

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
)

// Defaults of the Options fields.
const (
	DefaultNamespace   = remote.DefaultNamespace // "cache"
	DefaultLocalSize   = local.DefaultSize       // 10,000 entries
	DefaultLocalTTL    = time.Minute
	DefaultLoadTimeout = 10 * time.Second
)

// Options configures a Cache. The zero value of every field is its default.
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
	// Default: 10,000. Must be >= 0.
	LocalSize int

	// LocalShards splits the local tier into this many independently locked
	// parts, a power of two. Default: chosen from LocalSize (16 for large
	// tiers, fewer for small ones).
	LocalShards int

	// LocalTTL is the longest a value lives in the local tier. A value read
	// from Redis lives there min(LocalTTL, its remaining Redis TTL), minus one
	// millisecond tick, so it never outlives the Redis key. Default: 1 minute.
	// Must be 0 or at least 1ms.
	LocalTTL time.Duration

	// Codec encodes values for Redis. Default: raw bytes for string and
	// []byte, JSON for every other type.
	Codec Codec[V]

	// LoadTimeout bounds a Fetch loader and the Redis write of what it
	// returned. The load runs detached from every caller's cancellation (each
	// caller stops waiting when its own ctx ends), under this deadline.
	// Default: 10s. Must be >= 0.
	LoadTimeout time.Duration

	// HealthCheck is the HubOptions field of the same name for the Hub that
	// New makes for the cache; a cache made by NewCache uses its Hub's, and
	// this must then be 0. Must be >= 0.
	HealthCheck time.Duration

	// Logger receives reports of lost subscriptions, panics in a Codec or a
	// loader, Redis fallbacks and failed writes of loaded values. Default:
	// the Hub's Logger (for New: nil, silent).
	Logger *slog.Logger
}

func (o *Options[V]) validate() error {
	if o.Namespace != "" {
		if err := remote.CheckNamespace(o.Namespace); err != nil {
			return fmt.Errorf("tiered: Namespace: %w", err)
		}
	}
	switch {
	case o.TTL < 0:
		return fmt.Errorf("tiered: TTL must be >= 0, got %v", o.TTL)
	case o.TTL > 0 && o.TTL < time.Millisecond:
		return fmt.Errorf("tiered: TTL must be 0 or at least 1ms, got %v", o.TTL)
	case o.LocalSize < 0:
		return fmt.Errorf("tiered: LocalSize must be >= 0, got %d", o.LocalSize)
	case o.LocalShards < 0:
		return fmt.Errorf("tiered: LocalShards must be >= 0, got %d", o.LocalShards)
	case o.LocalTTL < 0:
		return fmt.Errorf("tiered: LocalTTL must be >= 0, got %v", o.LocalTTL)
	case o.LocalTTL > 0 && o.LocalTTL < time.Millisecond:
		return fmt.Errorf("tiered: LocalTTL must be 0 or at least 1ms, got %v", o.LocalTTL)
	case o.LoadTimeout < 0:
		return fmt.Errorf("tiered: LoadTimeout must be >= 0, got %v", o.LoadTimeout)
	case o.HealthCheck < 0:
		return fmt.Errorf("tiered: HealthCheck must be >= 0, got %v", o.HealthCheck)
	}
	return nil
}
