// Package local is the local tier of tiercache: an in-process LRU cache with
// a deadline on each entry and generation tokens that keep stale values
// out. It is an internal part of the library, built for package tiered,
// which hard-wires it; its API is what tiered needs (plus Set, for tests
// and benchmarks), and changes with it. It knows nothing of the remote tier
// or of invalidation messages: tiered ties them together.
//
// # Concurrency
//
// A Cache is safe for concurrent use. It is split into shards by key hash,
// each with its own mutex and its own LRU (hashicorp/golang-lru's simplelru),
// and the capacity, Size, is divided among the shards.
//
// A hit (Get) takes no lock, does not allocate and writes no memory that a
// hit on another key reads: it finds the key in a lock-free index beside the
// LRU and counts itself in a counter split over cache lines. So hits from
// many cores scale. The price is on two sides. A store allocates the entry
// it publishes. And recency is exact only up to the most recent quarter of
// a shard: a hit moves its entry to the front of the LRU order only once
// the entry has fallen out of that quarter. Within the quarter, the order
// is that of the entries' last moves. Shards of fewer than 4 entries keep
// exact LRU order.
//
// # Life and expiry
//
// Every store (Set, SetIf, Commit) takes a life: how long the entry lives in
// this tier. It is not the Redis TTL of the remote tier, where 0 means no
// expiry: tiered passes the shorter of its local TTL and the key's
// remaining Redis TTL, and there is no "no expiry" here. A life <= 0 stores
// nothing, as the entry would already be over. Set counts the life from now; SetIf and Commit count it
// from their Token, so that an entry never outlives the source value read
// after the Token was taken.
//
// Each entry carries its deadline, checked by Get against a coarse clock
// that one goroutine per Cache (or per shared Clock) advances every Tick (a
// millisecond), because time.Now costs more than a whole hit. So expiry has
// a resolution of one Tick, and since the clock may lag real time by a
// Tick, every entry expires one Tick early: an entry stored for life is
// gone by life after it was stored (as long as the clock goroutine gets
// scheduled on time), and a life of a Tick or less stores nothing either.
// An expired entry is removed when Get finds it (counted in
// Stats.Expirations) or when the LRU needs its room.
//
// # Generations and tokens
//
// To stop a stale value from landing, each key belongs to a stripe whose
// generation changes on Invalidate, Commit and Purge (not on Set or
// Delete). A caller filling the cache from a source takes a Token before
// reading the source and stores with SetIf, which stores only if the
// generation is unchanged, so a value read before an invalidation never
// lands. A caller writing the source takes a Token before the write and
// finishes with Commit, which stores only if the generation is unchanged,
// removes the key otherwise, and changes the generation either way, so that
// two racing writes of one process leave the cache holding what the source
// holds, or nothing. Keys share stripes (64 per shard), so a change to one
// key can also refuse a store of another: a later miss, never a stale
// value.
//
// # Close
//
// Close stops the clock goroutine and waits for it; a Cache dropped without
// Close has its goroutine stopped when it is garbage collected. A closed
// Cache still answers every call, but its clock is set past every deadline:
// every entry is gone from then on, and nothing is stored.
//
// The zero Cache is not usable; call New.
package local
