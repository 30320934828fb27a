package remote

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
)

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
