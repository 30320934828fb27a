package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
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

// Width is the widest line the report prints.
const Width = 100

// PrintHeader writes what the run is measured on.
func (r *Report) PrintHeader(w io.Writer) {
	para := func(format string, args ...any) { printWrapped(w, fmt.Sprintf(format, args...), "", "  ") }
	para("tiercache benchmark on %s", r.Server)
	para("namespace %s; %d instances, each a tiered.Cache with its own redis.Client; GOMAXPROCS %d (%d CPUs); %s",
		r.Namespace, r.Instances, r.GOMAXPROCS, r.NumCPU, r.GoVersion)
	if r.LoadStart != "" {
		para("load average at start: %s (other work on the machine skews every figure; ratios compare within this run)", r.LoadStart)
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
			"miniredis sharing this process's CPUs; they are not Redis figures. Targets that depend on "+
			"Redis are shown as \"n/a (embedded)\". Run with -redis redis://host:port/0 for real ones.", "", "")
	}
}

// PrintScenario writes one scenario's table, no line wider than Width.
func PrintScenario(w io.Writer, s ScenarioReport) {
	fmt.Fprintln(w)
	printWrapped(w, fmt.Sprintf("== %s  [%v]", s.Title, s.Elapsed.Round(100*time.Millisecond)), "", "   ")
	rows := [][]string{{"measure", "tiercache", "baseline", "ratio", "target", "status"}}
	for _, row := range s.Rows {
		if row.IsSection() {
			rows = append(rows, []string{row.Measure, "", "", "", "", ""})
			continue
		}
		rows = append(rows, []string{row.Measure, row.Tiered, dash(row.Baseline), dash(row.Ratio), dash(row.Target), row.Status})
	}
	printTable(w, dropEmptyColumns(rows), "  ", Width)
	for _, n := range s.Notes {
		printWrapped(w, n, "  note: ", "        ")
	}
}

// PrintSummary writes how many targets were met and lists those missed.
func (r *Report) PrintSummary(w io.Writer) {
	var pass, miss, na int
	var missed []string
	for _, s := range r.Scenarios {
		section := ""
		for _, row := range s.Rows {
			measure := strings.TrimSpace(row.Measure)
			if row.IsSection() {
				section = strings.TrimSuffix(measure, ":")
				continue
			}
			if section != "" && strings.HasPrefix(row.Measure, " ") {
				measure = section + ": " + measure
			} else {
				section = ""
			}
			switch row.Status {
			case "PASS":
				pass++
			case "MISS":
				miss++
				missed = append(missed, fmt.Sprintf("%s: %s = %s (target %s)", s.Name, measure, row.Tiered, row.Target))
			case "":
			default:
				na++
			}
		}
	}
	fmt.Fprintln(w)
	summary := fmt.Sprintf("== %d of %d targets pass", pass, pass+miss)
	if na > 0 {
		summary += fmt.Sprintf(" (%d more n/a on the embedded server)", na)
	}
	printWrapped(w, fmt.Sprintf("%s   [run took %v]", summary, r.Elapsed.Round(100*time.Millisecond)), "", "   ")
	for _, m := range missed {
		printWrapped(w, m, "  MISS ", "       ")
	}
	if r.LoadEnd != "" {
		fmt.Fprintf(w, "load average at end: %s\n", r.LoadEnd)
	}
}

// width is the number of columns s takes: one per rune (the report uses no
// wide characters).
func width(s string) int { return utf8.RuneCountInString(s) }

// wrap breaks s into lines of at most n columns, at spaces where it can.
func wrap(s string, n int) []string { return wrapN(s, n, n) }

