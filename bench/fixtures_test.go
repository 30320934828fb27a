package main

import (
	"time"
)

// Results with fixed figures, as a run on this machine produced them (with
// the widest figures seen), so that the report's layout can be checked
// without running anything.

const (
	msec = time.Millisecond
	usec = time.Microsecond
)

// rounds returns a series of n samples, for the notes that count rounds.
func rounds(n int) []series { return []series{{Name: "fixed", Workers: 1, Samples: make([]sample, n)}} }

func fixedCalls(trips uint64, names map[string]uint64) calls {
	return calls{Trips: trips, Names: names}
}

func fixedTrials(lats ...time.Duration) []trialResult {
	var out []trialResult
	for _, l := range lats {
		out = append(out, trialResult{Latency: l, Seen: l >= 0, StaleFor: l / 2})
	}
	return out
}

func fixedLatencies(trials int, p50, p99, max time.Duration) latencies {
	return latencies{Trials: trials, Early: 6, P50: p50, P90: 2 * p50, P99: p99, Max: max, StaleFor: p50 / 3, Unproven: 645}
}

func fixedHunt(ms time.Duration, stale uint64) huntResult {
	return huntResult{MaxStaleness: ms, Readers: 2, PerReader: 2, Procs: 6, Elapsed: 300 * time.Millisecond,
		Writes: 516, WriterRate: 1716, PlainLoadedRate: 17370, PublishRate: 12236, LoadedRatio: 0.1, Ratio: 0.04,
		Reads: 5147552, RemoteReads: 848, Unproven: 480, Behind: 182614, Stale: stale, Worst: 4030 * usec,
		WakeP99: 5540 * usec, WakeMax: 10240 * usec}
}

func fixedSide(stale time.Duration) sideResult {
	s := sideResult{StaleIfError: stale, Readers: 3, StaleEvents: 19400, LoaderCalls: 1200,
		Misreported: 3, MisreportedOp: "Get", Stopping: msec, ServerUp: 500 * usec, Resubscribed: 48 * msec,
		LastFail: 418 * msec, Reconverge: 420 * msec, PerInstance: []time.Duration{400 * msec, 410 * msec, 420 * msec},
		WrongExamples:     []string{`instance 2, "outage:hot:7": served "outage:hot:7#12" stale, had returned version 13`},
		HeldErrorExamples: []string{`instance 0, Get "outage:held:17" begun 1.2ms after the stop, 0.3ms after Broken was observed (Subscribed true → false, 0 gaps): dial tcp 127.0.0.1:34349: connect: connection refused`}}
	s.Phases[phaseOutage] = readCounts{Calls: 11997, Keys: 19919, Values: 19400, Stale: 19400, Errors: 519,
		HeldKeys: 14956, HotKeys: 4963, HotErrors: 519}
	s.Phases[phaseAfter] = readCounts{Calls: 300, Keys: 404, Values: 401, Stale: 69, Errors: 3, HeldKeys: 300, HotKeys: 104}
	s.Phases[phaseResubscribed] = readCounts{Calls: 7000, Keys: 9144, Values: 9144, HeldKeys: 6870, HotKeys: 2274}
	s.WritesFailed[phaseOutage], s.WritesFailed[phaseAfter] = 100, 20
	if stale == 0 {
		s.StaleEvents, s.Misreported = 0, 5
		s.Phases[phaseOutage] = readCounts{Calls: 12006, Keys: 19935, Values: 1, Errors: 19934, HeldKeys: 14960,
			HeldErrors: 14959, HotKeys: 4975, HotErrors: 4975}
		s.Phases[phaseAfter] = readCounts{Calls: 250, Keys: 325, Values: 280, Errors: 45, HeldKeys: 240, HotKeys: 85}
	}
	return s
}

