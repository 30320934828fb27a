package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Cluster is one test's Redis Cluster.
type Cluster struct {
	// Addrs are the masters' addresses.
	Addrs []string
	// Namespace is unique to the test, as in Server.
	Namespace string
	// Real reports whether the cluster is real: three redis-server masters
	// that this helper started (and stops), with slots spread across them.
	// Otherwise it is one embedded server that answers CLUSTER SLOTS as the
	// owner of every slot.
	Real bool

	t testing.TB
}

// NewCluster returns a cluster for t. With REDIS_ADDR set (the real-server
// suite) it starts three redis-server processes in cluster mode on free
// loopback ports and joins them with redis-cli; a missing binary or a cluster
// that does not form fails the test. Otherwise it uses miniredis.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{Namespace: namespace(t), t: t}
	if os.Getenv(EnvAddr) == "" {
		m := miniredis.RunT(t)
		c.Addrs = []string{m.Addr()}
		return c
	}
	c.Real = true
	dir := t.TempDir()
	for range 3 {
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command("redis-server",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"),
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--logfile", filepath.Join(dir, strconv.Itoa(port)+".log"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("redistest: start redis-server for a cluster: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		c.Addrs = append(c.Addrs, addr)
	}
	for _, addr := range c.Addrs {
		waitPing(t, addr)
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitFormed()
	return c
}

// NewClient returns a cluster client, closed when the test ends.
func (c *Cluster) NewClient() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// waitFormed waits until every node reports cluster_state:ok and agrees on
// the slot map, so the first commands of a test are not redirected.
func (c *Cluster) waitFormed() {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, addr := range c.Addrs {
			cl := redis.NewClient(&redis.Options{Addr: addr})
			info, err := cl.ClusterInfo(context.Background()).Result()
			slots, _ := cl.ClusterSlots(context.Background()).Result()
			_ = cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || len(slots) != len(c.Addrs) {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: cluster %v did not form within 20s", c.Addrs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	deadline := time.Now().Add(10 * time.Second)
	for cl.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redistest: redis-server at %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	t.Fatal("redistest: no free port pair for a cluster node")
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
