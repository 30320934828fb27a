package local

import (
	"math"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

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
	key  K
	hash uint64 // maphash of key, with the Cache's seed
	cost int64  // bytes charged, as the Sizer counted them
}

// segment is one of a shard's segments: a golang-lru simplelru.LRU of its
// entries by key, most recently put at the front first, with their count
// and bytes. The LRU has no bound of its own (the shard decides what
// leaves, see policy.go), and holds at most one entry per key, as the
// shard does (put refuses a key not equal to itself, which an LRU could
// not find to remove). Guarded by the shard's mu.
type segment[K comparable, V any] struct {
	id    uint32 // the entry.seg of its members
	lru   *simplelru.LRU[K, *entry[K, V]]
	len   int
	bytes int64
}

// init makes l an empty segment whose members have entry.seg id.
func (l *segment[K, V]) init(id uint32) {
	lru, err := simplelru.NewLRU[K, *entry[K, V]](math.MaxInt, nil)
	if err != nil {
		panic("local: " + err.Error()) // only for a size < 1
	}
	*l = segment[K, V]{id: id, lru: lru}
}

// pushFront adds e, which is in no segment, at the front. No member of l
// has e's key.
func (l *segment[K, V]) pushFront(e *entry[K, V]) {
	l.lru.Add(e.key, e)
	l.len++
	l.bytes += e.cost
	e.seg.Store(l.id)
}

// replace puts e, which is in no segment, in the place of old, a member
// with its key, and moves it to the front; old is then in no segment.
func (l *segment[K, V]) replace(old, e *entry[K, V]) {
	l.lru.Add(e.key, e) // the key's element, moved to the front, holds e
	l.bytes += e.cost - old.cost
	old.seg.Store(inNone)
	e.seg.Store(l.id)
}

// toFront moves e, a member, to the front.
func (l *segment[K, V]) toFront(e *entry[K, V]) { l.lru.Get(e.key) }

// remove takes e, a member, out of l; e is then in no segment.
func (l *segment[K, V]) remove(e *entry[K, V]) {
	if !l.lru.Remove(e.key) {
		panic("local: a segment lost an entry")
	}
	l.dropped(e)
}

// removeOldest takes the oldest member out of l and returns it (nil if l
// is empty); it is then in no segment.
func (l *segment[K, V]) removeOldest() *entry[K, V] {
	_, e, ok := l.lru.RemoveOldest()
	if !ok {
		return nil
	}
	l.dropped(e)
	return e
}

// dropped accounts for e, a member just taken out of l's LRU.
func (l *segment[K, V]) dropped(e *entry[K, V]) {
	l.len--
	l.bytes -= e.cost
	e.seg.Store(inNone)
}

// oldest returns the member put at the front longest ago, or nil.
func (l *segment[K, V]) oldest() *entry[K, V] {
	_, e, _ := l.lru.GetOldest()
	return e
}

// over reports whether l holds more than n entries or b bytes.
func (l *segment[K, V]) over(n int, b int64) bool { return l.len > n || l.bytes > b }

// each calls f with every member, front to back, until f returns false; f
// must not change l.
func (l *segment[K, V]) each(f func(*entry[K, V]) bool) bool {
	members := l.lru.Values() // oldest first
	for i := len(members) - 1; i >= 0; i-- {
		if !f(members[i]) {
			return false
		}
	}
	return true
}

// clear empties l, leaving each former member in no segment, after calling
// f with it.
func (l *segment[K, V]) clear(f func(*entry[K, V])) {
	for _, e := range l.lru.Values() {
		e.seg.Store(inNone)
		f(e)
	}
	l.lru.Purge()
	l.len, l.bytes = 0, 0
}
