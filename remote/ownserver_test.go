package remote_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// ownServer is a redis-server process that one test starts and stops, for
// the server-wide commands (CLIENT PAUSE) that must never reach the shared
// server at REDIS_ADDR.
type ownServer struct {
	Addr string
	t    testing.TB
}

// startOwnServer starts redis-server on a free loopback port, killed when
// the test ends, and with the test binary if it dies (Pdeathsig), as
// internal/redistest does for its clusters. Without the binary the test
// fails in the real-server suite (REDIS_ADDR set) and is skipped otherwise.
func startOwnServer(t testing.TB) *ownServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(redistest.EnvAddr) != "" {
			t.Fatalf("redis-server not found: %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s := &ownServer{Addr: "127.0.0.1:" + strconv.Itoa(port), t: t}
	probe := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer probe.Close()
	deadline := time.Now().Add(10 * time.Second)
	for probe.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s did not start", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Client returns a client of the server, closed when the test ends; mod may
// change its options.
func (s *ownServer) Client(mod func(*redis.Options)) *redis.Client {
	opts := &redis.Options{Addr: s.Addr}
	if mod != nil {
		mod(opts)
	}
	c := redis.NewClient(opts)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Pause sends CLIENT PAUSE ms mode ("ALL" or "WRITE") from a client of its
// own and returns once the server has accepted it.
func (s *ownServer) Pause(d time.Duration, mode string) {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	if err := c.Do(context.Background(), "client", "pause", d.Milliseconds(), mode).Err(); err != nil {
		s.t.Fatalf("CLIENT PAUSE %d %s: %v", d.Milliseconds(), mode, err)
	}
}

func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
