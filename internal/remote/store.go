package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

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
	// Namespace prefixes every key as "Namespace:key". It must pass
	// CheckNamespace: 1 to 128 bytes of ASCII letters, digits, '-', '_' and
	// '.', and not "tiercache". So no namespace's keys can alias another's:
	// with ':' allowed, namespace "a" with key "b:x" and namespace "a:b" with
	// key "x" would both be the Redis key "a:b:x".
	// Default: DefaultNamespace ("cache").
	Namespace string

	// ScanCount is the COUNT hint of each SCAN that Keys sends: more means
	// fewer round trips and longer server work per call.
	// Default: DefaultScanCount (1000). Must be >= 0.
	ScanCount int
}

// validate reports the first invalid field of o, by name.
func (o Options) validate() error {
	if o.Namespace != "" {
		if err := CheckNamespace(o.Namespace); err != nil {
			return fmt.Errorf("remote: Namespace: %w", err)
		}
	}
	if o.ScanCount < 0 {
		return fmt.Errorf("remote: ScanCount must be >= 0, got %d", o.ScanCount)
	}
	return nil
}

// Store is a namespaced view of a Redis server or cluster.
type Store struct {
	client            redis.UniversalClient
	cluster           bool // client is a *redis.ClusterClient: split multi-key commands by slot
	enforcesDeadlines bool // see EnforcesDeadlines
	namespace         string
	prefix            string // namespace + ":"
	pattern           string // SCAN MATCH pattern: escaped prefix + "*"
	scanCount         int64

	// Whether the Store has run the script of WriteMany, and of Acquire,
	// by EVAL: until it has, it sends EVAL rather than EVALSHA, since a
	// server it has not sent the script to likely lacks it (see
	// evalGroups).
	writeScriptSent, acquireScriptSent atomic.Bool
}

// New returns a Store over client. It sends nothing to Redis. It fails for
// a nil client and for invalid options, naming the field. New accepts any
// client; CheckClient tells which ones the Store can serve correctly (the
// tiered package calls it and refuses the others).
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("remote: New with a nil client")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.ScanCount == 0 {
		opts.ScanCount = DefaultScanCount
	}
	_, cluster := client.(*redis.ClusterClient)
	prefix := opts.Namespace + ":"
	return &Store{
		client:            client,
		cluster:           cluster,
		enforcesDeadlines: clientEnforcesDeadlines(client),
		namespace:         opts.Namespace,
		prefix:            prefix,
		pattern:           EscapeGlob(prefix) + "*",
		scanCount:         int64(opts.ScanCount),
	}, nil
}

// Namespace returns the store's namespace.
func (s *Store) Namespace() string { return s.namespace }

// RedisKey returns the Redis key that holds key.
func (s *Store) RedisKey(key string) string { return s.prefix + key }

// Get returns the value of key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := call(ctx, s, key, (*Store).get)
	if err != nil {
		return nil, s.opError("get", err, key)
	}
	return b, nil
}

func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	return s.client.Get(ctx, s.prefix+key).Bytes()
}

// GetWithTTL returns the value of key and its remaining time to live, read
// together in one atomic round trip. The TTL is NoExpiry for a key without
// one. A missing key is ErrNotFound.
//
// It only reads, and Redis knows it: it answers while the server holds
// writes back (CLIENT PAUSE WRITE, as during a failover).
func (s *Store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	r, err := call(ctx, s, key, (*Store).getWithTTL)
	if err != nil {
		return nil, 0, s.opError("get", err, key)
	}
	return r.value, r.ttl, nil
}

type valueTTL struct {
	value []byte
	ttl   time.Duration
}

// getWithTTL sends MULTI, GET, PTTL, EXEC in one write. A transaction of
// read-only commands is one round trip, atomic (the value and the PTTL are
// of the same version), and not held by CLIENT PAUSE WRITE, which holds
// only an EXEC whose queue has a write. The script this replaced declared
// no flags, so Redis counted it as a possible write and a write pause held
// it.
//
// A script declared "#!lua flags=no-writes" and run with EVALSHA_RO would
// answer during a pause too, but miniredis (the embedded server of the test
// suite and of the Examples) cannot parse that line, and Redis 6 rejects
// it. Latency does not decide: against the real Redis 7.0 of the test
// suite, interleaved runs of BenchmarkGetWithTTLDesigns (pause_test.go) put
// the medians at 57.6µs (old script), 60.0µs (no-writes script), 56.8µs
// (MULTI/EXEC), all inside the ±20-30% noise of a round trip on a shared
// machine. The server's own cost does favour MULTI/EXEC: INFO commandstats
// gives 1.2µs per read (MULTI 0.13 + EXEC 1.03, GET and PTTL included)
// against 4.2-4.4µs per EVALSHA or EVALSHA_RO. The client pays for it with
// go-redis's transaction pipeline: 26 allocations (968 B) per call against
// 15 (424 B) for the script.
func (s *Store) getWithTTL(ctx context.Context, key string) (valueTTL, error) {
	k := s.prefix + key
	tx := s.client.TxPipeline()
	get := tx.Get(ctx, k)
	pttl := tx.PTTL(ctx, k)
	if _, err := tx.Exec(ctx); err != nil {
		return valueTTL{}, err
	}
	v, err := get.Bytes()
	if err != nil {
		return valueTTL{}, err
	}
	ttl := pttl.Val()
	if ttl < 0 { // -1: no expiry (-2, gone, cannot follow a GET in one transaction)
		ttl = NoExpiry
	}
	return valueTTL{value: v, ttl: ttl}, nil
}

