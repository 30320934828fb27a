// Package remote is a namespaced key-value store on Redis: the shared tier of
// tiercache, usable on its own.
//
// A key k in namespace ns lives at the Redis key "ns:k" and holds exactly the
// bytes given, so other programs can read it. The default namespace is
// "cache". Keys may contain ':' themselves.
//
// TTLs are written in milliseconds (SET … PX): a TTL of 0 means no expiry, a
// positive TTL is sent in whole milliseconds (a fraction of a millisecond is
// dropped, so a key never lives longer than asked), and a negative TTL or a
// positive one under a millisecond is an error. Nothing is ever rounded up.
//
// Keys lists a namespace with SCAN and a MATCH pattern in which the
// namespace's glob characters are escaped, never with KEYS; on a Cluster it
// scans every master.
//
// A missing key is ErrNotFound (compare with errors.Is); redis.Nil never
// reaches a caller. Every other error names the operation and the key.
//
// The store takes a redis.UniversalClient, so a single node, Sentinel and
// Cluster all work. On a Cluster, commands that touch several keys are split
// by hash slot: each slot's part is atomic on its own, not the whole call.
//
// A Store holds no state besides its client and is safe for concurrent use.
// It never closes the client it was given.
package remote
