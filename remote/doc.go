// Package remote is tiercache's shared tier on its own: a namespaced
// key-value store on Redis for a program that keeps no local tier (a batch
// job, an admin tool, a service that only writes), and whose every write
// tells the caches of its namespace (package tiered) to drop the keys it
// wrote.
//
// A key k of namespace ns is the Redis key "ns:k", holding exactly the bytes
// given, as tiered keeps it. Namespaces follow tiered's rules and default
// ("cache"): 1 to 128 bytes of ASCII letters, digits, '-', '_' and '.', not
// "tiercache". Keys may hold any bytes, ':' included.
//
// Every write (Set, SetMany, Delete) publishes the invalidation of its keys
// on the namespace's channel in the same Lua script or MULTI/EXEC
// transaction as the write: both happen, or neither. Every tiered cache of
// the namespace then drops those keys from its local tier, as for a write
// of one of its own replicas. The message is described in package
// invalidate, whose Publisher serves a program that writes Redis by other
// means.
//
// The caches keep values of their own at some keys: a remembered absence, a
// lease while one of them loads the key. They begin with the bytes
// "\x00tiercache\x00". A Store reads such a key as not found, lists it in
// Keys, and refuses to write a value that begins with them.
//
// TTLs are sent as SET … PX in whole milliseconds: 0 means no expiry, and
// a negative TTL or a positive one under a millisecond is an error. Keys
// lists the namespace with SCAN (every master of a Cluster), never KEYS.
// The client may be a single node, a Sentinel failover or a Cluster client
// (not a Ring, which would send a key and its invalidation to different
// servers); the Store never closes it.
//
// Every call returns when its ctx ends, whatever the client's options; a
// write that returned a ctx error may still be applied. Errors read
// `remote: get "k" in namespace "ns": not found`, and a missing key is
// ErrNotFound (compare with errors.Is).
package remote
