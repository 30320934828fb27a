package remote

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// refreshPrefix begins the Redis key of every refresh lease. No Store's
// keys begin with it: CheckNamespace refuses the namespace "tiercache".
const refreshPrefix = reservedNamespace + ":refresh:"

// RefreshKey returns the Redis key of key's refresh lease (see
// AcquireRefresh): "tiercache:refresh:<namespace>:<key>". It is not a key of
// any namespace (CheckNamespace refuses "tiercache"), so it never collides
// with a value, and Keys does not list it.
func (s *Store) RefreshKey(key string) string { return refreshPrefix + s.prefix + key }

// AcquireRefresh takes the refresh lease of key for token, if no one holds
// it: it sets RefreshKey(key) to token with a TTL of ttl (SET NX PX), and
// reports whether it did. The lease says that its holder is refreshing
// key's value ahead of its expiry, so that the other instances, which find
// it held, leave the refresh to it. It is a key of its own, beside key: it
// neither reads nor changes key, and a holder that dies loses it when ttl
// passes. ReleaseRefresh ends it sooner.
//
// ttl must be at least 1ms; it is sent in whole milliseconds. Errors are
// *Error of op "acquire-refresh" naming key.
func (s *Store) AcquireRefresh(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	ms, err := ttlMillis(ttl)
	if err == nil && ms == 0 {
		err = errors.New("refresh lease ttl must be at least 1ms, got 0")
	}
	if err != nil {
		return false, s.opError("acquire-refresh", err, key)
	}
	ok, err := call(ctx, s, refreshLease{key: key, token: token, ms: ms}, (*Store).acquireRefresh)
	if err != nil {
		return false, s.opError("acquire-refresh", err, key)
	}
	return ok, nil
}

// refreshLease is the work of AcquireRefresh and ReleaseRefresh.
type refreshLease struct {
	key, token string
	ms         int64
}

func (s *Store) acquireRefresh(ctx context.Context, l refreshLease) (bool, error) {
	return s.client.SetNX(ctx, s.RefreshKey(l.key), l.token, time.Duration(l.ms)*time.Millisecond).Result()
}

// ReleaseRefresh ends key's refresh lease if token holds it, in one atomic
// step (a script), and reports whether it did; a lease that expired, or
// that another token holds, is left alone. Errors are *Error of op
// "release-refresh" naming key.
func (s *Store) ReleaseRefresh(ctx context.Context, key, token string) (bool, error) {
	ok, err := call(ctx, s, refreshLease{key: key, token: token}, (*Store).releaseRefresh)
	if err != nil {
		return false, s.opError("release-refresh", err, key)
	}
	return ok, nil
}

func (s *Store) releaseRefresh(ctx context.Context, l refreshLease) (bool, error) {
	n, err := releaseRefreshScript.Run(ctx, s.client, []string{s.RefreshKey(l.key)}, l.token).Int64()
	return n == 1, err
}

// releaseRefreshScript deletes KEYS[1] if it holds ARGV[1]; it returns 1 if
// it did, else 0.
var releaseRefreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
