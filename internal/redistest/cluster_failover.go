package redistest

import (
	"fmt"
	"time"
)

// failoverTimeout bounds how long a failover may take to settle.
const failoverTimeout = 30 * time.Second

// Failover makes a replica of the master that serves the Redis key take its
// place gracefully, with CLUSTER FAILOVER on the replica: the master stops
// accepting writes, the replica catches up, takes over the slots, and the
// old master becomes its replica. It returns the old and the new master's
// addresses once every node agrees on that and the old master is in sync
// with the new one. It fails the test on the embedded cluster, and for a
// master without a replica.
func (c *Cluster) Failover(key string) (oldMaster, newMaster string) {
	c.t.Helper()
	old, replica, ok := c.failoverPair("Failover", key)
	if !ok || !c.must(replica.addr, "CLUSTER", "FAILOVER") {
		return "", ""
	}
	slot := Slot(key)
	c.waitTopology("graceful failover of "+old.addr, time.Now().Add(failoverTimeout), func(v view) error {
		if m := v.owner(slot); m == nil || m.id != replica.id {
			return fmt.Errorf("slot %d is not served by %s yet", slot, replica.addr)
		}
		if o := v.byID(old.id); o == nil || o.master || o.masterID != replica.id {
			return fmt.Errorf("%s is not a replica of %s yet", old.addr, replica.addr)
		}
		return nil
	})
	return old.addr, replica.addr
}

// CrashFailover kills the master that serves the Redis key (SIGKILL, as
// Kill) and returns its address and its replica's, once the replica has
// taken its place and every live node agrees on that, the dead node flagged
// failed. That takes cluster-node-timeout (ClusterOptions.NodeTimeout),
// then the replica's election delay (half a second to a second), then a
// few gossip rounds. It fails the test on the embedded cluster, and for a
// master without a replica.
func (c *Cluster) CrashFailover(key string) (oldMaster, newMaster string) {
	c.t.Helper()
	old, replica, ok := c.failoverPair("CrashFailover", key)
	if !ok {
		return "", ""
	}
	c.node(old.addr).kill()
	slot := Slot(key)
	c.waitTopology("crash failover of "+old.addr, time.Now().Add(failoverTimeout), func(v view) error {
		if m := v.owner(slot); m == nil || m.id != replica.id {
			return fmt.Errorf("slot %d is not served by %s yet", slot, replica.addr)
		}
		if o := v.byID(old.id); o != nil && !o.failing {
			return fmt.Errorf("%s is not flagged failed yet", old.addr)
		}
		return nil
	})
	return old.addr, replica.addr
}

// failoverPair returns the master that serves key and a live replica of it.
func (c *Cluster) failoverPair(op, key string) (master, replica nodeInfo, ok bool) {
	c.t.Helper()
	if !c.Real {
		c.t.Fatalf("redistest: %s needs a real cluster with replicas (set REDIS_ADDR)", op)
		return master, replica, false
	}
	v := c.currentView()
	m := v.owner(Slot(key))
	if m == nil {
		c.t.Fatalf("redistest: %s(%q): no master serves slot %d", op, key, Slot(key))
		return master, replica, false
	}
	for _, addr := range v.replicasOf(m.id) {
		if n := c.node(addr); n != nil && n.alive() {
			return *m, *v.byAddr(addr), true
		}
	}
	c.t.Fatalf("redistest: %s(%q): master %s has no live replica (ClusterOptions.Replicas)", op, key, m.addr)
	return master, replica, false
}
