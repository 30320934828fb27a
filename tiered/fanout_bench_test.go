package tiered_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
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
// client, as a process of its own would have, all goroutines of this one
// process) applying the invalidation. Each op is one Set and the wait for
// every Hub. The writes go in turn to one key on each master (three keys on
// the single node), so that on the cluster every node runs writes. The
// writer's own Hub is subscribed too and receives each message (and
// ignores it, by its origin), so a write is delivered hubs+1 times.
//
// The modes (each a sub-benchmark, the Hub options of the writer and of the
// readers):
//
//   - node/messages: the defaults; the write script PUBLISHes on the
//     namespace's classic channel (and appends to its log);
//   - node/tracking: every Hub with Tracking, the writer's with TrackingOnly
//     too: its Set is a plain SET, and Redis tells each Hub of it
//     (CLIENT TRACKING BCAST);
//   - cluster/sharded: the defaults; the script SPUBLISHes on the key's
//     slot group channel, which lives on the key's own node;
//   - cluster/classic: the writer with WireVersion 2, as during a rolling
//     upgrade from a release before the group channels: it PUBLISHes on the
//     classic channel, which Redis broadcasts to every node over the
//     cluster bus, and each Hub hears it on its first master's connection;
//   - cluster/tracking: as node/tracking, each Hub tracking on every master.
//
// Metrics:
//
//   - lag-p50-µs, lag-p99-µs: from the Set returning to a Hub applying the
//     invalidation (after which its Get reads Redis, which holds the new
//     value), over every Hub and write; 0 when it came first;
//   - sent-p50-µs, sent-p99-µs: the same from the Set being called;
//   - redis-cpu-µs/write: the Redis processes' CPU (INFO cpu, user + sys,
//     every node), less their idle rate measured just before (the health
//     checks' PINGs, the cluster bus);
//   - busiest-node-cpu-µs/write: the same for the node that spent the most
//     (on a single node, the same figure): a Redis process uses one core,
//     so this node is where the fleet stops scaling;
//   - script-µs/write, publish-µs/write, spublish-µs/write, set-µs/write:
//     Redis's own time in the write script, and in the PUBLISH, SPUBLISH
//     or SET commands (the script's included; INFO commandstats, every
//     node), which leaves out the time spent writing the messages to the
//     sockets.
//
// The Hubs read nothing, so they send no freshness PINGs (see
// HubOptions.MaxStaleness): only the health check's, one a second per
// connection, counted in the idle rate.
//
// Run: go test -run '^$' -bench Fanout -count 10 -timeout 60m ./tiered/ | tee out; benchstat -col /mode out
func BenchmarkFanout(b *testing.B) {
	for _, topo := range []string{"node", "cluster"} {
		b.Run(topo, func(b *testing.B) {
			var nodes []string
			var open func(name string) redis.UniversalClient
			var keysFor func(ns string) []string
			modes := []fanoutMode{
				{name: "messages"},
				{name: "tracking", writer: tiered.HubOptions{Tracking: true, TrackingOnly: true}, reader: tiered.HubOptions{Tracking: true}},
			}
			if topo == "node" {
				s := redistest.NewReal(b)
				nodes = []string{s.Addr}
				open = func(name string) redis.UniversalClient {
					return redis.NewClient(&redis.Options{Addr: s.Addr, ClientName: name})
				}
				keysFor = func(string) []string { return []string{"k0", "k1", "k2"} }
			} else {
				cl := redistest.NewRealCluster(b, redistest.ClusterOptions{})
				nodes = cl.Masters()
				open = func(name string) redis.UniversalClient {
					return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs, ClientName: name})
				}
				keysFor = func(ns string) []string {
					var ks []string
					for _, m := range cl.Masters() {
						ks = append(ks, cl.KeysOn(m, ns+":", 1)...)
					}
					return ks
				}
				modes[0].name = "sharded"
				modes = slices.Insert(modes, 1, fanoutMode{name: "classic", writer: tiered.HubOptions{WireVersion: 2}})
			}
			for _, mode := range modes {
				for _, hubs := range []int{1, 10, 50, 200} {
					b.Run("mode="+mode.name+"/hubs="+strconv.Itoa(hubs), func(b *testing.B) {
						benchFanout(b, nodes, open, keysFor, mode, hubs)
					})
				}
			}
		})
	}
}

