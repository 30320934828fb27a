package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// The lease and marker protocol, on the Redis side. Its other half, the
// policy (when to take a lease, how long to wait, what a waiter does with an
// outcome), is tiered's (fetch.go, load.go, wake.go); the writes it relies on
// are WriteMany's conditional writes (write.go, and the write script).
//
//  1. A key holds a user's value, a marker, or nothing. A marker begins
//     with MarkerPrefix; tiered refuses to store a value that does.
//  2. A reader that finds nothing and means to load calls Acquire: the
//     key is set, if it holds nothing (or a DoneMarker, which counts as
//     nothing), to LeaseMarker(token), with the lease's TTL. The token is
//     NewLeaseToken's, one per load.
//  3. While its load runs, the holder extends the lease (Renew) every
//     third of its TTL, only where the key still holds its marker. If the
//     holder dies, the lease expires and the next Acquire takes it over.
//  4. The holder ends the lease with one WriteMany write, IfEqual its
//     LeaseMarker, so that it lands only while the key still holds its
//     lease (a lease is a fence: a write of anyone else, or the lease's
//     expiry, voids it): the value loaded; AbsentMarker, for an absence
//     remembered for NotFoundTTL; or DoneWrite's DoneMarker, the load's
//     outcome (absent, or failed) for DoneTTL. The write publishes the
//     key's invalidation, which wakes the instances that found the lease.
//  5. A waiter woken reads the key again: a value or an absence answers
//     it; a DoneMarker of the token it waited on gives it that load's
//     outcome, so that waiters do not load one after another; anything
//     else, and a lease that expired, sends it back to step 2.
//
// A refresh ahead takes a lease of its own at a key of its own
// (RefreshKey; AcquireRefresh and ReleaseRefresh in refresh.go), so that a
// value is served while it is refreshed, and writes IfEqual the bytes it
// read.

// MarkerPrefix begins every marker: a value that tiercache itself writes at
// a key, besides its users' values, to record what the key's state is. A
// user value that begins with it cannot be told from a marker, so the
// tiered package refuses to store one. It starts with a NUL byte, which no
// text value holds.
const MarkerPrefix = "\x00tiercache\x00"

const (
	absentMarker = MarkerPrefix + "absent"
	leasePrefix  = MarkerPrefix + "lease:"
	donePrefix   = MarkerPrefix + "done:"
)

// AbsentMarker returns the marker of a cached absence: the source of truth
// has no value for the key. It is MarkerPrefix followed by "absent", and a
// new slice on each call, for the caller to keep.
func AbsentMarker() []byte { return []byte(absentMarker) }

// LeaseMarker returns the marker of a lease: the instance that holds token
// is loading the key's value (see Store.Acquire). It is MarkerPrefix, then
// "lease:", then token.
func LeaseMarker(token string) []byte {
	b := make([]byte, 0, len(leasePrefix)+len(token))
	return append(append(b, leasePrefix...), token...)
}

// NewLeaseToken returns a new token for LeaseMarker: 16 bytes from
// crypto/rand, in hex (32 characters). No two calls, on any machine, return
// the same token in practice.
func NewLeaseToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: see crypto/rand.Read
	return hex.EncodeToString(b[:])
}

// IsMarker reports whether b is a marker: it begins with MarkerPrefix.
func IsMarker(b []byte) bool { return bytes.HasPrefix(b, []byte(MarkerPrefix)) }

// IsAbsentMarker reports whether b is exactly AbsentMarker().
func IsAbsentMarker(b []byte) bool { return string(b) == absentMarker }

// IsLeaseMarker reports whether b is a LeaseMarker, of any token.
func IsLeaseMarker(b []byte) bool { return bytes.HasPrefix(b, []byte(leasePrefix)) }

// LeaseToken returns the token of a LeaseMarker, and false for anything
// else.
func LeaseToken(b []byte) (string, bool) {
	if !IsLeaseMarker(b) {
		return "", false
	}
	return string(b[len(leasePrefix):]), true
}

// DoneMarker returns the marker that the holder of token leaves in place of
// its lease when its load stored no value: the key was absent (failed
// false) or the load failed (failed true). It tells the instances that were
// waiting on that lease the load's outcome, so that they share it rather
// than load again one after another; to everyone else the key holds
// nothing, and Acquire takes a lease over it. It is MarkerPrefix, then
// "done:", then token, then ":absent" or ":failed".
func DoneMarker(token string, failed bool) []byte {
	outcome := ":absent"
	if failed {
		outcome = ":failed"
	}
	return []byte(donePrefix + token + outcome)
}

