package main

import (
	"testing"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// lagConfig runs the lag scenario in well under a second.
func lagConfig() config {
	cfg := tinyConfig()
	cfg.duration = 300 * time.Millisecond
	cfg.lagControl = 100 * time.Millisecond
	cfg.lagWriteRate = 1000
	cfg.lagReaders = 1
	return cfg
}

// TestLagScenario runs the lag scenario on the embedded server, and on the
// one at REDIS_ADDR when it is set.
func TestLagScenario(t *testing.T) {
	cfg := lagConfig()
	onServers(t, "lag", cfg, func(t *testing.T, _ string, e *env, res result) {
		r := res.(*lagResult)
		m, c := r.Main, r.Control
		t.Logf("v2: %d Sets, %d reads, %d applied, %d without time; p50 %v p99 %v max %v; buckets %v",
			m.Writes, m.Reads, m.Applied, m.Unknown, m.P50, m.P99, m.Max, m.Buckets)
		t.Logf("v1: %d Sets, %d applied, %d without time", c.Writes, c.Applied, c.Unknown)
		sent := m.Writes * uint64(cfg.instances-1)
		if m.Writes == 0 || m.Reads == 0 || m.Applied == 0 {
			t.Fatalf("v2: %d Sets, %d reads, %d messages applied", m.Writes, m.Reads, m.Applied)
		}
		// Every Set's message reaches the other instances; the scenario
		// waits for the last ones (a second at most).
		if uint64(m.Applied) > sent || uint64(m.Applied) < sent*9/10 {
			t.Errorf("v2: %d messages applied of %d sent to others", m.Applied, sent)
		}
		if m.Unknown != 0 {
			t.Errorf("v2: %d messages without a send time, want 0", m.Unknown)
		}
		total := 0
		for _, n := range m.Buckets {
			total += n
		}
		if total != m.Applied-m.Unknown || len(m.Buckets) != len(lagBounds)+1 {
			t.Errorf("v2: histogram %v holds %d lags, want %d in %d buckets", m.Buckets, total, m.Applied, len(lagBounds)+1)
		}
		if !(0 < m.P50 && m.P50 <= m.P90 && m.P90 <= m.P99 && m.P99 <= m.P999 && m.P999 <= m.Max) {
			t.Errorf("v2: percentiles out of order: %v %v %v %v %v", m.P50, m.P90, m.P99, m.P999, m.Max)
		}
		if m.Max > 10*time.Second {
			t.Errorf("v2: a lag of %v", m.Max)
		}
		if c.Applied == 0 || c.Unknown != c.Applied {
			t.Errorf("v1 control: %d of %d messages without a send time, want all and some", c.Unknown, c.Applied)
		}
		if row := findRow(t, r, "WireVersion 2", "  without a send time"); !row.OK || row.Target != "0" {
			t.Errorf("v2 row %+v", row)
		}
		if row := findRow(t, r, "WireVersion 2", "  lag p99"); row.Target == "" || !row.RedisBound {
			t.Errorf("p99 row %+v, want a Redis-bound target", row)
		}
		if row := findRow(t, r, "WireVersion 1", "  without a send time"); !row.OK {
			t.Errorf("v1 row %+v", row)
		}
		findRow(t, r, "WireVersion 2", "  <50µs")
		findRow(t, r, "WireVersion 2", "  ≥100ms")
	})
}

func TestLagObserver(t *testing.T) {
	o := &lagObserver{}
	o.observe(tiered.Event{Kind: tiered.EventLocalHit, Duration: time.Second})
	o.observe(tiered.Event{Kind: tiered.EventInvalidation, Duration: 3 * time.Millisecond})
	o.observe(tiered.Event{Kind: tiered.EventInvalidation, Duration: -1})
	lags, unknown := o.take()
	if len(lags) != 1 || lags[0] != 3*time.Millisecond || unknown != 1 {
		t.Errorf("kept %v and %d unknown, want [3ms] and 1", lags, unknown)
	}
	if lags, unknown := o.take(); len(lags) != 0 || unknown != 0 {
		t.Errorf("after take: %v, %d", lags, unknown)
	}
}

func TestLagBuckets(t *testing.T) {
	for _, c := range []struct {
		lag  time.Duration
		want string
	}{
		{0, "<50µs"}, {49 * time.Microsecond, "<50µs"}, {50 * time.Microsecond, "<100µs"},
		{999 * time.Microsecond, "<1ms"}, {time.Millisecond, "<2.5ms"}, {99 * time.Millisecond, "<100ms"},
		{100 * time.Millisecond, "≥100ms"}, {time.Hour, "≥100ms"},
	} {
		if got := lagBucketLabel(lagBucket(c.lag)); got != c.want {
			t.Errorf("lag %v in bucket %q, want %q", c.lag, got, c.want)
		}
	}
}
