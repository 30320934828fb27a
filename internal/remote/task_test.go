package remote

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// On the goroutine path (a ctx with a deadline, a client that does not
// enforce it), every call gets its own op's result, though tasks are
// reused, from several goroutines at once.
func TestCallOnGoroutinesGetsItsOwnResult(t *testing.T) {
	s := &Store{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				in := g*10000 + i
				if out, err := call(ctx, s, in, addOne); out != in+1 || err != nil {
					t.Errorf("call(%d) = %d, %v", in, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// blockOp waits for its channel, then returns its input, or errOp.
func blockOp(_ *Store, _ context.Context, in chan int) (int, error) {
	v, ok := <-in
	if !ok {
		return 0, errOp
	}
	return v, nil
}

var errOp = errors.New("op failed")

// A call whose ctx ends first returns ctx's error at once; its op goes on,
// and its task is not handed to another call until the op is over (under
// the race detector, a task handed over early is a race).
func TestCallAbandonedTaskIsNotReusedEarly(t *testing.T) {
	s := &Store{}
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		held := make(chan int)
		res := make(chan error, 1)
		go func() {
			_, err := call(ctx, s, held, blockOp)
			res <- err
		}()
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned call: err = %v, want Canceled", err)
		}
		// While the abandoned op still runs, and as it ends, other calls of
		// the same kind run and end with their own results.
		for i := range 20 {
			if i == 10 {
				close(held) // the abandoned op ends (errOp), dropped
			}
			own := make(chan int, 1)
			own <- i
			dl, cancel2 := context.WithTimeout(context.Background(), time.Minute)
			out, err := call(dl, s, own, blockOp)
			cancel2()
			if out != i || err != nil {
				t.Fatalf("call beside an abandoned one = %d, %v; want %d", out, err, i)
			}
		}
	}
}

// A panic in op on the goroutine reaches the caller that waits for it, and
// the next call of the kind is unaffected.
func TestCallPanicOnGoroutineReachesTheCaller(t *testing.T) {
	s := &Store{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	boom := func(_ *Store, _ context.Context, in int) (int, error) {
		if in < 0 {
			panic("boom")
		}
		return in, nil
	}
	for i := range 10 {
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("recovered %v, want boom", r)
				}
			}()
			_, _ = call(ctx, s, -1, boom)
			t.Fatal("call did not panic")
		}()
		if out, err := call(ctx, s, i, boom); out != i || err != nil {
			t.Fatalf("call after a panic = %d, %v", out, err)
		}
	}
}

// The goroutine path allocates nothing either, once its task is pooled.
func TestCallOnGoroutineAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	s := &Store{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if n := testing.AllocsPerRun(1000, func() {
		if out, err := call(ctx, s, 1, addOne); out != 2 || err != nil {
			t.Fatal(out, err)
		}
	}); n != 0 {
		t.Errorf("call on a goroutine allocates %v times", n)
	}
}
