package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// Slot returns the hash slot of a Redis key, as CLUSTER KEYSLOT does: the
// CRC16 (XMODEM) of the key, or of its hash tag (what lies between its
// first "{" and the next "}", if not empty), modulo 16384.
func Slot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slotCount
}

// currentView returns the cluster as the first live node that answers sees
// it; the embedded cluster is one master that serves every slot.
func (c *Cluster) currentView() view {
	c.t.Helper()
	if !c.Real {
		return view{{id: "embedded", addr: c.Addrs[0], master: true, slots: [][2]int{{0, slotCount - 1}}}}
	}
	var lastErr error
	for _, n := range c.nodes {
		if !n.alive() {
			continue
		}
		text, err := c.admin(n.addr).ClusterNodes(context.Background()).Result()
		if err == nil {
			var v view
			if v, err = parseNodes(text); err == nil {
				return v
			}
		}
		lastErr = err
	}
	c.t.Fatalf("redistest: no node of the cluster answers CLUSTER NODES: %v", lastErr)
	return nil
}

// Masters returns the addresses of the masters that serve slots now, in the
// order of their slots.
func (c *Cluster) Masters() []string {
	c.t.Helper()
	var addrs []string
	for _, m := range c.currentView().masters() {
		addrs = append(addrs, m.addr)
	}
	return addrs
}

// Replicas returns the addresses of the replicas now, not flagged failing,
// in the order of their masters' slots.
func (c *Cluster) Replicas() []string {
	c.t.Helper()
	v := c.currentView()
	var addrs []string
	for _, m := range v.masters() {
		addrs = append(addrs, v.replicasOf(m.id)...)
	}
	return addrs
}

// ReplicaOf returns the address of a replica of the master at addr, or ""
// if it has none.
func (c *Cluster) ReplicaOf(master string) string {
	c.t.Helper()
	v := c.currentView()
	if m := v.byAddr(master); m != nil {
		if rs := v.replicasOf(m.id); len(rs) > 0 {
			return rs[0]
		}
	}
	return ""
}

// MasterOf returns the address of the master that serves the Redis key now
// (for a tiered cache, the key is Namespace + ":" + its key).
func (c *Cluster) MasterOf(key string) string {
	c.t.Helper()
	if m := c.currentView().owner(Slot(key)); m != nil {
		return m.addr
	}
	c.t.Fatalf("redistest: no master serves slot %d (key %q)", Slot(key), key)
	return ""
}

// KeysOn returns n keys "k<i>", with i counting from 0, such that prefix
// followed by the key is a Redis key the master at addr serves now. For a
// tiered cache, prefix is its Namespace + ":".
func (c *Cluster) KeysOn(master, prefix string, n int) []string {
	c.t.Helper()
	m := c.currentView().byAddr(master)
	if m == nil || !m.master || len(m.slots) == 0 {
		c.t.Fatalf("redistest: KeysOn(%q): not a master that serves slots", master)
		return nil
	}
	serves := func(slot int) bool {
		for _, r := range m.slots {
			if slot >= r[0] && slot <= r[1] {
				return true
			}
		}
		return false
	}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		if k := "k" + strconv.Itoa(i); serves(Slot(prefix + k)) {
			keys = append(keys, k)
		}
	}
	return keys
}

// PubSubNodes returns the addresses of the live nodes that hold a pub/sub
// connection of a client named name (of any client when name is ""), which
// CLIENT LIST reports. It fails the test on the embedded cluster.
func (c *Cluster) PubSubNodes(name string) []string {
	c.t.Helper()
	if !c.Real {
		c.t.Fatal("redistest: PubSubNodes needs a real cluster (set REDIS_ADDR)")
		return nil
	}
	var addrs []string
	for _, n := range c.nodes {
		if !n.alive() {
			continue
		}
		list, err := c.admin(n.addr).Do(context.Background(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			c.t.Fatalf("redistest: CLIENT LIST on %s: %v", n.addr, err)
			return nil
		}
		for line := range strings.Lines(list) {
			if name == "" || slices.Contains(strings.Fields(line), "name="+name) {
				addrs = append(addrs, n.addr)
				break
			}
		}
	}
	return addrs
}

// waitTopology waits until every live node reports cluster_state:ok and the
// same view, that view passes check, and every live replica in it is in
// sync with its master. Past deadline it fails the test, naming what and
// why, and reports false.
func (c *Cluster) waitTopology(what string, deadline time.Time, check func(view) error) bool {
	c.t.Helper()
	start := time.Now()
	for {
		err := c.agreed(check)
		if err == nil {
			return true
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: cluster %s: no agreement after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agreed reports why the live nodes do not agree on a view that passes
// check, if they do not.
func (c *Cluster) agreed(check func(view) error) error {
	ctx := context.Background()
	var first view
	var firstAddr string
	for _, n := range c.nodes {
		if !n.alive() {
			continue
		}
		cl := c.admin(n.addr)
		info, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state is not ok", n.addr)
		}
		text, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER NODES: %w", n.addr, err)
		}
		v, err := parseNodes(text)
		if err != nil {
			return err
		}
		if first == nil {
			first, firstAddr = v, n.addr
		} else if a, b := first.signature(), v.signature(); a != b {
			return fmt.Errorf("%s sees\n%s%s sees\n%s", firstAddr, a, n.addr, b)
		}
		if me := v.byAddr(n.addr); me != nil && !me.master {
			repl, err := cl.Info(ctx, "replication").Result()
			if err != nil || !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("replica %s is not in sync with its master (%v)", n.addr, err)
			}
		}
	}
	if first == nil {
		return fmt.Errorf("no live node")
	}
	if err := check(first); err != nil {
		return fmt.Errorf("%w; the nodes see\n%s", err, first.signature())
	}
	return nil
}
