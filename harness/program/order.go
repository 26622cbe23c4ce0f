package program

import (
	"slices"
)

// orderSpacing is how many rows RunOrder puts between two rows that read the same
// series. A row's steady state needs its detection false and its recovery true; a row
// just before it that moved the same series leaves them moved until their range window
// ([15m], scaled) has passed, and that wait is pure overhead. One row in between spans
// about one window; two leave a margin.
const orderSpacing = 2

// RunOrder is the order in which a run takes the rows, so that no row waits in its
// steady state for an earlier row's window to pass: a row that reads a series (detect,
// surface, recover) that one of the last orderSpacing rows read is put off. Each step
// takes, among the rows that share series with the fewest (and most distant) of the
// last orderSpacing rows taken, the one with the most rows left that share its series
// (a large family is spread first, or its last members would end up side by side),
// then the first in file order. The order is a pure function of the matrix, so every
// run and every process sees the same one.
func (m Matrix) RunOrder() []Row {
	footprints := make([][]string, len(m.Rows))
	for i, r := range m.Rows {
		footprints[i] = r.footprint()
	}
	left := make([]int, len(m.Rows))
	for i := range left {
		left[i] = i
	}
	var order []int
	for len(left) > 0 {
		best, bestCost, bestKin := 0, -1, -1
		for k, i := range left {
			c, kin := conflictCost(footprints, order, i), kinLeft(footprints, left, i)
			if bestCost < 0 || c < bestCost || (c == bestCost && kin > bestKin) {
				best, bestCost, bestKin = k, c, kin
			}
		}
		order = append(order, left[best])
		left = slices.Delete(left, best, best+1)
	}
	out := make([]Row, len(order))
	for k, i := range order {
		out[k] = m.Rows[i]
	}
	return out
}

// conflictCost weighs the rows among the last orderSpacing of order that share a series
// with row i: the nearer the row, the higher its weight (0 when none shares one).
func conflictCost(footprints [][]string, order []int, i int) int {
	cost := 0
	for back := 1; back <= orderSpacing && back <= len(order); back++ {
		if shares(footprints[order[len(order)-back]], footprints[i]) {
			cost += orderSpacing + 1 - back
		}
	}
	return cost
}

// footprint is the sorted set of series the row's own expressions read (the matrix's
// default recovery, shared by every row, is left out).
func (r Row) footprint() []string {
	var out []string
	for _, e := range r.Expressions(nil) {
		names, err := SeriesIn(e)
		if err != nil {
			continue // Load has refused such a row already
		}
		out = append(out, names...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// kinLeft counts the rows left, other than i, that share a series with row i.
func kinLeft(footprints [][]string, left []int, i int) int {
	n := 0
	for _, j := range left {
		if j != i && shares(footprints[i], footprints[j]) {
			n++
		}
	}
	return n
}

func shares(a, b []string) bool {
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); found {
			return true
		}
	}
	return false
}
