package tiered

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// flights shares work on a key (a Redis read, a read and a load) among the
// callers that want it at the same time. It is the cache's one coalescing
// mechanism; Get and Fetch each have their own set of flights, since a Fetch
// must not settle for a Get's "not found".
//
// Three rules make sharing safe:
//   - A caller joins only a flight that no invalidation of its key has
//     overtaken: every invalidation, Set and Delete applied here marks the
//     key's flight in progress (overtake), and a caller that begins after that
//     starts a flight of its own instead of being handed a value that may
//     predate the write. With a maxAge (the Hub's MaxStaleness, for Get's
//     reads), a caller also joins only a flight that began at most maxAge
//     ago: an invalidation the subscription has not delivered yet cannot
//     overtake anything.
//   - Each waiter leaves with its own ctx; cleanup runs in a defer, so a
//     flight whose work panics is still removed and its waiters woken.
//   - A panic in user code (a Codec, a loader) reaches the caller that ran
//     the work as a panic it can recover, and the other waiters as an error
//     (*panicError). Work is never run where a panic could not be recovered.
type flights[V any] struct {
	seed   maphash.Seed
	shards [16]flightShard[V]
	// onPanic, if set, is told of every panic a flight recovers, with its
	// stack, before anyone is woken.
	onPanic func(key string, p *panicError)
	// maxAge, if positive, is how long after it began a flight may still be
	// joined (the Hub's MaxStaleness): a read that began longer ago may
	// predate a write that an unproven subscription has not reported.
	maxAge time.Duration
	base   time.Time // the origin of flight.began
	// spare holds flights that landed without anyone having joined them,
	// for do to reuse: nothing refers to such a flight any more.
	spare sync.Pool
}

type flightShard[V any] struct {
	mu    sync.Mutex
	calls map[string]*flight[V] // guarded by mu: the joinable flight of each key
	_     [40]byte              // keeps neighbouring shards' locks apart
}

// flight is one piece of shared work in progress. Its result fields are
// written by the goroutine doing the work before done is closed, and read
// by others only after.
type flight[V any] struct {
	// done is closed when the flight lands. It is made, under the shard's
	// lock, by the first caller that will wait on it: most flights (a Get's
	// read that no one joins) never need one.
	done  chan struct{}
	began time.Duration // since flights.base; set only when maxAge > 0
	// overtaken is set when an invalidation of the key was applied after the
	// flight began: no caller joins it from then on, and a load does not
	// store what it loaded.
	overtaken atomic.Bool

	v         V
	err       error
	panicked  *panicError // the work panicked; err is this too
	abandoned bool        // a Get leader's ctx ended (or its deadline passed) first: waiters read again
	loaded    bool        // the result is a loader's, not Redis's
	finished  bool        // landed by finish (touched only by the goroutine doing the work)
}

func newFlights[V any](onPanic func(key string, p *panicError), maxAge time.Duration) *flights[V] {
	f := &flights[V]{seed: maphash.MakeSeed(), onPanic: onPanic, maxAge: maxAge, base: time.Now()}
	for i := range f.shards {
		f.shards[i].calls = make(map[string]*flight[V])
	}
	return f
}

func (f *flights[V]) shard(key string) *flightShard[V] {
	return &f.shards[maphash.String(f.seed, key)%uint64(len(f.shards))]
}

// join returns the flight of key that a caller beginning now may share, or,
// with lead true, a new flight that the caller must run and then land. A
// flight joined has its done channel; a new one has it only if wait (its
// leader waits on it too).
func (f *flights[V]) join(key string, wait bool) (fl *flight[V], lead bool) {
	var now time.Duration
	if f.maxAge > 0 {
		now = time.Since(f.base)
	}
	s := f.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if fl, ok := s.calls[key]; ok && !fl.overtaken.Load() && (f.maxAge <= 0 || now-fl.began <= f.maxAge) {
		if fl.done == nil {
			fl.done = make(chan struct{})
		}
		return fl, false
	}
	fl, _ = f.spare.Get().(*flight[V])
	if fl == nil {
		fl = new(flight[V])
	}
	fl.began = now
	if wait {
		fl.done = make(chan struct{})
	}
	s.calls[key] = fl // replaces an overtaken or aged flight, which still lands for its own waiters
	return fl, true
}

