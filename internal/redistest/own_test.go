package redistest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// needReal skips a test of something only a real server does.
func needReal(t *testing.T, s *Server) {
	t.Helper()
	if !s.Real() {
		t.Skipf("needs a real server (set %s): the embedded one cannot do this", EnvAddr)
	}
}

func TestNewOwnStartsItsOwnServer(t *testing.T) {
	s := NewOwn(t)
	if !s.Owned() {
		t.Fatal("NewOwn returned a server it does not own")
	}
	if err := s.Client.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	shared := os.Getenv(EnvAddr)
	if shared == "" {
		if s.Mini == nil {
			t.Fatal("NewOwn without REDIS_ADDR did not return the embedded server")
		}
		return
	}
	if !s.Real() || s.Addr == shared {
		t.Fatalf("NewOwn returned %s (real: %v), want a redis-server of its own, not %s", s.Addr, s.Real(), shared)
	}
	if _, err := os.Stat(filepath.Join(s.proc.dir, strings.TrimPrefix(s.Addr, "127.0.0.1:")+".log")); err != nil {
		t.Fatalf("no log of the owned server: %v", err)
	}
}

func TestSharedServerIsNotOwned(t *testing.T) {
	s := New(t)
	if want := !s.Real(); s.Owned() != want { // only the embedded one is the test's own
		t.Fatalf("New(t).Owned() = %v with %s=%q, want %v", s.Owned(), EnvAddr, os.Getenv(EnvAddr), want)
	}
}

// TestGuardRefusesSharedServer calls every method that breaks a server on a
// Server the test does not own. The server it names does not exist (nothing
// listens on port 1), so a broken guard would harm nothing; the hook shows
// that no command was even sent.
func TestGuardRefusesSharedServer(t *testing.T) {
	r := &fatalRecorder{T: t}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer client.Close()
	var sent RoundTrips
	client.AddHook(&sent)
	s := &Server{Addr: "127.0.0.1:1", Namespace: namespace(t), Client: client, t: r}

	for name, op := range map[string]func(){
		"Restart":         s.Restart,
		"Pause":           func() { s.Pause("ALL", time.Second) },
		"ConfigSet":       func() { s.ConfigSet("maxmemory", "1mb") },
		"KillPubSub":      func() { s.KillPubSub("") },
		"KillPubSubIfAny": func() { s.KillPubSubIfAny("x") },
	} {
		r.failed = ""
		op()
		if !strings.Contains(r.failed, "does not own") {
			t.Errorf("%s on a server the test does not own: failure %q, want a refusal", name, r.failed)
		}
	}
	if n := sent.Count(); n != 0 {
		t.Fatalf("%d command(s) sent to a server the test does not own", n)
	}
}

func TestNewOwnWithoutBinaryFails(t *testing.T) {
	t.Setenv(EnvAddr, "127.0.0.1:1")
	t.Setenv("PATH", t.TempDir()) // no redis-server on it
	r := &fatalRecorder{T: t}
	if s := NewOwn(r); s != nil || !strings.Contains(r.failed, "start redis-server") {
		t.Fatalf("NewOwn without a redis-server binary returned %v and failed with %q; want a failure", s, r.failed)
	}
}

func TestRestartKeepsAnswering(t *testing.T) {
	ctx := context.Background()
	s := NewOwn(t)
	addr := s.Addr
	c := s.NewClient("")
	for i := range 3 {
		if err := c.Set(ctx, s.Namespace+":k", "v", 0).Err(); err != nil {
			t.Fatalf("before restart %d: %v", i, err)
		}
		s.Restart()
		if s.Addr != addr {
			t.Fatalf("restart %d moved the server from %s to %s", i, addr, s.Addr)
		}
		// The client's pooled connection died with the server; it must
		// reconnect by itself.
		n, err := c.Exists(ctx, s.Namespace+":k").Result()
		if err != nil {
			t.Fatalf("after restart %d: %v", i, err)
		}
		if want := int64(0); s.Real() && n != want {
			t.Fatalf("after restart %d the real server still holds the key (EXISTS = %d)", i, n)
		}
	}
}

