package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Cluster is one test's Redis Cluster.
type Cluster struct {
	// Addrs are the masters' addresses when the cluster formed (a failover
	// changes which nodes are masters: see Masters).
	Addrs []string
	// Namespace is unique to the test, as in Server.
	Namespace string
	// Real reports whether the cluster is real: redis-server processes that
	// this helper started (and stops), with slots spread across three
	// masters. Otherwise it is one embedded server that answers CLUSTER
	// SLOTS as the owner of every slot.
	Real bool

	t     testing.TB
	opts  ClusterOptions
	nodes []*clusterNode // every node, masters first; nil on the embedded server

	adminMu sync.Mutex
	admins  map[string]*redis.Client // guarded by adminMu: one admin client per node
}

// NewCluster returns a cluster for t. With REDIS_ADDR set (the real-server
// suite) it is NewRealCluster's with the default options: three masters of
// redis-server processes on free loopback ports; a missing binary or a
// cluster that does not form fails the test. Otherwise it uses miniredis.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(EnvAddr) == "" {
		m := miniredis.RunT(t)
		c := &Cluster{Addrs: []string{m.Addr()}, Namespace: namespace(t), t: t, admins: make(map[string]*redis.Client)}
		t.Cleanup(c.closeAdmins)
		return c
	}
	return NewRealCluster(t, ClusterOptions{})
}

// NewClient returns a cluster client, closed when the test ends. On the
// embedded server, which runs every node's scripts in one process (slowly
// under -race on a loaded machine), it waits 10s for a reply, not 3s.
func (c *Cluster) NewClient() *redis.ClusterClient {
	opts := &redis.ClusterOptions{Addrs: slices.Clone(c.Addrs)} // go-redis appends to Addrs in place
	if !c.Real {
		opts.ReadTimeout = 10 * time.Second
	}
	cc := redis.NewClusterClient(opts)
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Kill kills the node at addr (a master or a replica) with SIGKILL, as a
// node that crashed, and waits for its process to exit. A master's slots
// fail over to its replica, if it has one, after cluster-node-timeout
// (CrashFailover waits for that); without one, the commands for them fail,
// and the other masters go on answering for theirs until the cluster marks
// itself down, after cluster-node-timeout. It fails the test on the
// embedded server, which cannot lose one node.
func (c *Cluster) Kill(addr string) {
	c.t.Helper()
	if !c.Real {
		c.t.Fatal("redistest: the embedded cluster is one server and cannot lose a node (set REDIS_ADDR)")
		return
	}
	if n := c.node(addr); n != nil {
		n.kill()
		return
	}
	c.t.Fatalf("redistest: Kill(%q): not a node of the cluster %v", addr, c.Addrs)
}

// startRedis starts a redis-server on 127.0.0.1:port that keeps nothing on
// disk (no RDB, no AOF), logs to dir/<port>.log and dies with the test
// process, with args appended to its command line. It does not wait for the
// server to answer (see waitPing). A binary that does not start fails t, and
// startRedis then returns nil.
func startRedis(t testing.TB, dir string, port int, args ...string) *exec.Cmd {
	t.Helper()
	p := strconv.Itoa(port)
	cmd := exec.Command("redis-server", append([]string{
		"--port", p, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, p+".log"),
	}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start redis-server on port %d: %v", port, err)
		return nil
	}
	return cmd
}

// stopRedis kills a server that startRedis started and waits for it to exit.
func stopRedis(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// waitPing waits up to 10s for the server at addr to answer PING. If it does
// not, it fails t and reports false.
func waitPing(t testing.TB, addr string) bool {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	deadline := time.Now().Add(10 * time.Second)
	for cl.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redistest: redis-server at %s did not start", addr)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// freePort returns a loopback port that is free, and whose cluster bus port
// (port + 10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(20000)
		if portFree(port) && portFree(port+10000) {
			return port
		}
	}
	t.Fatal("redistest: no free loopback port (and cluster bus port) for a redis-server")
	return 0
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// ClosedAddr returns a loopback address on which nothing listens, for a
// client of a server that is down or was never there.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