// ParseDoneMarker returns the token and outcome of a DoneMarker; ok is
// false for anything else.
func ParseDoneMarker(b []byte) (token string, failed, ok bool) {
	rest, found := bytes.CutPrefix(b, []byte(donePrefix))
	if !found {
		return "", false, false
	}
	switch {
	case bytes.HasSuffix(rest, []byte(":absent")):
		return string(rest[:len(rest)-len(":absent")]), false, true
	case bytes.HasSuffix(rest, []byte(":failed")):
		return string(rest[:len(rest)-len(":failed")]), true, true
	}
	return "", false, false
}

// DoneTTL is how long a DoneMarker stays for the waiters of its lease to
// read.
const DoneTTL = time.Second

// DoneWrite is the write that replaces the lease of token at key, if the
// key still holds it, with its load's outcome when that stored no value:
// absent, or failed (see DoneMarker).
func DoneWrite(key, token string, failed bool) Write {
	return Write{Key: key, Value: DoneMarker(token, failed), TTL: DoneTTL, Cond: IfEqual, Expect: LeaseMarker(token)}
}

// Claim is what Acquire did, or found, at one key.
type Claim struct {
	// Acquired reports that the key held nothing and now holds
	// LeaseMarker(token), expiring after the lease's ttl.
	Acquired bool
	// Value is, when not Acquired, what the key holds: a value, an absence
	// marker or another instance's lease.
	Value []byte
	// TTL is, when not Acquired, the key's remaining time to live; NoExpiry
	// for none.
	TTL time.Duration
	// Err is nil, or an *Error naming the key: that of the command that
	// could not run (on a Cluster, a node that is down fails its keys
	// alone), or that the key holds another type than a string. It is never
	// ErrNotFound.
	Err error
}

// Acquire takes a lease on each key that holds nothing (or a DoneMarker,
// which counts as nothing): it sets the key to
// LeaseMarker(token) with a TTL of ttl (SET … NX PX), so that other
// instances, which find the lease, wait for this one to load the key rather
// than load it too. A key that holds something is left alone, and its value
// and remaining TTL are returned. It returns one Claim per key, aligned
// with keys; a key given twice is acquired at most once.
//
// Each group of keys (all of them on a single node, one hash slot's on a
// Cluster; 1000 at most either way) is one Lua script, and every group's
// script goes in one pipeline: one round trip per node, as in WriteMany.
// The lease ends when ttl passes, or when its holder replaces or deletes it
// with an IfEqual Write expecting LeaseMarker(token).
//
// ttl must be at least 1ms; it is sent in whole milliseconds. The error is
// non-nil only when the whole call failed, and then the Claims are nil: ttl
// is invalid (nothing is sent), or ctx ended (some leases may have been
// taken: they expire with ttl).
func (s *Store) Acquire(ctx context.Context, keys []string, token string, ttl time.Duration) ([]Claim, error) {
	if len(keys) == 0 {
		return []Claim{}, nil
	}
	b, err := s.leaseBatch(keys, token, ttl, donePrefix)
	if err != nil {
		return nil, s.opError("acquire", err, keys...)
	}
	claims, err := call(ctx, s, b, (*Store).acquire)
	if err != nil {
		return nil, s.opError("acquire", err, keys...)
	}
	return claims, nil
}

// acquireBatch is the work of an Acquire or a Renew: one script call per group.
type acquireBatch struct {
	keys   []string
	groups [][]int // positions in keys
	calls  []scriptCall
}

// leaseBatch makes the script calls of an Acquire or a Renew of token's
// leases on keys for ttl (at least 1ms): per group, the keys, then the
// arguments marker, ttl in ms and extra.
func (s *Store) leaseBatch(keys []string, token string, ttl time.Duration, extra ...any) (acquireBatch, error) {
	ms, err := ttlMillis(ttl)
	if err == nil && ms == 0 {
		err = errors.New("lease ttl must be at least 1ms, got 0")
	}
	if err != nil {
		return acquireBatch{}, err
	}
	b := acquireBatch{keys: keys, groups: s.groups(len(keys), func(i int) string { return keys[i] })}
	b.calls = make([]scriptCall, len(b.groups))
	marker := LeaseMarker(token)
	for gi, g := range b.groups {
		rk := make([]string, len(g))
		for j, i := range g {
			rk[j] = s.prefix + keys[i]
		}
		b.calls[gi] = scriptCall{keys: rk, args: append([]any{marker, ms}, extra...)}
	}
	return b, nil
}

