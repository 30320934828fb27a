package remote

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Item is what GetMany found at one key.
type Item struct {
	// Value is what the key holds, which may be a marker (see IsMarker);
	// nil when Err is set.
	Value []byte
	// TTL is the key's remaining time to live; NoExpiry for none.
	TTL time.Duration
	// Err is nil; ErrNotFound (inside an *Error naming the key) when the key
	// holds nothing; or the *Error of the command that could not read it
	// (on a Cluster, a node that is down fails its keys alone).
	Err error
}

// GetMany reads the value and remaining TTL of each key, in one round trip
// per Redis node. It returns one Item per key, aligned with keys; a key
// given twice is answered twice.
//
// Each group of keys (all of them on a single node, one hash slot's on a
// Cluster; 1000 at most either way) is read with one MGET and one PTTL per
// key, and every group's commands go in one pipeline. A key that expires
// between its MGET and its PTTL is not found. The value and the TTL are not
// read atomically: a write landing between them gives the old value with
// the new TTL, which is no worse than reading just before the write with
// the TTL read just after.
//
// It only reads, and Redis knows it: it answers while the server holds
// writes back (CLIENT PAUSE WRITE, as during a failover).
//
// The error is non-nil only when the whole call failed: its ctx ended (the
// items are then nil). A node or connection that fails is reported in the
// Err of each key it held.
//
// Its cost is the PTTLs'. No read-only design did better
// (BenchmarkGetManyDesigns; the figures are in docs/performance.md).
func (s *Store) GetMany(ctx context.Context, keys []string) ([]Item, error) {
	if len(keys) == 0 {
		return []Item{}, nil
	}
	items, err := call(ctx, s, keys, (*Store).getMany)
	if err != nil {
		return nil, s.opError("get-many", err, keys...)
	}
	return items, nil
}

