package local

import (
	"fmt"
	"testing"
)

// checkInvariants fails t unless every shard of c is consistent: each
// segment's LRU agrees with itself (its list and its map hold the same
// entries, each under its own key), its counts and bytes are what its
// members add up to, every member says which segment holds it, the index
// maps exactly the members, and the shard is within its bounds.
func checkInvariants[K comparable, V any](t testing.TB, c *Cache[K, V]) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		err := s.check()
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
}

// check returns what is inconsistent in s, or nil. s.mu must be held.
func (s *shard[K, V]) check() error {
	members := map[*entry[K, V]]bool{}
	for _, l := range []*segment[K, V]{&s.window, &s.probation, &s.protected} {
		n, b := 0, int64(0)
		keys, values := l.lru.Keys(), l.lru.Values() // oldest first, from the list; as many values as the map holds
		if len(keys) != len(values) || len(keys) != l.lru.Len() {
			return fmt.Errorf("segment %d: its LRU lists %d keys and %d values, and says it holds %d",
				l.id, len(keys), len(values), l.lru.Len())
		}
		for i, e := range values {
			if any(keys[i]) != any(e.key) {
				return fmt.Errorf("segment %d holds %v under the key %v", l.id, e.key, keys[i])
			}
			if p, ok := l.lru.Peek(e.key); !ok || p != e {
				return fmt.Errorf("segment %d: its LRU's map does not lead to %v", l.id, e.key)
			}
			if got := e.seg.Load(); got != l.id {
				return fmt.Errorf("segment %d holds %v, which says it is in %d", l.id, e.key, got)
			}
			if members[e] {
				return fmt.Errorf("%v is held twice", e.key)
			}
			members[e] = true
			n++
			b += e.cost
		}
		if e := l.oldest(); n > 0 && e != values[0] || n == 0 && e != nil {
			return fmt.Errorf("segment %d: its oldest is not the last of its list", l.id)
		}
		if n != l.len || b != l.bytes {
			return fmt.Errorf("segment %d counts %d entries, %d bytes; its members add up to %d, %d", l.id, l.len, l.bytes, n, b)
		}
	}
	if s.counts && s.window.over(s.lim.winLen, s.lim.winBytes) {
		return fmt.Errorf("window holds %d entries, %d bytes: over its bounds %d, %d",
			s.window.len, s.window.bytes, s.lim.winLen, s.lim.winBytes)
	}
	n, b := s.held()
	if n > s.lim.len || b > s.lim.bytes {
		return fmt.Errorf("holds %d entries, %d bytes: over its bounds %d, %d", n, b, s.lim.len, s.lim.bytes)
	}
	indexed := 0
	var bad error
	s.index.Range(func(k, v any) bool {
		e := v.(*entry[K, V])
		indexed++
		if !members[e] || any(e.key) != k {
			bad = fmt.Errorf("the index maps %v to an entry the shard does not hold", k)
			return false
		}
		return true
	})
	if bad != nil {
		return bad
	}
	if indexed != len(members) {
		return fmt.Errorf("the index maps %d keys, the segments hold %d entries", indexed, len(members))
	}
	return nil
}
