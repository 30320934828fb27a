// Package remote is the shared tier of tiercache: a namespaced key-value
// store on Redis. It is an internal part of the library, built for package
// tiered, which hard-wires it, and for the small public faces over it (the
// top-level packages remote and invalidate); its API is what they need and
// nothing more, and changes with them.
//
// A key k in namespace ns lives at the Redis key "ns:k" and holds exactly
// the bytes given, so other programs can read it. The default namespace is
// "cache". Keys may contain ':' themselves; namespaces may not, so that no
// two namespaces share a Redis key (namespace "a" with key "b:x" and
// namespace "a:b" with key "x" would). A namespace is 1 to 128 bytes of
// ASCII letters, digits, '-', '_' and '.', and not "tiercache", the prefix
// of the library's own keys and channels: see CheckNamespace, which New
// applies.
//
// Besides users' values, a key may hold a marker, which tiered writes
// itself: AbsentMarker, a cached absence (the source of truth has no value
// for the key), LeaseMarker, a lease (an instance is loading the key's
// value; see Store.Acquire), or DoneMarker, left in place of a lease by a
// load that stored no value. Every marker begins with MarkerPrefix,
// "\x00tiercache\x00", and tiered refuses to store a value that does;
// IsMarker, IsAbsentMarker and IsLeaseMarker tell them apart. The Store
// reads and writes markers as any other bytes. The lease and marker
// protocol, step by step, heads lease.go, where its Redis side lives.
//
// TTLs are Redis TTLs, written in milliseconds (SET … PX): a TTL of 0 means
// no expiry, a positive TTL is sent in whole milliseconds (a fraction of a
// millisecond is dropped, so a key never lives longer than asked), and a
// negative TTL or a positive one under a millisecond is an error. Nothing
// is ever rounded up. Leases (Acquire, AcquireRefresh) must expire: their
// TTL must be at least a millisecond.
//
// Keys lists a namespace with SCAN and a MATCH pattern, never with KEYS; on a
// Cluster it scans every master.
//
// Every method returns within its ctx: when the ctx's deadline passes or it
// is cancelled, the call returns an error wrapping ctx.Err(), whatever the
// client's options (go-redis ignores a ctx's deadline unless the client sets
// ContextTimeoutEnabled; see call). A write whose call returned a ctx error
// may still be applied; see clientEnforcesDeadlines for what is left
// behind.
//
// GetWithTTL and GetMany only read, and answer while the server holds
// writes back (CLIENT PAUSE WRITE, as during a failover).
//
// SetAndPublish and DeleteAndPublish write and publish the invalidation in
// one Lua script. GetMany, WriteMany and Acquire work on many keys in one
// round trip per node, and answer for each key on its own: on a Cluster a
// node that is down fails the keys it holds, and the others are served.
// WriteMany applies each write only if its condition (Cond) holds, and
// publishes the invalidation of each group of writes with them,
// atomically.
//
// Every error of a Store method is an *Error naming the operation, the
// namespace and the keys: `remote: get "1" in namespace "cache": not found`.
// A missing key is ErrNotFound (compare with errors.Is); redis.Nil never
// reaches a caller.
//
// The store takes a redis.UniversalClient, so a single node, Sentinel and
// Cluster all work. On a Cluster, commands that touch several keys are split
// by hash slot: each slot's part is atomic on its own, not the whole call.
// The Store recognises a Cluster by its type, *redis.ClusterClient, and a
// *redis.Ring would lose invalidations: CheckClient refuses both a Ring and
// any wrapper type, and tiered calls it (New does not).
//
// A Store holds no state besides its client, its options, whether it has
// sent its scripts yet and, on a single node, the commands of GetWithTTL and
// SetAndPublish that it reuses from call to call (a go-redis hook must not
// keep a command past its return; see reuse.go). It is safe for concurrent
// use, and never closes the client it was given.
package remote