func (s *Store) getMany(ctx context.Context, keys []string) ([]Item, error) {
	groups := s.groups(len(keys), func(i int) string { return keys[i] })
	rk := s.packKeys(len(keys), func(i int) string { return keys[i] })
	// One backing array for every command's arguments: the MGETs' first,
	// then a "pttl", key pair per key. Each key is boxed once, for its MGET
	// and its PTTL. (A *string argument would cost no allocation, but
	// go-redis's Cmd.String, which hooks and tracing print, shows it as an
	// address.)
	args := make([]any, len(groups)+3*len(keys))
	mgetArgs, pttlArgs := args[:len(groups)+len(keys)], args[len(groups)+len(keys):]
	mgets := make([]*redis.SliceCmd, len(groups))
	pttls := make([]*redis.IntCmd, len(keys))
	pipe := s.client.Pipeline()
	for gi, g := range groups {
		a := mgetArgs[:1+len(g)]
		mgetArgs = mgetArgs[1+len(g):]
		a[0] = "mget"
		for j, i := range g {
			a[1+j] = rk[i]
		}
		mgets[gi] = redis.NewSliceCmd(ctx, a...)
		_ = pipe.Process(ctx, mgets[gi])
		for j, i := range g {
			p := pttlArgs[2*i : 2*i+2]
			p[0], p[1] = "pttl", a[1+j]
			pttls[i] = redis.NewIntCmd(ctx, p...)
			_ = pipe.Process(ctx, pttls[i])
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && ctxEnded(ctx) {
		return nil, withCtxErr(ctx, err)
	}
	// The values are copied into one buffer: one allocation for them all.
	size := 0
	for _, m := range mgets {
		for _, v := range m.Val() {
			if v, ok := v.(string); ok {
				size += len(v)
			}
		}
	}
	buf := make([]byte, 0, size)
	items := make([]Item, len(keys))
	for gi, g := range groups {
		vals, err := mgets[gi].Result()
		for j, i := range g {
			it := &items[i]
			if err != nil {
				it.Err = s.opError("get-many", err, keys[i])
				continue
			}
			v, ok := vals[j].(string)
			if !ok { // nil: no value (or not a string)
				it.Err = s.opError("get-many", ErrNotFound, keys[i])
				continue
			}
			switch ms, err := pttls[i].Result(); {
			case err != nil:
				it.Err = s.opError("get-many", err, keys[i])
			case ms == -2: // expired, or deleted, since the MGET
				it.Err = s.opError("get-many", ErrNotFound, keys[i])
			default:
				buf = append(buf, v...)
				it.Value = buf[len(buf)-len(v) : len(buf) : len(buf)]
				it.TTL = NoExpiry
				if ms >= 0 {
					it.TTL = time.Duration(ms) * time.Millisecond
				}
			}
		}
	}
	return items, nil
}

// packKeys returns the Redis keys of a batch's n keys, the i-th being
// key(i), cut from one string: one allocation for them all.
func (s *Store) packKeys(n int, key func(int) string) []string {
	size := 0
	for i := range n {
		size += len(s.prefix) + len(key(i))
	}
	var b strings.Builder
	b.Grow(size)
	for i := range n {
		b.WriteString(s.prefix)
		b.WriteString(key(i))
	}
	all, out := b.String(), make([]string, n)
	for i := range n {
		l := len(s.prefix) + len(key(i))
		out[i], all = all[:l], all[l:]
	}
	return out
}

// groups splits the positions 0..n-1 of a batch, whose i-th key is key(i),
// into the groups that one command may touch: all of them on a single
// node, one hash slot's worth on a Cluster (in order of first appearance),
// and at most maxKeysPerScript either way. Each group keeps the order of
// its keys.
func (s *Store) groups(n int, key func(int) string) [][]int {
	if !s.cluster {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return slices.Collect(slices.Chunk(all, maxKeysPerScript))
	}
	var out [][]int
	for _, g := range slotGroups(s.prefix, n, key) {
		out = slices.AppendSeq(out, slices.Chunk(g, maxKeysPerScript))
	}
	return out
}

// ctxEnded reports whether ctx has ended, or its deadline has passed
// (go-redis may give up on a socket read at the deadline an instant before
// ctx's timer marks it done).
func ctxEnded(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// scriptCall is one group's run of a script.
type scriptCall struct {
	keys []string // Redis keys
	args []any
}

// evalGroups runs script once per call, every call in one pipeline (one
// round trip per node), and returns the commands, aligned with calls, each
// with its own reply or error; the error is non-nil only when ctx ended.
//
// It sends EVALSHA, and sends again by EVAL, in a second pipeline, the
// calls that a node answers NOSCRIPT (it lacks the script, and ran
// nothing), which also loads the script there. Until the Store has run
// script once (sent, which evalGroups keeps), it sends EVAL straight away,
// so that the first call on a new server is not two round trips.
func (s *Store) evalGroups(ctx context.Context, script *redis.Script, sent *atomic.Bool, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	first := !sent.Load()
	pipe := s.client.Pipeline()
	for i, c := range calls {
		if first {
			cmds[i] = script.Eval(ctx, pipe, c.keys, c.args...)
		} else {
			cmds[i] = script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && ctxEnded(ctx) {
		return nil, withCtxErr(ctx, err)
	}
	if first {
		if slices.ContainsFunc(cmds, func(c *redis.Cmd) bool { return c.Err() == nil }) {
			sent.Store(true)
		}
		return cmds, nil
	}
	var retry []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) == 0 {
		return cmds, nil
	}
	pipe = s.client.Pipeline()
	for _, i := range retry {
		cmds[i] = script.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
	}
	if _, err := pipe.Exec(ctx); err != nil && ctxEnded(ctx) {
		return nil, withCtxErr(ctx, err)
	}
	return cmds, nil
}

// replyError is the error of a script whose reply is not what it returns.
func replyError(reply any) error {
	return fmt.Errorf("unexpected script reply %T %.100v", reply, reply)
}
