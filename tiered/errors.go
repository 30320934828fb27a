package tiered

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tiercache/tiercache/internal/remote"
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
	err = c.cause(err)
	if key == "" {
		return fmt.Errorf("tiered: %s in namespace %q: %w", op, c.namespace, err)
	}
	return fmt.Errorf("tiered: %s %q in namespace %q: %w", op, key, c.namespace, err)
}

// unlabel is err without the labels of an error of the Redis store (its
// operation, namespace and keys), which the Cache's own errors and events
// carry themselves: its cause.
func unlabel(err error) error {
	var re *remote.Error
	if errors.As(err, &re) {
		return re.Err
	}
	return err
}

// cause is err without a remote error's labels (the Cache's error says
// them), and with the last connection error for a ctx error.
func (c *Cache[V]) cause(err error) error {
	err = unlabel(err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		if last := c.hub.sub.LastError(); last != nil {
			err = fmt.Errorf("%w (last Redis connection error: %v)", err, last)
		}
	}
	return err
}

// BatchError is the error of GetMany, FetchMany or SetMany when some of its
// keys failed. The call still returns what it found (or, for SetMany,
// wrote) for the others; Keys says which failed and why. errors.Is and
// errors.As look through every cause, so errors.Is(err,
// context.DeadlineExceeded) holds when any key ran out of time.
type BatchError struct {
	Op        string           // "get-many", "fetch-many" or "set-many"
	Namespace string           // the cache's namespace
	Keys      map[string]error // each failed key and its cause
}

// maxErrorKeys is how many failed keys BatchError's text lists.
const maxErrorKeys = 3

// Error reads `tiered: get-many in namespace "ns": 2 keys failed: "a": <cause>; "b": <cause>`,
// listing at most three keys (in sorted order).
func (e *BatchError) Error() string {
	keys := make([]string, 0, len(e.Keys))
	for k := range e.Keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "tiered: %s in namespace %q: %d key", e.Op, e.Namespace, len(keys))
	if len(keys) != 1 {
		b.WriteByte('s')
	}
	b.WriteString(" failed: ")
	for i, k := range keys {
		if i == maxErrorKeys {
			fmt.Fprintf(&b, "; … and %d more", len(keys)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strconv.Quote(k))
		b.WriteString(": ")
		b.WriteString(e.Keys[k].Error())
	}
	return b.String()
}

// Unwrap returns the cause of every failed key.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Keys))
	for _, err := range e.Keys {
		errs = append(errs, err)
	}
	return errs
}

// addFailure records key's failure in m, making m if needed.
func addFailure(m map[string]error, key string, err error) map[string]error {
	if m == nil {
		m = make(map[string]error)
	}
	m[key] = err
	return m
}

// batchError returns the *BatchError of op for failed, or nil if none
// failed. After Close every key fails with ErrClosed: that is the error.
func (c *Cache[V]) batchError(op string, failed map[string]error) error {
	if len(failed) == 0 {
		return nil
	}
	closed := true
	for k, err := range failed {
		failed[k] = c.cause(err)
		closed = closed && errors.Is(err, ErrClosed)
	}
	if closed {
		return ErrClosed
	}
	return &BatchError{Op: op, Namespace: c.namespace, Keys: failed}
}

// batchFailed is the *BatchError of op when every one of keys failed with
// err.
func (c *Cache[V]) batchFailed(op string, keys []string, err error) error {
	failed := make(map[string]error, len(keys))
	for _, k := range keys {
		failed[k] = err
	}
	return c.batchError(op, failed)
}
