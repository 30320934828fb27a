package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// busProxies returns the proxies in front of the nodes' bus ports, failing
// the test (and returning nil) if the cluster has none.
func (c *Cluster) busProxies(op string) []*Proxy {
	c.t.Helper()
	if !c.Real || !c.opts.BusProxies {
		c.t.Fatalf("redistest: %s needs a real cluster with ClusterOptions.BusProxies (set REDIS_ADDR)", op)
		return nil
	}
	ps := make([]*Proxy, len(c.nodes))
	for i, n := range c.nodes {
		ps[i] = n.bus
	}
	return ps
}

// SetBusDelay delays every byte on the cluster bus by d from now on, in both
// directions of every bus connection, keeping their order (see
// Proxy.SetDelay): a message from one node reaches another d after it was
// sent, at least. 0 ends the delay. It needs ClusterOptions.BusProxies.
func (c *Cluster) SetBusDelay(d time.Duration) {
	c.t.Helper()
	for _, p := range c.busProxies("SetBusDelay") {
		p.SetDelay(d)
	}
}

// StallBus(true) stops every bus connection from draining (see Proxy.Stall)
// until StallBus(false): the nodes' messages to each other pile up in their
// socket buffers, then in the nodes' own link buffers. Keep a stall well
// under cluster-node-timeout, or the nodes flag each other failing. It
// needs ClusterOptions.BusProxies.
func (c *Cluster) StallBus(on bool) {
	c.t.Helper()
	for _, p := range c.busProxies("StallBus") {
		p.Stall(on)
	}
}

// PublishLag returns how long a classic PUBLISH sent to the node at from
// takes to reach a subscriber on the node at to, over the cluster bus: from
// just before the PUBLISH is sent to the message's arrival. It fails the
// test if the message does not arrive within 10s.
func (c *Cluster) PublishLag(from, to string) time.Duration {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	channel := c.Namespace + "-lag-" + hex.EncodeToString(rnd[:])
	sub := redis.NewClient(&redis.Options{Addr: to, MaxRetries: -1})
	defer sub.Close()
	ps := sub.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		c.t.Fatalf("redistest: SUBSCRIBE on %s: %v", to, err)
		return 0
	}
	start := time.Now()
	if err := c.admin(from).Publish(ctx, channel, "lag").Err(); err != nil {
		c.t.Fatalf("redistest: PUBLISH on %s: %v", from, err)
		return 0
	}
	if _, err := ps.ReceiveMessage(ctx); err != nil {
		c.t.Fatalf("redistest: a message published on %s did not reach %s: %v", from, to, err)
		return 0
	}
	return time.Since(start)
}
