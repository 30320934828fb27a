// Package field is the shape of an invalid option: which package, which
// field, what is wrong. Each engine (local, remote, invalidate) reports its
// own rules with it, every bad field at once (errors.Join); a package that
// exposes an engine's option under a name of its own finds each field's
// error with Each and wraps it (%w) with that name, so a rule has one home.
package field

import (
	"errors"
	"fmt"
)

// Error is one invalid field: "<Pkg>: <Name> <Msg>".
type Error struct {
	Pkg  string // the package whose rule it is ("local")
	Name string // the field, as that package names it ("Shards")
	Msg  string // what it must be and what it got
}

func (e *Error) Error() string { return e.Pkg + ": " + e.Name + " " + e.Msg }

// Errorf returns the *Error of field name of pkg.
func Errorf(pkg, name, format string, args ...any) *Error {
	return &Error{Pkg: pkg, Name: name, Msg: fmt.Sprintf(format, args...)}
}

// Each calls f for every *Error in err (one, or those errors.Join put
// together), and for every other error with nil.
func Each(err error, f func(fe *Error, err error)) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			Each(e, f)
		}
		return
	}
	var fe *Error
	if errors.As(err, &fe) {
		f(fe, err)
		return
	}
	f(nil, err)
}
