package tiered

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// WaitReady returns nil once the cache's invalidation channel is confirmed
// (from then on its local tier is in use). It fails fast on a refused dial,
// and otherwise waits, as Hub.WaitReady does; when ctx ends first, its error
// carries the last connection error.
func (c *Cache[V]) WaitReady(ctx context.Context) error {
	if err := c.closedErr(); err != nil || c.localOff { // no local tier: nothing to wait for
		return err
	}
	err := c.hub.wait(ctx, fmt.Sprintf("cache of namespace %q", c.namespace), func() bool {
		return c.state.Load() != stateBypass
	})
	if err == nil {
		err = c.closedErr() // closed while waiting
	}
	return err
}

// wait polls ready until it holds, ctx ends, the Hub closes, or the
// subscription fails in a way that waiting will not mend (see WaitReady).
func (h *Hub) wait(ctx context.Context, what string, ready func() bool) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if h.isClosed() {
			return ErrHubClosed
		}
		if ready() {
			return nil
		}
		if h.sub.Ready() {
			h.confirmed.Store(true)
		}
		if err := h.sub.PermanentError(); err != nil {
			return fmt.Errorf("tiered: %s not ready: %w", what, err)
		}
		if last := h.sub.LastError(); !h.confirmed.Load() && refused(last) {
			return fmt.Errorf("tiered: %s not ready: %w", what, last)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			if last := h.sub.LastError(); last != nil {
				return fmt.Errorf("tiered: %s not ready: %w (last Redis connection error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("tiered: %s not ready: %w", what, ctx.Err())
		}
	}
}

// refused reports whether err is a dial that the server's host refused:
// nothing listens at the address.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNREFUSED)
}

// Close detaches the cache from its Hub (no invalidation reaches it from
// then on), cancels running loads and waits for them, and empties the local
// tier; a cache made by New closes its Hub too. Every call after Close
// returns ErrClosed. Close is idempotent and safe to call concurrently with
// any other method. It does not close the Redis client.
func (c *Cache[V]) Close() error {
	c.mu.Lock()
	if c.closeDone != nil {
		done := c.closeDone
		c.mu.Unlock()
		<-done
		return nil
	}
	c.closeDone = make(chan struct{})
	c.state.Store(stateClosed)
	c.mu.Unlock()

	c.hub.detach(c.namespace, c)
	c.cancel()
	c.mu.Lock()
	for c.running > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
	c.local.Purge()
	c.local.Close()
	if c.suspect != nil {
		c.suspect.Purge()
		c.suspect.Close()
	}
	var err error
	if c.ownHub {
		err = c.hub.Close()
	}
	close(c.closeDone)
	return err
}

// enterFlight counts a load in, unless the cache is closing.
func (c *Cache[V]) enterFlight() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeDone != nil {
		return false
	}
	c.running++
	return true
}

func (c *Cache[V]) leaveFlight() {
	c.mu.Lock()
	c.running--
	if c.running == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// launch starts a detached flight's goroutine, counted so that Close waits
// for it; it refuses once Close has begun.
func (c *Cache[V]) launch(run func()) error {
	if !c.enterFlight() {
		return ErrClosed
	}
	go func() {
		defer c.leaveFlight()
		run()
	}()
	return nil
}

// closedErr returns ErrClosed once Close has begun.
func (c *Cache[V]) closedErr() error {
	if c.state.Load() == stateClosed {
		return ErrClosed
	}
	return nil
}
