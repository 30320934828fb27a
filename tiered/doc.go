// Package tiered is the cache tiercache users hold: a per-process expiring
// LRU in front of a namespaced Redis store, kept consistent across every
// instance that shares the namespace by invalidation messages over Redis
// pub/sub. The module's root package has a runnable quick start.
//
// Reads look in the local tier first, then in Redis, through one shared
// read per key per process; Fetch adds a loader for keys Redis does not
// hold, called once across the fleet (a lease in Redis). Every write and
// delete goes to Redis together with an invalidation message, in one
// atomic round trip, and every other instance drops the keys from its
// local tier when the message arrives.
//
// A Hub owns what is per connection: the pub/sub connection, the
// subscriber goroutine with its health check and freshness proofs, and the
// clock of the local tiers. A service with many caches makes one Hub with
// NewHub and its caches with NewCache; New makes a cache with a Hub of its
// own. Hubs, caches and their methods are safe for concurrent use; Close
// waits for every goroutine they started.
//
// # Guarantees
//
// A local hit never returns a value overwritten by a write acknowledged
// more than HubOptions.MaxStaleness before the read began. An instance
// reads its own writes. A value read from Redis, a shared read or a load
// that an invalidation of its key overtook never lands in the local tier.
// A lost subscription sends reads to Redis until it is back, then the
// instance reads back what it missed from the channel's log, or purges. A
// local copy never outlives its Redis key. Every call returns when its ctx
// ends. Panics in a Codec or a loader reach the caller that ran it.
//
// Not guaranteed: other instances see a write when its message arrives,
// not when Set returns; writes to Redis by other programs publish nothing
// (see Cache.Invalidate and HubOptions.Tracking). Values are shared, not
// copied: do not modify a value after Set, or after Get returns it.
//
// Every guarantee in full, with its limits and failure modes, is in
// docs/guarantees.md; every option and its default in docs/options.md;
// events, Stats and metrics in docs/observability.md (all in the module's
// repository).
//
// # Rolling upgrades
//
// Caches publish wire version 3 by default (HubOptions.WireVersion): each
// message carries its position in its channel's log, and a Hub that lost
// its subscription reads back what it missed instead of purging. A release
// before it reads only versions 1 and 2, and purges its local tier for
// each message it cannot read: while such instances share a namespace,
// set WireVersion to the oldest version they read, then remove it once
// every instance runs this release. Messages of versions 1 and 2 take no
// position in the log, so a Hub that hears one on a namespace (from such a
// writer, or another program's PUBLISH) purges that namespace after a
// loss, until it closes, instead of repairing it; one that missed such a
// message of this release's writers purges too (the write marks the log).
//
// Tracking can be turned on at any time: a Hub with it hears the
// namespace's messages as well as Redis's reports, so it sees every
// writer, of any release. TrackingOnly writers publish nothing for their
// writes (Invalidate and InvalidateAll still publish), so an instance
// without Tracking, of any release, never hears them and serves what they
// overwrite until its LocalTTL: turn TrackingOnly on only once every
// instance of its namespaces on that Redis runs with Tracking, and off
// first when going back. Nothing checks that order.
//
// # Errors
//
// Every error names the operation, the namespace and the key once
// ("tiered: get "k" in namespace "users": not found"); errors.Is matches
// the cause (ErrNotFound, ErrClosed, context.DeadlineExceeded, a Redis
// error). A batch that fails for some keys returns what it could do and a
// *BatchError naming each failed key and its cause.
package tiered
