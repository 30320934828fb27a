package local

import (
	"fmt"
	"testing"
)

// checkInvariants fails t unless every shard of c is consistent: its
// segments are well linked, their counts and bytes are what their members
// add up to, every member says which segment holds it, the index maps
// exactly the members, and the shard is within its bounds.
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
		var prev *entry[K, V]
		for e := l.head; e != nil; e = e.next {
			if e.prev != prev {
				return fmt.Errorf("segment %d: %v's prev link is broken", l.id, e.key)
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
			prev = e
		}
		if l.tail != prev {
			return fmt.Errorf("segment %d: tail is not its last member", l.id)
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
