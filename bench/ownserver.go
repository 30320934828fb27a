package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// OwnServer is a Redis server that a scenario starts for itself, so that
// it may stop it: never the run's server, which others may share.
type OwnServer interface {
	// Addr is host:port, the same across Stop and Start.
	Addr() string
	// Describe says what the server is, for the report.
	Describe() string
	// KeepsData reports whether the data survives Stop and Start.
	KeepsData() bool
	// Stop stops the server: every connection is dropped and new ones are
	// refused until Start.
	Stop() error
	// Start starts a stopped server on the same address and returns once it
	// answers PING.
	Start(ctx context.Context) error
	// Close stops the server for good and removes what it left on disk. It
	// is idempotent.
	Close() error
}

// errNoRedisServer is why a scenario that must stop a real server is
// skipped: no redis-server binary to start one of its own.
var errNoRedisServer = errors.New("no redis-server binary on PATH")

// NewOwnServer starts a server of the scenario's own: a miniredis when the
// run's server is the embedded one, else a redis-server process on a free
// loopback port (with no persistence), as like the run's server as can be.
// Without a redis-server binary it returns an error wrapping
// errNoRedisServer.
func NewOwnServer(ctx context.Context, e *Env) (OwnServer, error) {
	if e.Embedded {
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
	if err := p.Start(ctx); err != nil {
		_ = p.Close()
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

func (s *miniServer) Addr() string     { return s.m.Addr() }
func (s *miniServer) Describe() string { return "an embedded miniredis of its own at " + s.m.Addr() }
func (s *miniServer) KeepsData() bool  { return true }
func (s *miniServer) Stop() error      { s.m.Close(); return nil }
func (s *miniServer) Close() error     { s.m.Close(); return nil }
func (s *miniServer) Start(ctx context.Context) error {
	if err := s.m.Restart(); err != nil {
		return fmt.Errorf("bench: restart the embedded Redis: %w", err)
	}
	return waitPONG(ctx, s.m.Addr(), 10*time.Second)
}

// procServer is a redis-server process on a loopback port, with no
// persistence: it comes back empty after Stop and Start.
type procServer struct {
	bin, dir, version string
	port              int

	mu     sync.Mutex
	cmd    *exec.Cmd // guarded by mu: the running process; nil when stopped
	closed bool      // guarded by mu
}

func (p *procServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }
func (p *procServer) Describe() string {
	v := ""
	if p.version != "" {
		v = " " + p.version
	}
	return "a redis-server" + v + " of its own at " + p.Addr() + " (no persistence)"
}
func (p *procServer) KeepsData() bool { return false }

func (p *procServer) Start(ctx context.Context) error {
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
	if err := waitPONG(ctx, p.Addr(), 10*time.Second); err != nil {
		return fmt.Errorf("bench: redis-server on port %s (log in %s): %w", port, p.dir, err)
	}
	return nil
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 5s).
func (p *procServer) Stop() error {
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

func (p *procServer) Close() error {
	err := p.Stop()
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

// goRedisLog is go-redis's logger in the bench (main installs it): go-redis
// logs every failed dial, which a scenario that stops its own server on
// purpose would print by the thousand. While quiet is above 0 those lines
// are dropped (and counted); every other line goes to stderr as go-redis
// would print it.
var goRedisLog = &quietDialLog{out: log.New(os.Stderr, "redis: ", log.LstdFlags)}

type quietDialLog struct {
	out     *log.Logger
	quiet   atomic.Int32
	dropped atomic.Int64
}

func (l *quietDialLog) Printf(_ context.Context, format string, v ...any) {
	if l.quiet.Load() > 0 && strings.Contains(format, "failed to dial") {
		l.dropped.Add(1)
		return
	}
	l.out.Printf(format, v...)
}

// installGoRedisLog makes goRedisLog go-redis's logger.
func installGoRedisLog() { redis.SetLogger(goRedisLog) }
