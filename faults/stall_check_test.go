package faults

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestStallsExcuseNoBlocking: the stall watcher excuses the time the process
// could not run, not a call's own blocking. A call that waits on a lock held
// for a second past its deadline, while the process is free to run, keeps
// far more than lateSlack of its overrun once the excuse is taken out; the
// most a loaded machine has stalled the process in the suite's runs is a few
// hundred milliseconds, well under the second.
func TestStallsExcuseNoBlocking(t *testing.T) {
	const held = time.Second
	base := time.Now()
	st := watchStalls(base)
	defer st.end()
	var mu sync.Mutex
	mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	dl, _ := ctx.Deadline()
	go func() {
		<-ctx.Done()
		time.Sleep(held) // the lock is held past the deadline, by "the library"
		mu.Unlock()
	}()
	mu.Lock() // the call, blocked
	end := time.Since(base)
	st.end()
	deadline := int64(dl.Sub(base))
	over := int64(end) - deadline
	excuse := st.excuse(deadline, int64(end))
	t.Logf("overrun %v, excused %v", dur(over), dur(excuse))
	if over-excuse <= int64(lateSlack) {
		t.Errorf("a call blocked %v past its deadline was excused %v of its %v overrun: the judge would not see it late",
			held, time.Duration(excuse), time.Duration(over))
	}
}
