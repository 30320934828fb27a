package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// row is one line of the table: tiercache's figure beside its baseline's,
// measured in the same run, and the target that compares them.
type row struct {
	Measure  string `json:"measure"`
	Tiered   string `json:"tiercache"`
	Baseline string `json:"baseline"`
	Target   string `json:"target,omitempty"`
	Status   string `json:"status,omitempty"` // "met", "missed", or "" without a target
}

// judge returns r with its target's status: met when ok.
func judge(r row, ok bool) row {
	r.Status = "missed"
	if ok {
		r.Status = "met"
	}
	return r
}

// results is a run, as printed and as -markdown writes it to a file.
type results struct {
	Date    string `json:"date"`
	Command string `json:"command"`
	Server  string `json:"server"`
	Machine string `json:"machine"`
	Took    string `json:"took"`
	Rows    []row  `json:"rows"`
}

// reportWidth is the widest line the report prints.
const reportWidth = 100

// verdict is the last lines of the report: how many targets were met,
// which missed, and what a miss means.
func (r *results) verdict() []string {
	met, all := 0, 0
	var missed []string
	for _, x := range r.Rows {
		switch x.Status {
		case "met":
			met, all = met+1, all+1
		case "missed":
			all++
			missed = append(missed, x.Measure)
		}
	}
	line := fmt.Sprintf("%d of %d targets met.", met, all)
	if len(missed) > 0 {
		line += " Missed: " + strings.Join(missed, "; ") + "."
	}
	return []string{line, "A missed target is a figure further from its baseline than tiercache aims for, " +
		"on this machine, not a fault: `go test ./...` checks behaviour. README.md, Performance, says how " +
		"each row is measured and why some miss."}
}

// printText writes the report for a terminal: a header, one table, the
// verdict, no line wider than reportWidth.
func (r *results) printText(w io.Writer, embedded bool) {
	wrapTo(w, fmt.Sprintf("tiercache bench on %s: %s", r.Server, r.Machine))
	if embedded {
		wrapTo(w, "(the embedded server runs in this process: times and allocations of calls that reach "+
			"it include its own work; -redis host:port measures a real server)")
	}
	fmt.Fprintln(w)
	cells := [][]string{{"measure", "tiercache", "baseline", "target", ""}}
	for _, x := range r.Rows {
		cells = append(cells, []string{x.Measure, x.Tiered, x.Baseline, x.Target, x.Status})
	}
	printTable(w, cells)
	fmt.Fprintln(w)
	for _, l := range r.verdict() {
		wrapTo(w, strings.ReplaceAll(l, "`", ""))
	}
	fmt.Fprintln(w, "took "+r.Took)
}

// Markers enclose the README's generated part of its Performance section.
const (
	beginMarker = "<!-- bench:begin: `go run ./bench -markdown` prints this from bench/results.json; do not edit -->"
	endMarker   = "<!-- bench:end -->"
)

// markdown renders r as the README's generated part, markers included.
func (r *results) markdown() string {
	var b strings.Builder
	b.WriteString(beginMarker + "\n\n")
	fmt.Fprintf(&b, "Measured on %s with `%s`, against %s; %s. The run took %s.\n\n",
		r.Date, r.Command, r.Server, r.Machine, r.Took)
	b.WriteString("| measure | tiercache | baseline | target | |\n|---|---|---|---|---|\n")
	esc := strings.NewReplacer("|", `\|`)
	for _, x := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", esc.Replace(x.Measure), esc.Replace(x.Tiered),
			esc.Replace(x.Baseline), esc.Replace(x.Target), x.Status)
	}
	b.WriteString("\n" + r.verdict()[0] + "\n\n" + endMarker + "\n")
	return b.String()
}

// save writes r to path as JSON.
func (r *results) save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = os.WriteFile(path, append(b, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}

// loadResults reads what save wrote.
func loadResults(path string) (*results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	return &r, nil
}

func width(s string) int { return utf8.RuneCountInString(s) }

// wrap breaks s at spaces into lines of at most n columns (a longer word
// gets a line of its own).
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && width(line)+1+width(word) > n {
			lines, line = append(lines, line), ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// wrapTo writes s wrapped to reportWidth.
func wrapTo(w io.Writer, s string) {
	for _, l := range wrap(s, reportWidth) {
		fmt.Fprintln(w, l)
	}
}

// printTable writes cells in columns two spaces apart; when they are too
// wide for reportWidth, the first column wraps.
func printTable(w io.Writer, cells [][]string) {
	widths := make([]int, len(cells[0]))
	for _, r := range cells {
		for i, c := range r {
			widths[i] = max(widths[i], width(c))
		}
	}
	rest := 2 * (len(widths) - 1)
	for _, x := range widths[1:] {
		rest += x
	}
	widths[0] = max(min(widths[0], reportWidth-rest), 16)
	for _, r := range cells {
		for l, text := range wrap(r[0], widths[0]) {
			var b strings.Builder
			b.WriteString(text)
			if l == 0 {
				pad := widths[0] - width(text)
				for i, c := range r[1:] {
					b.WriteString(strings.Repeat(" ", pad+2) + c)
					pad = widths[i+1] - width(c)
				}
			}
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
	}
}
