package remote

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	engine "github.com/tiercache/tiercache/internal/remote"
)

// ErrNotFound is returned (wrapped) for a key that holds no value. It is
// the very value of tiered.ErrNotFound.
var ErrNotFound = errNotFound

// errNotFound is the engine's, shared with package tiered.
var errNotFound = engine.ErrNotFound

// Options configures a Store.
type Options struct {
	// Namespace prefixes every key as "Namespace:key" and names the
	// invalidation channel: that of the caches to keep consistent. It
	// follows tiered's rules (see the package doc). Default: "cache".
	Namespace string
}

// Store is a namespaced view of Redis whose writes invalidate the caches of
// its namespace. It is safe for concurrent use and holds no goroutine.
type Store struct {
	store     *engine.Store
	namespace string
	pub       engine.Publisher // of this Store's messages, with an origin of its own
}

// New returns a Store of client. It sends nothing to Redis. It fails for
// invalid Options, naming the field, and for a client the caches could not
// be kept consistent through: nil, a *redis.Ring, or a type other than
// *redis.Client and *redis.ClusterClient.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if err := engine.CheckClient(client); err != nil {
		return nil, errors.New("remote: " + err.Error())
	}
	st, err := engine.New(client, engine.Options{Namespace: opts.Namespace})
	if err != nil {
		return nil, err
	}
	return &Store{store: st, namespace: st.Namespace(), pub: engine.Publisher{Store: st, Origin: invalidate.NewOrigin()}}, nil
}

// Namespace returns the Store's namespace.
func (s *Store) Namespace() string { return s.namespace }

// message encodes the invalidation of keys (the current wire version: the
// write script appends its position in the log).
func (s *Store) message(keys []string) []byte { return s.pub.Message(keys) }

// refuseMarker returns the error of op writing value at key if value
// begins with the caches' marker prefix, else nil.
func (s *Store) refuseMarker(op, key string, value []byte) error {
	if !engine.IsMarker(value) {
		return nil
	}
	return s.fail(op, []string{key}, fmt.Errorf("value begins with tiercache's reserved prefix %q", engine.MarkerPrefix))
}

// fail returns the error of op on keys: `remote: op "k" in namespace "ns": cause`.
func (s *Store) fail(op string, keys []string, cause error) error {
	return &engine.Error{Op: op, Namespace: s.namespace, Keys: keys, Err: cause}
}

// relabel returns err, an error of the engine, as the error of op: same
// keys and cause.
func relabel(op string, err error) error {
	var e *engine.Error
	if errors.As(err, &e) && e.Op != op {
		c := *e
		c.Op = op
		return &c
	}
	return err
}
