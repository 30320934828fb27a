package local

// How often keys are used, for TinyLFU.
//
// A shard estimates the frequency of keys it does not hold with a sketch:
// a count-min sketch of 4-bit counters, incremented under the shard's lock
// when a key is stored (a store follows a miss). The frequency of an entry
// it holds lives in the entry (entry.freq), set from the sketch when the
// entry is stored and incremented by hits, which take no lock; when the
// entry is removed, its count goes back into the sketch. Every period
// accesses (hits and misses), the shard ages every count: it halves the
// sketch's counters and advances its epoch, and an entry's count is read
// halved once for each epoch since it was written. So counts reflect recent
// use, and a key that was hot once does not stay in forever.

const (
	freqBits  = 4
	maxFreq   = 1<<freqBits - 1      // counts saturate here
	epochMask = 1<<(32-freqBits) - 1 // epochs wrap at this mask

	// sketchDepth is the number of counters per key (rows).
	sketchDepth = 4
	// minSketchWidth is the fewest counters per row.
	minSketchWidth = 64
	// periodFactor times the sketch's width is the aging period.
	periodFactor = 10
)

// packFreq returns an entry.freq word: count n as of epoch.
func packFreq(epoch, n uint32) uint32 { return (epoch&epochMask)<<freqBits | n }

// freqAt returns the count in the entry.freq word f as of epoch: halved
// once per epoch since f was written.
func freqAt(f, epoch uint32) uint32 {
	age := (epoch - f>>freqBits) & epochMask
	if age >= freqBits {
		return 0
	}
	return (f & maxFreq) >> age
}

// bumped returns f with one more use as of epoch, and whether that changes
// it: a count at its cap in the current epoch stays as it is, so that a
// hot entry is not written on every hit.
func bumped(f, epoch uint32) (uint32, bool) {
	n := freqAt(f, epoch)
	if n < maxFreq {
		n++
	}
	g := packFreq(epoch, n)
	return g, g != f
}

// sketch is a count-min sketch of 4-bit counters, 16 to a word: a key's
// estimate is the least of its sketchDepth counters, one per row, chosen
// by hashes of the key's hash. Not safe for concurrent use.
type sketch struct {
	table []uint64 // sketchDepth rows of width/16 words
	width uint64   // counters per row, a power of two
	limit uint64   // the widest grow may make it
}

func newSketch(width, limit uint64) sketch {
	width = max(ceilPow2(width), minSketchWidth)
	limit = max(ceilPow2(limit), width)
	return sketch{table: make([]uint64, sketchDepth*width/16), width: width, limit: limit}
}

// ceilPow2 returns the least power of two >= n (1 for 0), at most 1<<62.
func ceilPow2(n uint64) uint64 {
	p := uint64(1)
	for p < n && p < 1<<62 {
		p <<= 1
	}
	return p
}

// slot returns the word and bit offset of row's counter for hash h.
func (k *sketch) slot(h uint64, row int) (int, uint) {
	x := mix(h+uint64(row)*0x9e3779b97f4a7c15) & (k.width - 1)
	return row*int(k.width/16) + int(x/16), uint(x%16) * 4
}

// estimate returns how often h was counted, give or take collisions
// (never fewer).
func (k *sketch) estimate(h uint64) uint32 {
	n := uint32(maxFreq)
	for row := range sketchDepth {
		w, sh := k.slot(h, row)
		n = min(n, uint32(k.table[w]>>sh)&maxFreq)
	}
	return n
}

// increment counts h once more and returns its new estimate. It raises
// only the counters at the estimate (conservative update), which keeps
// collisions from inflating estimates as much.
func (k *sketch) increment(h uint64) uint32 {
	n := k.estimate(h)
	if n == maxFreq {
		return n
	}
	for row := range sketchDepth {
		if w, sh := k.slot(h, row); uint32(k.table[w]>>sh)&maxFreq == n {
			k.table[w] += 1 << sh
		}
	}
	return n + 1
}

// raise makes h's counters at least n (at most maxFreq): an entry's count
// going back into the sketch when the entry is removed.
func (k *sketch) raise(h uint64, n uint32) {
	n = min(n, maxFreq)
	for row := range sketchDepth {
		w, sh := k.slot(h, row)
		if c := uint32(k.table[w]>>sh) & maxFreq; c < n {
			k.table[w] += uint64(n-c) << sh
		}
	}
}

// halve halves every counter.
func (k *sketch) halve() {
	for i, w := range k.table {
		k.table[i] = w >> 1 & 0x7777777777777777
	}
}

// grow doubles the width, up to the limit, and forgets every count. It
// reports whether it grew.
func (k *sketch) grow() bool {
	if k.width >= k.limit {
		return false
	}
	k.width *= 2
	k.table = make([]uint64, sketchDepth*k.width/16)
	return true
}

// period is how many accesses pass between agings.
func (k *sketch) period() uint64 { return periodFactor * k.width }

// mix scrambles the bits of h (a 64-bit finalizer), so that each row's
// counter depends on every bit of the key's hash.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