func (s *Store) acquire(ctx context.Context, b acquireBatch) ([]Claim, error) {
	cmds, err := s.evalGroups(ctx, acquireScript, &s.acquireScriptSent, b.calls)
	if err != nil {
		return nil, err
	}
	claims := make([]Claim, len(b.keys))
	for gi, g := range b.groups {
		reply, err := cmds[gi].Slice()
		if err == nil && len(reply) != 3*len(g) {
			err = replyError(reply)
		}
		for j, i := range g {
			c := &claims[i]
			if err != nil {
				c.Err = s.opError("acquire", err, b.keys[i])
				continue
			}
			status, _ := reply[3*j].(int64)
			v, isStr := reply[3*j+1].(string)
			ms, _ := reply[3*j+2].(int64)
			switch {
			case status == 1:
				c.Acquired = true
			case status == -1 && isStr: // the key holds another type
				c.Err = s.opError("acquire", errors.New(v), b.keys[i])
			case status != 0 || !isStr:
				c.Err = s.opError("acquire", replyError(reply[3*j:3*j+3]), b.keys[i])
			case ms < 0:
				c.Value, c.TTL = []byte(v), NoExpiry
			default:
				c.Value, c.TTL = []byte(v), time.Duration(ms)*time.Millisecond
			}
		}
	}
	return claims, nil
}

// acquireScript takes the leases of one group. KEYS are the group's keys,
// ARGV[1] the lease marker, ARGV[2] its PX milliseconds and ARGV[3] the
// prefix of a DoneMarker, which it replaces as if the key were empty. It
// returns three
// items per key: 1, an empty string and 0 when it set the key to the
// marker; 0, the value and its PTTL when the key holds a string; -1 and the
// error's text when it holds another type.
var acquireScript = redis.NewScript(`
local out, n = {}, 0
for _, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[n+1], out[n+2], out[n+3] = 1, '', 0
  else
    local v = redis.pcall('GET', k)
    if type(v) == 'table' then
      out[n+1], out[n+2], out[n+3] = -1, tostring(v.err), 0
    elseif v and string.sub(v, 1, #ARGV[3]) == ARGV[3] then
      redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
      out[n+1], out[n+2], out[n+3] = 1, '', 0
    else
      out[n+1], out[n+2], out[n+3] = 0, v, redis.call('PTTL', k)
    end
  end
  n = n + 3
end
return out`)

// Renew extends the leases that token holds among keys to ttl from now
// (PEXPIRE), so that a holder whose load outlives its lease keeps it while
// it is alive; a key that no longer holds LeaseMarker(token) (written since,
// or its lease expired and taken over) is left alone. It reports, aligned
// with keys, which leases it renewed: a lease it did not renew is lost, and
// the holder's write of the key will not land. One script per group, in one
// pipeline, as in Acquire. ttl must be at least 1ms. The error is non-nil
// only when the whole call failed (an invalid ttl, or ctx ended); a group
// that fails renews none of its keys.
func (s *Store) Renew(ctx context.Context, keys []string, token string, ttl time.Duration) ([]bool, error) {
	if len(keys) == 0 {
		return []bool{}, nil
	}
	b, err := s.leaseBatch(keys, token, ttl)
	if err != nil {
		return nil, s.opError("renew", err, keys...)
	}
	renewed, err := call(ctx, s, b, (*Store).renew)
	if err != nil {
		return nil, s.opError("renew", err, keys...)
	}
	return renewed, nil
}

func (s *Store) renew(ctx context.Context, b acquireBatch) ([]bool, error) {
	cmds, err := s.evalGroups(ctx, renewScript, &s.renewScriptSent, b.calls)
	if err != nil {
		return nil, err
	}
	renewed := make([]bool, len(b.keys))
	for gi, g := range b.groups {
		reply, err := cmds[gi].Text()
		if err != nil || len(reply) != len(g) {
			continue
		}
		for j, i := range g {
			renewed[i] = reply[j] == '1'
		}
	}
	return renewed, nil
}

// renewScript extends the leases of one group. KEYS are the group's keys,
// ARGV[1] the lease marker and ARGV[2] the new PX milliseconds. It returns
// one '1' (renewed) or '0' (the key holds something else) per key.
var renewScript = redis.NewScript(`
local out = {}
for i, k in ipairs(KEYS) do
  if redis.pcall('GET', k) == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)`)
