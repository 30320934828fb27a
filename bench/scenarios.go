package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config holds the parameters of every scenario.
type Config struct {
	Instances int           // tiered.Cache instances, each with its own client
	Duration  time.Duration // per timed measurement (localhit, remotehit, write: per job, split in Rounds)
	Rounds    int           // rounds a timed measurement is split into; the report quotes medians

	WarmKeys int // keys of localhit, remotehit and write

	ZipfKeys      int           // keys drawn by zipf
	ZipfLocalSize int           // LocalSize of each zipf instance
	ZipfWorkers   int           // reading goroutines per instance
	ZipfWarmup    time.Duration // reads before the counted period, at least…
	ZipfWarmupMax time.Duration // …and until the local tiers are 90% full, at most this long

	StampedeCallers int           // goroutines that Fetch the cold key
	StampedeDelay   time.Duration // how long the loader sleeps

	LeaseTTL        time.Duration // lease: LeaseTTL of the instance that waits on a dead holder's lease
	LeaseTrials     int           // lease: dead-holder trials, one after another
	ExpiredLeaseTTL time.Duration // lease: LeaseTTL of the holder whose loader outlives it
	ExpiredTrials   int           // lease: expired-holder trials, all at once on keys of their own

	Trials    int           // invalidation trials
	NeverSeen time.Duration // an invalidation trial not seen within this counts as never seen

	// MaxStaleness is HubOptions.MaxStaleness in stalehunt, nanosleep and
	// frozen (each also runs with it off, as a control). In stalehunt a read
	// is stale if older than a version acknowledged this long before it began.
	MaxStaleness time.Duration
	Settle       time.Duration // stalehunt: every instance must serve the last version this long after it was written

	HubCaches int           // hub: idle caches on one Hub (and made with tiered.New, the control)
	IdleFor   time.Duration // hub: how long the process idles for each CPU figure

	PollPause time.Duration // nanosleep: B's poller sleeps this long (raw nanosleep) between polls

	FrozenTrials      int           // frozen: trials with MaxStaleness on (a new B each); off runs once
	FrozenCap         time.Duration // frozen: how long a trial waits for B to return the new value
	FrozenHealthCheck time.Duration // frozen: B's HubOptions.HealthCheck

	LagWriteRate int           // lag: Sets per second, all instances together
	LagReaders   int           // lag: reading goroutines per instance
	LagControl   time.Duration // lag: how long the WireVersion 1 control runs

	OutageBefore      time.Duration // outage: traffic before the server stops
	OutageFor         time.Duration // outage: how long the server stays stopped
	OutageAfter       time.Duration // outage: traffic once every instance has reconverged
	OutageCap         time.Duration // outage: longest wait for reconvergence after the start
	OutageStale       time.Duration // outage: Options.StaleIfError of the side with it on
	OutageHealthCheck time.Duration // outage: HubOptions.HealthCheck
	OutageBackoff     time.Duration // outage: HubOptions.MaxBackoff
	OutageReadEvery   time.Duration // outage: each reader's pace (one call per this)
	OutageWriteEvery  time.Duration // outage: the writer's pace (one Set per this)

	// Separate gives the Go runtime GOMAXPROCS × Instances Ps, as that
	// many separate processes would have between them, in the scenarios
	// whose goroutines spin on local hits in every instance at once (zipf,
	// stalehunt). With GOMAXPROCS Ps those goroutines hold every P, and the
	// network wake-ups of all instances wait for the scheduler's 10ms
	// preemption. Scenarios with fewer spinning goroutines than Ps keep
	// GOMAXPROCS: more Ps than CPUs only adds contention there.
	Separate bool

	Progress *Progress // nil: silent
}

// DefaultConfig is what `go run ./bench` uses without flags.
func DefaultConfig() Config {
	return Config{
		Instances:         3,
		Duration:          2 * time.Second,
		Rounds:            5,
		WarmKeys:          1000,
		ZipfKeys:          100_000,
		ZipfLocalSize:     10_000,
		ZipfWorkers:       4,
		ZipfWarmup:        time.Second,
		ZipfWarmupMax:     20 * time.Second,
		StampedeCallers:   200,
		StampedeDelay:     50 * time.Millisecond,
		LeaseTTL:          200 * time.Millisecond,
		LeaseTrials:       5,
		ExpiredLeaseTTL:   100 * time.Millisecond,
		ExpiredTrials:     100,
		Trials:            500,
		NeverSeen:         time.Second,
		MaxStaleness:      5 * time.Millisecond,
		Settle:            100 * time.Millisecond,
		HubCaches:         30,
		IdleFor:           10 * time.Second,
		PollPause:         75 * time.Microsecond,
		FrozenTrials:      5,
		FrozenCap:         3 * time.Second,
		FrozenHealthCheck: 10 * time.Second,
		LagWriteRate:      2000,
		LagReaders:        2,
		LagControl:        500 * time.Millisecond,
		OutageBefore:      time.Second,
		OutageFor:         2 * time.Second,
		OutageAfter:       500 * time.Millisecond,
		OutageCap:         10 * time.Second,
		OutageStale:       10 * time.Second,
		OutageHealthCheck: 200 * time.Millisecond,
		OutageBackoff:     100 * time.Millisecond,
		OutageReadEvery:   500 * time.Microsecond,
		OutageWriteEvery:  20 * time.Millisecond,
		Separate:          true,
	}
}

