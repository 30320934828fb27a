package tiered

import (
	"context"
	"errors"
	"fmt"

	"github.com/tiercache/tiercache/remote"
)

// fail gives err, the failure of op on key, the one shape every error of a
// Cache has: `tiered: get "k" in namespace "ns": <cause>`. A remote error is
// unwrapped first, so the text says the operation, namespace and key once;
// errors.Is and errors.As still reach the cause (ErrNotFound, a ctx error, a
// Redis error). A call that ran out of time while the subscription is down
// also says the last connection error, so that a wrong address or a dead
// server shows in the error and not only as "context deadline exceeded".
func (c *Cache[V]) fail(op, key string, err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	var re *remote.Error
	if errors.As(err, &re) {
		err = re.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		if last := c.hub.sub.LastError(); last != nil {
			err = fmt.Errorf("%w (last Redis connection error: %v)", err, last)
		}
	}
	if key == "" {
		return fmt.Errorf("tiered: %s in namespace %q: %w", op, c.namespace, err)
	}
	return fmt.Errorf("tiered: %s %q in namespace %q: %w", op, key, c.namespace, err)
}
