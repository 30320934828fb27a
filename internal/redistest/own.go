package redistest

import (
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// ownProcess is the redis-server that NewOwn started.
type ownProcess struct {
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu: the running process; nil once stopped
}

// NewOwn returns a server that t owns, so that t may break it (see Restart,
// Pause, KillPubSub, ConfigSet). With REDIS_ADDR set (the real-server suite)
// it is NewReal's; otherwise it is the embedded server, exactly as New
// returns.
func NewOwn(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(EnvAddr) == "" {
		return New(t)
	}
	return NewReal(t)
}

// NewReal starts a redis-server that t owns on a free loopback port, with no
// persistence and its log in t.TempDir(), waits until it answers PING, and
// stops it when the test ends. For tests that need a real server whatever
// the suite (CLIENT PAUSE, which the embedded server lacks). Without the
// binary it fails the test in the real-server suite (REDIS_ADDR set), and
// skips it otherwise.
func NewReal(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv(EnvAddr) == "" {
		t.Skipf("redistest: no redis-server to start: %v", err)
	}
	dir := t.TempDir()
	port := freePort(t)
	if port == 0 {
		return nil
	}
	cmd := startRedis(t, dir, port)
	if cmd == nil {
		return nil
	}
	p := &ownProcess{dir: dir, port: port, cmd: cmd}
	t.Cleanup(p.stop)
	s := &Server{
		Addr:      "127.0.0.1:" + strconv.Itoa(port),
		Namespace: namespace(t),
		t:         t,
		owned:     true,
		proc:      p,
	}
	if !waitPing(t, s.Addr) {
		return nil
	}
	s.Client = s.NewClient("")
	return s
}

// stop kills the process, if it runs, and waits for it.
func (p *ownProcess) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		stopRedis(p.cmd)
		p.cmd = nil
	}
}

// Restart stops the server and starts it again on the same address, and
// returns once it answers PING. Every connection is dropped. A redis-server
// loses its data (it keeps nothing on disk); the embedded server keeps it.
// Clients reconnect by themselves. Restart fails the test on a server the
// test does not own. Call it from the test's goroutine.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Stop stops the server, dropping every connection, until Start; meanwhile
// clients fail to connect. It fails the test on a server the test does not
// own. Call it from the test's goroutine.
func (s *Server) Stop() {
	s.t.Helper()
	if !s.mayBreak("Stop") {
		return
	}
	if s.Mini != nil {
		s.Mini.Close()
		return
	}
	s.proc.stop()
}

// Start starts a server that Stop stopped, on the same address, and returns
// once it answers PING. A redis-server comes back empty; the embedded server
// keeps its data. Call it from the test's goroutine.
func (s *Server) Start() {
	s.t.Helper()
	if !s.mayBreak("Start") {
		return
	}
	if s.Mini != nil {
		if err := s.Mini.Restart(); err != nil {
			s.t.Fatalf("redistest: restart embedded server: %v", err)
		}
		return
	}
	p := s.proc
	cmd := startRedis(s.t, p.dir, p.port)
	if cmd == nil {
		return
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	waitPing(s.t, s.Addr)
}
