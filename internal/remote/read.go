package remote

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// GetWithTTL returns the value of key and its remaining time to live, read
// in one round trip. The TTL is NoExpiry for a key without one. A missing
// key is ErrNotFound, and so is a key that expires, or is deleted, between
// the read of its value and that of its TTL. The value's bytes are the
// caller's alone, but back a string (go-redis's reply): they are never to
// be modified, so that a caller may keep them as a string without a copy.
//
// The value and the TTL are read by two commands of one pipeline, GET then
// PTTL, not atomically: see getWithTTL for why a write landing between
// them does no harm.
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

// getWithTTL sends GET and PTTL of key in one pipeline: one round trip of
// two read-only commands, which CLIENT PAUSE WRITE does not hold, and which
// go-redis sends with far fewer allocations than the MULTI/EXEC that used
// to make them atomic. They need not be, as GetMany's MGET and PTTLs are
// not (batch.go). Between the GET and the PTTL:
//
//   - nothing happened: the TTL is the value's, read a moment later, so a
//     copy kept that long from before the read was sent dies first.
//   - the key expired or was deleted: PTTL answers -2, and the key is not
//     found, as an instant later; nothing is kept.
//   - a Set or Delete wrote the key: the old value comes with the new TTL,
//     as if read just before the write and the TTL just after. The writer
//     published an invalidation, which reaches this instance after it took
//     the read's fill token (tiered), so the old value never lands, or is
//     dropped when it arrives, as for any read just before a write.
//   - another program changed the TTL (EXPIRE, PERSIST) or the value
//     (publishing nothing): what a read begun a moment later would see, and
//     such writes are not invalidated anyway.
//
// A key without TTL answers -1: NoExpiry. On a single node the commands are
// reused (reuse.go); on a Cluster, which routes by a hash slot it may cache
// in a command, they are built for each call.
func (s *Store) getWithTTL(ctx context.Context, key string) (valueTTL, error) {
	if !reusable(s.client) {
		k := s.prefix + key
		pipe := s.client.Pipeline()
		get := pipe.Get(ctx, k)
		pttl := redis.NewIntCmd(ctx, "pttl", k)
		_ = pipe.Process(ctx, pttl)
		_, err := pipe.Exec(ctx)
		return readReply(get, pttl, err)
	}
	r, _ := s.reuse.reads.Get().(*readCmds)
	if r == nil {
		r = newReadCmds(s.client)
	}
	r.key.set(s.prefix, key)
	_ = r.pipe.BatchProcess(ctx, r.cmds...)
	_, err := r.pipe.Exec(ctx)
	out, err := readReply(r.get, r.pttl, err)
	r.reset()
	s.reuse.reads.Put(r)
	return out, err
}

// readReply is the outcome of a GET and the PTTL of the same key sent after
// it in a pipeline whose Exec returned execErr: the value and its TTL, or
// redis.Nil for a key that is not there (at the GET, or any more at the
// PTTL), or the error of either command, or else execErr (a hook's error
// reaches no command).
func readReply(get *redis.StringCmd, pttl *redis.IntCmd, execErr error) (valueTTL, error) {
	v, err := get.Bytes()
	if err != nil {
		return valueTTL{}, err
	}
	ms, err := pttl.Result()
	if err == nil {
		err = execErr
	}
	switch {
	case err != nil:
		return valueTTL{}, err
	case ms == -2: // expired, or deleted, since the GET
		return valueTTL{}, redis.Nil
	case ms < 0: // -1: no expiry
		return valueTTL{value: v, ttl: NoExpiry}, nil
	}
	return valueTTL{value: v, ttl: time.Duration(ms) * time.Millisecond}, nil
}

// readCmds is the reused read of getWithTTL on a single node: a pipeline,
// and its GET and PTTL of one key.
type readCmds struct {
	pipe redis.Pipeliner
	key  arg // the Redis key
	get  *redis.StringCmd
	pttl *redis.IntCmd
	cmds []redis.Cmder // get, pttl
}

func newReadCmds(c redis.UniversalClient) *readCmds {
	r := &readCmds{pipe: c.Pipeline()}
	bg := context.Background() // go-redis runs a command under the ctx of the call that sends it
	r.get = redis.NewStringCmd(bg, "get", &r.key)
	r.pttl = redis.NewIntCmd(bg, "pttl", &r.key)
	r.cmds = []redis.Cmder{r.get, r.pttl}
	return r
}

// reset readies r for its next call, dropping what the last one read.
func (r *readCmds) reset() {
	r.key.release(true)
	r.get.SetVal("")
	r.get.SetErr(nil)
	r.pttl.SetVal(0)
	r.pttl.SetErr(nil)
}