// wrapN is wrap with a first line of at most first columns and others of
// at most rest.
func wrapN(s string, first, rest int) []string {
	var lines []string
	limit := func() int {
		if len(lines) == 0 {
			return max(first, 1)
		}
		return max(rest, 1)
	}
	line := ""
	for _, word := range strings.Fields(s) {
		for line == "" && width(word) > limit() { // a word longer than a line is cut
			r := []rune(word)
			cut := limit()
			lines = append(lines, string(r[:cut]))
			word = string(r[cut:])
		}
		switch {
		case word == "":
		case line == "":
			line = word
		case width(line)+1+width(word) <= limit():
			line += " " + word
		default:
			lines = append(lines, line)
			line = ""
			for width(word) > limit() {
				r := []rune(word)
				cut := limit()
				lines = append(lines, string(r[:cut]))
				word = string(r[cut:])
			}
			line = word
		}
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// wrapCell is wrap for a table cell: spaces that begin s begin every line,
// and lines after the first are indented two more.
func wrapCell(s string, n int) []string {
	body := strings.TrimLeft(s, " ")
	lead := s[:len(s)-len(body)]
	lines := wrapN(body, n-width(lead), n-width(lead)-2)
	for i := range lines {
		if i == 0 {
			lines[i] = lead + lines[i]
		} else {
			lines[i] = lead + "  " + lines[i]
		}
	}
	return lines
}

// printWrapped writes s wrapped to Width: the first line after first, the
// others after rest.
func printWrapped(w io.Writer, s, first, rest string) {
	n := Width - max(width(first), width(rest))
	for i, l := range wrap(s, n) {
		if i == 0 {
			fmt.Fprintln(w, first+l)
		} else {
			fmt.Fprintln(w, rest+l)
		}
	}
}

// dropEmptyColumns drops the columns after the first two in which no row
// but the header has anything but "-" or "".
func dropEmptyColumns(rows [][]string) [][]string {
	if len(rows) == 0 {
		return rows
	}
	keep := []int{0, 1}
	for i := 2; i < len(rows[0]); i++ {
		for _, row := range rows[1:] {
			if row[i] != "" && row[i] != "-" {
				keep = append(keep, i)
				break
			}
		}
	}
	out := make([][]string, len(rows))
	for r, row := range rows {
		for _, i := range keep {
			out[r] = append(out[r], row[i])
		}
	}
	return out
}

// printTable writes rows (the first is the header) in aligned columns two
// spaces apart after indent. When the natural widths exceed limit, the
// first column shrinks to 36, then the widest of the first three (to no
// less than 12), and their cells wrap onto more lines. A row whose cells
// after the first are empty is a label alone, which may run across.
func printTable(w io.Writer, rows [][]string, indent string, limit int) {
	if len(rows) == 0 {
		return
	}
	const gap, least = 2, 12
	cols := len(rows[0])
	widths := make([]int, cols)
	label := func(row []string) bool {
		for _, c := range row[1:] {
			if c != "" {
				return false
			}
		}
		return true
	}
	for _, row := range rows {
		if label(row) {
			continue
		}
		for i, c := range row {
			widths[i] = max(widths[i], width(c))
		}
	}
	total := func() int {
		t := width(indent) + gap*(cols-1)
		for _, x := range widths {
			t += x
		}
		return t
	}
	for total() > limit && widths[0] > 36 {
		widths[0]--
	}
	for total() > limit {
		widest := -1
		for i := range min(3, cols) {
			if widths[i] > least && (widest < 0 || widths[i] > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		widths[widest]--
	}
	for _, row := range rows {
		if label(row) {
			for _, l := range wrapCell(row[0], limit-width(indent)) {
				fmt.Fprintln(w, indent+l)
			}
			continue
		}
		cells := make([][]string, cols)
		height := 1
		for i, c := range row {
			cells[i] = wrapCell(c, widths[i])
			height = max(height, len(cells[i]))
		}
		for l := range height {
			var b strings.Builder
			b.WriteString(indent)
			for i := range cols {
				text := ""
				if l < len(cells[i]) {
					text = cells[i][l]
				}
				b.WriteString(text)
				if i < cols-1 {
					b.WriteString(strings.Repeat(" ", widths[i]-width(text)+gap))
				}
			}
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
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
