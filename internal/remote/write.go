package remote

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cond is the condition under which WriteMany applies a Write.
type Cond uint8

const (
	// Always applies the write whatever the key holds.
	Always Cond = iota
	// IfAbsent applies it only if the key holds nothing.
	IfAbsent
	// IfEqual applies it only if the key holds exactly Write.Expect: a lease
	// marker, say, or bytes being replaced.
	IfEqual
	// invalidateOnly writes nothing: the key is only invalidated (Publish).
	invalidateOnly
)

// Write is one write of WriteMany.
type Write struct {
	// Key is the key, without the namespace prefix.
	Key string
	// Value is what the key is set to; ignored when Delete.
	Value []byte
	// TTL is the key's time to live: 0 for no expiry, else at least 1ms
	// (see the package doc); ignored when Delete.
	TTL time.Duration
	// Delete deletes the key, when Cond holds, instead of writing Value.
	Delete bool
	// Cond is the condition under which the write is applied.
	Cond Cond
	// Expect is what the key must hold for an IfEqual write; ignored
	// otherwise.
	Expect []byte
}

// Result is the outcome of one Write.
type Result struct {
	// Applied reports that the write happened: its Cond held. A Delete
	// whose Cond held is applied even if the key held nothing.
	Applied bool
	// Err is the *Error of the write's group (see WriteMany), naming the
	// group's keys; nil when the group ran.
	Err error
}

// WriteMany applies writes and publishes their invalidation, in one round
// trip per Redis node. It returns one Result per write, aligned with
// writes.
//
// The writes are split into groups: all of them on a single node, one hash
// slot's on a Cluster; 1000 at most either way. Each group is one run of
// the write script (see script.go): it applies, in order, its writes whose
// Cond holds and then, if it applied at least one, logs and publishes
// payload(the group's keys), atomically: a group's writes and its message
// happen together or not at all. WriteMany calls payload once per group,
// on the caller's goroutine, before it sends anything; with payload nil
// the message is empty. A Silent store publishes nothing: its writes that
// are all Always go as plain SETs and DELs, in one pipeline.
//
// Every group goes in one pipeline, by EVALSHA (the groups that a node
// answers NOSCRIPT, having run nothing, are sent again by EVAL).
//
// The error is non-nil only when the whole call failed, and then the
// Results are nil: a write is invalid (an unknown Cond, or a TTL that the
// package doc forbids: the *Error names its key, and nothing is sent), or
// ctx ended (some groups may have been applied, or be applied later; see
// clientEnforcesDeadlines). A group that fails (a Cluster node down, no
// invalidation channel on the node) sets the Err of its writes.
func (s *Store) WriteMany(ctx context.Context, writes []Write, payload func(keys []string) []byte) ([]Result, error) {
	return s.writeMany(ctx, writes, payload, s.silent)
}

// writeMany is WriteMany, silent (publishing and logging nothing) or not.
func (s *Store) writeMany(ctx context.Context, writes []Write, payload func(keys []string) []byte, silent bool) ([]Result, error) {
	if len(writes) == 0 {
		return []Result{}, nil
	}
	b := writeBatch{writes: writes, ops: make([]writeOp, len(writes)), silent: silent, plain: silent}
	for i, w := range writes {
		op, err := newWriteOp(w)
		if err != nil {
			return nil, s.opError("write-many", err, w.Key)
		}
		b.ops[i] = op
		b.plain = b.plain && w.Cond == Always
	}
	key := func(i int) string { return writes[i].Key }
	b.groups, b.rk = s.groups(len(writes), key), s.packKeys(len(writes), key)
	b.payloads = make([][]byte, len(b.groups))
	if payload != nil && !silent {
		for gi, g := range b.groups {
			keys := make([]string, len(g))
			for j, i := range g {
				keys[j] = writes[i].Key
			}
			b.payloads[gi] = payload(keys)
		}
	}
	res, err := call(ctx, s, b, (*Store).writeGroups)
	if err != nil {
		keys := make([]string, len(writes))
		for i, w := range writes {
			keys[i] = w.Key
		}
		return nil, s.opError("write-many", err, keys...)
	}
	return res, nil
}

