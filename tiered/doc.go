// Package tiered is the cache tiercache users hold: a per-process expiring
// LRU (package local) in front of a namespaced Redis store (package remote),
// kept consistent across every instance that shares the namespace by
// invalidation messages over Redis pub/sub (package invalidate).
//
// Reads look in the local tier first, then in Redis, through one shared
// read per key per process (singleflight); Fetch adds a loader for keys Redis
// does not hold. Every write and delete goes to Redis together with an
// invalidation message, in one atomic round trip, and every other instance
// drops the keys from its local tier when the message arrives.
//
// # Guarantees
//
//   - Read your writes: once Set returns nil, Get on the same instance returns
//     that value or a newer one.
//   - Invalidation: every Set and Delete publishes an invalidation, atomically
//     with the Redis write; every other instance subscribed to the namespace
//     drops those keys. An instance ignores its own messages.
//   - No stale fill: a value read from Redis before an invalidation of its key
//     arrived is never stored in the local tier after it. Racing writes of one
//     instance leave its local tier holding what Redis holds, or nothing.
//   - Lost messages: when the subscription breaks, the local tier is purged and
//     bypassed (reads go to Redis) until the subscription is confirmed again,
//     when it is purged once more. A new Cache bypasses its local tier until
//     its first subscription is confirmed.
//   - Expiry: a value read from Redis lives in the local tier at most
//     min(LocalTTL, its remaining Redis TTL) less one millisecond, measured
//     from before the read was sent, so it never outlives its Redis key.
//   - Stampedes: concurrent Gets of one key in one process share one Redis
//     read, and concurrent Fetches one Redis read and at most one loader call.
//     Each caller stops waiting when its own ctx ends. A Get's shared read
//     runs on the first caller's goroutine, with its ctx; if that caller gives
//     up, a caller still waiting reads again, so no caller fails because
//     another gave up. A Fetch's shared read and load run on a goroutine of
//     their own, detached from every caller, under LoadTimeout.
//
// # Not guaranteed
//
//   - Another instance sees a write after its invalidation arrives, not at the
//     moment Set returns: typically well under a millisecond on a LAN, but
//     pub/sub gives no bound. Reads on other instances in between return the
//     previous value.
//   - A subscription that dies silently is noticed only by the health check
//     (Options.HealthCheck, 1s by default, plus one more for the reply); until
//     then invalidations may be lost and old values served.
//   - Writes made to Redis by other programs publish nothing: instances keep
//     serving their local copies until LocalTTL passes, unless the program (or
//     anyone) calls Invalidate or InvalidateAll.
//   - Local expiry follows a clock that one goroutine advances every
//     millisecond; if that goroutine is starved of CPU for longer, an entry can
//     outlive its deadline by that long.
//
// # Values
//
// The local tier holds decoded values, so a local hit neither decodes nor
// allocates. Values are shared, not copied: do not modify a value (a []byte, a
// map, a pointer's target) after Set or after Get returns it.
package tiered
