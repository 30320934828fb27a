package redistest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBusDelayIsReal times a classic PUBLISH on one master reaching a
// subscriber on another, which goes over the bus, before and with a delay.
// A delayed bus can only be slower than the delay: the proxy holds each
// byte that long.
func TestBusDelayIsReal(t *testing.T) {
	needRealSuite(t)
	t.Parallel() // mostly waits: a new cluster is not writable for 2s
	start := time.Now()
	cl := NewRealCluster(t, ClusterOptions{BusProxies: true})
	t.Logf("3 masters with bus proxies formed in %v", time.Since(start).Round(time.Millisecond))
	m := cl.Masters()
	t.Logf("publish lag %s -> %s with no delay: %v", m[0], m[1], cl.PublishLag(m[0], m[1]))
	const d = 50 * time.Millisecond
	cl.SetBusDelay(d)
	for _, pair := range [][2]string{{m[0], m[1]}, {m[1], m[2]}, {m[2], m[0]}} {
		lag := cl.PublishLag(pair[0], pair[1])
		t.Logf("publish lag %s -> %s with a %v bus delay: %v", pair[0], pair[1], d, lag)
		if lag < d {
			t.Errorf("a message from %s reached %s in %v over a bus delayed by %v", pair[0], pair[1], lag, d)
		}
	}
	cl.SetBusDelay(0)
	t.Logf("publish lag %s -> %s with the delay off: %v", m[0], m[1], cl.PublishLag(m[0], m[1]))
}

// TestStallBusHoldsMessages stalls the bus: a message published on one master
// must not reach a subscriber on another while the stall lasts, and must
// reach it once the stall ends (a stall loses nothing by itself).
func TestStallBusHoldsMessages(t *testing.T) {
	needRealSuite(t)
	t.Parallel() // mostly waits: a new cluster is not writable for 2s
	ctx := context.Background()
	cl := NewRealCluster(t, ClusterOptions{BusProxies: true})
	m := cl.Masters()
	sub := redis.NewClient(&redis.Options{Addr: m[1]})
	defer sub.Close()
	ps := sub.Subscribe(ctx, cl.Namespace)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := ps.Channel() // no read deadline: a timed-out read would drop the connection
	cl.StallBus(true)
	if err := cl.admin(m[0]).Publish(ctx, cl.Namespace, "held").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-msgs:
		t.Fatalf("%q crossed a stalled bus", msg.Payload)
	case <-time.After(300 * time.Millisecond):
	}
	cl.StallBus(false)
	select {
	case msg := <-msgs:
		if msg.Payload != "held" {
			t.Fatalf("after the stall: %q, want the held message", msg.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message held by the stall did not arrive once it ended")
	}
}

// TestFloodDropsLinks floods the bus (directly between the nodes, through
// proxies, through stalled proxies), counts the links the nodes drop, and
// how many of a stream of small messages published meanwhile on two masters
// never reach a subscriber on the third. The flood alone loses some of
// them, by chance; with the stall it must lose some: every link fills past
// the limit.
func TestFloodDropsLinks(t *testing.T) {
	needRealSuite(t)
	for _, tc := range []struct {
		name         string
		proxy, stall bool
	}{{"direct", false, false}, {"proxied", true, false}, {"stalled", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cl := NewRealCluster(t, ClusterOptions{BusProxies: tc.proxy})
			lost, sent, rep := floodAndCount(t, cl, FloodOptions{Stall: tc.stall}, 500*time.Millisecond)
			relinked := 0
			for _, n := range rep.Relinked {
				relinked += n
			}
			t.Logf("flood for %v: %d messages of 1MiB published, %d links dropped %v, %d of the nodes' links new: %d of %d small messages lost",
				rep.Duration.Round(time.Millisecond), rep.Published, rep.TotalDropped(), rep.Dropped, relinked, lost, sent)
			if rep.TotalDropped() == 0 {
				t.Error("no bus link dropped")
			}
			if relinked == 0 {
				t.Error("CLUSTER LINKS shows no link created since the flood began")
			}
			if tc.stall && lost == 0 {
				t.Errorf("a flood of a stalled bus lost none of %d messages", sent)
			}
			if d := cl.LinksDropped(); len(d) != 3 {
				t.Fatalf("LinksDropped = %v, want a count for each of 3 nodes", d)
			}
		})
	}
}

// floodAndCount floods cl for d while publishing small numbered messages on
// the second and third masters, one every 5ms, then counts how many never
// reached a subscriber on the first, half a second after the flood ended.
func floodAndCount(t *testing.T, cl *Cluster, opts FloodOptions, d time.Duration) (lost, sent int, rep FloodReport) {
	t.Helper()
	ctx := context.Background()
	m := cl.Masters()
	channel := cl.Namespace + "-seq"
	sub := redis.NewClient(&redis.Options{Addr: m[0]})
	defer sub.Close()
	ps := sub.Subscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := make(map[string]bool)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			mu.Lock()
			got[msg.Payload] = true
			mu.Unlock()
		}
	}()
	f := cl.FloodBus(opts)
	for end := time.Now().Add(d); time.Now().Before(end); sent++ {
		if err := cl.admin(m[1+sent%2]).Publish(ctx, channel, strconv.Itoa(sent)).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rep = f.Stop()
	time.Sleep(500 * time.Millisecond)
	_ = ps.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return sent - len(got), sent, rep
}
