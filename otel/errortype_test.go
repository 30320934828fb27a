package tiercacheotel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}

type typedErr struct{}

func (typedErr) Error() string     { return "typed" }
func (typedErr) ErrorType() string { return "quota_exceeded" }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "pool timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrorType(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	wrap := func(err error) error { return fmt.Errorf("tiered: get \"k\" in namespace \"ns\": %w", err) }
	for _, c := range []struct {
		err    error
		want   string
		status bool
	}{
		{nil, "", false},
		{context.DeadlineExceeded, "timeout", false},
		{wrap(fmt.Errorf("tiered: get: %w", context.DeadlineExceeded)), "timeout", false},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout", false},
		{timeoutErr{}, "timeout", false},
		{fmt.Errorf("x: %w", context.Canceled), "canceled", false},
		{wrap(dial), "*net.OpError", false},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", dial)), "*net.OpError", false},
		{wrap(redisReply("WRONGTYPE Operation against a key holding the wrong kind of value")), "WRONGTYPE", true},
		{redisReply("READONLY You can't write against a read only replica."), "READONLY", true},
		{redisReply("LOADING"), "LOADING", true},
		// Not a code: a script's free-form error keeps the type.
		{redisReply("user script said no"), "tiercacheotel.redisReply", false},
		{fmt.Errorf("load: %w", typedErr{}), "quota_exceeded", false},
		{errors.New("database down"), "*errors.errorString", false},
		{fmt.Errorf("invalidate: subscription lost: %w", io.EOF), "io.EOF", false},
		{&net.OpError{Op: "read", Err: net.ErrClosed}, "net.ErrClosed", false},
		{wrap(redis.ErrClosed), "redis.ErrClosed", false},
		{redis.ErrPoolTimeout, "timeout", false},
		{errors.Join(errors.New("a"), errors.New("b")), "*errors.joinError", false},
	} {
		got := errorType(c.err)
		if got.name != c.want || got.status != c.status {
			t.Errorf("errorType(%v) = %q (status %v), want %q (%v)", c.err, got.name, got.status, c.want, c.status)
		}
	}
}

func TestErrorTypeAllocatesNothing(t *testing.T) {
	errs := []error{
		fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}),
		fmt.Errorf("x: %w", redisReply("WRONGTYPE x")),
		fmt.Errorf("x: %w", context.DeadlineExceeded),
	}
	for _, err := range errs {
		if n := testing.AllocsPerRun(100, func() { _ = errorType(err) }); n != 0 {
			t.Errorf("errorType(%v) allocates %v times", err, n)
		}
	}
}
