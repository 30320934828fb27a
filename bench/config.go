package main

import (
	"runtime"
	"time"
)

// config holds the parameters of every scenario.
type config struct {
	instances int           // tiered.Cache instances, each with its own client
	duration  time.Duration // per timed measurement (localhit, remotehit, write, batch: per job, split in rounds)
	rounds    int           // rounds a timed measurement is split into; the report quotes medians

	warmKeys int // keys of localhit, remotehit and write

	zipfKeys      int           // keys drawn by zipf
	zipfLocalSize int           // LocalSize of each zipf instance
	zipfWorkers   int           // reading goroutines per instance
	zipfWarmup    time.Duration // reads before the counted period, at least…
	zipfWarmupMax time.Duration // …and until the local tiers are 90% full, at most this long

	stampedeCallers int           // goroutines that Fetch the cold key
	stampedeDelay   time.Duration // how long the loader sleeps

	leaseTTL        time.Duration // lease: LeaseTTL of the instance that waits on a dead holder's lease
	leaseTrials     int           // lease: dead-holder trials, one after another
	expiredLeaseTTL time.Duration // lease: LeaseTTL of the holder whose loader outlives it
	expiredTrials   int           // lease: expired-holder trials, all at once on keys of their own

	trials    int           // invalidation trials
	neverSeen time.Duration // an invalidation trial not seen within this counts as never seen

	// maxStaleness is HubOptions.MaxStaleness in stalehunt, nanosleep and
	// frozen (each also runs with it off, as a control). In stalehunt a read
	// is stale if older than a version acknowledged this long before it began.
	maxStaleness time.Duration
	settle       time.Duration // stalehunt: every instance must serve the last version this long after it was written

	hubCaches int           // hub: idle caches on one Hub (and made with tiered.New, the control)
	idleFor   time.Duration // hub: how long the process idles for each CPU figure

	pollPause time.Duration // nanosleep: B's poller sleeps this long (raw nanosleep) between polls

	frozenTrials      int           // frozen: trials with MaxStaleness on (a new B each); off runs once
	frozenCap         time.Duration // frozen: how long a trial waits for B to return the new value
	frozenHealthCheck time.Duration // frozen: B's HubOptions.HealthCheck

	lagWriteRate int           // lag: Sets per second, all instances together
	lagReaders   int           // lag: reading goroutines per instance
	lagControl   time.Duration // lag: how long the WireVersion 1 control runs

	outageBefore      time.Duration // outage: traffic before the server stops
	outageFor         time.Duration // outage: how long the server stays stopped
	outageAfter       time.Duration // outage: traffic once every instance has reconverged
	outageCap         time.Duration // outage: longest wait for reconvergence after the start
	outageStale       time.Duration // outage: Options.StaleIfError of the side with it on
	outageHealthCheck time.Duration // outage: HubOptions.HealthCheck
	outageBackoff     time.Duration // outage: HubOptions.MaxBackoff
	outageReadEvery   time.Duration // outage: each reader's pace (one call per this)
	outageWriteEvery  time.Duration // outage: the writer's pace (one Set per this)

	// separate gives the Go runtime GOMAXPROCS × instances Ps, as that
	// many separate processes would have between them, in the scenarios
	// whose goroutines spin on local hits in every instance at once (zipf,
	// stalehunt). With GOMAXPROCS Ps those goroutines hold every P, and the
	// network wake-ups of all instances wait for the scheduler's 10ms
	// preemption. Scenarios with fewer spinning goroutines than Ps keep
	// GOMAXPROCS: more Ps than CPUs only adds contention there.
	separate bool

	progress *progress // nil: silent
}

// defaultConfig is what `go run ./bench` uses without flags.
func defaultConfig() config {
	return config{
		instances:         3,
		duration:          2 * time.Second,
		rounds:            5,
		warmKeys:          1000,
		zipfKeys:          100_000,
		zipfLocalSize:     10_000,
		zipfWorkers:       4,
		zipfWarmup:        time.Second,
		zipfWarmupMax:     20 * time.Second,
		stampedeCallers:   200,
		stampedeDelay:     50 * time.Millisecond,
		leaseTTL:          200 * time.Millisecond,
		leaseTrials:       5,
		expiredLeaseTTL:   100 * time.Millisecond,
		expiredTrials:     100,
		trials:            500,
		neverSeen:         time.Second,
		maxStaleness:      5 * time.Millisecond,
		settle:            100 * time.Millisecond,
		hubCaches:         30,
		idleFor:           10 * time.Second,
		pollPause:         75 * time.Microsecond,
		frozenTrials:      5,
		frozenCap:         3 * time.Second,
		frozenHealthCheck: 10 * time.Second,
		lagWriteRate:      2000,
		lagReaders:        2,
		lagControl:        500 * time.Millisecond,
		outageBefore:      time.Second,
		outageFor:         2 * time.Second,
		outageAfter:       500 * time.Millisecond,
		outageCap:         10 * time.Second,
		outageStale:       10 * time.Second,
		outageHealthCheck: 200 * time.Millisecond,
		outageBackoff:     100 * time.Millisecond,
		outageReadEvery:   500 * time.Microsecond,
		outageWriteEvery:  20 * time.Millisecond,
		separate:          true,
	}
}

// separateProcs gives the runtime the Ps of cfg.instances processes (see
// config.separate) and returns a func that restores GOMAXPROCS.
func separateProcs(cfg config) func() {
	if !cfg.separate || cfg.instances < 2 {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev * cfg.instances)
	return func() { runtime.GOMAXPROCS(prev) }
}
