package remote

import (
	"context"
	"slices"
	"time"

	engine "github.com/tiercache/tiercache/internal/remote"
)

// Set stores value at key for ttl (0: no expiry) and publishes the key's
// invalidation, atomically, in one round trip. A value that begins with the
// caches' marker prefix is refused.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.refuseMarker("set", key, value); err != nil {
		return err
	}
	return s.store.SetAndPublish(ctx, key, value, ttl, s.message([]string{key}))
}

// SetMany stores every item for ttl (0: no expiry) and publishes their
// invalidation, in one round trip per Redis node: on a single node, every
// write and one message atomically (per 1000 keys); on a Cluster, per hash
// slot. If one value begins with the marker prefix, or ttl is invalid,
// nothing is written. If some writes fail (a Cluster node is down), the
// error names their keys; the others were applied.
func (s *Store) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if len(items) == 0 {
		return nil
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	writes := make([]engine.Write, len(keys))
	for i, k := range keys {
		if err := s.refuseMarker("set-many", k, items[k]); err != nil {
			return err
		}
		writes[i] = engine.Write{Key: k, Value: items[k], TTL: ttl}
	}
	res, err := s.store.WriteMany(ctx, writes, s.message)
	if err != nil {
		return relabel("set-many", err)
	}
	var failed []string
	var cause error
	for i, r := range res {
		if r.Err != nil {
			failed = append(failed, keys[i])
			cause = firstCause(cause, r.Err)
		}
	}
	if len(failed) > 0 {
		return s.fail("set-many", failed, cause)
	}
	return nil
}

// Delete deletes keys and publishes their invalidation, atomically, in one
// round trip (on a Cluster, one per hash slot, in turn; the first that
// fails ends the call). Keys that hold nothing are ignored.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	return s.store.DeleteAndPublish(ctx, s.message, keys...)
}
