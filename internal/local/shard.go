package local

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// shard is one independently locked part of a Cache.
//
// Reads take no lock: they look the key up in index (a sync.Map, whose
// loads do not write), count in one of several counters picked at random,
// and write the entry's own count only while it is below its cap (see
// count). The segments, what they hold and how entries move between them,
// are kept under mu (see policy.go).
type shard[K comparable, V any] struct {
	// Read by every Get: kept off the cache lines that hits write.
	index  sync.Map      // K -> *entry: what the segments hold, written under mu, read without it
	seq    atomic.Uint64 // advanced under mu each time an entry is put at the front of protected
	recent atomic.Uint64 // a quarter of protected: a hit moves an entry that more were put in front of
	capped atomic.Uint32 // packFreq(epoch, maxFreq): the count of an entry whose hits write nothing
	_      [64]byte

	hits, misses *counter // read path: no lock; set by init

	mu sync.Mutex
	// Guarded by mu (the first three are set by init, then only read).
	counts                       bool   // TinyLFU: entries are counted, and admitted by count
	promotes                     bool   // a hit in probation moves the entry to protected
	grows                        bool   // protected has no bound on entries, so recent follows its length
	epoch                        uint32 // advanced each time the counts age; capped follows it
	window, probation, protected segment[K, V]
	lim                          limits
	sketch                       sketch
	stores                       uint64 // stores since the last aging check
	sampled                      uint64 // hits+misses at the last aging
	evictions, expirations       uint64
	rejections                   uint64

	// gens are the generation counters of the shard's stripes. Each is
	// modified only with mu held, so an operation holding mu sees it stay
	// put between its check and its store; Token reads it without mu.
	gens [stripes]atomic.Uint64

	_ [64]byte // keeps the next shard's fields off this shard's cache lines
}

// limits are a shard's bounds: in all, and for its window and protected
// segments (entries and bytes).
type limits struct {
	len, winLen, protLen       int
	bytes, winBytes, protBytes int64
}

// newLimits returns the limits of a shard of n entries and b bytes
// (math.MaxInt and math.MaxInt64 when unbounded, and so are the segments'
// limits then) under policy p. With TinyLFU, the window holds 1% and
// protected 80% of the rest; with LRU, protected holds everything.
func newLimits(n int, b int64, p Policy) limits {
	if p == LRU {
		return limits{len: n, protLen: n, bytes: b, protBytes: b}
	}
	l := limits{len: n, winLen: n, protLen: n, bytes: b, winBytes: b, protBytes: b}
	if n != math.MaxInt {
		l.winLen = max(1, n/100)
		l.protLen = eightTenths(n - l.winLen)
	}
	if b != math.MaxInt64 {
		l.winBytes = b / 100
		l.protBytes = eightTenths(b - l.winBytes)
	}
	return l
}

// eightTenths returns 80% of n, rounded down, without overflow.
func eightTenths[T int | int64](n T) T {
	if n < 10 {
		return n * 8 / 10
	}
	return n / 10 * 8
}

// init sets up shard s of n entries and b bytes under policy p.
func (s *shard[K, V]) init(n int, b int64, p Policy) {
	s.window.init(inWindow)
	s.probation.init(inProbation)
	s.protected.init(inProtected)
	s.lim = newLimits(n, b, p)
	s.counts = p == TinyLFU
	s.promotes = s.counts && s.lim.protLen > 0 && s.lim.protBytes > 0
	s.grows = s.lim.protLen == math.MaxInt
	if !s.grows {
		s.recent.Store(uint64(s.lim.protLen / 4))
	}
	s.capped.Store(packFreq(0, maxFreq))
	s.hits, s.misses = new(counter), new(counter)
	if s.counts {
		s.sketch = newSketch(uint64(min(n, 1024)), uint64(n))
	}
	// Generations start at 1 so that the zero Token is never current.
	for j := range s.gens {
		s.gens[j].Store(1)
	}
}

// counter is split over padded cells, so that goroutines on different cores
// rarely add to the same cache line. Allocated on its own, its 512 bytes
// take a slot of that size class, which the allocator aligns to 512 bytes:
// each cell is a cache line of its own, shared with no other cell and no
// other field.
type counter [8]struct {
	n atomic.Uint64
	_ [56]byte
}

func (st *counter) add() { st[rand.Uint32()%uint32(len(st))].n.Add(1) }

func (st *counter) load() uint64 {
	var n uint64
	for i := range st {
		n += st[i].n.Load()
	}
	return n
}

