package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// render prints rep as the command does: header, scenarios, summary and
// cleanup line.
func render(rep *report) string {
	var b strings.Builder
	rep.printHeader(&b)
	for _, s := range rep.Scenarios {
		printScenario(&b, s)
	}
	rep.printSummary(&b)
	printWrapped(&b, "cleanup: "+rep.Cleanup, "", "  ")
	return b.String()
}

// checkWidth renders rep and fails t if a line is wider than reportWidth
// or the summary line is missing.
func checkWidth(t *testing.T, rep *report) {
	t.Helper()
	out := render(rep)
	checkLines(t, out)
	if !strings.Contains(out, "\n== ") || !strings.Contains(out, " targets pass") {
		t.Errorf("report has no summary line:\n%s", out)
	}
	if testing.Verbose() {
		t.Log("\n" + out)
	}
}

// checkLines fails t for each line of out wider than reportWidth.
func checkLines(t *testing.T, out string) {
	t.Helper()
	for l := range strings.Lines(out) {
		l = strings.TrimSuffix(l, "\n")
		if n := width(l); n > reportWidth {
			t.Errorf("line of %d columns, want <= %d: %q", n, reportWidth, l)
		}
	}
}

// findRow returns the row of r whose Measure is measure, after the section
// whose label starts with section ("" for the first match anywhere).
func findRow(t *testing.T, r result, section, measure string) row {
	t.Helper()
	in := section == ""
	for _, row := range r.rows() {
		if row.isSection() {
			in = strings.HasPrefix(row.Measure, section)
			continue
		}
		if in && row.Measure == measure {
			return row
		}
	}
	t.Fatalf("%s: no row %q after %q", r.name(), measure, section)
	return row{}
}

// TestReportWidth renders the report of fixed results, on the embedded
// server and on a real one, and fails on any line wider than 100 columns.
func TestReportWidth(t *testing.T) {
	for _, embedded := range []bool{true, false} {
		checkWidth(t, fixedReport(embedded))
	}
}

// TestSummaryLine checks the summary line of the fixed results: one line
// (wrapped only past 100 columns) with the count and every miss by name.
func TestSummaryLine(t *testing.T) {
	rep := fixedReport(true)
	v := rep.verdict()
	want := []string{`localhit "ns/op, 1 goroutine"`, `zipf "local hit ratio"`,
		`hub "local hit ns/op, MaxStaleness 10ms (default)"`, `hub "local hit ns/op, MaxStaleness off"`}
	if strings.Join(v.missed, "|") != strings.Join(want, "|") {
		t.Errorf("missed %q, want %q", v.missed, want)
	}
	line := v.line()
	if w := "== 33 of 37 targets pass, 4 missed: " + strings.Join(want, ", ") +
		" (19 more n/a on the embedded server)"; line != w {
		t.Errorf("summary line\n%s\nwant\n%s", line, w)
	}
	var b strings.Builder
	rep.printSummary(&b)
	if !strings.Contains(strings.ReplaceAll(b.String(), "\n   ", " "), line) {
		t.Errorf("printSummary wrote %q, want the line %q wrapped", b.String(), line)
	}
	checkLines(t, b.String())

	// On a real server the Redis-bound targets are judged too; the misses
	// of a section are named after its short label.
	real := fixedReport(false).verdict()
	for _, name := range []string{`invalidation "max"`, `stalehunt "MaxStaleness 5ms, writer Sets/s vs SETs/s, same readers"`} {
		if !strings.Contains(real.line(), name) {
			t.Errorf("real-server summary %q does not name %s", real.line(), name)
		}
	}
	if real.unjudged != 0 || strings.Contains(real.line(), "n/a") {
		t.Errorf("real-server summary %q: %d unjudged", real.line(), real.unjudged)
	}
	if got := (verdict{passed: 3}).line(); got != "== 3 of 3 targets pass" {
		t.Errorf("all passed: %q", got)
	}
}

func TestShortLabel(t *testing.T) {
	for in, want := range map[string]string{
		"StaleIfError 10s, 3 reader instances + 1 writer:":  "StaleIfError 10s",
		"StaleIfError 0 (off, the control), 3 readers:":     "StaleIfError 0",
		"(b) over 4 instances, leases on (default):":        "(b) over 4 instances",
		"expired holder: A's loader outlives its LeaseTTL:": "expired holder",
		"MaxStaleness 5ms:": "MaxStaleness 5ms",
	} {
		if got := shortLabel(in); got != want {
			t.Errorf("shortLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEmbeddedMark checks that on the embedded server the per-op figures
// that include the server's work are marked, and the mark explained.
func TestEmbeddedMark(t *testing.T) {
	out := render(fixedReport(true))
	for _, want := range []string{"  allocs/op *", "allocs per call (vs MGET) *", "  *     the embedded server (miniredis)"} {
		if !strings.Contains(out, want) {
			t.Errorf("embedded report lacks %q", want)
		}
	}
	if out := render(fixedReport(false)); strings.Contains(out, " *  ") || strings.Contains(out, "marked *") {
		t.Errorf("real-server report marks figures:\n%s", out)
	}
}

// TestReportJSON writes the fixed report as -json does and reads it back:
// the fields of unexported types are still written, by their JSON names.
func TestReportJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	if err := fixedReport(true).writeJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Embedded  bool `json:"embedded"`
		Scenarios []struct {
			Name   string           `json:"name"`
			Rows   []map[string]any `json:"rows"`
			Result map[string]any   `json:"result"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Embedded || len(got.Scenarios) != len(fixedResults(true)) {
		t.Fatalf("read back %d scenarios, embedded %v", len(got.Scenarios), got.Embedded)
	}
	first := got.Scenarios[0]
	if first.Name != "localhit" || first.Result["tiered_ns_per_op"] != 68.2 || first.Rows[0]["measure"] != "ns/op, 1 goroutine" ||
		first.Rows[0]["status"] != "MISS" {
		t.Errorf("localhit read back as %+v", first)
	}
	inv := got.Scenarios[7]
	if inv.Name != "invalidation" || inv.Result["trials"] != 500.0 || inv.Result["never_seen_after_ns"] == nil {
		t.Errorf("invalidation read back as %+v", inv.Result)
	}
}
