package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// lagTarget is the p99 invalidation lag the lag scenario asks of a real
// server: a Set's message applied by every other instance within 10ms.
const lagTarget = 10 * time.Millisecond

// lagBounds are the upper bounds of the histogram's buckets; the last
// bucket holds every lag at or above the last bound.
var lagBounds = []time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
}

// lagObserver, through its observe (an observerFunc), keeps the lag of every
// invalidation message its Hub applies, and counts those without a send
// time. Every other event returns at once: the Observer is called on the
// local-hit path too.
type lagObserver struct {
	mu      sync.Mutex
	lags    []time.Duration // guarded by mu
	unknown int             // guarded by mu: messages without a send time
}

func (o *lagObserver) observe(ev tiered.Event) {
	if ev.Kind != tiered.EventInvalidation {
		return
	}
	o.mu.Lock()
	if ev.Duration < 0 {
		o.unknown++
	} else {
		o.lags = append(o.lags, ev.Duration)
	}
	o.mu.Unlock()
}

// take returns what o has kept and empties it.
func (o *lagObserver) take() ([]time.Duration, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	lags, unknown := o.lags, o.unknown
	o.lags, o.unknown = nil, 0
	return lags, unknown
}

// wireRun is one run of the lag scenario: every instance writes and reads
// the same keys; each keeps the lag of the messages it applies.
type wireRun struct {
	WireVersion int           `json:"wire_version"`
	Instances   int           `json:"instances"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Writes      uint64        `json:"writes"`
	Reads       uint64        `json:"reads"`
	LocalHits   uint64        `json:"local_hits"`
	Applied     int           `json:"messages_applied"`
	Unknown     int           `json:"messages_without_send_time"`
	Buckets     []int         `json:"histogram"` // counts below each of lagBounds, then at or above the last
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	P99         time.Duration `json:"p99_ns"`
	P999        time.Duration `json:"p999_ns"`
	Max         time.Duration `json:"max_ns"`
}

// lagResult is the lag scenario: invalidation lag with the default wire
// version, and with version 1 publishers as the control.
type lagResult struct {
	Embedded bool    `json:"embedded"`
	Keys     int     `json:"keys"`
	Rate     int     `json:"writes_per_second"`
	Readers  int     `json:"readers_per_instance"`
	Main     wireRun `json:"wire_v2"`
	Control  wireRun `json:"wire_v1_control"`
}

// lag measures the lag of invalidation messages, from the publisher
// building one to another instance applying it, as the instances' Hubs
// observe it (tiered.EventInvalidation), while cfg.instances instances
// write cfg.lagWriteRate Sets a second between them and read the same keys
// (cfg.lagReaders goroutines each, mostly local hits) for cfg.duration;
// then the same for cfg.lagControl with WireVersion 1, whose messages carry
// no send time.
func lag(ctx context.Context, e *env, cfg config) (*lagResult, error) {
	ks := keys("lag:", cfg.warmKeys)
	if err := e.populate(ctx, ks, value); err != nil {
		return nil, err
	}
	r := &lagResult{Embedded: e.embedded, Keys: len(ks), Rate: cfg.lagWriteRate, Readers: cfg.lagReaders}
	var err error
	if r.Main, err = lagRun(ctx, e, cfg, ks, 2, cfg.duration); err != nil {
		return nil, err
	}
	if err := e.closeCaches(); err != nil {
		return nil, err
	}
	if r.Control, err = lagRun(ctx, e, cfg, ks, 1, cfg.lagControl); err != nil {
		return nil, err
	}
	cfg.progress.done()
	return r, nil
}

// lagRun runs the instances with wire version wire for d.
func lagRun(ctx context.Context, e *env, cfg config, ks []string, wire int, d time.Duration) (wireRun, error) {
	n := cfg.instances
	run := wireRun{WireVersion: wire, Instances: n}
	obs := make([]*lagObserver, n)
	ins := make([]*instance[string], n)
	for i := range ins {
		obs[i] = &lagObserver{}
		in, err := newHubInstance(ctx, e, tiered.HubOptions{Observer: observerFunc(obs[i].observe), WireVersion: wire}, nil,
			tiered.Options[string]{LocalSize: max(tiered.DefaultLocalSize, len(ks))})
		if err != nil {
			return run, err
		}
		ins[i] = in
	}
	for _, o := range obs {
		o.take() // nothing was written yet; start from empty all the same
	}
	hits0 := make([]uint64, n)
	for i, in := range ins {
		hits0[i] = in.Stats().LocalHits
	}

	var (
		c             crew
		writes, reads atomic.Uint64
	)
	// Each instance writes rate/n Sets a second, on a schedule, on keys
	// drawn at random.
	every := time.Duration(float64(time.Second) * float64(n) / float64(max(cfg.lagWriteRate, 1)))
	start := time.Now()
	for w, in := range ins {
		c.run(func() error {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			return c.paced(start.Add(time.Duration(w)*every/time.Duration(n)), every, func(i int) error {
				k := rng.IntN(len(ks))
				v := "lag " + strconv.Itoa(w) + "." + strconv.Itoa(i) + " " + value(k)
				if err := in.Set(ctx, ks[k], v); err != nil {
					return fmt.Errorf("lag: Set: %w", err)
				}
				writes.Add(1)
				return nil
			})
		})
		// Readers: bursts of Gets a millisecond apart, mostly local hits,
		// so that the process is busy but leaves the CPUs room.
		for r := range cfg.lagReaders {
			c.run(func() error {
				rng := rand.New(rand.NewPCG(uint64(w), uint64(r)+2))
				var n uint64
				defer func() { reads.Add(n) }()
				for !c.done() {
					for range 64 {
						if _, err := in.Get(ctx, ks[rng.IntN(len(ks))]); err != nil {
							return fmt.Errorf("lag: Get: %w", err)
						}
						n++
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			})
		}
	}
	stopTicker := cfg.progress.ticker(func() {
		cfg.progress.update("lag: WireVersion %d, %v of %v, %d Sets", wire,
			time.Since(start).Round(100*time.Millisecond), d, writes.Load())
	})
	c.sleep(ctx, d)
	err := c.finish()
	run.Elapsed = time.Since(start)
	stopTicker()
	if err != nil {
		return run, err
	}
	if err := ctx.Err(); err != nil {
		return run, err
	}
	// The last messages are on their way: wait until every instance has
	// applied each other's (Stats.Invalidations counts what applied), or
	// for a second at most.
	run.Writes, run.Reads = writes.Load(), reads.Load()
	want := run.Writes * uint64(n-1)
	_ = waitUntil(ctx, time.Second, func() bool {
		var got uint64
		for _, in := range ins {
			got += in.Stats().Invalidations
		}
		return got >= want
	})
	var all []time.Duration
	for i, o := range obs {
		lags, unknown := o.take()
		all = append(all, lags...)
		run.Unknown += unknown
		run.LocalHits += ins[i].Stats().LocalHits - hits0[i]
	}
	run.Applied = len(all) + run.Unknown
	slices.Sort(all)
	run.Buckets = make([]int, len(lagBounds)+1)
	for _, l := range all {
		run.Buckets[lagBucket(l)]++
	}
	run.P50, run.P90, run.P99 = percentile(all, 50), percentile(all, 90), percentile(all, 99)
	run.P999, run.Max = percentile(all, 99.9), percentile(all, 100)
	return run, nil
}

func (r *lagResult) name() string { return "lag" }
func (r *lagResult) title() string {
	return fmt.Sprintf("lag: invalidation lag, publisher's send time → applied by another instance, "+
		"%d instances, %d Sets/s in all", r.Main.Instances, r.Rate)
}

// lagBucket returns the index of the histogram bucket that holds lag l:
// that of the first bound above l.
func lagBucket(l time.Duration) int {
	b, _ := slices.BinarySearch(lagBounds, l+1)
	return b
}

// lagBucketLabel names bucket i of lagBounds.
func lagBucketLabel(i int) string {
	if i == len(lagBounds) {
		return "≥" + shortDur(lagBounds[i-1])
	}
	return "<" + shortDur(lagBounds[i])
}

// shortDur prints a round duration briefly: 50µs, 2.5ms, 100ms.
func shortDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + "ms"
	default:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', -1, 64) + "µs"
	}
}

// lagBarWidth is the longest bar of the histogram.
const lagBarWidth = 20

func (r *lagResult) rows() []row {
	m, c := r.Main, r.Control
	sent := func(run wireRun) uint64 { return run.Writes * uint64(max(run.Instances-1, 0)) }
	rows := []row{section(fmt.Sprintf("WireVersion 2 (default): %d Sets in %v, %d readers per instance "+
		"(%d reads, %.1f%% local hits); lag of each message applied:",
		m.Writes, m.Elapsed.Round(10*time.Millisecond), r.Readers, m.Reads, 100*safeDiv(m.LocalHits, m.Reads)))}
	timed := m.Applied - m.Unknown
	most := slices.Max(append([]int{1}, m.Buckets...))
	for i, n := range m.Buckets {
		// The bar comes first: the table collapses runs of spaces in a
		// cell, so only what starts a cell lines up.
		cell := "0"
		if n > 0 {
			cell = fmt.Sprintf("%s %d (%s)", strings.Repeat("#", (n*lagBarWidth+most-1)/most), n,
				pct(safeDiv(uint64(n), uint64(max(timed, 1)))))
		}
		rows = append(rows, row{Measure: "  " + lagBucketLabel(i), Tiered: cell})
	}
	rows = append(rows,
		row{Measure: "  messages applied", Tiered: fmt.Sprintf("%d of %d sent to others", m.Applied, sent(m))},
		row{Measure: "  without a send time", Tiered: strconv.Itoa(m.Unknown), Target: "0", OK: m.Unknown == 0 && m.Applied > 0},
		row{Measure: "  lag p50", Tiered: dur(m.P50)},
		row{Measure: "  lag p90", Tiered: dur(m.P90)},
		row{Measure: "  lag p99", Tiered: dur(m.P99), Target: "<= " + dur(lagTarget), OK: timed > 0 && m.P99 <= lagTarget, RedisBound: true},
		row{Measure: "  lag p99.9", Tiered: dur(m.P999)},
		row{Measure: "  lag max", Tiered: dur(m.Max)},
		section(fmt.Sprintf("WireVersion 1 publishers (control): %d Sets in %v:", c.Writes, c.Elapsed.Round(10*time.Millisecond))),
		row{Measure: "  messages applied", Tiered: fmt.Sprintf("%d of %d sent to others", c.Applied, sent(c))},
		row{Measure: "  without a send time", Tiered: fmt.Sprintf("%d of %d", c.Unknown, c.Applied),
			Target: "all", OK: c.Applied > 0 && c.Unknown == c.Applied},
	)
	return rows
}

func (r *lagResult) notes() []string {
	notes := []string{
		"lag is each receiving Hub's tiered.EventInvalidation Duration: from the publisher's time.Now() as it " +
			"built the message (before its Set's round trip) to this instance dropping the keys, by the wall " +
			"clock; the instances share one process and one clock, so there is no skew, but they also share " +
			"its scheduler (a message waits for its subscriber goroutine to run)",
		fmt.Sprintf("each instance writes %d Sets/s on a schedule on keys drawn from %d; readers do bursts "+
			"of 64 Gets 1ms apart; percentiles are nearest-rank over every message applied", r.Rate/max(r.Main.Instances, 1), r.Keys),
		"the control's publishers use HubOptions.WireVersion 1 (for rolling upgrades from older releases): " +
			"their messages carry no send time, so no lag can be observed; a receiver reports Duration < 0",
	}
	if r.Embedded {
		notes = append(notes, "on the embedded server, the lag includes miniredis running in this process")
	}
	return notes
}

// safeDiv is a/b, or 0 when b is 0.
func safeDiv(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
