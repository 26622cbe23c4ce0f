package program

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// adjacentShared counts the pairs of rows at most orderSpacing apart that read a series
// in common: each one is a steady-state wait for the earlier row's window.
func adjacentShared(rows []Row) (n int, pairs []string) {
	for i := range rows {
		for back := 1; back <= orderSpacing && back <= i; back++ {
			if shares(rows[i-back].footprint(), rows[i].footprint()) {
				n++
				pairs = append(pairs, rows[i-back].ID+" → "+rows[i].ID)
			}
		}
	}
	return n, pairs
}

func TestRunOrderSpacesRowsThatReadTheSameSeries(t *testing.T) {
	p, err := Load("../../program")
	require.NoError(t, err)
	order := p.Matrix.RunOrder()

	// A permutation: every row once.
	require.Len(t, order, len(p.Matrix.Rows))
	seen := map[string]bool{}
	for _, r := range order {
		require.False(t, seen[r.ID], "row %s taken twice", r.ID)
		seen[r.ID] = true
	}
	inFile, filePairs := adjacentShared(p.Matrix.Rows)
	ordered, pairs := adjacentShared(order)
	t.Logf("rows within %d of a row reading the same series: file order %d %v, run order %d %v", orderSpacing, inFile, filePairs, ordered, pairs)
	require.Greater(t, inFile, 0, "the file order has neighbours reading the same series (the test would prove nothing otherwise)")
	require.Zero(t, ordered, "the run order leaves no two rows within %d of each other reading the same series: %v", orderSpacing, pairs)
	// Deterministic: every process of a parallel run sees the same order.
	require.Equal(t, order, p.Matrix.RunOrder())
}

func TestRunOrderKeepsTheFileOrderWithoutSharedSeries(t *testing.T) {
	m := Matrix{Rows: []Row{
		{ID: "a", Detect: []string{"x > 0"}},
		{ID: "b", Detect: []string{"y > 0"}},
		{ID: "c", Detect: []string{"z > 0"}},
	}}
	require.Equal(t, []string{"a", "b", "c"}, ids(m.RunOrder()))
	// b reads x too: it goes after c, which does not.
	m.Rows[1].Recover = []string{"x == 0"}
	m.Rows = append(m.Rows, Row{ID: "d", Detect: []string{"w > 0"}})
	require.Equal(t, []string{"a", "c", "d", "b"}, ids(m.RunOrder()))
}

func ids(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}
