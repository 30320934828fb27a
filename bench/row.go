package main

import (
	"fmt"
	"slices"
	"time"
)

// row is one line of a scenario's table.
type row struct {
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

	// serverWork marks a per-op figure (time, allocations, rate) that
	// includes the server's work: on the embedded server, which runs in this
	// process, its allocations and CPU time are counted in it, and the
	// report says so.
	serverWork bool
}

// section returns a row that heads the rows after it: a label alone.
func section(label string) row { return row{Measure: label} }

// isSection reports whether r is a label alone (see section).
func (r row) isSection() bool {
	return r.Tiered == "" && r.Baseline == "" && r.Ratio == "" && r.Target == ""
}

// status is PASS, MISS, "n/a (embedded)" or "" (no target).
func (r row) status(embedded bool) string {
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

// durOrNever is dur, or "never" for a negative duration.
func durOrNever(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return dur(d)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
