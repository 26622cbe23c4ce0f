package reports_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
	"github.com/pocketbrain/chaos/reports"
)

func ms(d time.Duration) *evidence.Duration { return evidence.MillisPtr(d) }

func dur(d time.Duration) *time.Duration { return &d }

// pair returns two copies of the sample run (three passed rows, GO).
func pair(t *testing.T) (*evidence.Run, *evidence.Run) {
	t.Helper()
	a := evidencetest.SampleRun()
	b, err := evidence.Clone(a)
	require.NoError(t, err)
	return a, b
}

func render(t *testing.T, d *reports.RunDiff) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, reports.RenderDiff(&b, d))
	return b.String()
}

func TestBandAllowsTheLargerOfAbsoluteAndRelative(t *testing.T) {
	b := reports.Band{Abs: 2 * time.Second, Rel: 0.2}
	assert.Equal(t, 2*time.Second, b.Allowed(5*time.Second), "20 % of 5 s is 1 s: the 2 s band wins")
	assert.Equal(t, 6*time.Second, b.Allowed(30*time.Second), "20 % of 30 s is 6 s")
	assert.Equal(t, "±2.0 s or ±20 % of the old time, whichever is larger", b.String())
	assert.Equal(t, "±500 ms", reports.Band{Abs: 500 * time.Millisecond}.String())
	assert.Equal(t, "±10 % of the old time", reports.Band{Rel: 0.1}.String())
	assert.Equal(t, "none: every change is listed", reports.Band{}.String())
}

func TestDiffTimesOutsideTheBand(t *testing.T) {
	old, cur := pair(t)
	// Row 0: detect 10 s → 11.9 s is inside ±2 s; fire 10 s → 12.5 s is outside.
	old.Rows[0].Times = evidence.Times{Detect: ms(10 * time.Second), Fire: ms(10 * time.Second), Recover: ms(30 * time.Second)}
	cur.Rows[0].Times = evidence.Times{Detect: ms(11900 * time.Millisecond), Fire: ms(12500 * time.Millisecond), Recover: ms(35 * time.Second)}
	// Row 1: recover 30 s → 37 s is beyond 20 % (6 s); fire no longer reached; detect now reached.
	old.Rows[1].Times = evidence.Times{Fire: ms(12 * time.Second), Recover: ms(30 * time.Second)}
	cur.Rows[1].Times = evidence.Times{Detect: ms(3 * time.Second), Recover: ms(37 * time.Second)}
	// Row 2: faster by more than the band counts as well.
	old.Rows[2].Times = evidence.Times{Detect: ms(20 * time.Second)}
	cur.Rows[2].Times = evidence.Times{Detect: ms(12 * time.Second)}

	d := reports.Compare("old.json", old, "new.json", cur, reports.DefaultBand)
	assert.Equal(t, []reports.TimeChange{
		{Row: "vps-path", Moment: "fire", Old: dur(10 * time.Second), New: dur(12500 * time.Millisecond)},
		{Row: "redis-ready", Moment: "detect", New: dur(3 * time.Second)},
		{Row: "redis-ready", Moment: "fire", Old: dur(12 * time.Second)},
		{Row: "redis-ready", Moment: "recover", Old: dur(30 * time.Second), New: dur(37 * time.Second)},
		{Row: "queue-overflow", Moment: "detect", Old: dur(20 * time.Second), New: dur(12 * time.Second)},
	}, d.Times)
	assert.Equal(t, 3, d.RowsCompared)

	md := render(t, d)
	assert.Contains(t, md, "Noise band: ±2.0 s or ±20 % of the old time, whichever is larger.")
	assert.Contains(t, md, "| vps-path | fire | 10.0 s | 12.5 s | +2.5 s (+25 %) |")
	assert.Contains(t, md, "| redis-ready | detect | not reached | 3.0 s | now reached |")
	assert.Contains(t, md, "| redis-ready | fire | 12.0 s | not reached | no longer reached |")
	assert.Contains(t, md, "| queue-overflow | detect | 20.0 s | 12.0 s | −8.0 s (−40 %) |")
	assert.NotContains(t, md, "| vps-path | detect")
	assert.NotContains(t, md, "| vps-path | recover", "5 s on 30 s is inside 20 %")

	// A zero band lists every change; a wide one none.
	assert.Len(t, reports.Compare("a", old, "b", cur, reports.Band{}).Times, 7)
	wide := reports.Compare("a", old, "b", cur, reports.Band{Abs: time.Minute})
	assert.Len(t, wide.Times, 2, "reached in one run only is never noise")
}

// triggerSeries is a trigger curve as the scenario records it.
func triggerSeries(alert string, vs ...float64) evidence.Series {
	s := evidence.Series{Name: alert + " (0 quiet, 0.5 pending, 1 firing)", Expr: `ALERTS{alertname="` + alert + `"}`, Kind: evidence.KindTrigger}
	for i, v := range vs {
		s.Points = append(s.Points, evidence.Point{T: evidencetest.T0().Add(time.Duration(i) * time.Second), V: evidence.Float(v)})
	}
	return s
}

