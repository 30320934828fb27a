package tiered_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// BenchmarkLogCost is what the log of invalidations (issue 22) costs Redis
// per write, on a redis-server of its own: the write script of a Set (one
// key, a 64-byte value with a TTL, a version 3 message on a single node's
// classic channel, no subscriber), run with the log at its default length
// (log=10000: INCR the position, XADD … MAXLEN ~ 10000) and without it
// (log=0, which HubOptions cannot ask for: 0 there means the default; the
// script itself skips the log for "0"). The log is filled past its length
// before the timing, so that trimming is part of every write. Metrics:
//
//   - redis-cpu-µs/write: INFO cpu (user + sys) less the idle rate;
//   - script-µs/write, xadd-µs/write, incr-µs/write: INFO commandstats;
//   - log-bytes, log-entries, log-bytes/entry: MEMORY USAGE (SAMPLES 0) and
//     XLEN of the log after the run (log=10000 only).
//
// Run: go test -run '^$' -bench LogCost -count 10 ./tiered/ | tee out; benchstat -col /log out
func BenchmarkLogCost(b *testing.B) {
	s := redistest.NewReal(b)
	nodes := []string{s.Addr}
	script := redis.NewScript(remote.WriteSource())
	for _, logLen := range []int{tiered.DefaultLogLength, 0} {
		b.Run("log="+strconv.Itoa(logLen), func(b *testing.B) {
			ctx := context.Background()
			ns := fmt.Sprintf("logcost-%d-%d", logLen, time.Now().UnixNano())
			client := redis.NewClient(&redis.Options{Addr: s.Addr})
			b.Cleanup(func() { _ = client.Close() })
			origin := invalidate.NewOrigin()
			val := trackingValue(0)
			write := func(i int) error {
				k := "user:" + strconv.Itoa(i%100_000)
				msg := invalidate.Message{Origin: origin, Keys: []string{k}, Sent: time.Now()}.AppendVersion(nil, 3)
				return script.Run(ctx, client, []string{ns + ":" + k}, ns, msg, "", "c", logLen, "S", val, 600_000, "").Err()
			}
			for i := range tiered.DefaultLogLength + 1000 {
				if err := write(i); err != nil {
					b.Fatal(err)
				}
			}
			idleStart, idleCPU := time.Now(), redisCPU(b, nodes)
			time.Sleep(200 * time.Millisecond)
			idleRate := float64(redisCPU(b, nodes)-idleCPU) / float64(time.Since(idleStart))
			cpu0, stats0, start := redisCPU(b, nodes), commandStats(b, nodes), time.Now()
			writes := 0
			for b.Loop() {
				if err := write(writes); err != nil {
					b.Fatal(err)
				}
				writes++
			}
			cpu := float64(redisCPU(b, nodes)-cpu0) - idleRate*float64(time.Since(start))
			stats := commandStats(b, nodes)
			b.ReportMetric(max(cpu, 0)/float64(time.Microsecond)/float64(writes), "redis-cpu-µs/write")
			for _, cmd := range []struct{ name, metric string }{
				{"evalsha", "script-µs/write"}, {"xadd", "xadd-µs/write"}, {"incr", "incr-µs/write"},
			} {
				b.ReportMetric(float64(stats[cmd.name]-stats0[cmd.name])/float64(writes), cmd.metric)
			}
			if logLen > 0 {
				key := invalidate.LogKey(ns, -1)
				bytes, err := s.Client.MemoryUsage(ctx, key, 0).Result()
				if err != nil {
					b.Fatal(err)
				}
				n, err := s.Client.XLen(ctx, key).Result()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(bytes), "log-bytes")
				b.ReportMetric(float64(n), "log-entries")
				b.ReportMetric(float64(bytes)/float64(n), "log-bytes/entry")
			}
		})
	}
}

// BenchmarkRepair is what an outage of a reader's subscription costs, on a
// redis-server of its own: Redis holds 100,000 keys of a namespace, the
// reader (a cache with LocalSize 20,000) holds 10,000 of them, its hot set,
// and loses its subscription (its ACL user's right to subscribe revoked and
// its connections killed, as in repair_test.go) while a writer Sets random
// keys of the 100,000 at 1,000 a second for the outage; then the right is
// restored. reader=repair is a reader with the defaults, which reads back
// what it missed from the log; reader=purge one with WireVersion 2, which
// purges its local tier, as releases before the log did. The reader's
// MaxBackoff is 10ms, so that it subscribes again within about 10ms of the
// restore (the default, 1s, would add up to a second to ready-ms). Each op
// is one outage: run with -benchtime 1x. Metrics:
//
//   - writes, hot-writes: Sets during the outage, and those of hot keys;
//   - repaired: 1 when the reader repaired, 0 when it purged;
//   - ready-ms: from the restore to the reader's WaitReady returning;
//   - replayed: invalidations the reader applied from the log;
//   - xrange-calls, xrange-µs: the log reads (XRANGE and XREVRANGE) Redis
//     served meanwhile, and its time in them (INFO commandstats);
//   - kept: entries of the reader's local tier once ready;
//   - refill-reads, refill-ms: Redis round trips and time for the reader
//     to read each of its 10,000 hot keys once with Get, after the outage;
//   - stale: of those reads, the ones that returned another value than
//     Redis held (must be 0).
//
// Run: go test -run '^$' -bench Repair -benchtime 1x -count 5 -timeout 30m ./tiered/ | tee out; benchstat -col /reader out
func BenchmarkRepair(b *testing.B) {
	s := redistest.NewReal(b)
	const total, hot, rate = 100_000, 10_000, 1000
	for _, outage := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second} {
		for _, reader := range []string{"repair", "purge"} {
			b.Run(fmt.Sprintf("outage=%v/reader=%s", outage, reader), func(b *testing.B) {
				for b.Loop() {
					benchOutage(b, s, outage, reader == "purge", total, hot, rate)
				}
			})
		}
	}
}