type setArgs struct {
	key            string
	value          []byte
	ms             int64 // PX argument; 0 means no expiry
	channel        string
	payload        []byte
	publish, ifNew bool
}

// Set stores value at key. A ttl of 0 means no expiry; see the package doc
// for how a positive ttl is sent.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return s.opError("set", err, key)
	}
	if _, err := call(ctx, s, setArgs{key: key, value: value, ms: ms}, (*Store).set); err != nil {
		return s.opError("set", err, key)
	}
	return nil
}

// SetIfAbsent stores value at key only if key holds nothing, with one
// SET … NX: a value loaded from a slow source cannot overwrite one written
// meanwhile. It reports whether it stored the value, and publishes nothing.
// The ttl is as in Set.
func (s *Store) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (stored bool, err error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return false, s.opError("set-if-absent", err, key)
	}
	stored, err = call(ctx, s, setArgs{key: key, value: value, ms: ms, ifNew: true}, (*Store).set)
	if err != nil {
		return false, s.opError("set-if-absent", err, key)
	}
	return stored, nil
}

// SetAndPublish stores value at key and publishes payload on channel, both
// in one Lua script: one round trip, and either both happen or neither.
func (s *Store) SetAndPublish(ctx context.Context, key string, value []byte, ttl time.Duration, channel string, payload []byte) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return s.opError("set", err, key)
	}
	a := setArgs{key: key, value: value, ms: ms, channel: channel, payload: payload, publish: true}
	if _, err := call(ctx, s, a, (*Store).set); err != nil {
		return s.opError("set", err, key)
	}
	return nil
}

// set runs the SET of Set, SetIfAbsent or SetAndPublish and reports whether
// it stored the value.
func (s *Store) set(ctx context.Context, a setArgs) (bool, error) {
	if a.publish {
		err := setAndPublish.Run(ctx, s.client, []string{s.prefix + a.key}, a.value, a.ms, a.channel, a.payload).Err()
		return err == nil, err
	}
	args := make([]any, 3, 6)
	args[0], args[1], args[2] = "set", s.prefix+a.key, a.value
	if a.ifNew {
		args = append(args, "nx")
	}
	if a.ms > 0 {
		args = append(args, "px", a.ms)
	}
	switch err := s.client.Do(ctx, args...).Err(); {
	case errors.Is(err, redis.Nil): // NX and the key exists
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// Delete removes keys; keys that do not exist are ignored.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := call(ctx, s, s.batches(keys, nil), (*Store).delete); err != nil {
		return s.opError("delete", err, keys...)
	}
	return nil
}

// DeleteAndPublish removes keys and publishes payload(keys) on channel in one
// Lua script: one round trip, and either both happen or neither. On a
// Cluster, or for more than 1000 keys, the keys are split into groups (by
// hash slot, then by 1000), each deleted and published by its own script with
// payload called on that group's keys. DeleteAndPublish calls payload for
// every group, on the caller's goroutine, before it sends anything.
func (s *Store) DeleteAndPublish(ctx context.Context, channel string, payload func(keys []string) []byte, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	b := s.batches(keys, payload)
	b.channel = channel
	if _, err := call(ctx, s, b, (*Store).delete); err != nil {
		return s.opError("delete", err, keys...)
	}
	return nil
}

// batches holds the commands of a Delete or DeleteAndPublish.
type batches struct {
	groups   [][]string // Redis keys that one command may touch
	payloads [][]byte   // per group; nil for a Delete
	channel  string
}

// batches splits keys into the groups that one command may touch: all of
// them on a single node, one hash slot's worth on a Cluster, and at most
// maxKeysPerScript either way. With payload set it also builds each
// group's message.
func (s *Store) batches(keys []string, payload func([]string) []byte) batches {
	groups := [][]string{keys}
	if s.cluster {
		groups = groupBySlot(s.prefix, keys)
	}
	var b batches
	for _, g := range groups {
		for chunk := range slices.Chunk(g, maxKeysPerScript) {
			b.groups = append(b.groups, s.redisKeys(chunk))
			if payload != nil {
				b.payloads = append(b.payloads, payload(chunk))
			}
		}
	}
	return b
}

// delete sends the commands of b in order and stops at the first error;
// the groups before it stay deleted.
func (s *Store) delete(ctx context.Context, b batches) (struct{}, error) {
	for i, g := range b.groups {
		var err error
		if b.payloads == nil {
			err = s.client.Del(ctx, g...).Err()
		} else {
			err = deleteAndPublish.Run(ctx, s.client, g, b.channel, b.payloads[i]).Err()
		}
		if err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
}

// Keys returns every key of the namespace, without the namespace prefix,
// sorted. It uses SCAN, never KEYS; on a Cluster it scans every master. Keys
// written or deleted while it runs may or may not be listed.
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	keys, err := call(ctx, s, struct{}{}, (*Store).keys)
	if err != nil {
		return nil, s.opError("keys", err)
	}
	return keys, nil
}

func (s *Store) keys(ctx context.Context, _ struct{}) ([]string, error) {
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
		return nil, err
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
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

// opError returns the *Error of op on keys of the store's namespace,
// turning redis.Nil into ErrNotFound.
func (s *Store) opError(op string, err error, keys ...string) error {
	if errors.Is(err, redis.Nil) {
		err = ErrNotFound
	}
	return &Error{Op: op, Namespace: s.namespace, Keys: slices.Clone(keys), Err: err}
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
