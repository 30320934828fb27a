package tiercacheotel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"

	"github.com/redis/go-redis/v9"
)

// errType is the error.type of an error: name, "" for none. status says
// that name is a Redis error prefix, which is also the
// db.response.status_code of a Redis call.
type errType struct {
	name   string
	status bool
}

// Wrappers that only add words to their cause: errorType looks through them.
var fmtWrapType = reflect.TypeOf(fmt.Errorf("%w", errors.New("")))

// sentinels are errors of a connection that are values, not types of their
// own (errors.New), named as Go names them.
var sentinels = []struct {
	err  error
	name string
}{
	{io.EOF, "io.EOF"},
	{io.ErrUnexpectedEOF, "io.ErrUnexpectedEOF"},
	{net.ErrClosed, "net.ErrClosed"},
	{redis.ErrClosed, "redis.ErrClosed"},
	{redis.ErrPoolExhausted, "redis.ErrPoolExhausted"},
	{redis.ErrPoolTimeout, "timeout"},
}

// errorType classifies err into a value of bounded cardinality, never its
// text (see the package documentation), without allocating:
//
//  1. "timeout" for a deadline (context.DeadlineExceeded, an I/O deadline,
//     go-redis's pool timeout); "canceled" for context.Canceled;
//  2. the name of a well-known error value in the chain: "io.EOF",
//     "io.ErrUnexpectedEOF", "net.ErrClosed", "redis.ErrClosed",
//     "redis.ErrPoolExhausted";
//  3. going down the chain, at the first error that has one of these: the
//     value of an ErrorType() string method (the convention of
//     go.opentelemetry.io/otel/semconv's ErrorType); "timeout" for a
//     Timeout() bool method that says so; the code that begins a Redis
//     error reply ("WRONGTYPE");
//  4. else the Go type of the first error in the chain that is not a
//     wrapper made by fmt.Errorf ("*net.OpError").
//
// The chain is followed through Unwrap() error only; an error that joins
// several (errors.Join, fmt.Errorf with two %w) ends it.
func errorType(err error) errType {
	switch {
	case err == nil:
		return errType{}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return errType{name: "timeout"}
	case errors.Is(err, context.Canceled):
		return errType{name: "canceled"}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return errType{name: s.name}
		}
	}
	var first error // the first error that is not a wrapper
	for e := err; e != nil; {
		switch x := e.(type) {
		case interface{ ErrorType() string }:
			if s := x.ErrorType(); s != "" {
				return errType{name: s}
			}
		case interface{ Timeout() bool }:
			if x.Timeout() {
				return errType{name: "timeout"}
			}
		case interface{ RedisError() }:
			if p := redisPrefix(e.Error()); p != "" {
				return errType{name: p, status: true}
			}
		}
		if first == nil {
			if t := reflect.TypeOf(e); t != fmtWrapType {
				first = e
			}
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if first == nil {
		first = err
	}
	return errType{name: reflect.TypeOf(first).String()}
}

// redisPrefix is the error code that begins a Redis error reply ("WRONGTYPE
// Operation against a key…"): its first word when that is 1 to 32
// upper-case letters, digits or underscores, as Redis's codes are; ""
// otherwise (a script's free-form error, say).
func redisPrefix(msg string) string {
	for i := 0; i < len(msg) && i <= 32; i++ {
		switch c := msg[i]; {
		case c == ' ':
			return msg[:i]
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			return ""
		}
	}
	if len(msg) <= 32 && len(msg) > 0 {
		return msg
	}
	return ""
}
