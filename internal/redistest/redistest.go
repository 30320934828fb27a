// Package redistest hands a test a Redis server: the real one at REDIS_ADDR
// when that variable is set, an embedded miniredis otherwise.
//
// Each call gives the test its own namespace. Against a real server a test
// must keep every key it writes under that namespace (or under a namespace
// that starts with it); the cleanup deletes exactly those keys with SCAN and
// never flushes the server. When REDIS_ADDR is set and the server does not
// answer, the test fails: a missing server is never a skip.
//
// A test that breaks its server (restarts it, pauses its clients, kills
// their connections, changes its configuration) asks for one of its own with
// NewOwn: with REDIS_ADDR set that is a redis-server the test starts on a
// free loopback port. The methods that break a server (Restart, Pause,
// KillPubSub, KillPubSubIfAny, ConfigSet) fail the test when called on a
// server it does not own, that is the shared one at REDIS_ADDR, which other
// tests and programs are using.
//
// A test that needs a Redis Cluster asks NewCluster (real in the
// real-server suite, one embedded server otherwise) or NewRealCluster, which
// always starts redis-server processes of the test's own: three masters,
// with a replica each if asked, and proxies in front of the cluster bus if
// asked. Its helpers pick keys by master (KeysOn, MasterOf, Slot), fail a
// master over gracefully or by a crash (Failover, CrashFailover), and break
// the bus: a delay (SetBusDelay), a stall (StallBus), and links dropped by
// cluster-link-sendbuf-limit under a flood of large messages (FloodBus). A
// new cluster takes about two seconds to start: Redis keeps a master that
// just started out of service that long.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EnvAddr names the environment variable that selects a real server.
const EnvAddr = "REDIS_ADDR"

// Server is one test's view of a Redis server.
type Server struct {
	// Addr is host:port of the server.
	Addr string
	// Namespace is unique to this test and contains only letters, digits,
	// '-' and '_', so it needs no escaping in a SCAN pattern.
	Namespace string
	// Mini is the embedded server, nil when the test runs against a real one.
	Mini *miniredis.Miniredis
	// Client is a client for the test, closed when the test ends.
	Client *redis.Client

	t     testing.TB
	owned bool        // the test started the server: see Owned
	proc  *ownProcess // the redis-server NewOwn started; nil otherwise
}

// New returns the server for t. Cleanup (closing clients, deleting the
// namespace's keys, stopping the embedded server) is registered on t.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, Namespace: namespace(t)}
	if addr := os.Getenv(EnvAddr); addr != "" {
		s.Addr = addr
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		probe := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		err := probe.Ping(ctx).Err()
		_ = probe.Close()
		if err != nil {
			t.Fatalf("redistest: %s=%s does not answer PING: %v", EnvAddr, addr, err)
			return nil
		}
		t.Cleanup(s.deleteNamespace)
	} else {
		s.Mini = miniredis.RunT(t)
		s.Addr = s.Mini.Addr()
		s.owned = true
	}
	s.Client = s.NewClient("")
	return s
}

// Real reports whether the test runs against a real server.
func (s *Server) Real() bool { return s.Mini == nil }

// Owned reports whether the test started the server itself, so that it may
// break it: true for the embedded server and for a redis-server that NewOwn
// started, false for the shared server at REDIS_ADDR.
func (s *Server) Owned() bool { return s.owned }

// NewClient returns another client of the server, closed when the test ends.
// A non-empty name is set with CLIENT SETNAME on each of its connections, so
// that KillPubSub can find them.
func (s *Server) NewClient(name string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, ClientName: name})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Advance moves the server's clock on by d: FastForward on the embedded
// server, a real sleep against a real one.
func (s *Server) Advance(d time.Duration) {
	if s.Mini != nil {
		s.Mini.FastForward(d)
		return
	}
	time.Sleep(d)
}

// deleteNamespace removes every key that starts with the test's namespace.
func (s *Server) deleteNamespace() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	iter := c.Scan(ctx, 0, s.Namespace+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		s.t.Errorf("redistest: clean up namespace %s: %v", s.Namespace, err)
		return
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := c.Unlink(ctx, keys[:n]...).Err(); err != nil {
			s.t.Errorf("redistest: clean up namespace %s: %v", s.Namespace, err)
			return
		}
		keys = keys[n:]
	}
}

// namespace builds "tctest-<test name>-<random>" from safe characters only.
func namespace(t testing.TB) string {
	var b strings.Builder
	b.WriteString("tctest-")
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	b.WriteByte('-')
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String()
}

// RoundTrips is a go-redis hook that counts a client's round trips: each
// command sent alone is one, and so is each pipeline. With Only set it counts
// just the commands of that name (pipelines then not at all). Add it with
// client.AddHook(&rt).
type RoundTrips struct {
	Only string
	n    atomic.Int64
}

// Count returns the round trips counted so far.
func (r *RoundTrips) Count() int64 { return r.n.Load() }

// Reset sets the count to zero.
func (r *RoundTrips) Reset() { r.n.Store(0) }

// DialHook implements redis.Hook.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if r.Only == "" || cmd.Name() == r.Only {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if r.Only == "" {
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
