package remote

import (
	"context"
	"sync"
	"sync/atomic"
)

// A task carries one call's op to a goroutine of its own and its outcome
// back (see call). Tasks are reused, one pool per type of op, so that a
// call under a ctx that can end allocates nothing for its goroutine: run,
// the function the goroutine starts with, is bound once, and the outcome
// travels in the task, signalled on a channel of one slot.
//
// Exactly one side releases a task to its pool: the caller once it has
// taken the outcome, or, when the caller gave up first (state
// taskAbandoned), op's goroutine once op has returned. A panic in op is
// handed to the caller if it still waits; otherwise it is raised again on
// op's goroutine, where nothing can recover it.
type task[In, Out any] struct {
	ctx context.Context
	s   *Store
	in  In
	op  func(*Store, context.Context, In) (Out, error)

	res   result[Out]
	state atomic.Int32  // taskRunning, taskDone or taskAbandoned
	ready chan struct{} // one slot: op has returned, and the caller takes res
	run   func()        // t.work, bound once
	pool  *sync.Pool
}

// The states of a task.
const (
	taskRunning   int32 = iota // op runs, and the caller waits
	taskDone                   // op returned while the caller waited
	taskAbandoned              // the caller's ctx ended first
)

// result is op's outcome.
type result[Out any] struct {
	out      Out
	err      error
	panicked bool
	panicVal any
}

// taskPools holds a *sync.Pool of tasks per type of task, keyed by a nil
// *task of that type.
var taskPools sync.Map

// getTask returns an idle task of its type, from its pool or new.
func getTask[In, Out any]() *task[In, Out] {
	key := any((*task[In, Out])(nil))
	p, ok := taskPools.Load(key)
	if !ok {
		p, _ = taskPools.LoadOrStore(key, &sync.Pool{})
	}
	pool := p.(*sync.Pool)
	if t, ok := pool.Get().(*task[In, Out]); ok {
		return t
	}
	t := &task[In, Out]{ready: make(chan struct{}, 1), pool: pool}
	t.run = t.work
	return t
}

// work runs op on the task's goroutine and hands its outcome over, or,
// when the caller has given up, drops it (raising a panic again).
func (t *task[In, Out]) work() {
	t.res.panicked = true
	defer func() {
		if t.res.panicked {
			t.res.panicVal = recover()
		}
		if t.state.CompareAndSwap(taskRunning, taskDone) {
			t.ready <- struct{}{}
			return
		}
		if t.res.panicked {
			panic(t.res.panicVal)
		}
		t.release()
	}()
	t.res.out, t.res.err = t.op(t.s, t.ctx, t.in)
	t.res.panicked = false
}

// release forgets the call and puts the task back in its pool.
func (t *task[In, Out]) release() {
	var zeroIn In
	t.ctx, t.s, t.in, t.op = nil, nil, zeroIn, nil
	t.res = result[Out]{}
	t.pool.Put(t)
}
