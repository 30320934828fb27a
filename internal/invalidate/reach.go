package invalidate

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// Whether the server answers at all. Each connection opens with a PING
// (see link.connect); its outcome says whether the server is reachable,
// whatever happens to the subscription after it (an ACL that refuses
// SUBSCRIBE, a proxy that cuts pub/sub connections: the server answered).

// Unreachable returns the error of the latest opening PING of every
// connection when each failed for the network (refused, reset, timed out,
// closed), and nil otherwise: once one answers, or while one has not been
// tried. Its owner takes it as evidence that Redis is down; the
// Subscriber's attempts to connect again are its probe. It is safe to call
// concurrently.
func (s *Subscriber) Unreachable() error {
	links := s.current()
	var first error
	for _, l := range links {
		p := l.unreachable.Load()
		if p == nil {
			return nil
		}
		if first == nil {
			first = *p
		}
	}
	return first
}

// Answers counts the opening PINGs the server answered: an owner that
// compares two readings knows whether the server answered in between.
func (s *Subscriber) Answers() uint64 { return s.answers.Load() }

// reached records the outcome of the link's opening PING.
func (l *link) reached(err error) {
	switch {
	case err == nil:
		l.unreachable.Store(nil)
		l.s.answers.Add(1)
	case IsNetworkError(err):
		l.unreachable.Store(&err)
	default:
		l.unreachable.Store(nil) // an answer, if not the one hoped for
	}
}

// IsNetworkError reports whether err says that the server could not be
// reached or stopped answering (a dial refused, a connection reset or
// closed, an I/O timeout), rather than that it answered with an error.
func IsNetworkError(err error) bool {
	var ne net.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}