func TestPauseReallyPauses(t *testing.T) {
	ctx := context.Background()
	s := NewOwn(t)
	needReal(t, s)
	probe := s.NewClient("")
	if err := probe.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const d = 300 * time.Millisecond

	start := time.Now()
	s.Pause("WRITE", d)
	if err := probe.Get(ctx, s.Namespace+":k").Err(); err != redis.Nil {
		t.Fatalf("GET during PAUSE WRITE: %v", err)
	}
	if el := time.Since(start); el > d/2 {
		t.Fatalf("a read took %v during PAUSE WRITE; reads should pass", el)
	}
	if err := probe.Set(ctx, s.Namespace+":k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d-50*time.Millisecond {
		t.Fatalf("a write returned %v into a %v PAUSE WRITE", el, d)
	}

	start = time.Now()
	s.Pause("ALL", d)
	if err := probe.Get(ctx, s.Namespace+":k").Err(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d-50*time.Millisecond {
		t.Fatalf("a read returned %v into a %v PAUSE ALL", el, d)
	}

	r := &fatalRecorder{T: t}
	s.t = r
	s.Pause("READ", d)
	s.t = t
	if !strings.Contains(r.failed, "mode") {
		t.Fatalf("Pause with a bad mode: failure %q", r.failed)
	}
}

func TestConfigSet(t *testing.T) {
	ctx := context.Background()
	s := NewOwn(t)
	needReal(t, s)
	const param = "client-output-buffer-limit"
	s.ConfigSet(param, "pubsub 1kb 512b 1")
	got := s.Client.ConfigGet(ctx, param).Val()[param]
	if !strings.Contains(got, "pubsub 1024 512 1") {
		t.Fatalf("CONFIG GET %s = %q after ConfigSet", param, got)
	}
	s.Restart()
	if got := s.Client.ConfigGet(ctx, param).Val()[param]; strings.Contains(got, "pubsub 1024 512 1") {
		t.Fatalf("CONFIG GET %s = %q after a restart, want the default back", param, got)
	}
}

func TestKillPubSub(t *testing.T) {
	ctx := context.Background()
	s := NewOwn(t)
	victim, bystander := s.NewClient(s.Namespace+"-victim"), s.NewClient(s.Namespace+"-bystander")
	subscribe := func(c *redis.Client) *redis.PubSub {
		ps := c.Subscribe(ctx, s.Namespace)
		t.Cleanup(func() { _ = ps.Close() })
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		return ps
	}
	psVictim, psBystander := subscribe(victim), subscribe(bystander)

	s.KillPubSub(s.Namespace + "-victim")
	if _, err := psVictim.Receive(ctx); err == nil {
		t.Fatal("the killed subscription still receives")
	}
	if !s.Real() {
		return // the embedded server dropped every connection
	}
	if err := s.Client.Publish(ctx, s.Namespace, "hi").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := psBystander.ReceiveMessage(ctx); err != nil || m.Payload != "hi" {
		t.Fatalf("the other subscription: %v, %v; it should not have been killed", m, err)
	}
	if n := s.KillPubSubIfAny(s.Namespace + "-nobody"); n != 0 {
		t.Fatalf("KillPubSubIfAny of an unknown name killed %d", n)
	}
	r := &fatalRecorder{T: t}
	s.t = r
	s.KillPubSub(s.Namespace + "-nobody")
	s.t = t
	if !strings.Contains(r.failed, "no pub/sub connection") {
		t.Fatalf("KillPubSub of an unknown name: failure %q", r.failed)
	}
	// The bystander's at least; go-redis may have resubscribed the victim.
	if n := s.KillPubSubIfAny(""); n < 1 {
		t.Fatalf(`KillPubSubIfAny("") killed %d, want every pub/sub connection`, n)
	}
	if _, err := psBystander.Receive(ctx); err == nil {
		t.Fatal(`the bystander's subscription survived KillPubSubIfAny("")`)
	}
}
