package redistest

import (
	"bufio"
	"context"
	"strings"
)

// KillPubSub kills, on every live node of a real cluster, the pub/sub
// connections whose client name is name (every one when name is empty), and
// returns how many it killed. It fails the test on the embedded cluster.
func (c *Cluster) KillPubSub(name string) int {
	c.t.Helper()
	if !c.Real {
		c.t.Fatal("redistest: Cluster.KillPubSub needs a real cluster (set REDIS_ADDR)")
		return 0
	}
	ctx := context.Background()
	n := 0
	for _, node := range c.nodes {
		if !node.alive() {
			continue
		}
		admin := c.admin(node.addr)
		list, err := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			c.t.Fatalf("redistest: CLIENT LIST on %s: %v", node.addr, err)
			return n
		}
		for _, id := range clientIDs(list, name) {
			err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err()
			switch {
			case err == nil:
				n++
			case strings.Contains(err.Error(), "No such client"):
				// It went away between the listing and the kill.
			default:
				c.t.Fatalf("redistest: CLIENT KILL ID %s on %s: %v", id, node.addr, err)
				return n
			}
		}
	}
	return n
}

// clientIDs returns the ids in a CLIENT LIST reply of the clients named
// name (all when name is empty).
func clientIDs(list, name string) []string {
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		var id, cname string
		for _, f := range strings.Fields(sc.Text()) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			} else if v, ok := strings.CutPrefix(f, "name="); ok {
				cname = v
			}
		}
		if id != "" && (name == "" || cname == name) {
			ids = append(ids, id)
		}
	}
	return ids
}
