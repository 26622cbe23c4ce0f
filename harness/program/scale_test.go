package program

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAtScaleScalesTheMatrixWindowsLikeTheRules(t *testing.T) {
	p, err := Load("../../program")
	require.NoError(t, err)
	row := func(p *Program, id string) Row {
		for _, r := range p.Matrix.Rows {
			if r.ID == id {
				return r
			}
		}
		t.Fatalf("no row %s", id)
		return Row{}
	}
	asWritten := row(p, "FM2-edge-down")
	require.Equal(t, "sum(increase(sync_queue_block_events[15m])) >= 5", asWritten.Detect[0], "the matrix names production windows")

	fast, err := p.AtScale(1.0 / 30)
	require.NoError(t, err)
	require.Equal(t, "sum(increase(sync_queue_block_events[30s])) >= 5", row(fast, "FM2-edge-down").Detect[0])
	require.Equal(t, `sum(increase(capture_persistence_primary_failures[10s])) == 0`, row(fast, "FM1-primary-volume-full").Recover[0], "[5m] at 1/30")
	faster, err := p.AtScale(1.0 / 60)
	require.NoError(t, err)
	require.Equal(t, "sum(increase(sync_queue_block_events[15s])) >= 5", row(faster, "FM2-edge-down").Detect[0])

	// An expression without a window keeps its text; the loaded program is unchanged.
	require.Equal(t, row(p, "FM8-redis-down").Detect, row(faster, "FM8-redis-down").Detect)
	require.Equal(t, asWritten, row(p, "FM2-edge-down"))
	for _, r := range p.Matrix.Rows {
		for _, e := range r.Expressions(p.Matrix.Defaults.Recover) {
			require.False(t, strings.Contains(e, "[15s]"), "%s: AtScale changed the loaded program: %s", r.ID, e)
		}
	}
	same, err := p.AtScale(1)
	require.NoError(t, err)
	require.Same(t, p, same)
}
