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
	assert.Regexp(t, `Σ \(3 windows\) +60\.0s +5\.0s +3\.0s +2\.0s +73\.0s`, s)
	assert.Contains(t, s, "outside the rows, control and canary (boot, seed, other specs, restorations 0.0s, teardown, report): 37.0s")
}

// A row that failed before it recovered has no after-recovery part; a run without the
// server, no server wait: each is "-", and missing from the sums, not counted as zero
// or as the rest of the spec.
func TestTimesSplitsOnlyWhatTheEvidenceMarks(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	failed := evidence.Row{ID: "FM5-kv-down", Status: evidence.StatusFailed, Started: t0, Ended: t0.Add(70 * time.Second)}
	failed.Fault.InjectedAt = t0.Add(1 * time.Second)
	noServer := evidence.Row{ID: "FM8-redis-down", Status: evidence.StatusPassed, Started: t0, Ended: t0.Add(13 * time.Second)}
	noServer.Fault.InjectedAt = t0.Add(2 * time.Second)
	noServer.Mitigation.AppliedAt = t0.Add(8 * time.Second)
	rec := evidence.Millis(time.Second)
	noServer.Times.Recover = &rec // recovered at t0+9 s, ended at t0+13 s
	run := &evidence.Run{Schema: evidence.SchemaVersion, RunID: "r2", Profile: evidence.ProfileFast,
		Verdict: evidence.Verdict{Decision: evidence.DecisionNoGo}, Rows: []evidence.Row{failed, noServer}}
	s := timesOf(t, run, "-wall", "90s")
	assert.Regexp(t, `FM5-kv-down +failed +- +- +- +0\.0s +1\.0s +- +- +70\.0s`, s)
	assert.Regexp(t, `FM8-redis-down +passed +- +- +1\.0s +7\.0s +2\.0s +4\.0s +- +13\.0s`, s)
	// before 1+2 s, after 4 s (the failed row has none), no server wait at all.
	assert.Regexp(t, `Σ \(2 windows\) +7\.0s +3\.0s +4\.0s +- +83\.0s`, s)
	assert.Contains(t, s, "outside the rows, control and canary (boot, seed, other specs, restorations 0.0s, teardown, report): 7.0s")
}

// In a run that had the server, a row without a comparison did not reach it (it failed or
// was interrupted first): its tail is neither "after recovery" nor a server wait. A
// comparison whose span ends after the row (a clock step) gives no server wait.
func TestTimesDoesNotTakeAMissingComparisonForAServerlessRun(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rec := evidence.Millis(time.Second)
	interrupted := evidence.Row{ID: "FM8-redis-down", Status: evidence.StatusInterrupted, Started: t0, Ended: t0.Add(20 * time.Second)}
	interrupted.Fault.InjectedAt = t0.Add(2 * time.Second)
	interrupted.Mitigation.AppliedAt = t0.Add(8 * time.Second)
	interrupted.Times.Recover = &rec
	skewed := evidence.Row{ID: "FM5-kv-down", Status: evidence.StatusPassed, Started: t0, Ended: t0.Add(10 * time.Second)}
	skewed.Fault.InjectedAt = t0.Add(1 * time.Second)
	skewed.Mitigation.AppliedAt = t0.Add(5 * time.Second)
	skewed.Times.Recover = &rec
	skewed.Server = &evidence.ServerAgreement{From: t0, To: t0.Add(11 * time.Second)}
	run := &evidence.Run{Schema: evidence.SchemaVersion, RunID: "r3", Profile: evidence.ProfileFast,
		Verdict:          evidence.Verdict{Decision: evidence.DecisionNoGo},
		PrometheusServer: &evidence.PrometheusServer{Enabled: true},
		Rows:             []evidence.Row{interrupted, skewed},
		Shards:           []evidence.Shard{{RunID: "r3", Started: t0}, {RunID: "r3", Started: t0}},
	}
	s := timesOf(t, run, "-wall", "25s")
	assert.Regexp(t, `FM8-redis-down +interrupted +- +- +1\.0s +7\.0s +2\.0s +- +- +20\.0s`, s)
	assert.Regexp(t, `FM5-kv-down +passed +- +- +1\.0s +5\.0s +1\.0s +5\.0s +- +10\.0s`, s)
	// Two shards: their specs overlap, so wall − Σ spec says nothing.
	assert.Contains(t, s, "outside the rows, control and canary: not computed (2 shards")
	assert.NotContains(t, s, "outside the rows, control and canary (")
}

// timesOf writes run as an evidence file and returns `pbchaos times` on it.
func timesOf(t *testing.T, run *evidence.Run, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "evidence.json")
	require.NoError(t, evidence.Write(path, run, nil))
	var out bytes.Buffer
	require.NoError(t, cmdTimes(append(args, path), &out))
	return out.String()
}
