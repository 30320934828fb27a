package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// reportWidth is the widest line the bench prints: the report, the
// progress line and the usage text.
const reportWidth = 100

// width is the number of columns s takes: one per rune (the report uses no
// wide characters).
func width(s string) int { return utf8.RuneCountInString(s) }

// wrap breaks s into lines of at most n columns, at spaces where it can.
func wrap(s string, n int) []string { return wrapN(s, n, n) }

// wrapN is wrap with a first line of at most first columns and others of
// at most rest. A word longer than a line is cut.
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
		if line != "" && width(line)+1+width(word) <= limit() {
			line += " " + word
			continue
		}
		if line != "" {
			lines = append(lines, line)
		}
		for width(word) > limit() {
			r, cut := []rune(word), limit()
			lines = append(lines, string(r[:cut]))
			word = string(r[cut:])
		}
		line = word
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

// printWrapped writes s wrapped to reportWidth: the first line after first, the
// others after rest.
func printWrapped(w io.Writer, s, first, rest string) {
	n := reportWidth - max(width(first), width(rest))
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

// dash stands for an empty cell.
func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