func TestDiffTriggersThatFiredInOneRunOnly(t *testing.T) {
	old, cur := pair(t)
	// Row 0: QueueNonRecovery fired in the old run; in the new one it only went pending,
	// and LocalDurabilityRegression (a trigger that must stay quiet) fired.
	old.Rows[0].Timeline.Series = append(old.Rows[0].Timeline.Series,
		triggerSeries("QueueNonRecovery", 0, 0.5, 1, 0), triggerSeries("LocalDurabilityRegression", 0, 0))
	cur.Rows[0].Timeline.Series = append(cur.Rows[0].Timeline.Series,
		triggerSeries("QueueNonRecovery", 0, 0.5, 0), triggerSeries("LocalDurabilityRegression", 0, 1))
	// Row 1 has no timeline: a fire time means its triggers fired, none means they did not.
	old.Rows[1].Timeline, cur.Rows[1].Timeline = nil, nil
	cur.Rows[1].Times.Fire = nil
	// The control window: a trigger fired in the new run.
	cur.Control.Triggers[1].EverFired = true

	d := reports.Compare("old.json", old, "new.json", cur, reports.DefaultBand)
	assert.Equal(t, []reports.TriggerChange{
		{What: "vps-path (Worker->VPS path instability)", Vanished: []string{"QueueNonRecovery"}, Appeared: []string{"LocalDurabilityRegression"}},
		{What: "redis-ready (Redis readiness degradation)", Vanished: []string{"ReadinessRegression"}},
		{What: "control window", Appeared: []string{"QueueNonRecovery"}},
	}, d.Triggers)

	md := render(t, d)
	assert.Contains(t, md, "| vps-path (Worker-&gt;VPS path instability) | `QueueNonRecovery` | `LocalDurabilityRegression` |")
	assert.Contains(t, md, "| redis-ready (Redis readiness degradation) | `ReadinessRegression` | — |")
	assert.Contains(t, md, "| control window | — | `QueueNonRecovery` |")

	same := reports.Compare("a", old, "b", old, reports.DefaultBand)
	assert.Empty(t, same.Triggers)
	assert.Contains(t, render(t, same), "No rollback trigger fired in one run and not in the other")
}

func TestDiffStatusesVerdictAndFiles(t *testing.T) {
	old, cur := pair(t)
	cur.Rows[0].Status = evidence.StatusFailed
	cur.Rows[0].Failure = "fire: timed out"
	cur.Rows = append(cur.Rows[:2:2], evidence.Row{ID: "new-row", Name: "a | pipe", Status: evidence.StatusPassed})
	cur.Canary.Pass = false
	cur.Gate[0].Result = evidence.GateFail
	cur.Restorations = []evidence.Restoration{{Spec: "Matrix vps-path fires", Rows: []string{"vps-path"}, SteadyAfter: true}}
	cur.Plan = evidencetest.PlanOf(cur) // the new matrix's plan: queue-overflow is gone from it
	// Files are compared by path whatever their order: one hash changed, one file added.
	cur.Provenance.Files = []evidence.FileHash{
		{Path: "harness/rules/triggers.rules.yml", SHA256: "cc33cc33cc33cc33cc33"},
		{Path: "suites/matrix.yaml", SHA256: "aa11"},
		{Path: "program/targets.yaml", SHA256: "dd44"},
	}

	d := reports.Compare("old.json", old, "new.json", cur, reports.DefaultBand)
	assert.True(t, d.VerdictChanged)
	assert.Equal(t, evidence.DecisionGo, d.Old.Verdict.Decision)
	assert.Equal(t, evidence.DecisionNoGo, d.New.Verdict.Decision)
	assert.Empty(t, d.ReasonsGone)
	assert.NotEmpty(t, d.ReasonsNew)
	assert.Equal(t, []string{"Matrix vps-path fires"}, d.SpecsNew)
	assert.Equal(t, []reports.StatusChange{
		{What: "vps-path (Worker->VPS path instability)", Old: "passed", New: "failed"},
		{What: "new-row (a | pipe)", New: "passed"},
		{What: "queue-overflow (Sync queue overflow/backpressure)", Old: "passed"},
		{What: "canary window", Old: "passed", New: "failed"},
		{What: "gate step 1 (config:check)", Old: "pass", New: "fail"},
	}, d.Statuses)
	assert.Equal(t, []reports.HashChange{
		{Key: "harness/rules/triggers.rules.yml", Old: "bb22", New: "cc33cc33cc33cc33cc33"},
		{Key: "program/targets.yaml", New: "dd44"},
	}, d.Files)
	assert.Equal(t, 1, d.FilesSame)

	md := render(t, d)
	assert.Contains(t, md, "Changed: **GO → NO-GO**.")
	assert.Contains(t, md, "| vps-path (Worker-&gt;VPS path instability) | passed | failed |")
	assert.Contains(t, md, `| new-row (a \| pipe) | absent | passed |`, "evidence text is escaped in cells")
	assert.Contains(t, md, "| queue-overflow (Sync queue overflow/backpressure) | passed | absent |")
	assert.Contains(t, md, "| canary window | passed | failed |")
	assert.Contains(t, md, "- Matrix vps-path fires")
	assert.Contains(t, md, "2 changed, 1 the same (compared by path)")
	assert.Contains(t, md, "| `harness/rules/triggers.rules.yml` | `bb22` | `cc33cc33cc33` |")
	assert.Contains(t, md, "| `program/targets.yaml` | absent | `dd44` |")

	same := render(t, reports.Compare("a", old, "b", old, reports.DefaultBand))
	assert.Contains(t, same, "Unchanged: **GO** in both runs.")
	assert.Contains(t, same, "The reasons are the same.")
	assert.Contains(t, same, "No row, window or gate step changed status (3 rows in both runs).")
	assert.Contains(t, same, "No time moved beyond the band (3 rows in both runs).")
	assert.Contains(t, same, "Every file hash is the same in both runs (2 files, compared by path).")
	assert.NotContains(t, same, "Images that differ")
}
