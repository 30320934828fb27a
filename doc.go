// Package tiercache is the root of the tiercache module: a two-tier cache
// for Go services that run as many replicas. Each process holds a small,
// very fast local LRU in front of a shared Redis; every write goes to Redis
// with an invalidation message, so that no replica keeps serving a value
// another replica has overwritten.
//
// This package holds no code: it is where a newcomer lands. What to use:
//
//   - [github.com/tiercache/tiercache/tiered]: the cache. New makes one
//     cache; NewHub and NewCache share one Redis connection among all the
//     caches of a service. Its package documentation states the guarantees
//     (bounded staleness, read your writes, no stale fill, one load across
//     the fleet, stale-if-error) and Options and HubOptions document every
//     setting and its default.
//   - [github.com/tiercache/tiercache/remote]: the namespaced Redis store on
//     its own, for a service with no local tier: every write it makes
//     invalidates the caches of its namespace.
//   - [github.com/tiercache/tiercache/invalidate]: a Publisher that tells
//     the caches to drop keys that another program changed, and the wire
//     format, for writers in other languages.
//   - [github.com/tiercache/tiercache/local]: the sharded expiring LRU on
//     its own, bounded in entries or bytes.
//   - [github.com/tiercache/tiercache/otel]: a separate module that turns
//     the cache's events (tiered.Observer) into OpenTelemetry metrics.
//
// The cache's extension points are narrow interfaces in package tiered:
//
//   - tiered.Codec: how values are encoded for Redis (raw bytes for
//     strings and byte slices, JSON otherwise, by default).
//   - tiered.Observer: what happened, for metrics.
//   - redis.UniversalClient: any go-redis client of one server, a Sentinel
//     failover or a cluster (not a Ring, whose sharding would lose
//     invalidations).
//
// The engines behind them (the local LRU with its generation tokens, the
// Redis store with its scripts, leases and markers, the subscriber and its
// freshness fence) live under internal/: they are built for each other,
// and their API is no promise; remote, invalidate and local are small
// faces over them.
//
// Example is the README's quick start; Example_replicas shows two replicas
// seeing each other's writes, and Example_hub several caches on one Hub.
// The command bench (go run ./bench) measures the cache against plain
// Redis and a bare LRU. The repository's docs/ folder holds the long
// explanations: guarantees, options, the fleet, Redis, observability.
package tiercache