// separateProcs gives the runtime the Ps of cfg.Instances processes (see
// Config.Separate) and returns a func that restores GOMAXPROCS.
func separateProcs(cfg Config) func() {
	if !cfg.Separate || cfg.Instances < 2 {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev * cfg.Instances)
	return func() { runtime.GOMAXPROCS(prev) }
}

// ScenarioNames lists every scenario, in the order they run.
var ScenarioNames = []string{"localhit", "remotehit", "write", "batch", "zipf", "stampede", "lease", "invalidation",
	"stalehunt", "hub", "nanosleep", "frozen", "lag", "outage"}

// RunScenario runs one scenario by name. Every cache it opens is closed
// before it returns.
func RunScenario(ctx context.Context, e *Env, cfg Config, name string) (Result, error) {
	if (name == "invalidation" || name == "stalehunt" || name == "lag") && cfg.Instances < 2 {
		return Skipped{Scenario: name, Reason: "needs -instances >= 2"}, nil
	}
	defer e.CloseCaches()
	switch name {
	case "localhit":
		return LocalHit(ctx, e, cfg)
	case "remotehit":
		return RemoteHit(ctx, e, cfg)
	case "write":
		return Write(ctx, e, cfg)
	case "batch":
		return Batch(ctx, e, cfg)
	case "zipf":
		return Zipf(ctx, e, cfg)
	case "stampede":
		return Stampede(ctx, e, cfg)
	case "lease":
		return Lease(ctx, e, cfg)
	case "invalidation":
		return Invalidation(ctx, e, cfg)
	case "stalehunt":
		return StaleHunt(ctx, e, cfg)
	case "hub":
		return Hub(ctx, e, cfg)
	case "nanosleep":
		return Nanosleep(ctx, e, cfg)
	case "frozen":
		return Frozen(ctx, e, cfg)
	case "lag":
		return Lag(ctx, e, cfg)
	case "outage":
		return Outage(ctx, e, cfg)
	}
	return nil, fmt.Errorf("bench: unknown scenario %q (have %s)", name, strings.Join(ScenarioNames, ", "))
}

// Result is what a scenario reports: a table of figures, each with its
// baseline and target where it has them.
type Result interface {
	Name() string
	Title() string
	Rows() []Row
	Notes() []string
}

// Skipped is the result of a scenario that could not run.
type Skipped struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"skipped"`
}

func (s Skipped) Name() string    { return s.Scenario }
func (s Skipped) Title() string   { return s.Scenario + ": skipped, " + s.Reason }
func (s Skipped) Rows() []Row     { return nil }
func (s Skipped) Notes() []string { return nil }

// Row is one line of a scenario's table.
type Row struct {
	Measure  string `json:"measure"`
	Tiered   string `json:"tiercache"`
	Baseline string `json:"baseline,omitempty"`
	Ratio    string `json:"ratio,omitempty"`
	Target   string `json:"target,omitempty"`
	// OK says whether the target is met (meaningless without a Target).
	OK bool `json:"ok"`
	// RedisBound marks a target that measures the Redis server as much as
	// tiercache; on the embedded server it is not judged.
	RedisBound bool `json:"redis_bound,omitempty"`
}

// Section returns a row that heads the rows after it: a label alone.
func Section(label string) Row { return Row{Measure: label} }

// IsSection reports whether r is a label alone (see Section).
func (r Row) IsSection() bool {
	return r.Tiered == "" && r.Baseline == "" && r.Ratio == "" && r.Target == ""
}

// Status is PASS, MISS, "n/a (embedded)" or "" (no target).
func (r Row) Status(embedded bool) string {
	switch {
	case r.Target == "":
		return ""
	case r.RedisBound && embedded:
		return "n/a (embedded)"
	case r.OK:
		return "PASS"
	}
	return "MISS"
}

// keys returns prefix0 … prefix(n-1).
func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// value returns a 64-byte value for key i.
func value(i int) string {
	s := "value-" + strconv.Itoa(i) + "-"
	return s + strings.Repeat("x", 64-len(s))
}

// ------------------------------------------------------------- formatting

func ns(v float64) string { return fmt.Sprintf("%.1f", v) }

func ratio(v float64) string { return fmt.Sprintf("%.2fx", v) }

func allocs(v float64) string { return fmt.Sprintf("%.2f", v) }

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// dur prints a duration in µs with one decimal, from 1ms in ms with two,
// from 1s in s with two.
func dur(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	if d >= time.Millisecond {
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
