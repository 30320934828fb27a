package redistest

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// mayBreak reports whether the test owns the server, and fails the test
// (reporting false) if it does not: a test must never pause, reconfigure,
// restart or kill the clients of a server that others are using.
func (s *Server) mayBreak(op string) bool {
	s.t.Helper()
	if s.owned {
		return true
	}
	s.t.Fatalf("redistest: %s on %s, a server this test does not own: "+
		"only a server the test started may be broken (use NewOwn)", op, s.Addr)
	return false
}

// Pause runs CLIENT PAUSE for d on a real server the test owns: mode "WRITE"
// holds back commands that may write (scripts included) and "ALL" holds back
// every command, until d has passed. It returns at once, while the pause
// lasts. It fails the test on a server the test does not own, and on the
// embedded server, which cannot pause.
func (s *Server) Pause(mode string, d time.Duration) {
	s.t.Helper()
	if !s.mayBreak("Pause") {
		return
	}
	if s.Mini != nil {
		s.t.Fatal("redistest: the embedded server cannot pause clients (set REDIS_ADDR)")
		return
	}
	if mode != "WRITE" && mode != "ALL" {
		s.t.Fatalf(`redistest: Pause mode must be "WRITE" or "ALL", got %q`, mode)
		return
	}
	if d < time.Millisecond {
		s.t.Fatalf("redistest: Pause for %v: must be at least 1ms", d)
		return
	}
	ms := strconv.FormatInt(d.Milliseconds(), 10)
	if err := s.Client.Do(context.Background(), "CLIENT", "PAUSE", ms, mode).Err(); err != nil {
		s.t.Fatalf("redistest: CLIENT PAUSE %s %s: %v", ms, mode, err)
	}
}

// ConfigSet runs CONFIG SET param value on a real server the test owns. It
// fails the test on a server the test does not own, and on the embedded
// server, which has no CONFIG SET. A Restart brings back the defaults.
func (s *Server) ConfigSet(param, value string) {
	s.t.Helper()
	if !s.mayBreak("ConfigSet") {
		return
	}
	if s.Mini != nil {
		s.t.Fatal("redistest: the embedded server has no CONFIG SET (set REDIS_ADDR)")
		return
	}
	if err := s.Client.ConfigSet(context.Background(), param, value).Err(); err != nil {
		s.t.Fatalf("redistest: CONFIG SET %s %q: %v", param, value, err)
	}
}

// KillPubSub drops the pub/sub connections of the clients named name (every
// pub/sub connection when name is ""), and fails the test if there was none.
// On the embedded server, which cannot kill one client, it drops every
// connection by restarting the server (its data is kept). It fails the test
// on a server the test does not own.
func (s *Server) KillPubSub(name string) {
	s.t.Helper()
	if n, ok := s.killPubSub("KillPubSub", name); ok && n == 0 {
		if name == "" {
			s.t.Fatal("redistest: no pub/sub connection to kill")
			return
		}
		s.t.Fatalf("redistest: no pub/sub connection named %q", name)
	}
}

// KillPubSubIfAny is KillPubSub that finding nothing to kill does not fail:
// it returns how many connections it dropped (on the embedded server, how
// many connections of any kind it had).
func (s *Server) KillPubSubIfAny(name string) int {
	s.t.Helper()
	n, _ := s.killPubSub("KillPubSubIfAny", name)
	return n
}

// killPubSub kills the pub/sub connections named name (all when name is
// empty) and returns how many; ok is false if it failed the test.
func (s *Server) killPubSub(op, name string) (n int, ok bool) {
	s.t.Helper()
	if !s.mayBreak(op) {
		return 0, false
	}
	if s.Mini != nil {
		n := s.Mini.CurrentConnectionCount()
		s.Mini.Close()
		if err := s.Mini.Restart(); err != nil {
			s.t.Fatalf("redistest: restart embedded server: %v", err)
			return 0, false
		}
		return n, true
	}
	ctx := context.Background()
	list, err := s.Client.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		s.t.Fatalf("redistest: CLIENT LIST: %v", err)
		return 0, false
	}
	for _, id := range clientIDs(list, name) {
		err := s.Client.Do(ctx, "CLIENT", "KILL", "ID", id).Err()
		switch {
		case err == nil:
			n++
		case strings.Contains(err.Error(), "No such client"):
			// It went away between the listing and the kill.
		default:
			s.t.Fatalf("redistest: CLIENT KILL ID %s: %v", id, err)
			return n, false
		}
	}
	return n, true
}
