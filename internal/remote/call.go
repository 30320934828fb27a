package remote

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// clientEnforcesDeadlines reports whether go-redis applies a ctx's deadline
// to c's socket reads and writes itself (see baseClient.context in
// go-redis): c is a *redis.Client or *redis.ClusterClient whose
// Options().ContextTimeoutEnabled is true. Any other client (by default
// go-redis replaces a command's ctx with context.Background) has its
// deadlines and cancellations enforced by the Store instead (see call).
//
// Either way a Store call returns when its ctx ends. What differs is what
// is left behind when it returns a ctx error:
//
//   - the client enforces deadlines, and the ctx had one: the call ran on
//     the caller's goroutine and go-redis gave up on the command when it
//     returned.
//   - otherwise: the call ran its Redis work on a goroutine of its own,
//     which the Store abandoned. That work goes on in the background, up to
//     the client's own timeouts (DialTimeout, WriteTimeout, ReadTimeout,
//     and its retries), and its result is dropped.
//
// In both cases a write whose call returned a ctx error may have been
// applied, and may still be applied later: a server that received the
// command runs it whatever became of the caller, and an abandoned call may
// not even have sent it yet. A caller that caches what it wrote must treat
// such a key as unknown, not as holding either value.
//
// A ctx that is cancelled before its deadline is honoured at once except on
// the inline path (the client enforces deadlines, and the ctx has one),
// where go-redis notices the cancellation only while it waits for a
// connection or between retries, and otherwise at the deadline.
func clientEnforcesDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c != nil && c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c != nil && c.Options().ContextTimeoutEnabled
	}
	return false
}

// call runs op(s, ctx, in) and returns its result, or ctx's error once ctx
// ends, whichever comes first. Every Store method goes through it. A
// Gate that answers an error fails the call at once.
//
// op runs on the caller's goroutine when ctx can never end (Done is nil),
// or when the client enforces ctx's deadline itself; that is the hot path
// of a cache miss, and it costs nothing over calling op. Otherwise op runs
// on a goroutine of its own (see task) and call waits for it or for ctx;
// when ctx wins, op is abandoned: it goes on, and its result is dropped.
//
// op is a method expression and its arguments travel in in, rather than in
// a closure: a closure handed to a goroutine escapes, and would cost every
// call an allocation, the inline ones too.
//
// A panic in op (a go-redis hook, say) on the goroutine is re-raised on the
// caller's goroutine if the caller still waits, and on op's goroutine
// otherwise, where nothing can recover it.
func call[In, Out any](ctx context.Context, s *Store, in In, op func(*Store, context.Context, In) (Out, error)) (Out, error) {
	if s.gate != nil {
		if err := s.gate(); err != nil {
			var zero Out
			return zero, err
		}
	}
	done := ctx.Done()
	if done == nil {
		return op(s, ctx, in)
	}
	if err := ctx.Err(); err != nil { // send nothing for a ctx already ended
		var zero Out
		return zero, err
	}
	if s.enforcesDeadlines {
		if _, ok := ctx.Deadline(); ok {
			out, err := op(s, ctx, in)
			return out, withCtxErr(ctx, err)
		}
	}
	out, _, err := spawn(ctx, s, in, op)
	return out, err
}

// spawn runs op(s, ctx, in) on a goroutine of its own (a pooled task; see
// task) and returns its outcome, or ctx's error once ctx ends, whichever
// comes first; abandoned reports the latter, op then going on with its
// result dropped. A panic in op is raised again here if the caller still
// waits. ctx must be able to end.
func spawn[In, Out any](ctx context.Context, s *Store, in In, op func(*Store, context.Context, In) (Out, error)) (out Out, abandoned bool, err error) {
	t := getTask[In, Out]()
	t.ctx, t.s, t.in, t.op = ctx, s, in, op
	t.state.Store(taskRunning)
	go t.run()
	select {
	case <-t.ready:
	case <-ctx.Done():
		if t.state.CompareAndSwap(taskRunning, taskAbandoned) {
			return out, true, ctx.Err() // t is op's goroutine's now
		}
		<-t.ready // op ended first: its result is on its way
	}
	r := t.res
	t.release()
	if r.panicked {
		panic(r.panicVal)
	}
	return r.out, false, r.err
}

// Detach is call's promise for work that must run to its end whatever
// becomes of its caller (a write and the settling of what it wrote): it
// runs work under ctx's values without its cancellation and returns work's
// error, or ctx's error as soon as ctx ends. Then it calls abandoned, if
// not nil, and work goes on, on a goroutine of its own, to its end (its
// Redis commands under the client's own timeouts). With a ctx that cannot
// end, work runs on the caller's goroutine.
func Detach(ctx context.Context, work func(context.Context) error, abandoned func()) error {
	if ctx.Done() == nil {
		return work(ctx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, gaveUp, err := spawn(ctx, nil, work, runDetached)
	if gaveUp && abandoned != nil {
		abandoned()
	}
	return err
}

// runDetached is Detach's op: work, cut loose from ctx's cancellation.
func runDetached(_ *Store, ctx context.Context, work func(context.Context) error) (struct{}, error) {
	return struct{}{}, work(context.WithoutCancel(ctx))
}

// withCtxErr makes the error of a command that go-redis cut short at ctx's
// deadline (a socket timeout, which is not a context error) wrap ctx's
// error too, so that errors.Is(err, context.DeadlineExceeded) holds.
func withCtxErr(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	cerr := ctx.Err()
	if cerr == nil {
		// The socket's deadline and ctx's timer fire at the same instant;
		// the read may return before the timer has marked ctx done.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}
