package remote

import (
	"sync"

	"github.com/redis/go-redis/v9"
)

// Reused commands. On a single node (a *redis.Client), GetWithTTL and
// SetAndPublish send go-redis commands that were built once and are reused
// from call to call (readCmds, setCmds), so that a call allocates little
// more than go-redis does for any round trip: a command, its argument list
// and the boxing of each argument cost nothing after the first call.
//
// A reused command belongs to one call at a time: it is taken from the
// Store's pool, reset, and put back only once its round trip is over (by
// the goroutine that ran it, when its caller gave up on it first; never
// after a panic). What the caller got from it (the reply's bytes) is its
// own. A go-redis hook sees the command as any other, and must not keep it
// (or its arguments) past its return, as go-redis never promised that a
// command stays as it was.
//
// Commands are not reused on a *redis.ClusterClient, which routes a command
// by a hash slot that it may cache in the command, nor on any other client
// type: those calls build their commands afresh.

// reuse holds a Store's reusable commands.
type reuse struct {
	reads sync.Pool // *readCmds
	sets  sync.Pool // *setCmds
}

// reusable reports whether c can be sent reused commands: it is a
// *redis.Client (a single node, or Sentinel's failover client).
func reusable(c redis.UniversalClient) bool {
	_, ok := c.(*redis.Client)
	return ok
}

// maxKeptArg is the largest buffer an arg keeps when its command goes back
// to the pool; a larger one (a very long key) is dropped with the call.
const maxKeptArg = 1 << 10

// An arg is an argument of a reused command, rewritten for each call: the
// argument list holds a pointer to it, boxed once. go-redis sends it with
// MarshalBinary, and prints it (Cmd.String, which hooks and tracing use)
// with String, as it would the bytes themselves.
type arg struct{ b []byte }

// MarshalBinary returns the argument's bytes, not a copy.
func (a *arg) MarshalBinary() ([]byte, error) { return a.b, nil }

// String returns the argument's bytes as text.
func (a *arg) String() string { return string(a.b) }

// set makes the argument the concatenation of parts, in its own buffer.
func (a *arg) set(parts ...string) {
	a.b = a.b[:0]
	for _, p := range parts {
		a.b = append(a.b, p...)
	}
}

// ref makes the argument b itself, not a copy; release drops it.
func (a *arg) ref(b []byte) { a.b = b }

// release readies the argument for the pool: it forgets bytes it refers
// to, and keeps a buffer of its own only if it is small.
func (a *arg) release(owned bool) {
	if !owned || cap(a.b) > maxKeptArg {
		a.b = nil
		return
	}
	a.b = a.b[:0]
}