// land ends fl: no one joins it any more, and its waiters wake. A flight
// out of the map (landed, overtaken, replaced) is joined no more, so the
// done channel read here under the lock is the last one fl gets: land
// reports whether anyone joined fl (or waits on it).
func (f *flights[V]) land(key string, fl *flight[V]) (joined bool) {
	s := f.shard(key)
	s.mu.Lock()
	if s.calls[key] == fl {
		delete(s.calls, key)
	}
	done := fl.done
	s.mu.Unlock()
	if done != nil {
		close(done)
	}
	return done != nil
}

// free puts fl, landed without anyone having joined it, in f.spare; its
// leader, the one goroutine that still refers to it, is done with it.
func (f *flights[V]) free(fl *flight[V]) {
	var zero V
	fl.v, fl.err, fl.panicked = zero, nil, nil
	fl.abandoned, fl.finished, fl.loaded = false, false, false
	fl.overtaken.Store(false)
	f.spare.Put(fl)
}

// overtake marks the flights of keys in progress as older than an
// invalidation applied now.
func (f *flights[V]) overtake(keys ...string) {
	for _, k := range keys {
		s := f.shard(k)
		s.mu.Lock()
		if fl, ok := s.calls[k]; ok {
			fl.overtaken.Store(true)
			delete(s.calls, k)
		}
		s.mu.Unlock()
	}
}

// overtakeAll marks every flight in progress as older than a purge.
func (f *flights[V]) overtakeAll() {
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		for k, fl := range s.calls {
			fl.overtaken.Store(true)
			delete(s.calls, k)
		}
		s.mu.Unlock()
	}
}

// do returns the result of read(ctx, fl) for key, run on the caller's own
// goroutine, or shares the result of a joinable flight of key in progress.
// If the leader's ctx ends before its read does, the waiters do not inherit
// its cancellation: each one still waiting starts the read again. If read
// panics, the leader panics with the same value (after the flight has
// landed) and the waiters get a *panicError. read must not keep fl: a
// flight that no one joined is reused once do returns.
func (f *flights[V]) do(ctx context.Context, key string, read func(context.Context, *flight[V]) (V, error)) (V, error) {
	for {
		fl, lead := f.join(key, false)
		if !lead {
			select {
			case <-fl.done:
				if fl.abandoned {
					continue
				}
				return fl.v, fl.err
			case <-ctx.Done():
				var zero V
				return zero, ctx.Err()
			}
		}
		joined := f.lead(ctx, key, fl, read)
		v, err := fl.v, fl.err
		if !joined {
			f.free(fl)
		}
		return v, err
	}
}

// lead runs read for fl and lands it, whether read returns or panics, and
// reports whether anyone joined fl.
func (f *flights[V]) lead(ctx context.Context, key string, fl *flight[V], read func(context.Context, *flight[V]) (V, error)) (joined bool) {
	defer func() {
		if r := recover(); r != nil {
			f.recovered(key, fl, r)
			f.land(key, fl)
			panic(r)
		}
	}()
	fl.v, fl.err = read(ctx, fl)
	fl.abandoned = fl.err != nil && ended(ctx)
	return f.land(key, fl)
}

// ended reports whether ctx has ended or its deadline has passed: a client
// that enforces deadlines itself (ContextTimeoutEnabled) cuts a read at the
// deadline, an instant before ctx's timer marks ctx done.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// finish lands fl with (v, err), once: a later finish of fl does nothing.
// Only the goroutine doing fl's work calls it.
func (f *flights[V]) finish(key string, fl *flight[V], v V, err error) {
	if fl.finished {
		return
	}
	fl.finished = true
	fl.v, fl.err = v, err
	f.land(key, fl)
}

