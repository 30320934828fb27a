package local

// Range calls f with each live (unexpired) entry, shard by shard, in no
// particular order, until f returns false. It holds each shard's lock in
// turn while it calls f, so f must not call the Cache; entries stored or
// removed while Range runs may or may not be seen. Range counts no hits and
// leaves the LRU order alone.
func (c *Cache[K, V]) Range(f func(key K, value V) bool) {
	now := c.clock.read()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, key := range s.lru.Keys() {
			e, ok := s.lru.Peek(key)
			if !ok || e.deadline <= now {
				continue
			}
			if !f(key, e.value) {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}
