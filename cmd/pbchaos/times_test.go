package main

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// The overhead ratio divides the wall time by every window the stack needs by its own
// settings: each row's injection→recovered span, and the control's and canary's planned spans.
func TestTimesCountsRowsControlAndCanary(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := func(s float64) *evidence.Duration {
		v := evidence.Millis(time.Duration(s * float64(time.Second)))
		return &v
	}
	row := evidence.Row{ID: "FM8-redis-down", Status: evidence.StatusPassed, Started: t0, Ended: t0.Add(30 * time.Second)}
	row.Fault.InjectedAt = t0.Add(5 * time.Second)
	row.Mitigation.AppliedAt = t0.Add(20 * time.Second) // 15 s fault window
	row.Times = evidence.Times{Detect: d(2), Fire: d(12), Recover: d(5)}
	run := &evidence.Run{
		Schema: evidence.SchemaVersion, RunID: "r1", Profile: evidence.ProfileFast,
		Verdict: evidence.Verdict{Decision: evidence.DecisionGo},
		Rows:    []evidence.Row{row},
		Control: &evidence.Window{Planned: evidence.Millis(20 * time.Second), Started: t0, Ended: t0.Add(21 * time.Second), Pass: true},
		Canary:  &evidence.Window{Planned: evidence.Millis(20 * time.Second), Started: t0, Ended: t0.Add(22 * time.Second), Pass: true},
	}
	path := filepath.Join(t.TempDir(), "evidence.json")
	require.NoError(t, evidence.Write(path, run, nil))

	var out bytes.Buffer
	require.NoError(t, cmdTimes([]string{"-wall", "110s", path}, &out))
	s := out.String()
	// Σ = 20 s (15 s window + 5 s recovery) + 20 s control + 20 s canary = 60 s.
	assert.Contains(t, s, "Σ (3 windows)")
	assert.Contains(t, s, "60.0s")
	assert.Contains(t, s, "control (no fault)")
	assert.Contains(t, s, "canary")
	assert.Contains(t, s, "overhead ratio wall/Σ(injection→recovered) = 1.83")
	// Lower bound: max(detect 2, fire 12) + recover 5 = 17 s, plus 40 s of windows.
	assert.Contains(t, s, "lower bound Σ(max(detect,fire)+recover) = 57.0s")
}
