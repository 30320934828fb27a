package local

import "sync/atomic"

// Which segment of its shard holds an entry (entry.seg).
const (
	inNone      uint32 = iota // removed, or never stored
	inWindow                  // new keys, with TinyLFU
	inProbation               // admitted from the window, not read since
	inProtected               // read while in probation; with LRU, every entry
)

// entry is what a shard holds for a key. value and deadline never change
// once the entry is published; a new value is a new entry.
type entry[K comparable, V any] struct {
	value    V
	deadline int64 // on the Cache's clock: the entry is dead once the clock reaches it

	// Read by Get without the shard's lock; written under it, except freq,
	// which hits also write (see shard.count).
	seg  atomic.Uint32 // inNone, inWindow, inProbation or inProtected
	freq atomic.Uint32 // packed: the shard's epoch when last written, and a count (see freq.go)
	seq  atomic.Uint64 // in protected: the shard's seq when last put at the front

	// Guarded by the shard's mu.
	key        K
	hash       uint64 // maphash of key, with the Cache's seed
	cost       int64  // bytes charged, as the Sizer counted them
	prev, next *entry[K, V]
}

// segment is a doubly linked list of a shard's entries, most recently put
// at the front first, with their count and bytes. Guarded by the shard's
// mu.
type segment[K comparable, V any] struct {
	id         uint32 // the entry.seg of its members
	head, tail *entry[K, V]
	len        int
	bytes      int64
}

// pushFront adds e, which is in no segment, at the front.
func (l *segment[K, V]) pushFront(e *entry[K, V]) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.len++
	l.bytes += e.cost
	e.seg.Store(l.id)
}

// remove takes e, a member, out of l; e is then in no segment.
func (l *segment[K, V]) remove(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.len--
	l.bytes -= e.cost
	e.seg.Store(inNone)
}

// over reports whether l holds more than n entries or b bytes.
func (l *segment[K, V]) over(n int, b int64) bool { return l.len > n || l.bytes > b }

// each calls f with every member, front to back, until f returns false; f
// must not change l.
func (l *segment[K, V]) each(f func(*entry[K, V]) bool) bool {
	for e := l.head; e != nil; e = e.next {
		if !f(e) {
			return false
		}
	}
	return true
}
