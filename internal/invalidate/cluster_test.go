package invalidate

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// A replica accepts SSUBSCRIBE and hears its master's messages by
// replication, late, while it answers the fence's PINGs at once. A link on
// a replica (from a topology read before a failover, say) must never be
// confirmed: it would prove local hits fresh while the messages that say
// otherwise are still on their way.
func TestLinkOnAReplicaIsNeverConfirmed(t *testing.T) {
	c := redistest.NewRealCluster(t, redistest.ClusterOptions{Replicas: 1})
	replicaOf := map[string]string{}
	for _, m := range c.Masters() {
		replicaOf[m] = c.ReplicaOf(m)
	}
	staleTopology = func(tp topology) topology {
		stale := topology{groups: map[string][]int{}, sharded: tp.sharded}
		for addr, groups := range tp.groups {
			stale.groups[replicaOf[addr]] = groups
		}
		return stale
	}
	t.Cleanup(func() { staleTopology = nil }) // after the Subscriber's Close, registered later
	r := newRecorder()
	opts := r.options(c.Namespace)
	opts.HealthCheck, opts.MaxStaleness = 100*time.Millisecond, 10*time.Millisecond
	sub := start(t, c.NewClient(), opts)

	r.noState(t, 2*time.Second)
	if sub.Ready() || sub.Fresh() {
		t.Fatalf("links on replicas: Ready %v, Fresh %v; want neither", sub.Ready(), sub.Fresh())
	}
	if err := sub.LastError(); err == nil || !strings.Contains(err.Error(), "no longer serves slot") {
		t.Fatalf("LastError = %v; want the node's refusal of its slots", err)
	}
}

// The Subscriber's clients copy the caller's options, Addrs included: go-redis
// appends the nodes it discovers to Addrs in place, and two clients on one
// array race, and write into the caller's.
func TestOwnClientsLeaveTheCallersAddrs(t *testing.T) {
	c := redistest.NewRealCluster(t, redistest.ClusterOptions{})
	addrs := make([]string, 1, 16)
	addrs[0] = c.Addrs[0]
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = client.Close() })
	r := newRecorder()
	start(t, client, r.options(c.Namespace))
	r.nextStateOn(t, Subscribed, c.Namespace)
	if spare := addrs[1:cap(addrs)]; slices.ContainsFunc(spare, func(a string) bool { return a != "" }) {
		t.Fatalf("the Subscriber's clients wrote %q into the caller's Addrs", spare)
	}
}

// writeCounter counts the writes to a connection that carry command.
type writeCounter struct {
	net.Conn
	command []byte
	n       *atomic.Int64
}

func (c writeCounter) Write(b []byte) (int, error) {
	if bytes.Contains(bytes.ToLower(b), c.command) {
		c.n.Add(1)
	}
	return c.Conn.Write(b)
}

// On a Cluster, a Subscriber with Repair starts each namespace's position
// on every group channel (128 logs) from the log's last entry: one
// pipeline per link, not one round trip per group.
func TestRepairStartReadsPipelined(t *testing.T) {
	c := redistest.NewRealCluster(t, redistest.ClusterOptions{})
	writes := new(atomic.Int64)
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: slices.Clone(c.Addrs),
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return writeCounter{Conn: conn, command: []byte("xrevrange"), n: writes}, nil
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	r := newRecorder()
	opts := r.options(c.Namespace)
	opts.Repair = true
	sub := start(t, client, opts)
	r.nextStateOn(t, Subscribed, c.Namespace)
	links := sub.Stats().Connections
	t.Logf("%d links, %d writes of XREVRANGE", links, writes.Load())
	if n := writes.Load(); n > 2*int64(links) {
		t.Errorf("%d links read their logs' last entries in %d writes; want at most 2 each", links, n)
	}
}
