package tiered_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// BenchmarkFanout measures what one write costs as the number of
// subscribing Hubs grows, on a redis-server of its own and on a 3-master
// cluster of its own: a writer's Set, then every Hub (each with its own
// client, as a process of its own would have, all in this process) applying
// the invalidation. Each op is one Set and the wait for every Hub. Metrics:
//
//   - lag-p50-µs, lag-p99-µs: from the Set returning to a Hub applying the
//     invalidation (after which its Get reads Redis, which holds the new
//     value), over every Hub and write; 0 when it came first;
//   - sent-p50-µs, sent-p99-µs: the same from the Set being called;
//   - redis-cpu-µs/write: the Redis processes' CPU (INFO cpu, user + sys,
//     every node), less their idle rate measured just before;
//   - script-µs/write, publish-µs/write: Redis's own time in the write
//     script and in the PUBLISH inside it (INFO commandstats, every node).
//
// Run: go test -run '^$' -bench Fanout -count 10 ./tiered/ | tee out; benchstat out
func BenchmarkFanout(b *testing.B) {
	for _, topo := range []string{"node", "cluster"} {
		b.Run(topo, func(b *testing.B) {
			var nodes []string
			var open func(name string) redis.UniversalClient
			if topo == "node" {
				s := redistest.NewReal(b)
				nodes = []string{s.Addr}
				open = func(name string) redis.UniversalClient {
					return redis.NewClient(&redis.Options{Addr: s.Addr, ClientName: name})
				}
			} else {
				cl := redistest.NewRealCluster(b, redistest.ClusterOptions{})
				nodes = cl.Masters()
				open = func(name string) redis.UniversalClient {
					return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs, ClientName: name})
				}
			}
			for _, hubs := range []int{1, 10, 50, 200} {
				b.Run("hubs="+strconv.Itoa(hubs), func(b *testing.B) { benchFanout(b, nodes, open, hubs) })
			}
		})
	}
}

// fanoutRound collects when each Hub applied one write's invalidation.
type fanoutRound struct {
	at   []time.Time
	n    atomic.Int32
	done chan struct{}
}

func (r *fanoutRound) applied(t time.Time) {
	if i := int(r.n.Add(1)) - 1; i < len(r.at) {
		r.at[i] = t
		if i == len(r.at)-1 {
			close(r.done)
		}
	}
}

// fanoutObserver reports each invalidation applied to the current round.
type fanoutObserver struct{ round *atomic.Pointer[fanoutRound] }

func (o fanoutObserver) Observe(e tiered.Event) {
	if e.Kind == tiered.EventInvalidation {
		if r := o.round.Load(); r != nil {
			r.applied(time.Now())
		}
	}
}

func benchFanout(b *testing.B, nodes []string, open func(string) redis.UniversalClient, hubs int) {
	var round atomic.Pointer[fanoutRound]
	writer := openFanout(b, open, hubs, &round)
	ctx := context.Background()
	if err := writer.Set(ctx, "k", "warm-up"); err != nil { // loads the script
		b.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the warm-up's messages
	idleStart, idleCPU := time.Now(), redisCPU(b, nodes)
	time.Sleep(300 * time.Millisecond)
	idleRate := float64(redisCPU(b, nodes)-idleCPU) / float64(time.Since(idleStart))
	cpu0, stats0, start := redisCPU(b, nodes), commandStats(b, nodes), time.Now()

	var lags, sent []time.Duration
	writes := 0
	for b.Loop() {
		r := &fanoutRound{at: make([]time.Time, hubs), done: make(chan struct{})}
		round.Store(r)
		call := time.Now()
		if err := writer.Set(ctx, "k", strconv.Itoa(writes)); err != nil {
			b.Fatal(err)
		}
		ack := time.Now()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			b.Fatalf("%d of %d hubs applied write %d within 10s", r.n.Load(), hubs, writes)
		}
		for _, at := range r.at {
			lags = append(lags, max(at.Sub(ack), 0))
			sent = append(sent, at.Sub(call))
		}
		writes++
	}
	elapsed := time.Since(start)
	cpu := float64(redisCPU(b, nodes)-cpu0) - idleRate*float64(elapsed)
	stats := commandStats(b, nodes)
	round.Store(nil)

	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	for _, l := range []struct {
		name string
		lags []time.Duration
	}{{"lag", lags}, {"sent", sent}} {
		slices.Sort(l.lags)
		b.ReportMetric(us(l.lags[len(l.lags)/2]), l.name+"-p50-µs")
		b.ReportMetric(us(l.lags[len(l.lags)*99/100]), l.name+"-p99-µs")
	}
	b.ReportMetric(max(cpu, 0)/float64(time.Microsecond)/float64(writes), "redis-cpu-µs/write")
	for _, cmd := range []struct{ name, metric string }{{"evalsha", "script-µs/write"}, {"publish", "publish-µs/write"}} {
		b.ReportMetric(float64(stats[cmd.name]-stats0[cmd.name])/float64(writes), cmd.metric)
	}
}

// openFanout opens the writer's cache and hubs caches, each with its own
// client and Hub (the hubs' Hubs observed into round) in a namespace of
// their own, and waits until every one is subscribed.
func openFanout(b *testing.B, open func(string) redis.UniversalClient, hubs int, round *atomic.Pointer[fanoutRound]) *tiered.Cache[string] {
	ns := fmt.Sprintf("fanout-%d-%d", hubs, time.Now().UnixNano())
	cache := func(name string, obs tiered.Observer) *tiered.Cache[string] {
		client := open(ns + "-" + name)
		b.Cleanup(func() { _ = client.Close() })
		h, err := tiered.NewHub(client, tiered.HubOptions{Observer: obs})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Close() })
		c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: ns})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.WaitReady(ctx); err != nil {
			b.Fatal(err)
		}
		return c
	}
	writer := cache("writer", nil)
	for i := range hubs {
		cache("hub"+strconv.Itoa(i), fanoutObserver{round})
	}
	return writer
}

// redisCPU returns the CPU time the servers at addrs have used (INFO cpu,
// user + sys).
func redisCPU(b *testing.B, addrs []string) time.Duration {
	var total time.Duration
	for _, info := range infoOf(b, addrs, "cpu") {
		for _, field := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			_, rest, _ := strings.Cut(info, "\n"+field)
			v, _, _ := strings.Cut(rest, "\r")
			s, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %s %q: %v", field, v, err)
			}
			total += time.Duration(s * float64(time.Second))
		}
	}
	return total
}

// commandStats returns the microseconds the servers at addrs have spent in
// each command (INFO commandstats, summed over the servers).
func commandStats(b *testing.B, addrs []string) map[string]int64 {
	usec := make(map[string]int64)
	for _, info := range infoOf(b, addrs, "commandstats") {
		for line := range strings.Lines(info) {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
			if !ok || !strings.HasPrefix(line, "cmdstat_") {
				continue
			}
			_, v, _ := strings.Cut(rest, "usec=")
			v, _, _ = strings.Cut(v, ",")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("INFO commandstats: %q: %v", line, err)
			}
			usec[name] += n
		}
	}
	return usec
}

func infoOf(b *testing.B, addrs []string, section string) []string {
	var out []string
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		info, err := c.Info(context.Background(), section).Result()
		_ = c.Close()
		if err != nil {
			b.Fatalf("INFO %s on %s: %v", section, addr, err)
		}
		out = append(out, info)
	}
	return out
}