// fanoutMode is how the writer's Hub and the readers' Hubs are set up.
type fanoutMode struct {
	name           string
	writer, reader tiered.HubOptions
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

func benchFanout(b *testing.B, nodes []string, open func(string) redis.UniversalClient, keysFor func(string) []string, mode fanoutMode, hubs int) {
	var round atomic.Pointer[fanoutRound]
	ns := fmt.Sprintf("fanout-%s-%d-%d", mode.name, hubs, time.Now().UnixNano())
	keys := keysFor(ns)
	writer := openFanout(b, open, ns, mode, hubs, &round)
	ctx := context.Background()
	for _, k := range keys {
		if err := writer.Set(ctx, k, "warm-up"); err != nil { // loads the script on every node
			b.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the warm-up's messages
	idleStart, idleCPU := time.Now(), redisCPUEach(b, nodes)
	time.Sleep(300 * time.Millisecond)
	idleEnd, idleTime := redisCPUEach(b, nodes), time.Since(idleStart)
	cpu0, stats0, start := redisCPUEach(b, nodes), commandStats(b, nodes), time.Now()

	var lags, sent []time.Duration
	writes := 0
	for b.Loop() {
		r := &fanoutRound{at: make([]time.Time, hubs), done: make(chan struct{})}
		round.Store(r)
		call := time.Now()
		if err := writer.Set(ctx, keys[writes%len(keys)], strconv.Itoa(writes)); err != nil {
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
	cpu1 := redisCPUEach(b, nodes)
	stats := commandStats(b, nodes)
	round.Store(nil)
	var cpu, busiest float64
	for i := range nodes {
		idleRate := float64(idleEnd[i]-idleCPU[i]) / float64(idleTime)
		c := max(float64(cpu1[i]-cpu0[i])-idleRate*float64(elapsed), 0)
		cpu += c
		busiest = max(busiest, c)
	}

	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	for _, l := range []struct {
		name string
		lags []time.Duration
	}{{"lag", lags}, {"sent", sent}} {
		slices.Sort(l.lags)
		b.ReportMetric(us(l.lags[len(l.lags)/2]), l.name+"-p50-µs")
		b.ReportMetric(us(l.lags[len(l.lags)*99/100]), l.name+"-p99-µs")
	}
	b.ReportMetric(cpu/float64(time.Microsecond)/float64(writes), "redis-cpu-µs/write")
	b.ReportMetric(busiest/float64(time.Microsecond)/float64(writes), "busiest-node-cpu-µs/write")
	for _, cmd := range []struct{ name, metric string }{
		{"evalsha", "script-µs/write"}, {"publish", "publish-µs/write"},
		{"spublish", "spublish-µs/write"}, {"set", "set-µs/write"},
	} {
		b.ReportMetric(float64(stats[cmd.name]-stats0[cmd.name])/float64(writes), cmd.metric)
	}
}

// openFanout opens the writer's cache and hubs caches in namespace ns,
// each with its own client and Hub (the writer's Hub with mode.writer, the
// others with mode.reader, observed into round), and waits until every one
// is subscribed.
func openFanout(b *testing.B, open func(string) redis.UniversalClient, ns string, mode fanoutMode, hubs int, round *atomic.Pointer[fanoutRound]) *tiered.Cache[string] {
	cache := func(name string, hopts tiered.HubOptions) *tiered.Cache[string] {
		client := open(ns + "-" + name)
		b.Cleanup(func() { _ = client.Close() })
		h, err := tiered.NewHub(client, hopts)
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
	writer := cache("writer", mode.writer)
	for i := range hubs {
		hopts := mode.reader
		hopts.Observer = fanoutObserver{round}
		cache("hub"+strconv.Itoa(i), hopts)
	}
	return writer
}

// redisCPU returns the CPU time the servers at addrs have used (INFO cpu,
// user + sys).
func redisCPU(b testing.TB, addrs []string) time.Duration {
	var total time.Duration
	for _, d := range redisCPUEach(b, addrs) {
		total += d
	}
	return total
}

// redisCPUEach returns the CPU time each server at addrs has used.
func redisCPUEach(b testing.TB, addrs []string) []time.Duration {
	var out []time.Duration
	for _, info := range infoOf(b, addrs, "cpu") {
		var total time.Duration
		for _, field := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			_, rest, _ := strings.Cut(info, "\n"+field)
			v, _, _ := strings.Cut(rest, "\r")
			s, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %s %q: %v", field, v, err)
			}
			total += time.Duration(s * float64(time.Second))
		}
		out = append(out, total)
	}
	return out
}

// commandStats returns the microseconds the servers at addrs have spent in
// each command (INFO commandstats, summed over the servers).
func commandStats(b testing.TB, addrs []string) map[string]int64 {
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

func infoOf(b testing.TB, addrs []string, section string) []string {
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

// BenchmarkProofs measures the freshness proofs (HubOptions.MaxStaleness,
// default 10ms) that Hubs serving local hits send, on a redis-server of
// its own: hubs Hubs (each with a client of its own, goroutines of this
// one process) each read one warm key every 100ms, a rate at which every
// read is a local hit and the proofs never stop (they stop 2s after the
// last read), while b.Loop runs (each op a 10ms sleep). Metrics: pings/s/hub (INFO commandstats, every PING the
// server answered, the health check's included), redis-cpu-µs/ping (INFO
// cpu less the idle rate measured before the reads began, over those
// PINGs), redis-cpu-% (of one core, the proofs alone).
//
// Run: go test -run '^$' -bench Proofs -count 10 ./tiered/ | tee out; benchstat out
func BenchmarkProofs(b *testing.B) {
	s := redistest.NewReal(b)
	nodes := []string{s.Addr}
	for _, hubs := range []int{1, 10, 50} {
		b.Run("hubs="+strconv.Itoa(hubs), func(b *testing.B) {
			ctx := context.Background()
			ns := fmt.Sprintf("proofs-%d-%d", hubs, time.Now().UnixNano())
			if err := s.Client.Set(ctx, ns+":k", "v", 10*time.Minute).Err(); err != nil {
				b.Fatal(err)
			}
			caches := make([]*tiered.Cache[string], hubs)
			for i := range caches {
				caches[i] = trackingCache(b, s.Addr, ns, "hub"+strconv.Itoa(i), tiered.HubOptions{})
			}
			time.Sleep(2500 * time.Millisecond) // every fence idle
			idleStart, idleCPU := time.Now(), redisCPU(b, nodes)
			time.Sleep(500 * time.Millisecond)
			idleRate := float64(redisCPU(b, nodes)-idleCPU) / float64(time.Since(idleStart))
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var hits, reads atomic.Uint64
			for _, c := range caches {
				wg.Go(func() {
					t := time.NewTicker(100 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						before := c.Stats().LocalHits
						if _, err := c.Get(ctx, "k"); err != nil {
							b.Error(err)
							return
						}
						reads.Add(1)
						hits.Add(c.Stats().LocalHits - before)
					}
				})
			}
			time.Sleep(300 * time.Millisecond) // the fences wake up
			cpu0, calls0, start := redisCPU(b, nodes), commandCalls(b, nodes), time.Now()
			for b.Loop() {
				time.Sleep(10 * time.Millisecond)
			}
			elapsed := time.Since(start)
			cpu := float64(redisCPU(b, nodes)-cpu0) - idleRate*float64(elapsed)
			pings := float64(commandCalls(b, nodes)["ping"] - calls0["ping"])
			close(stop)
			wg.Wait()
			b.ReportMetric(pings/elapsed.Seconds()/float64(hubs), "pings/s/hub")
			b.ReportMetric(max(cpu, 0)/float64(time.Microsecond)/pings, "redis-cpu-µs/ping")
			b.ReportMetric(100*max(cpu, 0)/float64(elapsed), "redis-cpu-%")
			b.ReportMetric(float64(hits.Load())/float64(max(reads.Load(), 1)), "local-hit-ratio")
		})
	}
}
