package remote

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReplaceIf stores value at key only if key still holds exactly old, in one
// atomic round trip: a value loaded to replace bytes that did not decode
// cannot overwrite one written meanwhile. It reports whether it stored the
// value, and publishes nothing. The ttl is as in Set.
func (s *Store) ReplaceIf(ctx context.Context, key string, old, value []byte, ttl time.Duration) (stored bool, err error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return false, s.opError("replace", err, key)
	}
	stored, err = call(ctx, s, replaceArgs{key: key, old: old, value: value, ms: ms}, (*Store).replace)
	if err != nil {
		return false, s.opError("replace", err, key)
	}
	return stored, nil
}

type replaceArgs struct {
	key        string
	old, value []byte
	ms         int64 // PX argument; 0 means no expiry
}

func (s *Store) replace(ctx context.Context, a replaceArgs) (bool, error) {
	n, err := replaceIf.Run(ctx, s.client, []string{s.prefix + a.key}, a.old, a.value, a.ms).Int()
	return n == 1, err
}

var replaceIf = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1`)
