// Package local is an in-process cache: a sharded, expiring cache bounded
// in entries and, optionally, in bytes, that keeps the keys used most
// often. It is the local tier of package tiered, usable on its own, in a
// process that needs no Redis and no invalidation across replicas.
//
// # What it promises
//
// Concurrency. A Cache is safe for concurrent use by any number of
// goroutines. It is split into shards by key hash, each with its own lock.
// A hit (Get that finds a live value) takes no lock and does not allocate
// (but for the one hit that promotes a key read again to the keys kept
// longest, which moves it under its shard's lock), and hits on one hot key
// from many cores do not contend on a cache line of their own, so hits
// scale across cores. Set, Delete and Purge lock a
// shard at a time.
//
// Bounds. Size (entries) and MaxBytes (bytes, as the Sizer counts them)
// are divided evenly among the shards, and each shard keeps within its
// share: a shard can be full while others still have room. A value larger
// than a shard's share of MaxBytes is never stored.
//
// What stays. When a shard is full, it keeps the keys read most often
// lately, not merely the most recent: a new key enters a small window of
// recent keys (1% of the shard) and stays beyond it only if it was read
// more often than the key it would evict (TinyLFU admission, with counts
// that halve as the shard is used, so that keys hot once give way to keys
// hot now). So a scan of keys read once does not push out the keys read
// again and again, and a skewed workload gets more hits than from LRU. The
// price: a Set of a new key into a full Cache may not keep it for long.
//
// Expiry. Each value lives for the ttl given to Set (0: no expiry),
// measured on a clock that one goroutine per Cache advances every
// millisecond while the Cache is used (it stops, at no cost, while the
// Cache is idle, and a read then wakes it). An entry is gone by ttl after
// Set returns, as long as that goroutine is scheduled on time (in a
// starved process, it can be late by as much as the goroutine is), and
// may go up to a millisecond early; so a ttl of a millisecond or less
// stores nothing. An expired entry takes memory until a Get finds it or a
// store needs its room.
//
// Close. Close stops the clock goroutine and waits for it to exit. A closed
// Cache is still safe to call, and holds nothing: every Get misses and
// every Set stores nothing. A Cache dropped without Close has its goroutine
// stopped when the Cache is garbage collected.
package local
