package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for a key that is not in the store.
var ErrNotFound = errors.New("remote: not found")

// DefaultNamespace is the namespace of a Store whose Options leave it empty.
const DefaultNamespace = "cache"

// DefaultScanCount is the COUNT hint Keys gives each SCAN call.
const DefaultScanCount = 1000

// NoExpiry is the TTL GetWithTTL reports for a key that never expires.
const NoExpiry time.Duration = -1

// maxKeysPerScript bounds how many keys one script call deletes, to stay well
// inside Lua's stack limit for unpack.
const maxKeysPerScript = 1000

// Options configures a Store.
type Options struct {
	// Namespace prefixes every key as "Namespace:key".
	// Default: DefaultNamespace ("cache").
	Namespace string

	// ScanCount is the COUNT hint of each SCAN that Keys sends: more means
	// fewer round trips and longer server work per call.
	// Default: DefaultScanCount (1000). Must be >= 0.
	ScanCount int
}

// Validate reports the first invalid field of o, by name.
func (o Options) Validate() error {
	if o.ScanCount < 0 {
		return fmt.Errorf("remote: ScanCount must be >= 0, got %d", o.ScanCount)
	}
	return nil
}

// Store is a namespaced view of a Redis server or cluster.
type Store struct {
	client    redis.UniversalClient
	namespace string
	prefix    string // namespace + ":"
	pattern   string // SCAN MATCH pattern: escaped prefix + "*"
	scanCount int64
}

// New returns a Store over client. It sends nothing to Redis.
//
// New panics if client is nil or opts is invalid: both are programming
// errors. Call Options.Validate first to get an error instead.
func New(client redis.UniversalClient, opts Options) *Store {
	if client == nil {
		panic("remote: New with a nil client")
	}
	if err := opts.Validate(); err != nil {
		panic(err.Error())
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.ScanCount == 0 {
		opts.ScanCount = DefaultScanCount
	}
	prefix := opts.Namespace + ":"
	return &Store{
		client:    client,
		namespace: opts.Namespace,
		prefix:    prefix,
		pattern:   EscapeGlob(prefix) + "*",
		scanCount: int64(opts.ScanCount),
	}
}

// Namespace returns the store's namespace.
func (s *Store) Namespace() string { return s.namespace }

// RedisKey returns the Redis key that holds key.
func (s *Store) RedisKey(key string) string { return s.prefix + key }

// Get returns the value of key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.client.Get(ctx, s.prefix+key).Bytes()
	if err != nil {
		return nil, opError("get", key, err)
	}
	return b, nil
}

// GetWithTTL returns the value of key and its remaining time to live, read
// together in one atomic round trip. The TTL is NoExpiry for a key without
// one. A missing key is ErrNotFound.
func (s *Store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	res, err := getWithTTL.Run(ctx, s.client, []string{s.prefix + key}).Slice()
	if err != nil {
		return nil, 0, opError("get", key, err)
	}
	if len(res) != 2 {
		return nil, 0, fmt.Errorf("remote: get %q: unexpected reply of %d elements", key, len(res))
	}
	v, ok1 := res[0].(string)
	ms, ok2 := res[1].(int64)
	if !ok1 || !ok2 {
		return nil, 0, fmt.Errorf("remote: get %q: unexpected reply types %T, %T", key, res[0], res[1])
	}
	if ms < 0 { // -1: no expiry (-2, gone, cannot follow a GET inside a script)
		return []byte(v), NoExpiry, nil
	}
	return []byte(v), time.Duration(ms) * time.Millisecond, nil
}

// Set stores value at key. A ttl of 0 means no expiry; see the package doc
// for how a positive ttl is sent.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return fmt.Errorf("remote: set %q: %w", key, err)
	}
	args := []any{"set", s.prefix + key, value}
	if ms > 0 {
		args = append(args, "px", ms)
	}
	if err := s.client.Do(ctx, args...).Err(); err != nil {
		return opError("set", key, err)
	}
	return nil
}

