package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// report is a whole run, as printed and as written by -json.
type report struct {
	Server     string           `json:"server"`
	Embedded   bool             `json:"embedded"`
	Namespace  string           `json:"namespace"`
	Instances  int              `json:"instances"`
	GOMAXPROCS int              `json:"gomaxprocs"`
	NumCPU     int              `json:"num_cpu"`
	GoVersion  string           `json:"go_version"`
	Duration   time.Duration    `json:"duration_ns"`
	Rounds     int              `json:"rounds"`
	Separate   bool             `json:"procs_per_instance"`
	Started    time.Time        `json:"started"`
	LoadStart  string           `json:"loadavg_start,omitempty"`
	LoadEnd    string           `json:"loadavg_end,omitempty"`
	Elapsed    time.Duration    `json:"elapsed_ns"`
	Scenarios  []scenarioReport `json:"scenarios"`
	Cleanup    string           `json:"cleanup"`
}

// scenarioReport is one scenario's table and raw figures.
type scenarioReport struct {
	Name    string        `json:"name"`
	Title   string        `json:"title"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Rows    []statusRow   `json:"rows"`
	Notes   []string      `json:"notes,omitempty"`
	Result  result        `json:"result"`
}

// statusRow is a row with its judged status.
type statusRow struct {
	row
	Status string `json:"status,omitempty"`
	// marked: the figure includes the work of a server that runs in this
	// process (a row.serverWork figure on the embedded server).
	marked bool
}

// newReport starts the report of a run on e.
func newReport(e *env, cfg config) *report {
	return &report{
		Server: e.server, Embedded: e.embedded, Namespace: e.namespace, Instances: cfg.instances,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Duration:  cfg.duration, Rounds: cfg.rounds, Separate: cfg.separate && cfg.instances > 1,
		Started: time.Now(), LoadStart: loadAvg(),
	}
}

// add records a scenario's result and returns its report.
func (r *report) add(res result, elapsed time.Duration) scenarioReport {
	s := scenarioReport{Name: res.name(), Title: res.title(), Elapsed: elapsed, Notes: res.notes(), Result: res}
	for _, row := range res.rows() {
		s.Rows = append(s.Rows, statusRow{row: row, Status: row.status(r.Embedded), marked: r.Embedded && row.serverWork})
	}
	r.Scenarios = append(r.Scenarios, s)
	return s
}

// printHeader writes what the run is measured on.
func (r *report) printHeader(w io.Writer) {
	para := func(format string, args ...any) { printWrapped(w, fmt.Sprintf(format, args...), "", "  ") }
	para("tiercache benchmark on %s", r.Server)
	para("namespace %s; %d instances, each a tiered.Cache with its own redis.Client; GOMAXPROCS %d (%d CPUs); %s",
		r.Namespace, r.Instances, r.GOMAXPROCS, r.NumCPU, r.GoVersion)
	if r.LoadStart != "" {
		para("load average at start: %s (other work on the machine skews every figure; ratios compare "+
			"within this run)", r.LoadStart)
	}
	para("timed measurements: %v each, in %d alternating rounds; figures are medians of the rounds", r.Duration, r.Rounds)
	if r.Separate {
		para("zipf and stalehunt, whose goroutines spin in every instance, run with GOMAXPROCS %d × %d instances, "+
			"the Ps that many processes would have (-shared-scheduler: keep %d)", r.GOMAXPROCS, r.Instances, r.GOMAXPROCS)
	}
	if r.Embedded {
		fmt.Fprintln(w, "")
		printWrapped(w, "NOTE: the server is an embedded miniredis running inside this process, not Redis. Figures that "+
			"involve the remote tier (remotehit, write, invalidation latency, the writer's rate, staleness) measure "+
			"miniredis sharing this process's CPUs; they are not Redis figures. Per-op figures marked * count "+
			"miniredis's own allocations and CPU time too. Targets that depend on Redis are shown as "+
			"\"n/a (embedded)\". Run with -redis host:port (or a redis:// URL) for real ones.", "", "")
	}
}

// embeddedNote explains the figures marked *.
const embeddedNote = "the embedded server (miniredis) runs in this process: its own allocations and CPU " +
	"time are counted in the figures marked *"

// printScenario writes one scenario's table, no line wider than reportWidth.
func printScenario(w io.Writer, s scenarioReport) {
	fmt.Fprintln(w)
	printWrapped(w, fmt.Sprintf("== %s  [%v]", s.Title, s.Elapsed.Round(100*time.Millisecond)), "", "   ")
	rows := [][]string{{"measure", "tiercache", "baseline", "ratio", "target", "status"}}
	marked := false
	for _, row := range s.Rows {
		if row.isSection() {
			rows = append(rows, []string{row.Measure, "", "", "", "", ""})
			continue
		}
		measure := row.Measure
		if row.marked {
			measure, marked = measure+" *", true
		}
		rows = append(rows, []string{measure, row.Tiered, dash(row.Baseline), dash(row.Ratio), dash(row.Target), row.Status})
	}
	if len(rows) > 1 {
		printTable(w, dropEmptyColumns(rows), "  ", reportWidth)
	}
	for _, n := range s.Notes {
		printWrapped(w, n, "  note: ", "        ")
	}
	if marked {
		printWrapped(w, embeddedNote, "  *     ", "        ")
	}
}

// verdict is how a run's targets fared.
type verdict struct {
	passed int
	// missed names each target missed: `scenario "measure"`, the measure
	// after the short label of its section, if it is in one.
	missed []string
	// unjudged counts the targets not judged on the embedded server.
	unjudged int
}

// verdict judges every target of the run.
func (r *report) verdict() verdict {
	var v verdict
	for _, s := range r.Scenarios {
		sec := ""
		for _, row := range s.Rows {
			if row.isSection() {
				sec = shortLabel(row.Measure)
				continue
			}
			measure := strings.TrimSpace(row.Measure)
			if sec != "" && strings.HasPrefix(row.Measure, " ") {
				measure = sec + ", " + measure
			} else {
				sec = ""
			}
			switch row.Status {
			case "PASS":
				v.passed++
			case "MISS":
				v.missed = append(v.missed, fmt.Sprintf("%s %q", s.Name, measure))
			case "":
			default:
				v.unjudged++
			}
		}
	}
	return v
}

// shortLabel is a section's label up to its first ":", ", " or " (".
func shortLabel(label string) string {
	label = strings.TrimSpace(label)
	end := len(label)
	for _, sep := range []string{":", ", ", " ("} {
		if i := strings.Index(label, sep); i > 0 {
			end = min(end, i)
		}
	}
	return label[:end]
}

// line is the summary line: how many targets passed, and which missed.
func (v verdict) line() string {
	s := fmt.Sprintf("== %d of %d targets pass", v.passed, v.passed+len(v.missed))
	if len(v.missed) > 0 {
		s += fmt.Sprintf(", %d missed: %s", len(v.missed), strings.Join(v.missed, ", "))
	}
	if v.unjudged > 0 {
		s += fmt.Sprintf(" (%d more n/a on the embedded server)", v.unjudged)
	}
	return s
}

// printSummary writes the summary line, wrapped if the misses make it
// long, and how long the run took.
func (r *report) printSummary(w io.Writer) {
	fmt.Fprintln(w)
	printWrapped(w, r.verdict().line(), "", "   ")
	took := fmt.Sprintf("run took %v", r.Elapsed.Round(100*time.Millisecond))
	if r.LoadEnd != "" {
		took += "; load average at end: " + r.LoadEnd
	}
	fmt.Fprintln(w, took)
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode JSON: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: write JSON: %w", err)
	}
	return nil
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "" where the
// system does not say.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
