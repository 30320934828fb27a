package redistest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needRealSuite skips a test that starts cluster processes of its own
// outside the real-server suite, so that the embedded suite stays fast.
func needRealSuite(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvAddr) == "" {
		t.Skipf("starts real Redis Cluster processes: runs in the real-server suite (set %s)", EnvAddr)
	}
}

// TestSlotMatchesKeyslot checks Slot against answers of a real server's
// CLUSTER KEYSLOT, and against the server itself in the real-server suite
// (the embedded server answers a constant).
func TestSlotMatchesKeyslot(t *testing.T) {
	known := map[string]int{ // from CLUSTER KEYSLOT of redis-server 7.0
		"foo": 12182, "{user1000}.following": 3443, "a{}b": 13694, "a{b": 13340,
	}
	for k, want := range known {
		if got := Slot(k); got != want {
			t.Errorf("Slot(%q) = %d, want %d", k, got, want)
		}
	}
	if os.Getenv(EnvAddr) == "" {
		return
	}
	cl := NewCluster(t)
	c := cl.NewClient()
	ctx := context.Background()
	keys := []string{"", "a", "k0", "tiercache:invalidate:ns", cl.Namespace + ":k17",
		"{user1000}.following", "{user1000}.followers", "a{}b", "a{b", "{}{x}", "x{y}{z}", "\xff\x00\x80"}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", k, err)
		}
		if got := Slot(k); int64(got) != want {
			t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}

