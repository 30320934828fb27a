package local

// What a shard admits and evicts (see the package doc).
//
// With TinyLFU a shard keeps three segments: window (1% of the shard), and
// the main part, probation and protected (80% of the main part). A new key
// goes to the front of the window. When the window is over its bounds, its
// oldest entry, the candidate, leaves it for probation if there is room,
// or if it was used more often than the victim, the oldest entry of
// probation (or of protected, if probation is empty), which then goes; if
// not, the candidate goes. A hit in probation moves the entry to protected,
// whose oldest entry moves back to probation when protected is over its
// bounds. An expired oldest entry of probation or protected is the victim
// before any other, and always loses.
//
// With LRU a shard keeps protected only: every store goes to its front, and
// its oldest entry goes when the shard is over its bounds.

// agingCheck is how many stores pass between looks at whether the counts
// are due to age (the look sums the hit and miss counters).
const agingCheck = 16

// put stores e, which has its key, hash, cost, value and deadline set,
// replacing key's entry if there is one, then brings the shard back within
// its bounds. It reports whether the shard holds e afterwards: not if e is
// larger than the shard's byte bound (key's old entry is removed all the
// same) or if admission refused it. now is the Cache's clock. s.mu must be
// held.
func (s *shard[K, V]) put(e *entry[K, V], now int64) bool {
	if e.key != e.key {
		s.rejections++ // a NaN, or a key holding one: no Get could find it
		return false
	}
	old := s.lookup(e.key)
	if e.cost > s.lim.bytes {
		if old != nil {
			s.remove(old)
		}
		s.rejections++
		return false
	}
	switch {
	case old != nil:
		// An update: e takes old's place, its count, and a use.
		l := s.segmentOf(old)
		f, _ := bumped(old.freq.Load(), s.epoch)
		e.freq.Store(f)
		l.replace(old, e)
		s.stamp(l, e)
	case s.counts:
		s.growSketch()
		e.freq.Store(packFreq(s.epoch, s.sketch.increment(e.hash)))
		s.push(&s.window, e)
	default:
		e.freq.Store(s.capped.Load()) // LRU counts nothing
		s.push(&s.protected, e)
	}
	s.index.Store(e.key, e)
	s.fit(e, now)
	s.age()
	return e.seg.Load() != inNone
}

// fit brings the shard back within its bounds: the window's first, by
// admission, then the shard's, by eviction. e is the entry being stored,
// counted as rejected rather than evicted if it goes.
func (s *shard[K, V]) fit(e *entry[K, V], now int64) {
	for s.counts && s.window.len > 0 && s.window.over(s.lim.winLen, s.lim.winBytes) {
		s.admit(s.window.removeOldest(), e, now)
	}
	for {
		n, b := s.held()
		if n <= s.lim.len && b <= s.lim.bytes {
			return
		}
		l, _ := s.victim(now)
		if l == nil {
			l = &s.window // the shard holds something: it is over its bounds
		}
		s.drop(l.removeOldest(), e)
	}
}

// admit moves c, the candidate that left the window, to probation if there
// is room or if it wins against the victims it would take the room of; else
// c goes. e is the entry being stored. s.mu must be held.
func (s *shard[K, V]) admit(c, e *entry[K, V], now int64) {
	if c.deadline <= now {
		s.drop(c, e)
		return
	}
	for {
		n, b := s.held()
		if n < s.lim.len && b <= s.lim.bytes-c.cost {
			s.push(&s.probation, c)
			return
		}
		l, v := s.victim(now)
		if v == nil || (v.deadline > now && !s.wins(c, v)) {
			s.drop(c, e)
			return
		}
		s.drop(l.removeOldest(), e)
	}
}

// wins reports whether candidate c was used more often than victim v.
func (s *shard[K, V]) wins(c, v *entry[K, V]) bool {
	return freqAt(c.freq.Load(), s.epoch) > freqAt(v.freq.Load(), s.epoch)
}

// victim returns the entry that must go for room, and the segment it is
// the oldest of: an expired oldest entry of probation or protected if there
// is one, else the oldest of probation, else of protected; nils if both are
// empty.
func (s *shard[K, V]) victim(now int64) (*segment[K, V], *entry[K, V]) {
	p, r := s.probation.oldest(), s.protected.oldest()
	switch {
	case p != nil && p.deadline <= now:
		return &s.probation, p
	case r != nil && r.deadline <= now:
		return &s.protected, r
	case p != nil:
		return &s.probation, p
	case r != nil:
		return &s.protected, r
	}
	return nil, nil
}

// drop forgets v, in no segment any more, evicted for room; if v is e, the
// entry being stored, it is counted as rejected instead.
func (s *shard[K, V]) drop(v, e *entry[K, V]) {
	s.forget(v)
	if v == e {
		s.rejections++
	} else {
		s.evictions++
	}
}

// growSketch widens the sketch when the shard holds more keys than it has
// counters per row (with MaxBytes and no Size, the shard's entry count is
// known only as it fills).
func (s *shard[K, V]) growSketch() {
	if n, _ := s.held(); uint64(n) >= s.sketch.width && s.sketch.grow() {
		s.sampled = s.hits.load() + s.misses.load()
	}
}

// age halves every count once per period of accesses since the last
// aging (up to freqBits times: by then every count is 0). It looks only
// every agingCheck stores. s.mu must be held.
func (s *shard[K, V]) age() {
	if !s.counts {
		return
	}
	if s.stores++; s.stores < agingCheck {
		return
	}
	s.stores = 0
	total := s.hits.load() + s.misses.load()
	steps := (total - s.sampled) / s.sketch.period()
	if steps == 0 {
		return
	}
	s.sampled += steps * s.sketch.period()
	steps = min(steps, freqBits)
	for range steps {
		s.sketch.halve()
	}
	s.epoch = (s.epoch + uint32(steps)) & epochMask
	s.capped.Store(packFreq(s.epoch, maxFreq))
}
