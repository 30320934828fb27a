package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a whole run, as printed and as written by -json.
type Report struct {
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
	Scenarios  []ScenarioReport `json:"scenarios"`
	Cleanup    string           `json:"cleanup"`
}

// ScenarioReport is one scenario's table and raw figures.
type ScenarioReport struct {
	Name    string        `json:"name"`
	Title   string        `json:"title"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Rows    []StatusRow   `json:"rows"`
	Notes   []string      `json:"notes,omitempty"`
	Result  Result        `json:"result"`
}

// StatusRow is a Row with its judged status.
type StatusRow struct {
	Row
	Status string `json:"status,omitempty"`
}

// NewReport starts the report of a run on e.
func NewReport(e *Env, cfg Config) *Report {
	return &Report{
		Server: e.Server, Embedded: e.Embedded, Namespace: e.Namespace, Instances: cfg.Instances,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Duration:  cfg.Duration, Rounds: cfg.Rounds, Separate: cfg.Separate && cfg.Instances > 1, Started: time.Now(),
		LoadStart: loadAvg(),
	}
}

// Add records a scenario's result and returns its report.
func (r *Report) Add(res Result, elapsed time.Duration) ScenarioReport {
	s := ScenarioReport{Name: res.Name(), Title: res.Title(), Elapsed: elapsed, Notes: res.Notes(), Result: res}
	for _, row := range res.Rows() {
		s.Rows = append(s.Rows, StatusRow{Row: row, Status: row.Status(r.Embedded)})
	}
	r.Scenarios = append(r.Scenarios, s)
	return s
}

// PrintHeader writes what the run is measured on.
func (r *Report) PrintHeader(w io.Writer) {
	fmt.Fprintf(w, "tiercache benchmark on %s\n", r.Server)
	fmt.Fprintf(w, "namespace %s; %d instances, each a tiered.Cache with its own redis.Client; GOMAXPROCS %d (%d CPUs); %s\n",
		r.Namespace, r.Instances, r.GOMAXPROCS, r.NumCPU, r.GoVersion)
	if r.LoadStart != "" {
		fmt.Fprintf(w, "load average at start: %s (other work on the machine skews every figure; ratios compare within this run)\n", r.LoadStart)
	}
	fmt.Fprintf(w, "timed measurements: %v each, in %d alternating rounds; figures are medians of the rounds\n", r.Duration, r.Rounds)
	if r.Separate {
		fmt.Fprintf(w, "zipf and stalehunt, whose goroutines spin in every instance, run with GOMAXPROCS %d × %d instances, the Ps that many processes would have (-shared-scheduler: keep %d)\n",
			r.GOMAXPROCS, r.Instances, r.GOMAXPROCS)
	}
	if r.Embedded {
		fmt.Fprintln(w, "")
		fmt.Fprintln(w, "NOTE: the server is an embedded miniredis running inside this process, not Redis. Figures that")
		fmt.Fprintln(w, "involve the remote tier (remotehit, write, invalidation latency, the writer's rate) measure")
		fmt.Fprintln(w, "miniredis sharing this process's CPUs; they are not Redis figures. Targets that depend on")
		fmt.Fprintln(w, "Redis are shown as \"n/a (embedded)\". Run with -redis redis://host:port/0 for real ones.")
	}
}

// PrintScenario writes one scenario's table.
func PrintScenario(w io.Writer, s ScenarioReport) {
	fmt.Fprintf(w, "\n== %s  [%v]\n", s.Title, s.Elapsed.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  measure\ttiercache\tbaseline\tratio\ttarget\tstatus")
	for _, row := range s.Rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", row.Measure, row.Tiered, dash(row.Baseline), dash(row.Ratio), dash(row.Target), row.Status)
	}
	tw.Flush()
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// PrintSummary writes the count of targets met and lists those missed.
func (r *Report) PrintSummary(w io.Writer) {
	var pass, miss, na int
	var missed []string
	for _, s := range r.Scenarios {
		for _, row := range s.Rows {
			switch row.Status {
			case "PASS":
				pass++
			case "MISS":
				miss++
				missed = append(missed, fmt.Sprintf("%s: %s = %s (target %s)", s.Name, row.Measure, row.Tiered, row.Target))
			case "":
			default:
				na++
			}
		}
	}
	fmt.Fprintf(w, "\n== targets: %d PASS, %d MISS, %d n/a (embedded)   [run took %v]\n", pass, miss, na, r.Elapsed.Round(100*time.Millisecond))
	for _, m := range missed {
		fmt.Fprintf(w, "  MISS %s\n", m)
	}
	if r.LoadEnd != "" {
		fmt.Fprintf(w, "load average at end: %s\n", r.LoadEnd)
	}
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
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

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
