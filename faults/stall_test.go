package faults

import (
	"sort"
	"sync"
	"time"
)

// stallTick is how long the stall watcher sleeps between two looks at the
// clock; a wake-up later than stallMin past its due time is a stall.
const (
	stallTick = time.Millisecond
	stallMin  = time.Millisecond
)

// stalls records when this process could not run a goroutine that was due
// to run: a goroutine of its own sleeps stallTick at a time, and every
// wake-up that comes more than stallMin late is a span [due, woke] during
// which a goroutine woken by a timer (such as one waiting on a ctx's
// deadline) would have waited too, on a loaded machine or in a long GC
// pause. The judge does not count such spans against a call's deadline:
// what it tests is how long the call takes to return once it can run.
type stalls struct {
	base  time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	spans []span // written by the watcher until stop; in time order
}

// watchStalls starts the watcher; times are nanoseconds since base.
func watchStalls(base time.Time) *stalls {
	st := &stalls{base: base, stop: make(chan struct{})}
	st.wg.Go(func() {
		t := time.NewTimer(stallTick)
		defer t.Stop()
		for due := time.Since(base) + stallTick; ; due = time.Since(base) + stallTick {
			select {
			case <-st.stop:
				return
			case <-t.C:
			}
			if woke := time.Since(base); woke-due > stallMin {
				st.spans = append(st.spans, span{begin: int64(due), done: int64(woke)})
			}
			t.Reset(stallTick)
		}
	})
	return st
}

// end stops the watcher and waits for it; the spans may be read after.
// Idempotent.
func (st *stalls) end() {
	select {
	case <-st.stop:
	default:
		close(st.stop)
	}
	st.wg.Wait()
}

// within returns how much of [from, to] the recorded stalls cover, and the
// longest stall that overlaps it. A nil stalls covers nothing.
func (st *stalls) within(from, to int64) (covered, longest int64) {
	if st == nil {
		return 0, 0
	}
	// The spans do not overlap and ascend: the first that ends after from.
	i := sort.Search(len(st.spans), func(i int) bool { return st.spans[i].done > from })
	for ; i < len(st.spans) && st.spans[i].begin < to; i++ {
		s := st.spans[i]
		covered += min(s.done, to) - max(s.begin, from)
		longest = max(longest, s.done-s.begin)
	}
	return covered, longest
}
