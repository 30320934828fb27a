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
