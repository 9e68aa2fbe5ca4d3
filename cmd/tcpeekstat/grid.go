package main

import (
	"strings"
	"unicode/utf8"
)

// column is one column of a grid.
type column struct {
	group string // the heading over a group of adjacent columns; "" for none
	head  string
	left  bool // align left (names) rather than right (numbers)
	// drop orders the columns given up when the grid must fit a width:
	// the highest first; 0 is never given up.
	drop int
}

// grid is a table of text: a line of group headings (when a column has a
// group), a line of column headings, then the rows.
type grid struct {
	cols []column
	rows [][]string
}

// gap separates the columns.
const gap = "  "

// width returns the number of terminal columns s takes (every rune one).
func width(s string) int { return utf8.RuneCountInString(s) }

// lines renders the grid, without trailing spaces. With maxWidth > 0 the
// grid fits maxWidth columns: it gives up columns by their drop order, then
// shortens the first left-aligned column (marking cut cells with "~"), and
// as a last resort cuts the lines.
func (g *grid) lines(maxWidth int) []string {
	keep := make([]int, len(g.cols)) // indices of the columns shown
	for i := range keep {
		keep[i] = i
	}
	cols, widths := g.measure(keep)
	for maxWidth > 0 && spanWidth(widths, 0, len(widths)-1) > maxWidth {
		victim := -1
		for k, i := range keep {
			if d := g.cols[i].drop; d > 0 && (victim < 0 || d >= g.cols[keep[victim]].drop) {
				victim = k
			}
		}
		if victim < 0 {
			break
		}
		keep = append(keep[:victim], keep[victim+1:]...)
		cols, widths = g.measure(keep)
	}
	cut := -1 // the column shortened to fit, if any
	if excess := spanWidth(widths, 0, len(widths)-1) - maxWidth; maxWidth > 0 && excess > 0 {
		for k, c := range cols {
			if c.left && widths[k] > 3 {
				cut = k
				widths[k] = max(3, widths[k]-excess, width(c.head))
				break
			}
		}
	}

	var out []string
	if hasGroups(cols) {
		out = append(out, groupLine(cols, widths))
	}
	heads := make([]string, len(cols))
	for k, c := range cols {
		heads[k] = c.head
	}
	out = append(out, row(cols, widths, heads, -1))
	for _, r := range g.rows {
		cells := make([]string, len(keep))
		for k, i := range keep {
			cells[k] = r[i]
		}
		out = append(out, row(cols, widths, cells, cut))
	}
	if maxWidth > 0 {
		for i, l := range out {
			out[i] = strings.TrimRight(truncate(l, maxWidth), " ")
		}
	}
	return out
}

// measure returns the columns keep and their widths: the widest of the
// heading and the cells, widened for the group headings.
func (g *grid) measure(keep []int) ([]column, []int) {
	cols := make([]column, len(keep))
	widths := make([]int, len(keep))
	for k, i := range keep {
		cols[k] = g.cols[i]
		widths[k] = width(g.cols[i].head)
		for _, r := range g.rows {
			widths[k] = max(widths[k], width(r[i]))
		}
	}
	widenForGroups(cols, widths)
	return cols, widths
}

// String renders the grid at its natural width, one line each.
func (g *grid) String() string {
	return strings.Join(g.lines(0), "\n") + "\n"
}

func hasGroups(cols []column) bool {
	for _, c := range cols {
		if c.group != "" {
			return true
		}
	}
	return false
}

// groupSpans returns, for each group, the index of its first and last
// column.
func groupSpans(cols []column) (spans [][2]int) {
	for i, c := range cols {
		switch {
		case c.group == "":
		case i > 0 && cols[i-1].group == c.group:
			spans[len(spans)-1][1] = i
		default:
			spans = append(spans, [2]int{i, i})
		}
	}
	return spans
}

// spanWidth is the width of columns first to last with their gaps.
func spanWidth(widths []int, first, last int) int {
	if last < first {
		return 0
	}
	w := len(gap) * (last - first)
	for i := first; i <= last; i++ {
		w += widths[i]
	}
	return w
}

// widenForGroups widens, evenly, the columns of a group whose heading (with
// three dashes and a space each side) is wider than they are.
func widenForGroups(cols []column, widths []int) {
	for _, sp := range groupSpans(cols) {
		need := width(cols[sp[0]].group) + 8
		for i := sp[0]; spanWidth(widths, sp[0], sp[1]) < need; i++ {
			if i > sp[1] {
				i = sp[0]
			}
			widths[i]++
		}
	}
}

// groupLine returns the line of group headings, each centred in dashes
// over its columns: "--- success ---".
func groupLine(cols []column, widths []int) string {
	var b strings.Builder
	col := 0
	for _, sp := range groupSpans(cols) {
		start := spanWidth(widths, 0, sp[0]) - widths[sp[0]] // where column sp[0] begins
		b.WriteString(strings.Repeat(" ", start-col))
		w := spanWidth(widths, sp[0], sp[1])
		label := " " + cols[sp[0]].group + " "
		left := (w - width(label)) / 2
		b.WriteString(strings.Repeat("-", left) + label + strings.Repeat("-", w-left-width(label)))
		col = start + w
	}
	return b.String()
}

// row returns one row, padded to widths, without trailing spaces. The
// cells of column cut are shortened to its width, ending in "~".
func row(cols []column, widths []int, cells []string, cut int) string {
	var line strings.Builder
	for i, cell := range cells {
		if i > 0 {
			line.WriteString(gap)
		}
		if i == cut && width(cell) > widths[i] {
			cell = truncate(cell, widths[i]-1) + "~"
		}
		pad := strings.Repeat(" ", max(0, widths[i]-width(cell)))
		if cols[i].left {
			line.WriteString(cell + pad)
		} else {
			line.WriteString(pad + cell)
		}
	}
	return strings.TrimRight(line.String(), " ")
}

// truncate returns the first n runes of s.
func truncate(s string, n int) string {
	if width(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