// writeOp is a Write as the commands take it.
type writeOp struct {
	code   string // see the write script
	value  []byte
	ms     int64 // PX argument; 0 means no expiry
	expect []byte
}

func newWriteOp(w Write) (writeOp, error) {
	if w.Cond > invalidateOnly {
		return writeOp{}, fmt.Errorf("unknown Cond %d", w.Cond)
	}
	op := writeOp{code: writeCodes[w.Cond]}
	if w.Cond == IfEqual {
		op.expect = w.Expect
	}
	if w.Delete {
		op.code = deleteCodes[w.Cond]
		return op, nil
	}
	ms, err := ttlMillis(w.TTL)
	if err != nil {
		return op, err
	}
	op.value, op.ms = w.Value, ms
	return op, nil
}

// The codes of the write script, by Cond.
var (
	writeCodes  = [...]string{Always: "S", IfAbsent: "N", IfEqual: "E", invalidateOnly: "I"}
	deleteCodes = [...]string{Always: "D", IfAbsent: "d", IfEqual: "e", invalidateOnly: "I"}
)

// writeBatch is the work of a WriteMany.
type writeBatch struct {
	writes   []Write
	ops      []writeOp // aligned with writes
	rk       []string  // Redis keys, aligned with writes
	groups   [][]int   // positions in writes
	payloads [][]byte  // per group
	silent   bool      // a Silent store's writes: nothing published or logged
	plain    bool      // silent, every write Always: plain commands, no script
}

func (s *Store) writeGroups(ctx context.Context, b writeBatch) ([]Result, error) {
	if b.plain {
		return s.writePlain(ctx, b)
	}
	calls := make([]scriptCall, len(b.groups))
	for gi, g := range b.groups {
		keys := make([]string, len(g))
		args := s.invalidation(make([]any, 0, scriptArgs+4*len(g)), b.payloads[gi], b.rk[g[0]], b.silent)
		for j, i := range g {
			keys[j] = b.rk[i]
			op := &b.ops[i]
			args = append(args, op.code, op.value, op.ms, op.expect)
		}
		calls[gi] = scriptCall{keys: keys, args: args}
	}
	cmds, err := s.evalGroups(ctx, writeScript, &s.writeScriptSent, calls)
	if err != nil {
		return nil, err
	}
	res := make([]Result, len(b.writes))
	for gi, g := range b.groups {
		applied, err := cmds[gi].Text()
		if err == nil && len(applied) != len(g) {
			err = replyError(applied)
		}
		if err != nil {
			b.groupFailed(s, res, g, err)
			continue
		}
		for j, i := range g {
			res[i].Applied = applied[j] == '1'
		}
	}
	return res, nil
}

// writePlain sends the writes of b, all Always on a Silent store, as plain
// SETs and DELs in one pipeline: without an invalidation to make atomic
// with them, nothing needs a script.
func (s *Store) writePlain(ctx context.Context, b writeBatch) ([]Result, error) {
	pipe := s.client.Pipeline()
	cmds := make([]redis.Cmder, len(b.writes))
	for i := range b.writes {
		op := &b.ops[i]
		switch {
		case op.code == "D":
			cmds[i] = pipe.Del(ctx, b.rk[i])
		default:
			cmds[i] = pipe.Set(ctx, b.rk[i], op.value, time.Duration(op.ms)*time.Millisecond)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && ctxEnded(ctx) {
		return nil, withCtxErr(ctx, err)
	}
	res := make([]Result, len(b.writes))
	for _, g := range b.groups {
		for _, i := range g {
			if err := cmds[i].Err(); err != nil {
				b.groupFailed(s, res, g, err)
				break
			}
			res[i].Applied = true
		}
	}
	return res, nil
}

// groupFailed sets the Result of each write of g to one *Error naming
// the group's keys.
func (b writeBatch) groupFailed(s *Store, res []Result, g []int, err error) {
	keys := make([]string, len(g))
	for j, i := range g {
		keys[j] = b.writes[i].Key
	}
	err = s.opError("write-many", err, keys...)
	for _, i := range g {
		res[i].Err = err
		res[i].Applied = false
	}
}
