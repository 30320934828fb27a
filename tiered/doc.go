// Package tiered is the cache tiercache users hold: a per-process expiring
// LRU in front of a namespaced Redis store, kept consistent across every
// instance that shares the namespace by invalidation messages over Redis
// pub/sub. The module's root package has a runnable quick start.
//
// Reads look in the local tier first, then in Redis, through one shared
// read per key per process; Fetch adds a loader for keys Redis does not
// hold. Every write and delete goes to Redis together with an invalidation
// message, in one atomic round trip, and every other instance drops the keys
// from its local tier when the message arrives.
//
// # Hubs
//
// A Hub owns what is per connection: one pub/sub connection (one channel per
// namespace on it), one subscriber goroutine with its health check and
// freshness proofs, and one clock for the local tiers. A service with many
// caches (one per value type, say) makes one Hub with NewHub and its caches
// with NewCache: four goroutines and one connection in all, however many
// caches. New is a shortcut for a cache with a Hub of its own.
//
// # Guarantees
//
//   - Bounded staleness (HubOptions.MaxStaleness, 10ms by default): a local
//     hit never returns a value that had been overwritten by a Set or Delete
//     acknowledged more than MaxStaleness before the read began, whatever the
//     Go scheduler, a starved process, or a frozen or silently dead
//     subscription do. The Hub proves it with a PING on the subscription
//     connection, whose PONG arrives after every message published before
//     it. Proofs follow the traffic: one every MaxStaleness/2 while the
//     process reads (at any rate, and for 2s after the last read), so a
//     read finds a young proof; a hit reads the monotonic clock and, while
//     the last proof is older than MaxStaleness, the read goes to Redis
//     instead (Stats.Unproven).
//   - Read your writes: once Set returns nil, Get on the same instance returns
//     that value or a newer one.
//   - Invalidation: every Set and Delete publishes an invalidation, atomically
//     with the Redis write; every other instance subscribed to the namespace
//     drops those keys. An instance ignores its own messages.
//   - No stale fill: a value read from Redis before an invalidation of its key
//     arrived is never stored in the local tier after it. Racing writes of one
//     instance leave its local tier holding what Redis holds, or nothing.
//   - No stale join: a Get or Fetch that begins after an invalidation, Set or
//     Delete of its key was applied on this instance never shares a Redis
//     read or a load that began before it.
//   - No stale load: what a Fetch (or FetchMany) loaded is stored only if
//     nothing wrote the key since. With leases (the default), the store is
//     fenced by the lease: it lands only while the key still holds this
//     load's lease, so a Set or Delete made during the load, or another
//     instance that took over an expired lease, always wins. Without leases,
//     Redis must still not hold the key (SET NX), and no write or
//     invalidation of the key may have reached this instance meanwhile.
//   - Lost messages: when the subscription breaks, the local tier is purged and
//     bypassed (reads go to Redis) until the subscription is confirmed again,
//     when it is purged once more (with StaleIfError, its values are first
//     set aside as suspect, never served as hits; see below). A new Cache bypasses its local tier until
//     its first subscription is confirmed. A message on the channel that does
//     not decode (garbage, or a wire version this release does not know) may
//     have carried invalidations: it purges the local tier too.
//   - Expiry: a value read from Redis lives in the local tier at most
//     min(LocalTTL, its remaining Redis TTL) less one millisecond, measured
//     from before the read was sent, so it never outlives its Redis key.
//   - Stampedes: concurrent Gets of one key in one process share one Redis
//     read, and concurrent Fetches one Redis read and at most one loader call.
//     Across processes, with leases on (Options.LeaseTTL), a cold key is
//     loaded once in the whole fleet: the first instance to find it cold
//     takes a lease on it in Redis (SET NX PX with an owner token) and loads;
//     the others wait, woken by the invalidation message of the write that
//     stores the value, not by polling. If the holder dies, its lease expires
//     after LeaseTTL and one waiter takes over; a failed load releases its
//     lease at once.
//     Each caller stops waiting when its own ctx ends. A Get's shared read
//     runs on the first caller's goroutine, with its ctx; if that caller gives
//     up, a caller still waiting reads again, so no caller fails because
//     another gave up. A Fetch's shared read and load run on a goroutine of
//     their own, detached from every caller, under LoadTimeout.
//   - Refresh ahead (Options.RefreshAhead): a key read through a loader often
//     enough never expires, and no caller waits for its load after the
//     first: a hit in the last part of its TTL starts a refresh in the
//     background, one per key at a time in the process and, with leases,
//     in the fleet. A refresh stores what it loaded only if the key still
//     holds the bytes it read before loading, so never over a newer write;
//     the other instances drop the key, as for any write. Its
//     failures, a loader's panic included, are logged and counted, never
//     returned or raised: the old value is served until it expires.
//   - Deadlines: every call returns when its ctx ends, whatever the client's
//     options (go-redis itself ignores a ctx unless ContextTimeoutEnabled is
//     set). A write whose call returned on its ctx may still reach Redis
//     later, as with any client; the local tier settles when it does. With
//     ContextTimeoutEnabled set, reads run on the caller's goroutine; without
//     it, a read under a ctx that can end is handed to a goroutine.
//   - Reads during a write pause: a Redis read is read-only to the server, so
//     CLIENT PAUSE WRITE (as a failover does) does not hold it.
//   - Contained failures: a panic in a Codec or a loader reaches the caller
//     that ran it as a panic it can recover (the caller whose Fetch started a
//     shared load, when it still waits), and the other callers waiting on the
//     same work as an error; the key stays usable. With Redis unreachable,
//     Fetch answers from its loader (one load per key at a time) and stores
//     nothing, counted in Stats.Fallbacks; Get fails within its deadline.
//   - Stale if error, only when asked (Options.StaleIfError): with Redis
//     failing or not answering in time, a read may return the value this
//     instance last held for the key, if it was last known current less
//     than StaleIfError ago, instead of the error; a Fetch still tries its
//     loader first. A stale value is never served while Redis answers, never
//     as a hit, never for a key this instance wrote or found deleted since,
//     and never after the subscription is confirmed again (what was suspect
//     is dropped then). Each one is counted in Stats.StaleServed and
//     observed as EventStale. The trade-off, in plain words: during an
//     outage, callers may get a value that another instance has since
//     overwritten, up to StaleIfError old, rather than an error.
//
// # Not guaranteed
//
//   - Another instance sees a write after its invalidation arrives (typically
//     well under a millisecond on a LAN), or after MaxStaleness at most, not
//     at the moment Set returns. With MaxStaleness off (negative), the bound
//     is the delivery itself: pub/sub gives none, a busy process may run the
//     subscriber goroutine late, and a subscription that dies silently is
//     noticed only by the health check (1s, plus one more for the reply).
//   - Writes made to Redis by other programs publish nothing: instances keep
//     serving their local copies until LocalTTL passes, unless the program (or
//     anyone) calls Invalidate or InvalidateAll.
//   - With leases off (LeaseTTL negative), a Delete on another instance that
//     races a Fetch's load here may let the loaded value be stored, if the
//     load ends before the Delete's message arrives (Set is covered: SET NX
//     does not overwrite it). With leases on, the Delete removes the lease
//     and the store does not land.
//   - A lease whose holder cannot reach Redis to renew it (every third of
//     LeaseTTL, while its loader runs) expires: another instance may then
//     load the key too. Only one value is stored, and never over a newer
//     write.
//   - Local expiry follows a clock that one goroutine advances every
//     millisecond; if that goroutine is starved of CPU for longer, an entry can
//     outlive its deadline by that long.
//
// # Observing
//
// HubOptions.Observer receives every cache's events, each naming its
// namespace: local hits and misses, Redis calls with their latency and
// error, loads, batch sizes, invalidations applied with their lag (from the
// publisher building the message to this instance applying it; wire version
// 2 carries the send time), subscription state changes, bypassed reads and
// stale values served. With no Observer nothing is built or called. The
// module github.com/tiercache/tiercache/otel adapts it to OpenTelemetry.
//
// # Batches
//
// GetMany, FetchMany and SetMany read, load and write many keys in one round
// trip per Redis node (on a Cluster, one command per hash slot, the commands
// of a node sent together), with every per-key guarantee above. A batch
// that fails for some keys only (a Cluster node down, a value that does not
// decode, a load error) returns what it could do and a *BatchError naming
// each failed key and its cause.
//
// # Absence and TTLs
//
// With Options.NotFoundTTL, a key that a loader reported absent is
// remembered as absent for that long, by a marker in Redis that every
// instance honours and any Set replaces; the marker and the leases are
// values that begin with the bytes "\x00tiercache\x00", which Set refuses
// for user values (no JSON value begins so; a string or []byte value that
// does fails to Set with an error). A loader may choose the TTL of what it returns with SetTTL, and
// Options.TTLJitter spreads every TTL written so that keys written together
// do not expire together.
//
// # Errors
//
// Every error names the operation, the namespace and the key once
// ("tiered: get "k" in namespace "users": not found"); errors.Is matches the
// cause (ErrNotFound, ErrClosed, context.DeadlineExceeded, a Redis error).
// A call that ran out of time while Redis is unreachable also carries the
// last connection error.
//
// # Values
//
// The local tier holds decoded values, so a local hit neither decodes nor
// allocates. Values are shared, not copied: do not modify a value (a []byte, a
// map, a pointer's target) after Set or after Get returns it.
package tiered
