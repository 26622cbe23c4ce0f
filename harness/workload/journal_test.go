package workload

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/checker"
	"github.com/pocketbrain/chaos/harness/history"
)

func journalOp(n int, outcome history.Outcome) history.Op {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(n) * time.Second)
	return history.Op{Client: "c01", Op: history.KindCapture, CaptureID: fmt.Sprintf("c01-%d", n), MutationID: fmt.Sprintf("c01-m%d", n),
		Value: fmt.Sprintf("v%d", n), Invoke: t0, Complete: t0.Add(time.Millisecond), Outcome: outcome}
}

// With a journal, the history is the journal's: a clients process killed mid-run leaves
// its acknowledged ops (and, as info, the one it was running) where the harness reads
// them, and Keep, called before a clients replace, asks nothing of a fleet that may be
// dead. (Keep would panic here on the nil Env if it called the fleet.)
func TestHistoryComesFromTheJournal(t *testing.T) {
	dir := t.TempDir()
	w := &Workload{JournalDir: dir, kept: map[string]history.Op{}}
	_, err := w.Ops()
	require.Error(t, err, "a journal folder without a file: the fleet never journaled")
	assert.Contains(t, err.Error(), "no journal file")

	// Process 1: a acknowledged and synced, b running when kill -9 came, c acknowledged
	// but not yet synced.
	j1, err := history.OpenJournal(dir)
	require.NoError(t, err)
	a, b, c := journalOp(1, history.OK), journalOp(2, history.OK), journalOp(3, history.OK)
	for _, op := range []history.Op{a, b, c} {
		require.NoError(t, j1.Invoke(op))
	}
	require.NoError(t, j1.Complete(a))
	require.NoError(t, j1.Complete(c))
	require.NoError(t, w.Keep(context.Background()))
	// Process 2: c replayed from the local store, then synced.
	j2, err := history.OpenJournal(dir)
	require.NoError(t, err)
	cr := c
	cr.Invoke, cr.Complete, cr.Replayed = c.Invoke.Add(time.Minute), c.Invoke.Add(time.Minute), true
	require.NoError(t, j2.Invoke(cr))
	require.NoError(t, j2.Complete(cr))
	require.NoError(t, j1.Close())
	require.NoError(t, j2.Close())

	ops, err := w.Ops()
	require.NoError(t, err)
	require.Len(t, ops, 4)
	assert.Equal(t, history.Info, ops[1].Outcome, "the op the kill cut short")
	assert.Len(t, w.History(), 4)

	state := &checker.FinalState{
		Captures: []checker.Capture{{CaptureID: a.CaptureID, ClientID: "c01", Value: a.Value}, {CaptureID: c.CaptureID, ClientID: "c01", Value: c.Value}},
		Applied:  []checker.Applied{{MutationID: a.MutationID, CaptureID: a.CaptureID, Value: a.Value}, {MutationID: c.MutationID, CaptureID: c.CaptureID, Value: c.Value}},
	}
	res := checker.Check(ops, state)
	assert.Equal(t, checker.Valid, res.Verdict, res.Summary())
	assert.Equal(t, 2, res.Counts.Acknowledged)
	assert.Equal(t, 1, res.Counts.InfoNotApplied)

	// Had c been lost by the server, the journal would show it.
	state.Applied = state.Applied[:1]
	state.Captures = state.Captures[:1]
	res = checker.Check(ops, state)
	assert.Equal(t, checker.Invalid, res.Verdict)
	assert.Equal(t, 1, res.Counts.Lost)
}

// The journal is checked against the running fleet's /history: an op the fleet told the
// user about but could not journal makes the history unjudgeable.
func TestJournalHoldsWhatTheFleetRemembers(t *testing.T) {
	a, b := journalOp(1, history.OK), journalOp(2, history.OK)
	require.NoError(t, journalHolds([]history.Op{a, b}, []history.Op{a, b}))
	require.NoError(t, journalHolds([]history.Op{a, b}, []history.Op{b}), "older ops (an earlier process) are the journal's alone")
	err := journalHolds([]history.Op{a}, []history.Op{a, b})
	require.Error(t, err)
	assert.Contains(t, err.Error(), b.MutationID)
	bi := b
	bi.Outcome = history.Info
	err = journalHolds([]history.Op{a, bi}, []history.Op{a, b})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another outcome")
	// Another invoke time is another op (a replay), not this one.
	br := b
	br.Invoke = b.Invoke.Add(time.Second)
	require.Error(t, journalHolds([]history.Op{a, br}, []history.Op{a, b}))
}
