package redistest

import (
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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions configures NewRealCluster. The zero value is three masters
// without replicas, with Redis's own cluster-node-timeout (15s), whose nodes
// dial each other's cluster bus directly.
type ClusterOptions struct {
	// Replicas is the number of replicas of each master: 0 or 1.
	// Default: 0.
	Replicas int

	// NodeTimeout is cluster-node-timeout: how long a node may stay silent
	// before the others flag it failing, and so, with replicas, how soon a
	// crashed master is replaced. Default: 0, Redis's own (15s). Otherwise
	// at least 100ms, the period of the cluster's cron.
	NodeTimeout time.Duration

	// BusProxies puts a Proxy in front of every node's cluster bus port and
	// makes the node announce the proxy's port (cluster-announce-bus-port),
	// so that every bus connection passes through the proxy of the node it
	// dials; SetBusDelay and StallBus act on them. Default: false.
	BusProxies bool
}

func (o ClusterOptions) validate() error {
	var errs []error
	if o.Replicas < 0 || o.Replicas > 1 {
		errs = append(errs, fmt.Errorf("redistest: ClusterOptions.Replicas must be 0 or 1, got %d", o.Replicas))
	}
	if o.NodeTimeout != 0 && o.NodeTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("redistest: ClusterOptions.NodeTimeout must be 0 or at least 100ms, got %v", o.NodeTimeout))
	}
	return errors.Join(errs...)
}

// clusterMasters is the number of masters of a real cluster.
const clusterMasters = 3

// formTimeout bounds how long a cluster may take to form.
const formTimeout = 20 * time.Second

// clusterNode is one redis-server process of a real cluster.
type clusterNode struct {
	addr string
	port int
	bus  *Proxy // in front of the bus port, with BusProxies; nil otherwise

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu: the running process; nil once killed
}

// kill kills the process, if it runs, and waits for it to exit.
func (n *clusterNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		stopRedis(n.cmd)
		n.cmd = nil
	}
}

func (n *clusterNode) alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// busPort is the bus port the node announces: its proxy's, or its own.
func (n *clusterNode) busPort() int {
	if n.bus == nil {
		return n.port + 10000
	}
	_, p, _ := net.SplitHostPort(n.bus.Addr())
	port, _ := strconv.Atoi(p)
	return port
}

// NewRealCluster starts a Redis Cluster that t owns, whatever the suite:
// three masters with opts.Replicas replicas each, redis-server processes on
// free loopback ports that keep nothing on disk and log to t.TempDir(). It
// returns once every node agrees on the slot map and on who replicates
// whom, and every replica is in sync; the processes stop when the test ends.
// Invalid options and a cluster that does not form fail the test; so does a
// missing binary in the real-server suite (REDIS_ADDR set), which otherwise
// skips the test, as NewReal does.
func NewRealCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if err := opts.validate(); err != nil {
		t.Fatal(err)
		return nil
	}
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv(EnvAddr) == "" {
		t.Skipf("redistest: no redis-server to start: %v", err)
	}
	c := &Cluster{Namespace: namespace(t), Real: true, t: t, opts: opts, admins: make(map[string]*redis.Client)}
	t.Cleanup(c.closeAdmins) // runs after the nodes' cleanups: registered first
	if !c.startNodes() || !c.join() {
		return nil
	}
	for _, n := range c.nodes[:clusterMasters] {
		c.Addrs = append(c.Addrs, n.addr)
	}
	return c
}

// startNodes starts every process and, with BusProxies, the proxies in front
// of their bus ports (once every port is bound, so that a proxy's port is
// never one a node is about to take).
func (c *Cluster) startNodes() bool {
	t := c.t
	t.Helper()
	dir := t.TempDir()
	taken := make(map[int]bool)
	for range clusterMasters * (1 + c.opts.Replicas) {
		port := freePort(t)
		for port != 0 && (taken[port] || taken[port+10000] || taken[port-10000]) {
			port = freePort(t)
		}
		if port == 0 {
			return false
		}
		taken[port] = true
		args := []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"),
			"--repl-diskless-sync-delay", "0", // a replica syncs at once
		}
		if c.opts.NodeTimeout > 0 {
			args = append(args, "--cluster-node-timeout", strconv.FormatInt(c.opts.NodeTimeout.Milliseconds(), 10))
		}
		cmd := startRedis(t, dir, port, args...)
		if cmd == nil {
			return false
		}
		n := &clusterNode{addr: "127.0.0.1:" + strconv.Itoa(port), port: port, cmd: cmd}
		t.Cleanup(n.kill)
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		if !waitPing(t, n.addr) {
			return false
		}
		if c.opts.BusProxies {
			n.bus = NewProxy(t, "127.0.0.1:"+strconv.Itoa(n.port+10000))
			if !c.must(n.addr, "CONFIG", "SET", "cluster-announce-bus-port", n.busPort()) {
				return false
			}
		}
	}
	return true
}

// join forms the cluster: distinct config epochs, slots spread evenly over
// the masters, every node met, each replica attached to its master. Then it
// waits until every node agrees.
func (c *Cluster) join() bool {
	c.t.Helper()
	ctx := context.Background()
	ids := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		id, err := c.admin(n.addr).Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			c.t.Fatalf("redistest: CLUSTER MYID on %s: %v", n.addr, err)
			return false
		}
		ids[i] = id
		if !c.must(n.addr, "CLUSTER", "SET-CONFIG-EPOCH", i+1) {
			return false
		}
	}
	for i, n := range c.nodes[:clusterMasters] {
		lo, hi := i*slotCount/clusterMasters, (i+1)*slotCount/clusterMasters-1
		if !c.must(n.addr, "CLUSTER", "ADDSLOTSRANGE", lo, hi) {
			return false
		}
	}
	for _, n := range c.nodes[1:] {
		if !c.must(c.nodes[0].addr, "CLUSTER", "MEET", "127.0.0.1", n.port, n.busPort()) {
			return false
		}
	}
	deadline := time.Now().Add(formTimeout)
	for i, n := range c.nodes[clusterMasters:] {
		master := ids[i%clusterMasters]
		// The replica must have heard of its master (by gossip) first.
		for {
			err := c.admin(n.addr).Do(ctx, "CLUSTER", "REPLICATE", master).Err()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("redistest: CLUSTER REPLICATE %s on %s: %v", master, n.addr, err)
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return c.waitTopology("form", deadline, func(v view) error { return v.complete(c.opts.Replicas) })
}

// must runs a command on the node at addr, failing the test if it fails.
func (c *Cluster) must(addr string, args ...any) bool {
	c.t.Helper()
	if err := c.admin(addr).Do(context.Background(), args...).Err(); err != nil {
		c.t.Fatalf("redistest: %s on %s: %v", strings.TrimSpace(fmt.Sprintln(args...)), addr, err)
		return false
	}
	return true
}

// admin returns the helper's own client of the node at addr: one connection
// at most, no retries, short timeouts (a node may be dead).
func (c *Cluster) admin(addr string) *redis.Client {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	cl, ok := c.admins[addr]
	if !ok {
		cl = redis.NewClient(&redis.Options{
			Addr: addr, MaxRetries: -1, PoolSize: 1,
			DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		})
		c.admins[addr] = cl
	}
	return cl
}

func (c *Cluster) closeAdmins() {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	for _, cl := range c.admins {
		_ = cl.Close() // a later admin call gets the closed client, and an error
	}
}

// node returns the node at addr, or nil.
func (c *Cluster) node(addr string) *clusterNode {
	for _, n := range c.nodes {
		if n.addr == addr {
			return n
		}
	}
	return nil
}
