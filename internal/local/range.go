package local

// Range calls f with each live (unexpired) entry, shard by shard, in no
// particular order, until f returns false. It holds each shard's lock in
// turn while it calls f, so f must not call the Cache; entries stored or
// removed while Range runs may or may not be seen. Range counts no hits and
// leaves the order of entries alone.
func (c *Cache[K, V]) Range(f func(key K, value V) bool) {
	now := c.clock.read()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, l := range []*segment[K, V]{&s.window, &s.probation, &s.protected} {
			more := l.each(func(e *entry[K, V]) bool {
				return e.deadline <= now || f(e.key, e.value)
			})
			if !more {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}
