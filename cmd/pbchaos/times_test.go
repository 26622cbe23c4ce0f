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
	row.Mitigation.AppliedAt = t0.Add(20 * time.Second)                            // 15 s fault window
	row.Times = evidence.Times{Detect: d(2), Fire: d(12), Recover: d(5)}           // recovered at t0+25 s
	row.Server = &evidence.ServerAgreement{From: t0, To: t0.Add(28 * time.Second)} // data-loss check until t0+28 s
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
	// The row's own overhead: 5 s before injection, 3 s from recovery to the compared
	// span's end, 2 s waiting for the server; outside the specs 110 − (30+21+22) s.
	assert.Regexp(t, `FM8-redis-down +passed +2\.0s +12\.0s +5\.0s +20\.0s +5\.0s +3\.0s +2\.0s +30\.0s`, s)
	assert.Contains(t, s, "outside every spec (boot, seed, teardown, report): 37.0s")
}

// A row that failed before it recovered has no after-recovery part; a run without the
// server, no server wait: each is "-", and missing from the sums, not counted as zero
// or as the rest of the spec.
func TestTimesSplitsOnlyWhatTheEvidenceMarks(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	failed := evidence.Row{ID: "FM5-kv-down", Status: evidence.StatusFailed, Started: t0, Ended: t0.Add(70 * time.Second)}
	failed.Fault.InjectedAt = t0.Add(1 * time.Second)
	noServer := evidence.Row{ID: "FM8-redis-down", Status: evidence.StatusPassed, Started: t0, Ended: t0.Add(12 * time.Second)}
	noServer.Fault.InjectedAt = t0.Add(2 * time.Second)
	noServer.Mitigation.AppliedAt = t0.Add(8 * time.Second)
	rec := evidence.Millis(time.Second)
	noServer.Times.Recover = &rec // recovered at t0+9 s, ended at t0+12 s
	run := &evidence.Run{Schema: evidence.SchemaVersion, RunID: "r2", Profile: evidence.ProfileFast,
		Verdict: evidence.Verdict{Decision: evidence.DecisionNoGo}, Rows: []evidence.Row{failed, noServer}}
	path := filepath.Join(t.TempDir(), "evidence.json")
	require.NoError(t, evidence.Write(path, run, nil))
	var out bytes.Buffer
	require.NoError(t, cmdTimes([]string{path}, &out))
	s := out.String()
	assert.Regexp(t, `FM5-kv-down +failed +- +- +- +0\.0s +1\.0s +- +- +70\.0s`, s)
	assert.Regexp(t, `FM8-redis-down +passed +- +- +1\.0s +7\.0s +2\.0s +3\.0s +- +12\.0s`, s)
	assert.Regexp(t, `Σ \(2 windows\) +7\.0s +3\.0s +3\.0s +0\.0s +82\.0s`, s)
}
