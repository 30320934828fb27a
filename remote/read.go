package remote

import (
	"context"
	"errors"
	"slices"

	engine "github.com/tiercache/tiercache/internal/remote"
)

// Get returns the value at key, or an error wrapping ErrNotFound if the key
// holds none (or holds one of the caches' markers). It is one round trip.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.store.GetWithTTL(ctx, key)
	if err != nil {
		return nil, err
	}
	if engine.IsMarker(v) {
		return nil, s.fail("get", []string{key}, ErrNotFound)
	}
	return v, nil
}

// GetMany returns the values of the keys that hold one, in one round trip
// per Redis node; a key that holds none is not in the map. If some keys
// cannot be read (a Cluster node is down), it returns the others' values
// and an error naming the failed keys; if ctx ends, it returns nil and the
// ctx's error.
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	items, err := s.store.GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(items))
	var failed []string
	var cause error
	for i, it := range items {
		switch {
		case errors.Is(it.Err, ErrNotFound):
		case it.Err != nil:
			if !slices.Contains(failed, keys[i]) {
				failed = append(failed, keys[i])
			}
			cause = firstCause(cause, it.Err)
		case !engine.IsMarker(it.Value):
			out[keys[i]] = it.Value
		}
	}
	if len(failed) > 0 {
		return out, s.fail("get-many", failed, cause)
	}
	return out, nil
}

// Keys returns the namespace's keys, without the "ns:" prefix, sorted: those
// that hold the caches' markers too. It uses SCAN, never KEYS; keys written
// or deleted meanwhile may or may not be listed.
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	return s.store.Keys(ctx)
}

// firstCause returns the first cause of a batch's failures: first, if set, else
// the cause inside err.
func firstCause(first, err error) error {
	if first != nil {
		return first
	}
	var e *engine.Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}
