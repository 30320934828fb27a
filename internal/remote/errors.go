package remote

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotFound is returned (inside an *Error) for a key that is not in the
// store. Compare with errors.Is.
var ErrNotFound = errors.New("not found")

// Error is the error of every Store method: what failed, where, and why.
// Its text is
//
//	remote: get "1" in namespace "cache": not found
//
// A package that wraps a Store can take it apart with errors.As and
// re-label it with its own prefix.
type Error struct {
	// Op is the operation: "get" (GetWithTTL), "set" (SetAndPublish),
	// "delete" (DeleteAndPublish), "publish", "keys", "get-many",
	// "write-many", "acquire", "acquire-refresh" or "release-refresh".
	Op string
	// Namespace is the Store's namespace.
	Namespace string
	// Keys are the keys the call was given, without the namespace prefix;
	// none for "keys". A DeleteAndPublish split into groups stops at the
	// first group that fails, and the groups before it were applied. The error of one key of GetMany or Acquire
	// (in an Item or a Claim) names that key; that of a WriteMany group (in
	// a Result), the group's keys.
	Keys []string
	// Err is the cause: ErrNotFound for a missing key, an error wrapping
	// ctx.Err() when the call's ctx ended, a TTL that was refused, or what
	// go-redis returned.
	Err error
}

// maxErrorKeys is how many keys Error's text lists before "… and N more".
const maxErrorKeys = 3

func (e *Error) Error() string {
	s := "remote: " + e.Where()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Where is the error's text without its package prefix and cause: the
// operation, the keys and the namespace, `get "1" in namespace "cache"`,
// for a package that re-labels the error with its own prefix.
func (e *Error) Where() string {
	var b strings.Builder
	b.WriteString(e.Op)
	for i, k := range e.Keys {
		if i == maxErrorKeys {
			fmt.Fprintf(&b, " … and %d more", len(e.Keys)-i)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(k))
	}
	if e.Namespace != "" {
		b.WriteString(" in namespace ")
		b.WriteString(strconv.Quote(e.Namespace))
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }
