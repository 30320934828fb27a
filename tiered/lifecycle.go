package tiered

import (
	"context"
	"fmt"
)

// WaitReady returns nil once the cache's invalidation channel is confirmed
// (from then on its local tier is in use), or, when ctx ends first, an error
// that carries the last connection error.
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
