package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// windows sums up the outage's calls in the two windows StaleIfError
// bounds, for one side.
type windows struct {
	heldKeys, heldErrs int // held keys read while every reader's values were younger than StaleIfError
	lateCalls, late    int // calls begun once they were older, and the values those served stale
}

// windows judges each call begun in the outage against what its reader
// had seen before it. What a reader held was last known current no earlier
// than MaxStaleness before its last local hit (that hit's proof of
// freshness), and no later than its first call that found it unsubscribed
// (it set its local tier aside before it switched). Suspect values expire
// on the local tiers' clock, which ticks every millisecond and lags by as
// long as its goroutine waits for a CPU: the margin is that tick and the
// longest such wait measured meanwhile.
func (sd *side) windows() windows {
	var w windows
	margin := int64(time.Millisecond + sd.wake)
	for _, rd := range sd.readers {
		for _, c := range rd.outage {
			if c.start < c.lastHit-int64(tiered.DefaultMaxStaleness)+int64(sd.stale)-margin {
				w.heldKeys, w.heldErrs = w.heldKeys+c.heldKeys, w.heldErrs+c.heldErrs
			}
			if c.unsub != 0 && c.start >= c.unsub+int64(sd.stale)+margin {
				w.lateCalls, w.late = w.lateCalls+1, w.late+c.stale
			}
		}
	}
	return w
}

// check asserts what the side promises (see TestOutage).
func (sd *side) check(t *testing.T) {
	t.Helper()
	stale, wrong, answered, events := 0, 0, 0, int64(0)
	for ph := range nPhases {
		stale += sd.total(ph).stale
	}
	for _, rd := range sd.readers {
		wrong, answered, events = wrong+rd.wrong, answered+rd.answered, events+rd.n.staleKeys.Load()
		for _, e := range rd.examples {
			t.Logf("wrong stale value: %s", e)
		}
	}
	if int64(stale) != events {
		t.Errorf("Stats.StaleServed counted %d stale values, EventStale %d", stale, events)
	}
	o := sd.total(phaseOutage)
	if sd.stale > 0 {
		w := sd.windows()
		if w.heldKeys == 0 || w.heldErrs != 0 {
			t.Errorf("%d of %d held keys read in the outage within StaleIfError failed, want 0 of some", w.heldErrs, w.heldKeys)
		}
		if w.lateCalls == 0 || w.late != 0 {
			t.Errorf("%d calls begun in the outage once StaleIfError had passed served %d values stale, want none of some",
				w.lateCalls, w.late)
		}
		if o.stale == 0 || wrong != 0 || answered != 0 {
			t.Errorf("%d values served stale in the outage, %d of them not the newest their reader had returned, "+
				"%d by calls that Redis answered; want some, 0, 0", o.stale, wrong, answered)
		}
	} else if stale != 0 || o.errs == 0 || o.errs+o.values+o.notFound != o.keys {
		t.Errorf("StaleIfError off: %d stale values; in the outage %d errors, %d values, %d not found of %d keys",
			stale, o.errs, o.values, o.notFound, o.keys)
	}
	if sd.writesFailed == 0 {
		t.Error("no Set failed in the outage: the server did not stop")
	}
	booted := time.Duration(sd.up - sd.start)
	if r := sd.reconverged(); r < 0 || r > booted+reconvergeLimit {
		t.Errorf("the readers read the newest write %v after the server started again (-1: not all within %v), "+
			"want at most %v once it answered, %v later", r, booted+2*reconvergeLimit, reconvergeLimit, booted)
	}
	t.Logf("StaleIfError %v: %+v; longest wake-up of a 1ms sleep %s", sd.stale, sd.windows(), ms(sd.wake))
}

// outageTable lays out what both sides saw, for the README.
func outageTable(on, off *side) string {
	var b strings.Builder
	b.WriteString(fmt.Sprintf("| stopped for %v under traffic | `StaleIfError: %v` | off |\n|---|---|---|\n", outageFor, on.stale))
	line := func(label string, f func(*side) string) {
		b.WriteString("| " + label + " | " + f(on) + " | " + f(off) + " |\n")
	}
	line("keys read in the outage (calls)", func(sd *side) string {
		o := sd.total(phaseOutage)
		return fmt.Sprintf("%d (%d)", o.keys, o.calls)
	})
	line("held keys read within `StaleIfError`: errors", func(sd *side) string {
		if sd.stale == 0 {
			return "–"
		}
		w := sd.windows()
		return fmt.Sprintf("%d of %d", w.heldErrs, w.heldKeys)
	})
	line("values served stale in the outage", func(sd *side) string {
		return fmt.Sprint(sd.total(phaseOutage).stale)
	})
	line("values served stale once older than `StaleIfError`", func(sd *side) string {
		if sd.stale == 0 {
			return "–"
		}
		w := sd.windows()
		return fmt.Sprintf("%d, in %d calls", w.late, w.lateCalls)
	})
	line("a call in the outage: p50 / p99", func(sd *side) string {
		o := sd.total(phaseOutage)
		return ms(o.lats[len(o.lats)/2]) + " / " + ms(o.lats[len(o.lats)*99/100])
	})
	line("errors in the first second after the restart", func(sd *side) string {
		f := sd.total(phaseFirst)
		return fmt.Sprintf("%d of %d keys", f.errs, f.keys)
	})
	line("restart → every instance subscribed", func(sd *side) string { return ms(sd.resubscribed()) })
	line("restart → every reader reads the newest write", func(sd *side) string { return ms(sd.reconverged()) })
	return b.String()
}