// benchOutage runs one outage of BenchmarkRepair and reports its metrics.
func benchOutage(b *testing.B, s *redistest.Server, outage time.Duration, purge bool, total, hot, rate int) {
	ctx := context.Background()
	ns := fmt.Sprintf("repair-%d", time.Now().UnixNano())
	user := "r" + ns
	keys := make([]string, total)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for lo := 0; lo < total; lo += 1000 {
		if _, err := s.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < lo+1000; i++ {
				p.Set(ctx, ns+":"+keys[i], trackingValue(i), 10*time.Minute)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Client.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Client.Do(context.Background(), "ACL", "DELUSER", user).Err() })
	writer := trackingCache(b, s.Addr, ns, "writer", tiered.HubOptions{})

	rclient := redis.NewClient(&redis.Options{Addr: s.Addr, Username: user, Password: "pw"})
	b.Cleanup(func() { _ = rclient.Close() })
	calls := &redistest.RoundTrips{}
	rclient.AddHook(calls)
	hopts := tiered.HubOptions{MaxBackoff: 10 * time.Millisecond}
	if purge {
		hopts.WireVersion = 2
	}
	h, err := tiered.NewHub(rclient, hopts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	r, err := tiered.NewCache(h, tiered.Options[string]{Namespace: ns, LocalSize: 2 * hot})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.WaitReady(wctx); err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < hot; lo += 100 {
		if _, err := r.GetMany(ctx, keys[lo:lo+100]); err != nil {
			b.Fatal(err)
		}
	}
	if n := r.Stats().LocalEntries; n < hot*99/100 {
		b.Fatalf("the reader holds %d of its %d hot keys", n, hot)
	}

	// The outage.
	if err := s.Client.Do(ctx, "ACL", "SETUSER", user, "-subscribe", "-ssubscribe").Err(); err != nil {
		b.Fatal(err)
	}
	if err := s.Client.Do(ctx, "CLIENT", "KILL", "USER", user).Err(); err != nil {
		b.Fatal(err)
	}
	for r.Subscribed() {
		time.Sleep(time.Millisecond)
	}
	nodes := []string{s.Addr}
	stats0, before := commandStats(b, nodes), r.Stats()
	calls0 := commandCalls(b, nodes)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	writes, hotWrites := 0, 0
	for time.Since(start) < outage {
		if next := start.Add(time.Duration(writes) * time.Second / time.Duration(rate)); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
		i := rng.IntN(total)
		if err := writer.Set(ctx, keys[i], "new-"+strconv.Itoa(writes)); err != nil {
			b.Fatal(err)
		}
		writes++
		if i < hot {
			hotWrites++
		}
	}
	restored := time.Now()
	if err := s.Client.Do(ctx, "ACL", "SETUSER", user, "+subscribe", "+ssubscribe").Err(); err != nil {
		b.Fatal(err)
	}
	wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.WaitReady(wctx); err != nil {
		b.Fatal(err)
	}
	ready := time.Since(restored)
	after := r.Stats()
	stats, callsN := commandStats(b, nodes), commandCalls(b, nodes)
	kept := after.LocalEntries

	// The refill: each hot key read once, checked against Redis.
	want := make([]any, 0, hot)
	for lo := 0; lo < hot; lo += 1000 {
		ks := make([]string, 1000)
		for i := range ks {
			ks[i] = ns + ":" + keys[lo+i]
		}
		vs, err := s.Client.MGet(ctx, ks...).Result()
		if err != nil {
			b.Fatal(err)
		}
		want = append(want, vs...)
	}
	calls.Reset()
	refill, stale := time.Now(), 0
	for i := range hot {
		v, err := r.Get(ctx, keys[i])
		if err != nil {
			b.Fatal(err)
		}
		if v != want[i] {
			stale++
		}
	}
	b.ReportMetric(float64(time.Since(refill))/float64(time.Millisecond), "refill-ms")
	b.ReportMetric(float64(calls.Count()), "refill-reads")
	b.ReportMetric(float64(writes), "writes")
	b.ReportMetric(float64(hotWrites), "hot-writes")
	b.ReportMetric(float64(after.Repairs-before.Repairs), "repaired")
	b.ReportMetric(float64(ready)/float64(time.Millisecond), "ready-ms")
	b.ReportMetric(float64(after.Invalidations-before.Invalidations), "replayed")
	b.ReportMetric(float64(callsN["xrange"]+callsN["xrevrange"]-calls0["xrange"]-calls0["xrevrange"]), "xrange-calls")
	b.ReportMetric(float64(stats["xrange"]+stats["xrevrange"]-stats0["xrange"]-stats0["xrevrange"]), "xrange-µs")
	b.ReportMetric(float64(kept), "kept")
	b.ReportMetric(float64(stale), "stale")
}

// commandCalls returns how many times the servers at addrs have run each
// command (INFO commandstats, summed over the servers).
func commandCalls(b testing.TB, addrs []string) map[string]int64 {
	calls := make(map[string]int64)
	for _, info := range infoOf(b, addrs, "commandstats") {
		for line := range strings.Lines(info) {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
			if !ok || !strings.HasPrefix(line, "cmdstat_") {
				continue
			}
			_, v, _ := strings.Cut(rest, "calls=")
			v, _, _ = strings.Cut(v, ",")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("INFO commandstats: %q: %v", line, err)
			}
			calls[name] += n
		}
	}
	return calls
}