func TestParseNodes(t *testing.T) {
	text := "e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460\n" +
		"67ed 127.0.0.1:30002@40002,host master - 0 1 2 connected 5461 5462-10922 [5463->-e7d1]\n" +
		"292f 127.0.0.1:30004@40004 slave e7d1 0 1 1 connected\n" +
		"6ec2 127.0.0.1:30003@40003 master,fail - 0 1 3 disconnected\n"
	v, err := parseNodes(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 4 {
		t.Fatalf("parsed %d nodes, want 4", len(v))
	}
	if o := v.owner(5462); o == nil || o.addr != "127.0.0.1:30002" {
		t.Fatalf("owner of 5462: %+v", o)
	}
	if o := v.owner(0); o == nil || o.id != "e7d1" {
		t.Fatalf("owner of 0: %+v", o)
	}
	if rs := v.replicasOf("e7d1"); len(rs) != 1 || rs[0] != "127.0.0.1:30004" {
		t.Fatalf("replicas of e7d1: %v", rs)
	}
	if n := v.byAddr("127.0.0.1:30003"); n == nil || !n.failing || len(n.slots) != 0 {
		t.Fatalf("the failed node: %+v", n)
	}
	if err := v.complete(1); err == nil {
		t.Fatal("a view with a failed node and missing slots passed as complete")
	}
	for _, bad := range []string{"e7d1 127.0.0.1:1@2 master\n", "e7d1 127.0.0.1:1@2 master - 0 0 1 connected x-1\n"} {
		if _, err := parseNodes(bad); err == nil {
			t.Errorf("parseNodes(%q) did not fail", bad)
		}
	}
}

func TestClusterOptionsAreChecked(t *testing.T) {
	for field, o := range map[string]ClusterOptions{
		"Replicas":    {Replicas: 2},
		"NodeTimeout": {NodeTimeout: time.Millisecond},
	} {
		r := &fatalRecorder{T: t}
		if c := NewRealCluster(r, o); c != nil || !strings.Contains(r.failed, "ClusterOptions."+field) {
			t.Errorf("NewRealCluster(%+v) returned %v, failure %q: want a failure naming %s", o, c, r.failed, field)
		}
	}
}

// TestRealClusterWithReplicas forms a cluster of three masters and three
// replicas, and checks what the helpers say of it against the servers.
func TestRealClusterWithReplicas(t *testing.T) {
	needRealSuite(t)
	t.Parallel() // mostly waits: a new cluster is not writable for 2s
	ctx := context.Background()
	start := time.Now()
	cl := NewRealCluster(t, ClusterOptions{Replicas: 1, NodeTimeout: time.Second})
	t.Logf("3 masters + 3 replicas formed in %v", time.Since(start).Round(time.Millisecond))
	masters, replicas := cl.Masters(), cl.Replicas()
	if len(masters) != 3 || len(replicas) != 3 {
		t.Fatalf("masters %v, replicas %v: want 3 of each", masters, replicas)
	}
	client := cl.NewClient()
	for _, m := range masters {
		r := cl.ReplicaOf(m)
		role, err := cl.admin(r).Do(ctx, "ROLE").Slice()
		if err != nil || len(role) < 3 || role[0] != "slave" || role[2] != portOf(m) {
			t.Fatalf("ROLE of %s, the replica of %s: %v, %v", r, m, role, err)
		}
		for _, k := range cl.KeysOn(m, cl.Namespace+":", 3) {
			key := cl.Namespace + ":" + k
			if got := cl.MasterOf(key); got != m {
				t.Fatalf("MasterOf(%s) = %s, want %s", key, got, m)
			}
			if err := client.Set(ctx, key, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			// The master itself answers, with no MOVED.
			if v, err := cl.admin(m).Get(ctx, key).Result(); err != nil || v != "v" {
				t.Fatalf("GET %s on %s: %q, %v", key, m, v, err)
			}
		}
	}
}

// portOf returns the port of host:port as ROLE reports it.
func portOf(addr string) any {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.ParseInt(p, 10, 64)
	return n
}

// TestFailover fails over the master of a key, gracefully then by a crash
// (on another master), and checks that the new master serves the key's
// slot, with the data, and the old one does not.
func TestFailover(t *testing.T) {
	needRealSuite(t)
	t.Parallel() // mostly waits: a new cluster is not writable for 2s
	ctx := context.Background()
	cl := NewRealCluster(t, ClusterOptions{Replicas: 1, NodeTimeout: time.Second})
	client := cl.NewClient()
	masters := cl.Masters()
	check := func(kind, key, old, replica string, crashed bool) {
		t.Helper()
		if got := cl.MasterOf(key); got != replica {
			t.Fatalf("%s: MasterOf(%s) = %s, want %s (the replica)", kind, key, got, replica)
		}
		if v, err := cl.admin(replica).Get(ctx, key).Result(); err != nil || v != "before" {
			t.Fatalf("%s: GET on the new master %s: %q, %v", kind, replica, v, err)
		}
		// After a crash, go-redis keeps sending the dead master's slots to
		// it until its slot map is reloaded (every 10s, or on a MOVED).
		client.ReloadState(ctx)
		if err := client.Set(ctx, key, "after", 0).Err(); err != nil {
			t.Fatalf("%s: SET through the cluster client: %v", kind, err)
		}
		if crashed {
			return
		}
		err := cl.admin(old).Set(ctx, key, "x", 0).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
			t.Fatalf("%s: SET on the old master %s: %v, want MOVED", kind, old, err)
		}
	}
	for i, kind := range []string{"graceful", "crash"} {
		key := cl.Namespace + ":" + cl.KeysOn(masters[i], cl.Namespace+":", 1)[0]
		if err := client.Set(ctx, key, "before", 0).Err(); err != nil {
			t.Fatal(err)
		}
		replica := cl.ReplicaOf(masters[i])
		// The write must be on the replica before a crash, or it is lost.
		if err := client.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var old, promoted string
		if kind == "graceful" {
			old, promoted = cl.Failover(key)
		} else {
			old, promoted = cl.CrashFailover(key)
		}
		t.Logf("%s failover of %s settled in %v", kind, old, time.Since(start).Round(time.Millisecond))
		if old != masters[i] || promoted != replica {
			t.Fatalf("%s failover returned %s -> %s, want %s -> %s", kind, old, promoted, masters[i], replica)
		}
		check(kind, key, old, promoted, kind == "crash")
	}
	if n := len(cl.Masters()); n != 3 {
		t.Fatalf("%d masters after the failovers, want 3", n)
	}
}

func TestFailoverNeedsAReplica(t *testing.T) {
	needRealSuite(t)
	t.Parallel() // mostly waits: a new cluster is not writable for 2s
	cl := NewRealCluster(t, ClusterOptions{})
	r := &fatalRecorder{T: t}
	cl.t = r
	cl.Failover(cl.Namespace + ":k")
	cl.t = t
	if !strings.Contains(r.failed, "no live replica") {
		t.Fatalf("Failover on a cluster without replicas: failure %q", r.failed)
	}
}