// farAway is how far from the shard's seq an entry of the window or of
// probation has its seq: ahead, so that a hit never moves a window entry;
// behind, so that a hit moves a probation entry to protected.
const farAway = 1 << 62

// A hit (Get) writes e's count only while the count is below its cap this
// epoch (e.freq != capped), and takes the lock only if e must move
// (promote): from probation to protected, or to the front of protected
// once it has fallen out of the most recent quarter there. So hits on a
// hot entry write nothing but the hit counter, and a key read from every
// core does not bounce a cache line. The second test is one comparison
// for any segment (see farAway).

// count adds a use to e's count word f, unless it is at its cap this
// epoch. A count lost to a concurrent hit is a count lost.
func (s *shard[K, V]) count(e *entry[K, V], f uint32) {
	if g, changed := bumped(f, s.capped.Load()>>freqBits); changed {
		e.freq.CompareAndSwap(f, g)
	}
}

// promote moves e, if the shard still holds it, from probation to the front
// of protected, or to the front of protected from within it.
func (s *shard[K, V]) promote(e *entry[K, V]) {
	s.mu.Lock()
	switch e.seg.Load() {
	case inProbation:
		s.probation.remove(e)
		s.push(&s.protected, e)
		for s.protected.over(s.lim.protLen, s.lim.protBytes) && s.protected.oldest() != e {
			s.push(&s.probation, s.protected.removeOldest())
		}
	case inProtected:
		s.protected.toFront(e)
		s.stamp(&s.protected, e)
	}
	s.mu.Unlock()
}

// push puts e, in no segment, at the front of l, with the seq that tells
// hits whether to move it. s.mu must be held.
func (s *shard[K, V]) push(l *segment[K, V], e *entry[K, V]) {
	l.pushFront(e)
	s.stamp(l, e)
}

// stamp gives e, just put at the front of l, the seq that tells hits
// whether to move it (see farAway). s.mu must be held.
func (s *shard[K, V]) stamp(l *segment[K, V], e *entry[K, V]) {
	switch {
	case l == &s.protected:
		e.seq.Store(s.seq.Add(1))
		if r := uint64(s.protected.len / 4); s.grows && r > s.recent.Load() {
			s.recent.Store(r) // the most protected has held: it is as full as it gets
		}
	case l == &s.probation && s.promotes:
		e.seq.Store(s.seq.Load() - farAway)
	default:
		e.seq.Store(s.seq.Load() + farAway)
	}
}

// expire removes e, found expired, if the shard still holds it.
func (s *shard[K, V]) expire(e *entry[K, V]) {
	s.mu.Lock()
	if e.seg.Load() != inNone {
		s.remove(e)
		s.expirations++
	}
	s.mu.Unlock()
}

// lookup returns key's entry, or nil. s.mu must be held.
func (s *shard[K, V]) lookup(key K) *entry[K, V] {
	if p, ok := s.index.Load(key); ok {
		return p.(*entry[K, V])
	}
	return nil
}

// removeKey removes key's entry, if any. s.mu must be held.
func (s *shard[K, V]) removeKey(key K) {
	if e := s.lookup(key); e != nil {
		s.remove(e)
	}
}

// remove takes e, which the shard holds, out of its segment and the index;
// its count goes back into the sketch. s.mu must be held.
func (s *shard[K, V]) remove(e *entry[K, V]) {
	s.segmentOf(e).remove(e)
	s.forget(e)
}

// forget drops e, in no segment, from the index, and puts its count back
// into the sketch. s.mu must be held.
func (s *shard[K, V]) forget(e *entry[K, V]) {
	s.index.CompareAndDelete(e.key, e)
	if s.counts {
		s.sketch.raise(e.hash, freqAt(e.freq.Load(), s.epoch))
	}
}

// segmentOf returns the segment that holds e. s.mu must be held.
func (s *shard[K, V]) segmentOf(e *entry[K, V]) *segment[K, V] {
	switch e.seg.Load() {
	case inWindow:
		return &s.window
	case inProbation:
		return &s.probation
	case inProtected:
		return &s.protected
	}
	panic("local: an entry in no segment")
}

// purge removes every entry, leaving the counts alone. s.mu must be held.
func (s *shard[K, V]) purge() {
	for _, l := range []*segment[K, V]{&s.window, &s.probation, &s.protected} {
		l.clear(func(e *entry[K, V]) { s.index.CompareAndDelete(e.key, e) })
	}
}

// held returns the entries and bytes s holds. s.mu must be held.
func (s *shard[K, V]) held() (int, int64) {
	return s.window.len + s.probation.len + s.protected.len,
		s.window.bytes + s.probation.bytes + s.protected.bytes
}
