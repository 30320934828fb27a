package remote

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/clients"
	"github.com/tiercache/tiercache/internal/field"
	"github.com/tiercache/tiercache/internal/invalidate"
)

// DefaultNamespace is the namespace of a Store whose Options leave it empty.
const DefaultNamespace = "cache"

// defaultScanCount is the COUNT hint Keys gives each SCAN call by default.
const defaultScanCount = 1000

// NoExpiry is the TTL the reads report for a key that never expires.
const NoExpiry time.Duration = -1

// maxKeysPerScript bounds how many keys one script call touches, to stay
// well inside Lua's stack limit for unpack.
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
	// Default: 1000. Must be >= 0.
	ScanCount int

	// LogLength is about how many invalidations the write script keeps in
	// the namespace's log (XADD … MAXLEN ~), for subscribers to read back.
	// On a Cluster the log is split over the groups, each of which keeps
	// GroupLogLength(LogLength). Default: DefaultLogLength. Must be >= 0.
	LogLength int

	// Silent makes the writes publish (and log) nothing: plain SETs and
	// DELs, for a fleet whose every subscriber tracks its keys with
	// server-assisted invalidation. Publish, which changes no key, still
	// publishes.
	Silent bool

	// ClassicPubSub makes the writes on a Cluster publish on the
	// namespace's classic channel (over the cluster bus), as releases
	// before the group channels did, instead of a group channel: for a
	// rolling upgrade from such a release. It changes nothing elsewhere.
	ClassicPubSub bool

	// Gate, when set, is asked before every call: an error fails the call
	// at once (inside an *Error), sending nothing. tiered uses it to stop
	// calling a server it knows to be unreachable.
	Gate func() error
}

// DefaultLogLength is Options.LogLength when it is 0.
const DefaultLogLength = 10_000

// MinGroupLogLength is the least that each group's log of a namespace
// keeps on a Cluster (see GroupLogLength).
const MinGroupLogLength = 16

// GroupLogLength is the length of each group's log of a namespace whose
// LogLength is logLen, on a Cluster, where the log is split over the
// invalidate.Groups groups: ceil(logLen/Groups), at least
// MinGroupLogLength.
func GroupLogLength(logLen int) int {
	return max((logLen+invalidate.Groups-1)/invalidate.Groups, MinGroupLogLength)
}

// validate reports every invalid field of o, by name.
func (o Options) validate() error {
	var errs []error
	if o.Namespace != "" {
		if err := CheckNamespace(o.Namespace); err != nil {
			errs = append(errs, fmt.Errorf("remote: Namespace: %w", err))
		}
	}
	if o.ScanCount < 0 {
		errs = append(errs, field.Errorf("remote", "ScanCount", "must be >= 0, got %d", o.ScanCount))
	}
	if o.LogLength < 0 {
		errs = append(errs, field.Errorf("remote", "LogLength", "must be >= 0, got %d", o.LogLength))
	}
	return errors.Join(errs...)
}

// Store is a namespaced view of a Redis server or cluster.
type Store struct {
	client            redis.UniversalClient
	cluster           bool // client is a *redis.ClusterClient: split multi-key commands by slot
	enforcesDeadlines bool // see clientEnforcesDeadlines
	namespace         string
	prefix            string // namespace + ":"
	pattern           string // SCAN MATCH pattern: escaped prefix + "*"
	scanCount         int64
	logLen            int          // each channel's log: Options.LogLength, or its default; a group's share on a Cluster
	silent            bool         // Options.Silent
	classic           bool         // Options.ClassicPubSub
	gate              func() error // Options.Gate; nil: none

	// Whether the Store has run the script of WriteMany, Acquire and Renew
	// by EVAL: until it has, it sends EVAL rather than EVALSHA, since a
	// server it has not sent the script to likely lacks it (see
	// evalGroups).
	writeScriptSent, acquireScriptSent, renewScriptSent atomic.Bool

	reuse reuse // commands reused from call to call (reuse.go)
}

// New returns a Store over client. It sends nothing to Redis. It fails for
// a nil client (untyped, or a nil pointer) and for invalid options, naming
// the field. Any other client is accepted; CheckClient tells which ones the
// Store can serve correctly (the tiered package calls it and refuses the
// others).
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if err := clients.NotNil(client); err != nil {
		return nil, errors.New("remote: " + err.Error())
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.ScanCount == 0 {
		opts.ScanCount = defaultScanCount
	}
	if opts.LogLength == 0 {
		opts.LogLength = DefaultLogLength
	}
	_, cluster := client.(*redis.ClusterClient)
	if cluster {
		opts.LogLength = GroupLogLength(opts.LogLength)
	}
	prefix := opts.Namespace + ":"
	return &Store{
		client:            client,
		cluster:           cluster,
		enforcesDeadlines: clientEnforcesDeadlines(client),
		namespace:         opts.Namespace,
		prefix:            prefix,
		pattern:           EscapeGlob(prefix) + "*",
		scanCount:         int64(opts.ScanCount),
		logLen:            opts.LogLength,
		silent:            opts.Silent,
		classic:           opts.ClassicPubSub,
		gate:              opts.Gate,
	}, nil
}

// Namespace returns the store's namespace: Options.Namespace, or
// DefaultNamespace when that was empty.
func (s *Store) Namespace() string { return s.namespace }

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
