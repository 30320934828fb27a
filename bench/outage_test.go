package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// outageConfig runs the outage scenario in a few seconds: two sides of
// 0.2s of traffic, a 0.5s outage, and up to a second or so (go-redis's dial
// probe) to reconverge.
func outageConfig() config {
	cfg := tinyConfig()
	cfg.instances = 2
	cfg.outageBefore = 200 * time.Millisecond
	cfg.outageFor = 500 * time.Millisecond
	cfg.outageAfter = 100 * time.Millisecond
	cfg.outageCap = 5 * time.Second
	cfg.outageStale = 10 * time.Second
	cfg.outageHealthCheck = 200 * time.Millisecond
	cfg.outageBackoff = 100 * time.Millisecond
	cfg.outageReadEvery = time.Millisecond
	cfg.outageWriteEvery = 20 * time.Millisecond
	return cfg
}

// TestOutageScenario runs the outage scenario on a miniredis of its own
// and, when REDIS_ADDR is set (the real-server suite), on a redis-server of
// its own: never on the server at REDIS_ADDR, whose env only says that the
// run is on a real server.
func TestOutageScenario(t *testing.T) {
	cfg := outageConfig()
	onServers(t, "outage", cfg, func(t *testing.T, name string, e *env, res result) {
		if s, ok := res.(skipped); ok {
			if name == "real" {
				t.Fatalf("outage skipped in the real-server suite: %s", s.Reason)
			}
			t.Skip(s.Reason)
		}
		r := res.(*outageResult)
		on, off := r.On, r.Off
		// Nothing reached the run's server: the scenario works on its own.
		if n, err := e.countKeys(context.Background()); err != nil || n != 0 {
			t.Errorf("%d keys in the run's namespace on the run's server (%v), want 0", n, err)
		}
		for _, s := range []sideResult{on, off} {
			t.Logf("StaleIfError %v on %s: phases %+v; wrong %d, stale with Redis answering %d, "+
				"stale events %d; stopping %v, up %v, resubscribed %v, last failure %v, reconverged %v %v",
				s.StaleIfError, r.Server, s.Phases, s.Wrong, s.Answered, s.StaleEvents,
				s.Stopping, s.ServerUp, s.Resubscribed, s.LastFail, s.Reconverge, s.PerInstance)
		}
		if want := name == "embedded"; r.KeepsData != want {
			t.Errorf("server %s keeps its data: %v, want %v", r.Server, r.KeepsData, want)
		}
		o := on.Phases[phaseOutage]
		// Held keys never fail in the outage, not even right as the
		// subscription breaks (the cache copies its local tier into the
		// suspect tier before it bypasses the local tier).
		if o.HeldKeys == 0 || o.HeldErrors != 0 {
			t.Errorf("StaleIfError on: %d errors of %d held keys read in the outage, want 0 of some: %q",
				o.HeldErrors, o.HeldKeys, on.HeldErrorExamples)
		}
		if o.Stale == 0 {
			t.Error("StaleIfError on: no stale value served in the outage")
		}
		if on.Wrong != 0 || on.Answered != 0 {
			t.Errorf("StaleIfError on: %d wrong stale values, %d served with Redis answering: %q",
				on.Wrong, on.Answered, on.WrongExamples)
		}
		// Stats.StaleServed and EventStale agree.
		staleTotal := 0
		for _, p := range on.Phases {
			staleTotal += p.Stale
		}
		if staleTotal != on.StaleEvents {
			t.Errorf("StaleIfError on: Stats.StaleServed counted %d, EventStale %d", staleTotal, on.StaleEvents)
		}
		offStale := 0
		for _, p := range off.Phases {
			offStale += p.Stale
		}
		if offStale != 0 || off.StaleEvents != 0 || off.Wrong != 0 {
			t.Errorf("StaleIfError off: %d stale values served (%d events), %d wrong", offStale, off.StaleEvents, off.Wrong)
		}
		if oo := off.Phases[phaseOutage]; oo.Errors == 0 || oo.Errors+oo.Values+oo.NotFound != oo.Keys {
			t.Errorf("StaleIfError off: %d errors, %d values, %d not found of %d keys read in the outage",
				oo.Errors, oo.Values, oo.NotFound, oo.Keys)
		}
		for _, s := range []sideResult{on, off} {
			if s.Reconverge < 0 || s.Resubscribed < 0 {
				t.Errorf("StaleIfError %v: never reconverged within %v (resubscribed %v)", s.StaleIfError, cfg.outageCap, s.Resubscribed)
			}
			if s.WritesFailed[phaseOutage] == 0 {
				t.Errorf("StaleIfError %v: no Set failed in the outage", s.StaleIfError)
			}
		}
		for _, m := range []string{"  outage: stale values served",
			"  wrong stale values", "  stale though Redis answered", "  start → reconverged"} {
			if row := findRow(t, r, "StaleIfError 10s", m); row.Target == "" || !row.OK {
				t.Errorf("StaleIfError on: row %+v, want a target met", row)
			}
		}
		for _, m := range []string{"  outage: errors", "  stale values served"} {
			if row := findRow(t, r, "StaleIfError 0", m); row.Target == "" || !row.OK {
				t.Errorf("StaleIfError off: row %+v, want a target met", row)
			}
		}
	})
}

func TestVersioned(t *testing.T) {
	if v := versionOf(versioned("outage:hot:3", 42)); v != 42 {
		t.Errorf("versionOf(versioned(_, 42)) = %d", v)
	}
	for _, s := range []string{"", "plain", "k#", "k#x"} {
		if v := versionOf(s); v != -1 {
			t.Errorf("versionOf(%q) = %d, want -1", s, v)
		}
	}
}

// TestOutageSkipsWithoutRedisServer: on a real server, with no redis-server
// binary to start one of its own, the scenario skips rather than stop the
// run's server. (The env is never dialed: the scenario uses only its
// namespace and kind.)
func TestOutageSkipsWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	e := &env{namespace: "tiercache-bench-test"}
	res, err := runScenario(context.Background(), e, outageConfig(), "outage")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := res.(skipped); !ok || !strings.Contains(s.Reason, "redis-server") {
		t.Errorf("outage without redis-server: %T %+v, want Skipped naming redis-server", res, res)
	}
}