// fixedResults is one result of every scenario, and a skipped one.
func fixedResults(embedded bool) []result {
	buckets := make([]int, len(lagBounds)+1)
	copy(buckets, []int{0, 8, 354, 404, 227, 67, 62, 21, 3})
	return []result{
		&localHitResult{Keys: 1000, Procs: 2, TieredNs: 68.2, BareNs: 18.6, Ratio: 3.67, TieredParNs: 35.3,
			BareParNs: 23.7, ParRatio: 1.49, TieredSpeedUp: 1.93, BareSpeedUp: 0.78, Series: rounds(3)},
		&remoteHitResult{Keys: 1000, TieredNs: 45465.4, PlainNs: 26322.5, Ratio: 1.73, StoreNs: 41005, StoreRatio: 1.56,
			RemoteShare: 1, TripsPerGet: 1, TieredAllocs: 81.2, PlainAllocs: 20.01, Series: rounds(3),
			TieredCommand: "7120 (exec×7120 get×7120 multi×7120 pttl×7120)"},
		&writeResult{Instances: 3, TieredNs: 178754.6, PlainNs: 33965, Ratio: 5.26, StoreNs: 182639.2, StoreRatio: 5.38,
			PublishNs: 46424.5, PublishRatio: 1.37, Sets: 1824, TripsPerSet: 1, TieredAllocs: 836.48, PlainAllocs: 34,
			Commands: "1824 (evalsha×1824)", Series: rounds(3)},
		&batchResult{GetManyNs: 650500, GetsNs: 4790000, MGetNs: 75600, SpeedUp: 7.37, MGetRatio: 8.61, RemoteShare: 1,
			GetsShare: 1, TripsPerMany: 1, GetManyAllocs: 2666.87, MGetAllocs: 819.02,
			GetCommands: "495 (mget×495 pttl×49500)", SetManyNs: 849400, PipelineNs: 688300, SetRatio: 1.23, TripsPerSet: 1,
			SetCommands: "387 (exec×387 multi×387 publish×387 set×38700)", Series: rounds(3),
			Fetch: []fetchManyRound{{Trips: 3, Commands: "3 (eval×2 mget×1 pttl×100)", Loads: 1, Asked: 50, Stored: 50,
				Elapsed: 1350 * usec}, {Trips: 3, Loads: 1, Asked: 50, Stored: 50, Elapsed: 1400 * usec}}},
		&zipfResult{Keys: 100000, LocalSize: 10000, Instances: 3, Goroutines: 12, Warmup: time.Second,
			Elapsed: 306 * msec, Ops: 45516, OpsPerSec: 148873, LocalHits: 33433, RemoteHits: 12083, HitRatio: 0.735},
		&stampedeResult{Delay: 50 * msec, Cases: []stampedeCase{
			{Name: "(a) all on 1 instance", Callers: 200, Instances: 1, Leases: true, Loads: []uint64{1}, Total: 1,
				Values: 1, Calls: fixedCalls(3, map[string]uint64{"eval": 2, "mget": 1, "pttl": 1}), Wall: 51970 * usec},
			{Name: "(b) over 4 instances, leases on (default)", Callers: 200, Instances: 4, Leases: true,
				Loads: []uint64{0, 0, 1, 0}, Total: 1, Values: 1, LeaseWaits: 3,
				Calls: fixedCalls(12, map[string]uint64{"eval": 4, "evalsha": 1, "mget": 7, "pttl": 7}), Wall: 51830 * usec},
			{Name: "(c) over 4 instances, LeaseTTL -1 (off): control", Callers: 200, Instances: 4,
				Loads: []uint64{1, 1, 1, 1}, Total: 4, Values: 4,
				Calls: fixedCalls(7, map[string]uint64{"eval": 3, "mget": 4, "pttl": 4}), Wall: 51310 * usec},
		}},
		&leaseResult{LeaseTTL: 200 * msec, Takeovers: []time.Duration{244 * msec, 244 * msec, 245 * msec, 244 * msec, 244 * msec},
			Median: 244230 * usec, Worst: 244710 * usec, ExpiredTTL: 100 * msec,
			Expired: expiredCounts{Trials: 100, Gone: 100, ReturnedOwn: 100}},
		&invalidationResult{latencies: fixedLatencies(500, 75*usec, 139*usec, 4830*usec), Limit: time.Second},
		&staleResult{Grace: 5 * msec, Settle: 100 * msec, PlainRate: 38962, Fenced: fixedHunt(5*msec, 0), Off: fixedHunt(-1, 3)},
		&hubResult{Embedded: embedded, Keys: 1000, DefaultMaxSt: "10ms", HubGoroutines: 4,
			Hub: idleCost{How: "one Hub (NewHub, NewCache)", Caches: 30, PubSub: -1, PubSubSeen: 1, Goroutines: 3,
				Started: []string{"internal/invalidate.(*Subscriber).run ×1", "internal/invalidate.(*watchdog).run ×1",
					"internal/local.(*clock).run ×1"}, Ready: 3380 * usec, IdleFor: 10 * time.Second, IdleCPU: 0.0005},
			Own: idleCost{How: "tiered.New each", Caches: 30, PubSub: -1, PubSubSeen: 30, Goroutines: 90,
				Started: []string{"internal/invalidate.(*Subscriber).run ×30", "internal/invalidate.(*watchdog).run ×30",
					"internal/local.(*clock).run ×30"}, IdleFor: 10 * time.Second, IdleCPU: 0.0018},
			Alone: idleCost{How: "no cache", PubSub: -1, IdleFor: 10 * time.Second, IdleCPU: -1,
				IdleCPUNote: "bench: process CPU time is only measured on Linux"},
			OnNs: 67.9, OffNs: 36.7, BareNs: 18, OnRatio: 3.78, OffRatio: 2.04, OnReads: 4729000, OnUnproven: 4,
			Series: rounds(3)},
		&nanosleepResult{Pause: 75 * usec, Raw: true, MaxStaleness: 5 * msec, Limit: time.Second, Settings: []pollSetting{
			{Procs: 2, Pollers: 1, Fenced: fixedLatencies(500, 90*usec, 769*usec, 1260*usec), Off: fixedLatencies(500, 90*usec, 664*usec, 2970*usec)},
			{Procs: 1, Pollers: 2, Fenced: fixedLatencies(500, 100*usec, 657*usec, 3750*usec), Off: fixedLatencies(500, 142*usec, 598*usec, 5000*usec)},
		}},
		&frozenResult{MaxStaleness: 5 * msec, HealthCheck: 10 * time.Second, Cap: 3 * time.Second,
			Fenced: fixedTrials(14*usec, 3040*usec, 20*usec, 15*usec, 900*usec), Off: []trialResult{{StaleFor: 3 * time.Second}}},
		&lagResult{Embedded: embedded, Keys: 1000, Rate: 2000, Readers: 2,
			Main: wireRun{WireVersion: 2, Instances: 3, Elapsed: 310 * msec, Writes: 573, Reads: 19072, LocalHits: 15600,
				Applied: 1146, Buckets: buckets, P50: 352 * usec, P90: 1500 * usec, P99: 8290 * usec, P999: 11220 * usec, Max: 11250 * usec},
			Control: wireRun{WireVersion: 1, Instances: 3, Elapsed: 500 * msec, Writes: 1003, Applied: 2006, Unknown: 2006}},
		&outageResult{Server: "an embedded miniredis of its own at 127.0.0.1:34349", KeepsData: embedded,
			Before: time.Second, For: 2 * time.Second, HealthCheck: 200 * msec, MaxBackoff: 100 * msec,
			ReadEvery: 500 * usec, WriteEvery: 20 * msec, On: fixedSide(10 * time.Second), Off: fixedSide(0)},
		skipped{Scenario: "frozen", Reason: "the proxy cannot see SUBSCRIBE through TLS"},
	}
}

// fixedReport is a report of fixedResults.
func fixedReport(embedded bool) *report {
	r := &report{Server: "Redis at redis://default:xxxxx@cache.example.internal:6379/0 (redis_version 7.0.15)",
		Embedded: embedded, Namespace: "tiercache-bench-0123456789abcdef", Instances: 3, GOMAXPROCS: 2, NumCPU: 2,
		GoVersion: "go1.26.8 linux/amd64", Duration: 2 * time.Second, Rounds: 5, Separate: true,
		LoadStart: "0.41 0.48 0.34", LoadEnd: "0.80 0.56 0.37", Elapsed: 59600 * msec,
		Cleanup: "every key of tiercache-bench-0123456789abcdef deleted; caches, clients and server closed"}
	if embedded {
		r.Server = "embedded miniredis at 127.0.0.1:39245"
	}
	for _, res := range fixedResults(embedded) {
		r.add(res, 1500*msec)
	}
	return r
}