// detachedMany shares work on keys (distinct) that runs on a goroutine of
// its own, detached from every caller's cancellation: each key joins its
// joinable flight in progress, or gets a new one; work(led, fls) runs once,
// on a goroutine launched by start, for all the new ones, and must finish
// each (with f.finish, as soon as its result is known, so that its waiters
// need not wait for the rest). A flight that work leaves unfinished gets
// errUnfinished; if work panics, every unfinished flight gets the
// *panicError, and the caller, if it still waits, panics with it. The
// caller waits for every key's flight, or until its ctx ends; the flights
// are returned aligned with keys, and those not yet landed when ctx ended
// are nil.
func (f *flights[V]) detachedMany(ctx context.Context, keys []string, start func(run func()) error,
	work func(led []string, fls []*flight[V])) ([]*flight[V], error) {
	all := make([]*flight[V], len(keys))
	var led []string
	var ledFls []*flight[V]
	for i, k := range keys {
		fl, lead := f.join(k, true)
		all[i] = fl
		if lead {
			led, ledFls = append(led, k), append(ledFls, fl)
		}
	}
	if len(led) > 0 {
		run := func() {
			defer func() {
				r := recover()
				if r != nil {
					p := newPanicError(r)
					if f.onPanic != nil {
						f.onPanic(led[0], p)
					}
					for _, fl := range ledFls {
						if !fl.finished {
							fl.panicked = p
						}
					}
				}
				for i, fl := range ledFls {
					if fl.panicked != nil {
						f.finish(led[i], fl, *new(V), fl.panicked)
					} else {
						f.finish(led[i], fl, *new(V), errUnfinished)
					}
				}
			}()
			work(led, ledFls)
		}
		if err := start(run); err != nil {
			for i, fl := range ledFls {
				f.finish(led[i], fl, *new(V), err)
			}
		}
	}
	for i, fl := range all {
		select {
		case <-fl.done:
			if fl.panicked != nil && slices.Contains(ledFls, fl) { // a panic is rare: a scan will do
				panic(fl.panicked)
			}
		case <-ctx.Done():
			for j := i; j < len(all); j++ {
				select {
				case <-all[j].done:
				default:
					all[j] = nil
				}
			}
			return all, ctx.Err()
		}
	}
	return all, nil
}

// errUnfinished is a flight that its work forgot: a bug.
var errUnfinished = errors.New("tiered: internal error: shared work ended without a result for the key")

// recovered records r, a panic of fl's work, as fl's result.
func (f *flights[V]) recovered(key string, fl *flight[V], r any) {
	fl.panicked = newPanicError(r)
	fl.err = fl.panicked
	if f.onPanic != nil {
		f.onPanic(key, fl.panicked)
	}
}

// panicError is a panic in user code (a Codec, a loader) recovered by a
// flight, with the stack of the goroutine it happened on.
type panicError struct {
	value any
	stack []byte
}

func newPanicError(v any) *panicError { return &panicError{value: v, stack: debug.Stack()} }

// Error says what the work panicked with; the stack is logged, not carried
// into every waiter's error text.
func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// attrs are the log attributes of the panic: its value, and its stack as
// a list of frames, "function file:line" each, innermost first (a
// structured attribute, not one string of escaped newlines).
func (p *panicError) attrs() []any {
	var frames []string
	lines := strings.Split(strings.TrimSpace(string(p.stack)), "\n")
	for i := 1; i+1 < len(lines); i += 2 { // lines[0]: "goroutine N [running]:"
		fn, at := lines[i], strings.TrimSpace(lines[i+1])
		if strings.HasPrefix(fn, "runtime/debug.Stack(") {
			continue
		}
		if j := strings.LastIndex(at, " +0x"); j >= 0 {
			at = at[:j]
		}
		frames = append(frames, fn+" "+at)
	}
	return []any{slog.Any("panic", p.value), slog.Any("stack", frames)}
}

// Unwrap returns the panic value when it is an error.
func (p *panicError) Unwrap() error {
	err, _ := p.value.(error)
	return err
}