// SetAndPublish stores value at key and publishes payload on channel, both
// in one Lua script: one round trip, and either both happen or neither.
func (s *Store) SetAndPublish(ctx context.Context, key string, value []byte, ttl time.Duration, channel string, payload []byte) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return fmt.Errorf("remote: set %q: %w", key, err)
	}
	if err := setAndPublish.Run(ctx, s.client, []string{s.prefix + key}, value, ms, channel, payload).Err(); err != nil {
		return opError("set", key, err)
	}
	return nil
}

// Delete removes keys; keys that do not exist are ignored.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	return s.deleteGroups(ctx, keys, func(ctx context.Context, group []string) error {
		return s.client.Del(ctx, s.redisKeys(group)...).Err()
	})
}

// DeleteAndPublish removes keys and publishes payload(keys) on channel in one
// Lua script: one round trip, and either both happen or neither. On a
// Cluster, or for more than 1000 keys, the keys are split into groups (by
// hash slot, then by 1000), each deleted and published by its own script with
// payload called on that group's keys.
func (s *Store) DeleteAndPublish(ctx context.Context, channel string, payload func(keys []string) []byte, keys ...string) error {
	return s.deleteGroups(ctx, keys, func(ctx context.Context, group []string) error {
		return deleteAndPublish.Run(ctx, s.client, s.redisKeys(group), channel, payload(group)).Err()
	})
}

// Keys returns every key of the namespace, without the namespace prefix,
// sorted. It uses SCAN, never KEYS; on a Cluster it scans every master. Keys
// written or deleted while it runs may or may not be listed.
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	var (
		mu   sync.Mutex
		seen = make(map[string]struct{})
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, s.pattern, s.scanCount).Iterator()
		for iter.Next(ctx) {
			k, ok := strings.CutPrefix(iter.Val(), s.prefix)
			if !ok { // cannot happen with a correct pattern; never leak others' keys
				continue
			}
			mu.Lock()
			seen[k] = struct{}{}
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return nil, fmt.Errorf("remote: keys %q: %w", s.namespace, err)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// deleteGroups calls del for each group of keys that one command may touch:
// all of them on a single node, one hash slot's worth on a Cluster, and at
// most maxKeysPerScript either way.
func (s *Store) deleteGroups(ctx context.Context, keys []string, del func(context.Context, []string) error) error {
	if len(keys) == 0 {
		return nil
	}
	groups := [][]string{keys}
	if _, ok := s.client.(*redis.ClusterClient); ok {
		groups = groupBySlot(s.prefix, keys)
	}
	for _, g := range groups {
		for chunk := range slices.Chunk(g, maxKeysPerScript) {
			if err := del(ctx, chunk); err != nil {
				return opError("delete", strings.Join(chunk, ","), err)
			}
		}
	}
	return nil
}

func (s *Store) redisKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = s.prefix + k
	}
	return out
}

// ttlMillis converts a TTL to the PX argument; 0 means no expiry.
func ttlMillis(ttl time.Duration) (int64, error) {
	switch {
	case ttl < 0:
		return 0, fmt.Errorf("ttl must be >= 0, got %v", ttl)
	case ttl == 0:
		return 0, nil
	case ttl < time.Millisecond:
		return 0, fmt.Errorf("ttl must be 0 or at least 1ms, got %v", ttl)
	}
	return ttl.Milliseconds(), nil
}

// opError wraps err with the operation and key, turning redis.Nil into
// ErrNotFound.
func opError(op, key string, err error) error {
	if errors.Is(err, redis.Nil) {
		err = ErrNotFound
	}
	return fmt.Errorf("remote: %s %q: %w", op, key, err)
}

// EscapeGlob escapes the characters that Redis glob patterns (SCAN MATCH,
// KEYS, PSUBSCRIBE) treat specially, so that s matches only itself.
func EscapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// The scripts. Each touches only the keys it is given in KEYS, so it runs on
// the node that owns them in a Cluster; PUBLISH is broadcast cluster-wide.
var (
	getWithTTL = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}`)

	setAndPublish = redis.NewScript(`
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`)

	deleteAndPublish = redis.NewScript(`
local n = redis.call('DEL', unpack(KEYS))
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n`)
)
