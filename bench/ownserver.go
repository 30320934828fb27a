package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// ownServer is a Redis server that a scenario starts for itself, so that
// it may stop it: never the run's server, which others may share.
type ownServer interface {
	// addr is host:port, the same across stop and start.
	addr() string
	// describe says what the server is, for the report.
	describe() string
	// keepsData reports whether the data survives stop and start.
	keepsData() bool
	// stop stops the server: every connection is dropped and new ones are
	// refused until start.
	stop() error
	// start starts a stopped server on the same address and returns once it
	// answers PING.
	start(ctx context.Context) error
	// close stops the server for good and removes what it left on disk. It
	// is idempotent.
	close() error
}

// errNoRedisServer is why a scenario that must stop a real server is
// skipped: no redis-server binary to start one of its own.
var errNoRedisServer = errors.New("no redis-server binary on PATH")

// newOwnServer starts a server of the scenario's own: a miniredis when the
// run's server is the embedded one, else a redis-server process on a free
// loopback port (with no persistence), as like the run's server as can be.
// Without a redis-server binary it returns an error wrapping
// errNoRedisServer.
func newOwnServer(ctx context.Context, e *env) (ownServer, error) {
	if e.embedded {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("bench: start an embedded Redis of its own: %w", err)
		}
		return &miniServer{m: m}, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("bench: %w (%v)", errNoRedisServer, err)
	}
	dir, err := os.MkdirTemp("", "tiercache-bench-redis-")
	if err != nil {
		return nil, fmt.Errorf("bench: a directory for redis-server: %w", err)
	}
	p := &procServer{bin: bin, dir: dir}
	if p.port, err = freeLoopbackPort(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		_ = p.close()
		return nil, err
	}
	p.version = redisServerVersion(bin)
	return p, nil
}

// miniServer is an embedded miniredis: Close and Restart keep its data and
// its port.
type miniServer struct {
	m *miniredis.Miniredis
}

func (s *miniServer) addr() string     { return s.m.Addr() }
func (s *miniServer) describe() string { return "an embedded miniredis of its own at " + s.m.Addr() }
func (s *miniServer) keepsData() bool  { return true }
func (s *miniServer) stop() error      { s.m.Close(); return nil }
func (s *miniServer) close() error     { s.m.Close(); return nil }
func (s *miniServer) start(ctx context.Context) error {
	if err := s.m.Restart(); err != nil {
		return fmt.Errorf("bench: restart the embedded Redis: %w", err)
	}
	return waitPONG(ctx, s.m.Addr(), 10*time.Second)
}

// procServer is a redis-server process on a loopback port, with no
// persistence: it comes back empty after stop and start.
type procServer struct {
	bin, dir, version string
	port              int

	mu     sync.Mutex
	cmd    *exec.Cmd // guarded by mu: the running process; nil when stopped
	closed bool      // guarded by mu
}

func (p *procServer) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }
func (p *procServer) describe() string {
	v := ""
	if p.version != "" {
		v = " " + p.version
	}
	return "a redis-server" + v + " of its own at " + p.addr() + " (no persistence)"
}
func (p *procServer) keepsData() bool { return false }

func (p *procServer) start(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("bench: own redis-server is closed")
	}
	if p.cmd != nil {
		p.mu.Unlock()
		return nil
	}
	port := strconv.Itoa(p.port)
	cmd := exec.Command(p.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", p.dir, "--logfile", filepath.Join(p.dir, "redis.log"))
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("bench: start redis-server on port %s: %w", port, err)
	}
	p.cmd = cmd
	p.mu.Unlock()
	if err := waitPONG(ctx, p.addr(), 10*time.Second); err != nil {
		return fmt.Errorf("bench: redis-server on port %s (log in %s): %w", port, p.dir, err)
	}
	return nil
}

// stop sends SIGTERM and waits for the process to exit (SIGKILL after 5s).
func (p *procServer) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	cmd := p.cmd
	p.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

func (p *procServer) close() error {
	err := p.stop()
	p.mu.Lock()
	first := !p.closed
	p.closed = true
	p.mu.Unlock()
	if first {
		err = errors.Join(err, os.RemoveAll(p.dir))
	}
	return err
}

// freeLoopbackPort returns a loopback port that nothing listened on a moment
// ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("bench: find a free port: %w", err)
	}
	return port, nil
}

// waitPONG sends PING on a new connection every 5ms until one is answered
// +PONG, for d at most. It uses a bare connection, not a go-redis client,
// whose pool stops dialing for a second after repeated dial errors.
func waitPONG(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		if last = ping(addr); last == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG from %s within %v: %w", addr, d, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// redisServerVersion returns "7.0.15" from `redis-server --version`, or "".
func redisServerVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return ""
}
