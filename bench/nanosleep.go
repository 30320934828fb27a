package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// maxStalenessLabel names a MaxStaleness setting.
func maxStalenessLabel(ms time.Duration) string {
	if ms < 0 {
		return "MaxStaleness off"
	}
	return "MaxStaleness " + ms.String()
}

// pollSetting is one setting of the nanosleep scenario: GOMAXPROCS and
// how many goroutines poll between raw nanosleeps.
type pollSetting struct {
	Procs   int       `json:"gomaxprocs"`
	Pollers int       `json:"pollers"`
	Fenced  latencies `json:"max_staleness_on"`
	Off     latencies `json:"max_staleness_off"`
}

// nanosleepResult is invalidation latency with B polled between raw
// nanosleeps, with MaxStaleness on and off.
type nanosleepResult struct {
	Pause        time.Duration `json:"poll_pause_ns"`
	Raw          bool          `json:"raw_nanosleep"`
	MaxStaleness time.Duration `json:"max_staleness_ns"`
	Limit        time.Duration `json:"never_seen_after_ns"`
	Settings     []pollSetting `json:"settings"`
}

// nanosleepScenario runs invalidation trials (see invalidationProbe) on two pairs
// of instances, A and B each with a Hub of their own, one pair with
// MaxStaleness cfg.maxStaleness and one with it off, alternating between
// the pairs. B is polled by a goroutine that sleeps cfg.pollPause in a raw
// nanosleep system call between two polls: such a goroutine keeps its P
// during the call, and the runtime hands the P on only when its monitor
// notices, which delays the goroutines the network wakes (the subscriber
// that applies invalidations among them). cfg.trials trials per pair in
// each of two settings: GOMAXPROCS as it is with that one poller, then
// GOMAXPROCS 1 (a container with one CPU) with a second goroutine polling
// the same way, so that every P is held by a poller.
func nanosleepScenario(ctx context.Context, e *env, cfg config) (*nanosleepResult, error) {
	r := &nanosleepResult{Pause: cfg.pollPause, Raw: rawNanosleep, MaxStaleness: cfg.maxStaleness, Limit: cfg.neverSeen}
	var probes [2]*invalidationProbe
	for i, ms := range []time.Duration{cfg.maxStaleness, -1} {
		ins, err := newHubInstances(ctx, e, 2, tiered.HubOptions{MaxStaleness: ms}, tiered.Options[string]{})
		if err != nil {
			return nil, err
		}
		p, err := newInvalidationProbe(ctx, ins[0], ins[1], "sleepy:"+strconv.Itoa(i), cfg.neverSeen)
		if err != nil {
			return nil, err
		}
		p.pause = cfg.pollPause
		probes[i] = p
	}
	for _, set := range []pollSetting{{Procs: runtime.GOMAXPROCS(0), Pollers: 1}, {Procs: 1, Pollers: 2}} {
		if err := sleepySetting(ctx, cfg, probes, &set); err != nil {
			return nil, err
		}
		r.Settings = append(r.Settings, set)
	}
	cfg.progress.done()
	return r, nil
}

// sleepySetting runs cfg.trials trials on each probe with GOMAXPROCS
// set.Procs and set.Pollers-1 more goroutines polling both Bs between raw
// nanosleeps.
func sleepySetting(ctx context.Context, cfg config, probes [2]*invalidationProbe, set *pollSetting) error {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(set.Procs))
	var pollers crew
	for range set.Pollers - 1 {
		pollers.run(func() error {
			for i := 0; !pollers.done(); i++ {
				p := probes[i%2]
				if _, err := p.b.Get(ctx, p.key); err != nil {
					return err
				}
				nanosleep(cfg.pollPause)
			}
			return nil
		})
	}
	u0 := [2]uint64{probes[0].b.Stats().Unproven, probes[1].b.Stats().Unproven}
	var err error
	for t := 0; t < cfg.trials && err == nil; t++ {
		if t%25 == 0 {
			cfg.progress.update("nanosleep: GOMAXPROCS %d, %d pollers: trial %d/%d", set.Procs, set.Pollers, t+1, cfg.trials)
		}
		for i, res := range []*latencies{&set.Fenced, &set.Off} {
			var tr trialResult
			if tr, err = probes[i].trial(ctx); err != nil {
				break
			}
			res.add(tr)
		}
	}
	if err := errors.Join(err, pollers.finish()); err != nil {
		return err
	}
	set.Fenced.Unproven = probes[0].b.Stats().Unproven - u0[0]
	set.Off.Unproven = probes[1].b.Stats().Unproven - u0[1]
	set.Fenced.finish()
	set.Off.finish()
	return nil
}

func (r *nanosleepResult) name() string { return "nanosleep" }
func (r *nanosleepResult) title() string {
	how := "raw nanosleep"
	if !r.Raw {
		how = "time.Sleep (no raw nanosleep on this OS)"
	}
	return fmt.Sprintf("nanosleep: A's Set returns → B's Get returns the new value, B polled between %v "+
		"sleeps in %s; %d trials each, %s and off, alternating", r.Pause, how, r.Settings[0].Fenced.Trials,
		maxStalenessLabel(r.MaxStaleness))
}
func (r *nanosleepResult) rows() []row {
	var rows []row
	p99Max, maxMax := r.MaxStaleness+time.Millisecond, 2*r.MaxStaleness
	for i, set := range r.Settings {
		f, o := set.Fenced, set.Off
		pollers := "1 goroutine polls B"
		if set.Pollers > 1 {
			pollers = fmt.Sprintf("%d goroutines poll B", set.Pollers)
		}
		p99 := row{Measure: "  p99", Tiered: dur(f.P99)}
		worst := row{Measure: "  max", Tiered: dur(f.Max)}
		if i == 0 { // the setting the targets are set for; the other is harsher
			p99.Target, p99.OK, p99.RedisBound = "<= "+p99Max.String(), f.P99 <= p99Max, true
			worst.Target, worst.OK, worst.RedisBound = "<= "+maxMax.String(), f.Max <= maxMax, true
		}
		rows = append(rows,
			section(fmt.Sprintf("GOMAXPROCS %d, %s between nanosleeps, %s:", set.Procs, pollers, maxStalenessLabel(r.MaxStaleness))),
			row{Measure: "  p50 / p90", Tiered: dur(f.P50) + " / " + dur(f.P90)},
			p99, worst,
			row{Measure: "  old value read after the ack, latest", Tiered: dur(f.StaleFor),
				Target: "<= " + r.MaxStaleness.String(), OK: f.StaleFor <= r.MaxStaleness, RedisBound: true},
			row{Measure: "  never seen within " + r.Limit.String(), Tiered: strconv.Itoa(f.NeverSeen), Target: "0", OK: f.NeverSeen == 0},
			row{Measure: "  B's reads sent to Redis unproven", Tiered: strconv.FormatUint(f.Unproven, 10)},
			row{Measure: "  control, MaxStaleness off: p50 / p90", Tiered: dur(o.P50) + " / " + dur(o.P90)},
			row{Measure: "  control, off: p99 / max", Tiered: dur(o.P99) + " / " + dur(o.Max)},
			row{Measure: "  control, off: old value read after the ack, latest", Tiered: dur(o.StaleFor)},
			row{Measure: "  control, off: never seen within " + r.Limit.String(), Tiered: strconv.Itoa(o.NeverSeen)},
		)
	}
	return rows
}
func (r *nanosleepResult) notes() []string {
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
