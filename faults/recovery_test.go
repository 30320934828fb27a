package faults

import (
	"sync"
	"sync/atomic"

	"github.com/tiercache/tiercache/tiered"
)

// recovery is what the instances' subscriptions did in one phase: purges
// (confirmed again with the local tier purged, or a gap), repairs (every
// message missed read back from the log, the local tier kept) and the keys
// the repairs dropped (invalidations applied between a loss and its
// repair).
type recovery struct{ purges, repairs, repairedKeys int }

// recoveries counts recovery per phase, from every instance's Observer.
type recoveries struct {
	f  *fixture
	mu sync.Mutex
	by []recovery // guarded by mu: per phase
}

func (r *recoveries) add(fn func(*recovery)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := int(r.f.phase.Load())
	for len(r.by) <= p {
		r.by = append(r.by, recovery{})
	}
	fn(&r.by[p])
}

// phase returns what phase p counted.
func (r *recoveries) phase(p int) recovery {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p >= len(r.by) {
		return recovery{}
	}
	return r.by[p]
}

// observer returns an instance's Observer.
func (r *recoveries) observer() tiered.Observer { return &watch{r: r} }

// watch is one instance's Observer.
type watch struct {
	r          *recoveries
	subscribed atomic.Bool  // the first confirmation is no purge
	down       atomic.Bool  // from a loss to the confirmation
	pending    atomic.Int64 // keys invalidated while down: repaired, if a repair ends it
}

func (w *watch) Observe(e tiered.Event) {
	switch e.Kind {
	case tiered.EventInvalidation:
		if w.down.Load() {
			w.pending.Add(int64(e.Keys))
		}
	case tiered.EventSubscription:
		switch e.State {
		case tiered.StateBroken:
			w.pending.Store(0)
			w.down.Store(true)
		case tiered.StateSubscribed:
			w.down.Store(false)
			if w.subscribed.Swap(true) {
				w.r.add(func(r *recovery) { r.purges++ })
			}
		case tiered.StateGap:
			w.r.add(func(r *recovery) { r.purges++ })
		case tiered.StateRepaired:
			w.down.Store(false)
			keys := int(w.pending.Swap(0))
			w.r.add(func(r *recovery) { r.repairs++; r.repairedKeys += keys })
		}
	}
}
