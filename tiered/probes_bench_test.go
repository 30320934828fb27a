package tiered_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The probes below measure behaviours that the figures of issues 20-22
// turned up, and log what they find (see docs/fleet.md and the figures'
// report). Run: TIERCACHE_PROBES=1 go test -count 1 -run Probe -v ./tiered/

// In Tracking mode, a writer's own Set is dropped from its local tier by
// the tracking invalidation of its own write.
func TestProbeTrackingEcho(t *testing.T) {
	probing(t)
	s := redistest.NewReal(t)
	for _, hub := range []tiered.HubOptions{{}, {Tracking: true}, {Tracking: true, TrackingOnly: true}} {
		w := newInstanceWith(t, s, fmt.Sprintf("w%v%v", hub.Tracking, hub.TrackingOnly), tiered.Options[string]{Namespace: fmt.Sprintf("echo%v%v", hub.Tracking, hub.TrackingOnly)}, instanceConfig{hub: hub})
		hits := 0
		for i := range 100 {
			if err := w.Set(bg, "k", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
			h0 := w.Stats().LocalHits
			if _, err := w.Get(bg, "k"); err != nil {
				t.Fatal(err)
			}
			if w.Stats().LocalHits > h0 {
				hits++
			}
		}
		t.Logf("%+v: %d of 100 Gets 2ms after the writer's own Set were local hits; tracked %d", hub, hits, w.Stats().Tracked)
	}
}

// A v3 reader beside a v2 writer and a v3 writer (a rolling upgrade): each
// v2 write takes a position in the log without carrying it, so the next v3
// message shows a gap, which every v3 reader reads back from the log.
func TestProbeMixedWireGaps(t *testing.T) {
	probing(t)
	s := redistest.NewReal(t)
	w2 := newInstanceWith(t, s, "w2", tiered.Options[string]{}, instanceConfig{hub: tiered.HubOptions{WireVersion: 2}})
	w3 := newInstanceWith(t, s, "w3", tiered.Options[string]{}, instanceConfig{})
	var rs []*instance[string]
	for i := range 5 {
		rs = append(rs, newInstanceWith(t, s, fmt.Sprint("r", i), tiered.Options[string]{}, instanceConfig{}))
	}
	c0 := commandCallsT(t, s.Addr)
	for i := range 100 {
		if err := w2.Set(bg, fmt.Sprint("a", i), "x"); err != nil {
			t.Fatal(err)
		}
		if err := w3.Set(bg, fmt.Sprint("b", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	applied(t, 200, rs...)
	time.Sleep(100 * time.Millisecond)
	c1 := commandCallsT(t, s.Addr)
	t.Logf("200 writes (100 by a v2 writer, 100 by a v3 writer), 5 v3 readers (6 Hubs that repair, with the v3 writer's): XRANGE calls %d, XREVRANGE %d; reader 0 stats %+v",
		c1["xrange"]-c0["xrange"], c1["xrevrange"]-c0["xrevrange"], rs[0].Stats())
}

func commandCallsT(t *testing.T, addr string) map[string]int64 {
	return commandCalls(t, []string{addr})
}

// probing skips t unless TIERCACHE_PROBES is set: the probes measure and
// log what they find, they assert nothing, and CI does not run them.
func probing(t *testing.T) {
	t.Helper()
	if os.Getenv("TIERCACHE_PROBES") == "" {
		t.Skip("a probe: set TIERCACHE_PROBES=1 to run it")
	}
}
