// Package local is the local tier of tiercache: an in-process cache bounded
// in entries and in bytes, with a deadline on each entry, an admission
// policy that keeps the keys used most often, and generation tokens that
// keep stale values out. It is an internal part of the library, built for
// package tiered, which hard-wires it, and for package local at the root of
// the module, which gives it a small public face; its API is what those
// need, and changes with them. It knows nothing of the remote tier or of
// invalidation messages: tiered ties them together.
//
// # Bounds
//
// A Cache is split into shards by key hash, each with its own mutex, and
// its bounds are divided among the shards: Size entries (default 10,000)
// and, if set, MaxBytes bytes as the Sizer counts them. A store brings its
// shard back within both bounds, by the policy below. A value larger than
// its shard's share of MaxBytes is never stored: the store removes the
// key's old entry instead, and counts a rejection. Neither is a key not
// equal to itself (a NaN, or a value holding one), which no Get could find.
//
// # Policy: what is admitted, what is evicted, and why
//
// With LRU, every store is admitted and the least recently used entry of
// the shard is evicted. It suits a cache whose every entry matters, such as
// tiered's copy of its local tier for outages. With TinyLFU (the default),
// a shard keeps the keys used most often, which serves skewed workloads
// (a few keys read far more often than the rest, as with Zipf-distributed
// reads) far better than recency alone, and a scan of keys read once
// cannot push hot keys out:
//
//   - A new key goes to a window, 1% of the shard, in order of arrival, so
//     that a key read in a burst is cached at once and counts its hits.
//   - The rest of the shard is probation and protected (80% of it). A key
//     leaving the window is admitted to probation if there is room, or if
//     it was used more often than the victim: the oldest entry of
//     probation (of protected if probation is empty), which then goes. If
//     it was not, it goes instead: a tie keeps the entry already there. An
//     expired oldest entry of probation or protected is the victim before
//     any other, and always loses. A key that needs the room of several
//     victims must beat each.
//   - A hit in probation moves the entry to protected, whose oldest entry
//     moves back to probation when protected is over its share. So keys
//     read again after they were admitted are evicted last.
//
// How often a key was used is counted per shard: while the shard holds the
// key, in its entry (set when stored, incremented by hits, saturating at
// 15); before and after, in a count-min sketch of 4-bit counters, which
// the store that follows a miss increments and to which a removed entry's
// count returns, so that an invalidated key does not lose its standing.
// Every 10 × the sketch's width accesses (hits and misses; the width is the
// shard's entries rounded up to a power of two), every count is halved, so
// counts reflect recent use and a key that was hot once gives way to keys
// hot now. The price: a key must be read more often than what it would
// evict before it stays, so a workload whose hot keys all change at once
// is served a little worse than by LRU until the counts have aged.
//
// # Concurrency
//
// A Cache is safe for concurrent use. A hit (Get) takes no lock and, but
// for a move from probation (below), does not allocate: it finds the key
// in a lock-free index beside the segments.
// It writes one cell, picked at random, of a hit counter split over cache
// lines, and the entry's count only while that is below its cap this aging
// period, so that a hot key read from every core bounces no cache line of
// its own. It takes the shard's lock only to move the entry: once from
// probation to protected, and within protected only once the entry has
// fallen out of the most recent quarter of protected (with LRU, the whole
// shard is protected). So recency within protected is exact only up to
// that quarter. A move within protected allocates nothing; a move from
// probation to protected allocates, as every move between segments does
// (see Segments). A store takes the shard's lock and allocates the entry it
// publishes.
//
// # Segments
//
// Each segment of a shard (window, probation, protected) is a
// github.com/hashicorp/golang-lru/v2/simplelru LRU from key to entry, with
// no bound of its own: the shard counts each segment's entries and bytes
// around it and decides what leaves, by the policy above. The LRUs keep the
// order and find entries by key under the shard's lock; hits find them
// through the index. An LRU allocates a list element for each key it adds,
// and moves elements only within itself, so every entry that enters a
// segment costs an element: a store of a new key, its admission from the
// window, and a move between probation and protected. Moving an entry to
// the front of its segment, and an update (a new entry for a key in its
// old entry's place), allocate nothing. Each LRU's map keeps the room of
// the most entries its segment has held.
//
// # Life and expiry
//
// Every store (Set, SetIf, Commit) takes a life: how long the entry lives in
// this tier. It is not the Redis TTL of the remote tier, where 0 means no
// expiry: tiered passes the shorter of its local TTL and the key's
// remaining Redis TTL, and there is no "no expiry" here. A life <= 0 stores
// nothing, as the entry would already be over. Set counts the life from
// now; SetIf and Commit count it from their Token, so that an entry never
// outlives the source value read after the Token was taken.
//
// Each entry carries its deadline, checked by Get against a coarse clock
// that one goroutine per Cache (or per shared Clock) advances every Tick (a
// millisecond), because time.Now costs more than a whole hit. So expiry has
// a resolution of one Tick, and since the clock may lag real time by a
// Tick, every entry expires one Tick early: an entry stored for life is
// gone by life after it was stored (as long as the clock goroutine gets
// scheduled on time), and a life of a Tick or less stores nothing either.
// An expired entry is removed when Get finds it (counted in
// Stats.Expirations) or when it is in the way of a store.
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
// Admission and the byte bound may refuse a store too: SetIf and Commit
// report whether the Cache holds the value when they return. A Commit that
// does not store always removes the key, so a reader never sees the value
// its own write replaced.
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
