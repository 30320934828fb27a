package local

import "time"

// Token is a snapshot of a key's generation and of the Cache's clock, taken
// by Token before reading the source of truth, and handed back to SetIf or
// Commit to store what was read or written.
//
// Generations are kept per stripe (a group of keys chosen by hash) rather
// than per key, so a change to one key also makes tokens of the other keys
// of its stripe stale: their next conditional store is skipped, which costs
// a later miss and never correctness.
//
// The zero Token is never current. A Token is meaningful only to the Cache
// that issued it.
type Token struct {
	gen uint64 // generation of the key's stripe when taken
	at  int64  // the Cache's clock when taken
}

// Token returns the current generation of key's stripe and the current time.
// Take it before reading the source of truth (or before writing to it): any
// Invalidate, Commit or Purge of key after this moment makes it stale, and
// SetIf and Commit measure an entry's life from this moment, the latest at
// which the value read can be known to be current.
//
// Token does not lock and does not allocate.
func (c *Cache[K, V]) Token(key K) Token {
	_, gen, _ := c.locate(key)
	return Token{gen: gen.Load(), at: c.clock.read()}
}

// SetIf stores value under key, for a fill: only if key's stripe has not
// changed since t was taken. It reports whether the Cache holds value when
// it returns: admission may refuse it (see the package doc).
//
// Why: a reader takes t, reads the source, and then stores what it read. If
// the key was invalidated in between (another process wrote the source and
// told us with Invalidate), the value read may predate that write; storing
// it would serve a stale value until it expires. The invalidation changed
// the generation, so SetIf refuses it. The same holds for a Commit or Purge
// in between.
//
// The entry lives for life from when t was taken, not from now (the
// source's remaining TTL was read after t, so the entry cannot outlive the
// source), expiring one Tick early. If that is already past (life <= 0, or
// too short to reach now), SetIf stores nothing and returns false, so that
// a source value with no time left is never kept. SetIf does not change the
// generation. When it does not store, it leaves any existing entry alone,
// unless value is larger than a shard's byte bound: then the key's old
// entry goes, as it would for a Set.
func (c *Cache[K, V]) SetIf(key K, value V, life time.Duration, t Token) bool {
	s, gen, h := c.locate(key)
	e := c.newEntry(key, h, value, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen.Load() != t.gen {
		return false
	}
	now := c.clock.read()
	d, ok := deadline(t.at, life, now)
	if !ok {
		return false
	}
	e.deadline = d
	return s.put(e, now)
}

// Commit completes a write by this process: t was taken before value was
// written to the source, and the write has succeeded. If key's stripe has
// not changed since t, Commit stores value (to live for life from t, as
// SetIf does; if that is already past, it removes key instead); otherwise it
// removes key. Either way it then advances the generation. It reports
// whether the Cache holds value when it returns; if admission or the byte
// bound refuse value, key is removed too.
//
// Why: two writes of one key by this process may reach the source in one
// order and finish here in the other. Storing unconditionally could leave
// the cache holding the value the source overwrote. With Commit, the first
// to finish stores its value and advances the generation, so the second
// finds its token stale and removes the key: the cache ends holding what
// the source holds, or nothing. Advancing the generation also stops a fill
// whose token predates the write (it may have read the old value) from
// landing after it.
func (c *Cache[K, V]) Commit(key K, value V, life time.Duration, t Token) bool {
	s, gen, h := c.locate(key)
	e := c.newEntry(key, h, value, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := false
	if gen.Load() == t.gen {
		now := c.clock.read()
		if d, ok := deadline(t.at, life, now); ok {
			e.deadline = d
			stored = s.put(e, now)
		}
	}
	if !stored {
		s.removeKey(key)
	}
	gen.Add(1)
	return stored
}

// Invalidate removes each key and advances its generation, so that no
// SetIf or Commit with a token taken before it stores a value for that key.
// Call it when the source of a key changed elsewhere.
func (c *Cache[K, V]) Invalidate(keys ...K) {
	for _, key := range keys {
		s, gen, _ := c.locate(key)
		s.mu.Lock()
		gen.Add(1)
		s.removeKey(key)
		s.mu.Unlock()
	}
}

// Purge removes every entry and advances every generation. It takes the
// shards one at a time, so a SetIf or Commit running meanwhile may store into
// a shard Purge has not reached yet; Purge then removes it when it gets
// there. Once Purge returns, the Cache holds nothing stored before it began,
// and no SetIf or Commit with a token taken before it began stores anything.
// Call it when invalidations may have been lost.
func (c *Cache[K, V]) Purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for j := range s.gens {
			s.gens[j].Add(1)
		}
		s.purge()
		s.mu.Unlock()
	}
}
