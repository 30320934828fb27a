package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// A caller waiting on another caller's Get never fails because that caller
// gave up, also when the client cuts the read at the leader's deadline
// itself (ContextTimeoutEnabled), an instant before the leader's ctx is
// marked done: the waiter reads again and gets the value.
func TestWaiterOutlivesALeaderThatGaveUp(t *testing.T) {
	s := redistest.NewReal(t)
	for _, enforces := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", enforces), func(t *testing.T) {
			c := newInstanceWith(t, s, "c", tiered.Options[string]{}, instanceConfig{
				client: func(o *redis.Options) { o.ContextTimeoutEnabled = enforces },
			})
			if err := s.Client.Set(bg, s.Namespace+":k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			const trials = 12
			failed, tested := 0, 0
			for i := range trials {
				c.InvalidateAll(bg) // so that each trial reads Redis
				s.Pause("ALL", 80*time.Millisecond)
				leader := async(func() (string, error) {
					ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
					defer cancel()
					return c.Get(ctx, "k")
				})
				time.Sleep(5 * time.Millisecond) // the leader's read is under way
				v, err := c.Get(ctxFor(t, 2*time.Second), "k")
				_, lerr := await(t, leader)
				switch {
				case lerr == nil:
					// On a loaded machine the leader may run only after the
					// pause: this trial tested nothing.
					t.Logf("trial %d: the leader ran after the pause", i)
				case !errors.Is(lerr, context.DeadlineExceeded):
					t.Fatalf("trial %d: the leader's Get = %v; want its deadline", i, lerr)
				default:
					tested++
				}
				if err != nil || v != "v" {
					failed++
					t.Logf("trial %d: the waiter's Get = %q, %v", i, v, err)
				}
				time.Sleep(80 * time.Millisecond) // the pause is over
			}
			if failed > 0 {
				t.Errorf("%d of %d waiters failed because the leader gave up", failed, trials)
			}
			if tested < trials/2 {
				t.Errorf("in %d of %d trials the leader gave up during the pause; want at least %d", tested, trials, trials/2)
			}
		})
	}
}

// Every call after Close returns ErrClosed, WaitReady too, on a Cache and on
// a Hub; NewCache on a closed Hub fails with an error that is ErrClosed.
func TestCallsAfterClose(t *testing.T) {
	s := redistest.New(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	c := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(bg); !errors.Is(err, tiered.ErrClosed) {
		t.Errorf("Cache.WaitReady after Close = %v; want ErrClosed", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitReady(bg); !errors.Is(err, tiered.ErrClosed) || !errors.Is(err, tiered.ErrHubClosed) {
		t.Errorf("Hub.WaitReady after Close = %v; want ErrHubClosed, which is ErrClosed", err)
	}
	_, err := tiered.NewCache(h, tiered.Options[string]{Namespace: s.Namespace})
	if !errors.Is(err, tiered.ErrClosed) || !errors.Is(err, tiered.ErrHubClosed) {
		t.Errorf("NewCache on a closed Hub = %v; want ErrHubClosed, which is ErrClosed", err)
	}
}
