package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// maxStalenessLabel names a MaxStaleness setting.
func maxStalenessLabel(ms time.Duration) string {
	if ms < 0 {
		return "MaxStaleness off"
	}
	return "MaxStaleness " + ms.String()
}

// -------------------------------------------------------------- nanosleep

// Latencies summarizes invalidation trials.
type Latencies struct {
	Trials    int           `json:"trials"`
	NeverSeen int           `json:"never_seen"`
	Early     int           `json:"seen_before_ack"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
	// StaleFor is the longest time after A's Set returned at which a Get
	// on B that returned the old value began (0: none began after it).
	StaleFor time.Duration `json:"stale_for_max_ns"`
	Unproven uint64        `json:"b_reads_unproven"`

	lats []time.Duration
}

// add records a trial.
func (l *Latencies) add(t TrialResult) {
	l.Trials++
	l.StaleFor = max(l.StaleFor, t.StaleFor)
	switch {
	case !t.Seen:
		l.NeverSeen++
		return
	case t.Latency < 0:
		l.Early++
		t.Latency = 0
	}
	l.lats = append(l.lats, t.Latency)
}

// finish computes the percentiles.
func (l *Latencies) finish() {
	slices.Sort(l.lats)
	l.P50, l.P90, l.P99 = percentile(l.lats, 50), percentile(l.lats, 90), percentile(l.lats, 99)
	if len(l.lats) > 0 {
		l.Max = l.lats[len(l.lats)-1]
	}
}

// SleepySetting is one setting of the nanosleep scenario: GOMAXPROCS and
// how many goroutines poll between raw nanosleeps.
type SleepySetting struct {
	Procs   int       `json:"gomaxprocs"`
	Pollers int       `json:"pollers"`
	Fenced  Latencies `json:"max_staleness_on"`
	Off     Latencies `json:"max_staleness_off"`
}

// NanosleepResult is invalidation latency with B polled between raw
// nanosleeps, with MaxStaleness on and off.
type NanosleepResult struct {
	Pause        time.Duration   `json:"poll_pause_ns"`
	Raw          bool            `json:"raw_nanosleep"`
	MaxStaleness time.Duration   `json:"max_staleness_ns"`
	Limit        time.Duration   `json:"never_seen_after_ns"`
	Settings     []SleepySetting `json:"settings"`
}

// Nanosleep runs invalidation trials (see InvalidationProbe) on two pairs
// of instances, A and B each with a Hub of their own, one pair with
// MaxStaleness cfg.MaxStaleness and one with it off, alternating between
// the pairs. B is polled by a goroutine that sleeps cfg.PollPause in a raw
// nanosleep system call between two polls: such a goroutine keeps its P
// during the call, and the runtime hands the P on only when its monitor
// notices, which delays the goroutines the network wakes (the subscriber
// that applies invalidations among them). cfg.Trials trials per pair in
// each of two settings: GOMAXPROCS as it is with that one poller, then
// GOMAXPROCS 1 (a container with one CPU) with a second goroutine polling
// the same way, so that every P is held by a poller.
func Nanosleep(ctx context.Context, e *Env, cfg Config) (*NanosleepResult, error) {
	r := &NanosleepResult{Pause: cfg.PollPause, Raw: rawNanosleep, MaxStaleness: cfg.MaxStaleness, Limit: cfg.NeverSeen}
	var probes [2]*InvalidationProbe
	for i, ms := range []time.Duration{cfg.MaxStaleness, -1} {
		ins, err := NewHubInstances(ctx, e, 2, tiered.HubOptions{MaxStaleness: ms}, tiered.Options[string]{})
		if err != nil {
			return nil, err
		}
		p, err := NewInvalidationProbe(ctx, ins[0], ins[1], "sleepy:"+strconv.Itoa(i), cfg.NeverSeen)
		if err != nil {
			return nil, err
		}
		p.Pause = cfg.PollPause
		probes[i] = p
	}
	for _, set := range []SleepySetting{{Procs: runtime.GOMAXPROCS(0), Pollers: 1}, {Procs: 1, Pollers: 2}} {
		if err := sleepySetting(ctx, cfg, probes, &set); err != nil {
			return nil, err
		}
		r.Settings = append(r.Settings, set)
	}
	cfg.Progress.Done()
	return r, nil
}

// sleepySetting runs cfg.Trials trials on each probe with GOMAXPROCS
// set.Procs and set.Pollers-1 more goroutines polling both Bs between raw
// nanosleeps.
func sleepySetting(ctx context.Context, cfg Config, probes [2]*InvalidationProbe, set *SleepySetting) error {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(set.Procs))
	stop := spinners(set.Pollers-1, func(_ int, stop *atomic.Bool) error {
		for i := 0; !stop.Load(); i++ {
			p := probes[i%2]
			if _, err := p.B.Get(ctx, p.Key); err != nil {
				return err
			}
			nanosleep(cfg.PollPause)
		}
		return nil
	})
	u0 := [2]uint64{probes[0].B.Stats().Unproven, probes[1].B.Stats().Unproven}
	var err error
	for t := 0; t < cfg.Trials && err == nil; t++ {
		if t%25 == 0 {
			cfg.Progress.Update("nanosleep: GOMAXPROCS %d, %d pollers: trial %d/%d", set.Procs, set.Pollers, t+1, cfg.Trials)
		}
		for i, res := range []*Latencies{&set.Fenced, &set.Off} {
			var tr TrialResult
			if tr, err = probes[i].TrialDetail(ctx); err != nil {
				break
			}
			res.add(tr)
		}
	}
	if err := errors.Join(err, stop()); err != nil {
		return err
	}
	set.Fenced.Unproven = probes[0].B.Stats().Unproven - u0[0]
	set.Off.Unproven = probes[1].B.Stats().Unproven - u0[1]
	set.Fenced.finish()
	set.Off.finish()
	return nil
}

func (r *NanosleepResult) Name() string { return "nanosleep" }
func (r *NanosleepResult) Title() string {
	how := "raw nanosleep"
	if !r.Raw {
		how = "time.Sleep (no raw nanosleep on this OS)"
	}
	return fmt.Sprintf("nanosleep: A's Set returns → B's Get returns the new value, B polled between %v "+
		"sleeps in %s; %d trials each, %s and off, alternating", r.Pause, how, r.Settings[0].Fenced.Trials,
		maxStalenessLabel(r.MaxStaleness))
}
func (r *NanosleepResult) Rows() []Row {
	var rows []Row
	p99Max, maxMax := r.MaxStaleness+time.Millisecond, 2*r.MaxStaleness
	for i, set := range r.Settings {
		f, o := set.Fenced, set.Off
		pollers := "1 goroutine polls B"
		if set.Pollers > 1 {
			pollers = fmt.Sprintf("%d goroutines poll B", set.Pollers)
		}
		p99 := Row{Measure: "  p99", Tiered: dur(f.P99)}
		worst := Row{Measure: "  max", Tiered: dur(f.Max)}
		if i == 0 { // the setting the targets are set for; the other is harsher
			p99.Target, p99.OK, p99.RedisBound = "<= "+p99Max.String(), f.P99 <= p99Max, true
			worst.Target, worst.OK, worst.RedisBound = "<= "+maxMax.String(), f.Max <= maxMax, true
		}
		rows = append(rows,
			Section(fmt.Sprintf("GOMAXPROCS %d, %s between nanosleeps, %s:", set.Procs, pollers, maxStalenessLabel(r.MaxStaleness))),
			Row{Measure: "  p50 / p90", Tiered: dur(f.P50) + " / " + dur(f.P90)},
			p99, worst,
			Row{Measure: "  old value read after the ack, latest", Tiered: dur(f.StaleFor),
				Target: "<= " + r.MaxStaleness.String(), OK: f.StaleFor <= r.MaxStaleness, RedisBound: true},
			Row{Measure: "  never seen within " + r.Limit.String(), Tiered: strconv.Itoa(f.NeverSeen), Target: "0", OK: f.NeverSeen == 0},
			Row{Measure: "  B's reads sent to Redis unproven", Tiered: strconv.FormatUint(f.Unproven, 10)},
			Row{Measure: "  control, MaxStaleness off: p50 / p90", Tiered: dur(o.P50) + " / " + dur(o.P90)},
			Row{Measure: "  control, off: p99 / max", Tiered: dur(o.P99) + " / " + dur(o.Max)},
			Row{Measure: "  control, off: old value read after the ack, latest", Tiered: dur(o.StaleFor)},
			Row{Measure: "  control, off: never seen within " + r.Limit.String(), Tiered: strconv.Itoa(o.NeverSeen)},
		)
	}
	return rows
}
func (r *NanosleepResult) Notes() []string {
	var early []string
	for _, set := range r.Settings {
		early = append(early, fmt.Sprintf("%d on, %d off", set.Fenced.Early, set.Off.Early))
	}
	return []string{
		"each instance has a client and a Hub of its own; B's poll includes its read from Redis once the " +
			"invalidation is applied or the Hub can no longer prove its local tier fresh; with every P held by " +
			"a poller, that read's own reply waits for the scheduler too, so p99 and max can exceed " +
			"MaxStaleness while no read that began later than MaxStaleness after the ack returns the old value",
		"old value read after the ack, latest: when, after A's Set returned, the last Get on B that returned " +
			"the old value began (the staleness bound caps it at MaxStaleness)",
		"trials that saw the value before A's Set returned (counted as 0): " + strings.Join(early, "; "),
	}
}

// ----------------------------------------------------------------- frozen

// FrozenResult is how long B serves an old value once its pub/sub connection
// is frozen, with MaxStaleness on and off.
type FrozenResult struct {
	MaxStaleness time.Duration `json:"max_staleness_ns"`
	HealthCheck  time.Duration `json:"health_check_ns"`
	Cap          time.Duration `json:"cap_ns"`
	Fenced       []TrialResult `json:"max_staleness_on"` // per trial
	Off          []TrialResult `json:"max_staleness_off"`
}

// frozenTrial makes B, an instance with a Hub of its own (HealthCheck
// cfg.FrozenHealthCheck, MaxStaleness ms) whose client goes through proxy,
// lets it hold key's value, freezes its pub/sub connection, has A write a
// new value and measures how long B's Get keeps returning the old one, up
// to cfg.FrozenCap. It closes B.
func frozenTrial(ctx context.Context, e *Env, cfg Config, a *Instance[string], proxy *Proxy, ms time.Duration, key string) (TrialResult, error) {
	b, err := NewHubInstance(ctx, e, tiered.HubOptions{HealthCheck: cfg.FrozenHealthCheck, MaxStaleness: ms},
		func(o *redis.Options) { o.Network, o.Addr = "tcp", proxy.Addr() }, tiered.Options[string]{})
	if err != nil {
		return TrialResult{}, err
	}
	defer b.Close()
	p, err := NewInvalidationProbe(ctx, a, b, key, cfg.FrozenCap)
	if err != nil {
		return TrialResult{}, err
	}
	p.BeforeSet = func() error {
		if n := proxy.FreezePubSub(); n != 1 {
			return fmt.Errorf("bench: frozen: froze %d pub/sub connections, want 1", n)
		}
		return nil
	}
	return p.TrialDetail(ctx)
}

// Frozen runs cfg.FrozenTrials frozen-subscription trials with MaxStaleness
// cfg.MaxStaleness, then one with it off (which lasts cfg.FrozenCap: the
// health check, cfg.FrozenHealthCheck, comes later).
func Frozen(ctx context.Context, e *Env, cfg Config) (Result, error) {
	if e.opts.TLSConfig != nil {
		return Skipped{Scenario: "frozen", Reason: "the proxy cannot see SUBSCRIBE through TLS"}, nil
	}
	proxy, err := NewProxy(e.opts.Network, e.opts.Addr)
	if err != nil {
		return nil, err
	}
	if err := e.Track(proxy); err != nil {
		return nil, err
	}
	a, err := NewHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: cfg.MaxStaleness}, nil, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	r := &FrozenResult{MaxStaleness: cfg.MaxStaleness, HealthCheck: cfg.FrozenHealthCheck, Cap: cfg.FrozenCap}
	for i := range cfg.FrozenTrials {
		cfg.Progress.Update("frozen: %s, trial %d/%d", maxStalenessLabel(cfg.MaxStaleness), i+1, cfg.FrozenTrials)
		tr, err := frozenTrial(ctx, e, cfg, a, proxy, cfg.MaxStaleness, "frozen:on:"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		r.Fenced = append(r.Fenced, tr)
	}
	cfg.Progress.Update("frozen: MaxStaleness off, waiting up to %v", cfg.FrozenCap)
	tr, err := frozenTrial(ctx, e, cfg, a, proxy, -1, "frozen:off")
	if err != nil {
		return nil, err
	}
	r.Off = append(r.Off, tr)
	cfg.Progress.Done()
	return r, nil
}

// notSeen stands for a trial that never saw the new value, in summaries.
const notSeen = time.Duration(1<<63 - 1)

// summary returns the median and the max of the trials' latencies (never
// for a trial that did not see the new value), and the latest time after
// the ack at which a read that returned the old value began.
func (r *FrozenResult) summary(trials []TrialResult) (med, worst, staleFor time.Duration) {
	var lats []time.Duration
	for _, t := range trials {
		staleFor = max(staleFor, t.StaleFor)
		if t.Seen {
			lats = append(lats, max(t.Latency, 0))
		} else {
			lats = append(lats, notSeen)
		}
	}
	if len(lats) == 0 {
		return 0, 0, staleFor
	}
	slices.Sort(lats)
	return lats[(len(lats)-1)/2], lats[len(lats)-1], staleFor
}

func (r *FrozenResult) figure(d time.Duration) string {
	if d == notSeen {
		return "> " + r.Cap.String()
	}
	return dur(d)
}

func (r *FrozenResult) Name() string { return "frozen" }
func (r *FrozenResult) Title() string {
	return fmt.Sprintf("frozen: B's pub/sub connection frozen (a proxy drops its bytes; HealthCheck %v), then A's Set; "+
		"how long B's Get keeps returning the old value; %s (%d trials) and off",
		r.HealthCheck, maxStalenessLabel(r.MaxStaleness), len(r.Fenced))
}
func (r *FrozenResult) Rows() []Row {
	med, worst, staleFor := r.summary(r.Fenced)
	limit := r.MaxStaleness + time.Millisecond
	_, off, offStale := r.summary(r.Off)
	return []Row{
		{Measure: "A's Set returns → B's Get returns the new value: median", Tiered: r.figure(med)},
		{Measure: "A's Set returns → B's Get returns the new value: max", Tiered: r.figure(worst),
			Target: "<= " + limit.String(), OK: worst <= limit, RedisBound: true},
		{Measure: "old value read after the ack, latest", Tiered: dur(staleFor),
			Target: "<= " + r.MaxStaleness.String(), OK: worst != notSeen && staleFor <= r.MaxStaleness, RedisBound: true},
		{Measure: "  control, MaxStaleness off: Set → new value", Tiered: r.figure(off)},
		{Measure: "  control, off: old value read after the ack, latest", Tiered: dur(offStale)},
	}
}
func (r *FrozenResult) Notes() []string {
	return []string{
		"B has a client and a Hub of its own through a proxy that, once frozen, passes nothing on B's pub/sub " +
			"connection and leaves its other connections alone; B's poller reads in a tight loop; a new B per trial",
		fmt.Sprintf("with MaxStaleness off the old value is served until the health check notices (%v of silence "+
			"and %v more), so the wait is capped at %v", r.HealthCheck, r.HealthCheck, r.Cap),
	}
}
