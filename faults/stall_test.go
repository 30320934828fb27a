package faults

import (
	"math"
	"runtime/metrics"
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
// to run, two ways. A goroutine of its own sleeps stallTick at a time, and
// every wake-up that comes more than stallMin late is a span [due, woke]
// during which a goroutine woken by a timer (such as one waiting on a ctx's
// deadline) would have waited too, on a loaded machine or in a long GC
// pause. And at each wake-up it reads the runtime's histogram of how long
// goroutines waited runnable before they ran: the longest wait that ended
// since the last look (more than stallMin) is a wait, at woke. The judge
// does not count such delays against a call's deadline: what it tests is
// how long the call takes to return once it can run.
type stalls struct {
	base  time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	spans []span // written by the watcher until stop; in time order
	waits []span // {begin: woke, done: the wait}: likewise
}

// watchStalls starts the watcher; times are nanoseconds since base.
func watchStalls(base time.Time) *stalls {
	st := &stalls{base: base, stop: make(chan struct{})}
	st.wg.Go(func() {
		lat := newLatencies()
		t := time.NewTimer(stallTick)
		defer t.Stop()
		for due := time.Since(base) + stallTick; ; due = time.Since(base) + stallTick {
			select {
			case <-st.stop:
				return
			case <-t.C:
			}
			woke := time.Since(base)
			if woke-due > stallMin {
				st.spans = append(st.spans, span{begin: int64(due), done: int64(woke)})
			}
			if w := lat.longest(); w > stallMin {
				st.waits = append(st.waits, span{begin: int64(woke), done: int64(w)})
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

// excuse returns how much of a call's time past its deadline, [deadline,
// end], the process could not have run it: the time the stalls cover, or
// the longest wait in a run queue that ended from then until the first
// look after end, whichever is more.
func (st *stalls) excuse(deadline, end int64) int64 {
	if st == nil {
		return 0
	}
	covered, _ := st.within(deadline, end)
	var wait int64
	i := sort.Search(len(st.waits), func(i int) bool { return st.waits[i].begin >= deadline })
	for ; i < len(st.waits); i++ {
		wait = max(wait, st.waits[i].done)
		if st.waits[i].begin >= end {
			break
		}
	}
	return max(covered, wait)
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

// latencies reads the runtime's histogram of scheduling latencies.
type latencies struct {
	sample []metrics.Sample
	last   []uint64 // the counts at the last look
}

func newLatencies() *latencies {
	l := &latencies{sample: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
	l.longest()
	return l
}

// longest returns the lower bound of the highest bucket whose count grew
// since the last look: at least one goroutine waited that long, runnable.
func (l *latencies) longest() time.Duration {
	metrics.Read(l.sample)
	if l.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := l.sample[0].Value.Float64Histogram()
	var w time.Duration
	for i, n := range h.Counts {
		if i < len(l.last) && n > l.last[i] && !math.IsInf(h.Buckets[i], 0) {
			w = time.Duration(h.Buckets[i] * float64(time.Second))
		}
	}
	l.last = append(l.last[:0], h.Counts...)
	return w
}
