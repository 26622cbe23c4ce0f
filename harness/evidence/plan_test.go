package evidence_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
)

// fullPlan is the sample run's plan with the validation specs and the gate steps it did
// not record added: what an unfiltered run of a larger program plans.
func fullPlan(run *evidence.Run) []evidence.PlannedItem {
	plan := evidencetest.PlanOf(run)
	return append(plan,
		evidence.PlannedItem{Kind: evidence.PlanValidation, ID: "VAL-2"},
		evidence.PlannedItem{Kind: evidence.PlanGate, ID: "4", Name: "VPS deploy"})
}

// A run filtered to one row (Ginkgo --label-filter), with everything it ran passing, is
// INCOMPLETE and names every planned item it did not run. Before the plan existed this
// run read GO: one row was enough.
func TestFilteredRunIsIncomplete(t *testing.T) {
	run := evidencetest.SampleRun()
	run.Rows = run.Rows[:1] // --label-filter='row:vps-path'
	run.Provenance.LabelFilter = "row:vps-path"
	require.NotEmpty(t, run.Plan)

	v := evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionIncomplete, v.Decision, "reasons: %v", v.Reasons)
	assert.Equal(t, []string{"planned but not run: row redis-ready, row queue-overflow"}, v.Reasons)
	assert.Equal(t, evidence.StatusPassed, run.Rows[0].Status, "the row's own result stays as it is")

	// The same filtered run with the plan taken away is what the old verdict judged: it
	// still cannot read GO.
	run.Plan = nil
	v = evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionIncomplete, v.Decision)
	assert.Equal(t, []string{"no plan recorded: cannot tell whether everything planned ran"}, v.Reasons)
}

// Every kind of planned item is checked against the evidence field that records it, and
// the one reason lists them all in plan order.
func TestPlannedButNotRunNamesEveryKind(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(r *evidence.Run)
		reason string
	}{
		{"row", func(r *evidence.Run) { r.Rows = r.Rows[1:] }, "planned but not run: row vps-path"},
		{"validation", func(r *evidence.Run) {
			r.Plan = append(r.Plan, evidence.PlannedItem{Kind: evidence.PlanValidation, ID: "VAL-3"})
		}, "planned but not run: validation VAL-3"},
		{"baseline", func(r *evidence.Run) { r.Baseline = nil }, "planned but not run: baseline"},
		{"gate step", func(r *evidence.Run) { r.Gate = r.Gate[:2] }, "planned but not run: gate step 6 (30-minute canary)"},
		{"control", func(r *evidence.Run) { r.Control = nil }, "planned but not run: control"},
		{"canary", func(r *evidence.Run) { r.Canary = nil }, "planned but not run: canary"},
		{"several, in plan order", func(r *evidence.Run) {
			r.Plan = fullPlan(r)
			r.Rows, r.Canary = r.Rows[:2], nil
		}, "planned but not run: row queue-overflow, canary, validation VAL-2, gate step 4 (VPS deploy)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := evidencetest.SampleRun()
			tc.mutate(run)
			v := evidence.ComputeVerdict(run)
			assert.Equal(t, evidence.DecisionIncomplete, v.Decision, "reasons: %v", v.Reasons)
			assert.Equal(t, []string{tc.reason}, v.Reasons, "one reason, and no repeat of the absence")
		})
	}
}

// A planned item missing beats a failure: the decision is INCOMPLETE, and the reasons
// still list what is known to fail.
func TestNotRunWithFailuresIsIncompleteAndListsBoth(t *testing.T) {
	run := evidencetest.SampleRun()
	run.Rows = run.Rows[:2]
	run.Rows[1].Status, run.Rows[1].Failure = evidence.StatusFailed, "trigger never fired"
	v := evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionIncomplete, v.Decision)
	assert.Equal(t, []string{
		"planned but not run: row queue-overflow",
		"row redis-ready (Redis readiness degradation): failed: trigger never fired",
	}, v.Reasons)
}

// A row or gate step recorded as skipped was recorded: it stays a NO-GO reason of its own,
// not "not run" (a checklist halted by a failed step is NO-GO, with the failure).
func TestSkippedIsRecordedNotMissing(t *testing.T) {
	run := evidencetest.SampleRun()
	run.Gate[0].Result, run.Gate[0].Detail = evidence.GateFail, "CORS_ORIGIN unset"
	run.Gate[1].Result, run.Gate[1].Detail = evidence.GateSkipped, "step 1 failed and the checklist halts there"
	v := evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionNoGo, v.Decision, "reasons: %v", v.Reasons)
	assert.NotContains(t, strings.Join(v.Reasons, "\n"), "planned but not run")
	assert.Empty(t, evidence.NotRun(run))
}

// Evidence from before the plan existed loads, and is judged as before, with one reason
// more: a run that fails stays NO-GO; one that would have read GO is INCOMPLETE.
func TestNoPlanRecorded(t *testing.T) {
	const noPlan = "no plan recorded: cannot tell whether everything planned ran"
	run := evidencetest.SampleRun()
	run.Plan = nil
	v := evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionIncomplete, v.Decision)
	assert.Equal(t, []string{noPlan}, v.Reasons)
	assert.Empty(t, evidence.NotRun(run))

	run.Canary = nil
	v = evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionNoGo, v.Decision, "without a plan the old absence reasons stand")
	assert.Equal(t, []string{noPlan, "canary window not recorded"}, v.Reasons)

	// Real files written before the plan: they load, and keep their NO-GO.
	for _, f := range []string{"sec-old.json", "sec-new.json"} {
		old, err := evidence.Load(filepath.Join("..", "..", "cmd", "pbreport", "testdata", f))
		require.NoError(t, err, f)
		require.Empty(t, old.Plan)
		v := evidence.ComputeVerdict(old)
		assert.Equal(t, evidence.DecisionNoGo, v.Decision, f)
		assert.Equal(t, noPlan, v.Reasons[0], f)
	}
}

// An item of a kind this build does not know cannot be shown to have run.
func TestUnknownPlanKindIsIncomplete(t *testing.T) {
	run := evidencetest.SampleRun()
	run.Plan = append(run.Plan, evidence.PlannedItem{Kind: "soak", ID: "soak-1h"})
	v := evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionIncomplete, v.Decision)
	assert.Equal(t, []string{`planned soak soak-1h: unknown kind "soak", cannot tell whether it ran (render with the pbreport that wrote it)`}, v.Reasons)
	assert.Equal(t, []evidence.PlannedItem{{Kind: "soak", ID: "soak-1h"}}, evidence.NotRun(run))
}

func TestPlannedItemLabel(t *testing.T) {
	for want, it := range map[string]evidence.PlannedItem{
		"row FM3-clerk-partial":    {Kind: evidence.PlanRow, ID: "FM3-clerk-partial", Name: "FM3 — Clerk partial"},
		"validation VAL-2":         {Kind: evidence.PlanValidation, ID: "VAL-2"},
		"baseline":                 {Kind: evidence.PlanBaseline, ID: "baseline"},
		"gate step 4 (VPS deploy)": {Kind: evidence.PlanGate, ID: "4", Name: "VPS deploy"},
		"gate step 5":              {Kind: evidence.PlanGate, ID: "5"},
		"control":                  {Kind: evidence.PlanControl, ID: "control"},
		"canary":                   {Kind: evidence.PlanCanary, ID: "canary"},
	} {
		assert.Equal(t, want, it.Label())
	}
}

// Where the data to judge something was absent, the item is inconclusive, never a pass.
func TestInconclusiveIsNeverPass(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(r *evidence.Run)
		reason string // "" for GO
	}{
		{"a value wanted, no sample, judged pass", func(r *evidence.Run) {
			e := &r.Rows[0].Evaluations[1]
			e.Present, e.Value = false, 0
		}, `row vps-path (Worker->VPS path instability): inconclusive: increase(pocketbrain_worker_failure_causes_upstream_timeout[15m]) > 0 (fault) passed with no sample, but wanted "> 0": no data is no proof`},
		{"absence wanted and seen is a pass", func(r *evidence.Run) {
			r.Rows[0].Evaluations[0].Want = "does not hold"
		}, ""},
		{"a failed row is judged by its failure alone", func(r *evidence.Run) {
			r.Rows[0].Evaluations[1].Present = false
			r.Rows[0].Status, r.Rows[0].Failure = evidence.StatusFailed, "detection: timed out"
		}, "row vps-path (Worker->VPS path instability): failed: detection: timed out"},
		{"control passed watching nothing", func(r *evidence.Run) { r.Control.Triggers = nil },
			"control window: inconclusive: it passed with no rollback trigger watched (nothing evaluated proves nothing)"},
		{"canary passed watching nothing", func(r *evidence.Run) { r.Canary.Triggers = []evidence.TriggerTrace{} },
			"canary window: inconclusive: it passed with no rollback trigger watched (nothing evaluated proves nothing)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := evidencetest.SampleRun()
			tc.mutate(run)
			v := evidence.ComputeVerdict(run)
			if tc.reason == "" {
				assert.Equal(t, evidence.DecisionGo, v.Decision, "reasons: %v", v.Reasons)
				return
			}
			assert.Equal(t, evidence.DecisionNoGo, v.Decision)
			assert.Equal(t, []string{tc.reason}, v.Reasons)
		})
	}
}

// The README's two shards merge to GO; the merge of one of them alone is INCOMPLETE and
// names the rows only the other shard ran. Before the plan, that merge read GO.
func TestMergeMissingShardIsIncomplete(t *testing.T) {
	a, b := shards()
	m, err := evidence.Merge(a, b)
	require.NoError(t, err)
	assert.Equal(t, evidence.DecisionGo, m.Verdict.Decision, "%v", m.Verdict.Reasons)
	assert.Equal(t, evidencetest.SampleRun().Plan, m.Plan, "equal plans merge to the same plan")

	m, err = evidence.Merge(a)
	require.NoError(t, err)
	assert.Equal(t, evidence.DecisionIncomplete, m.Verdict.Decision)
	assert.Equal(t, []string{"planned but not run: row queue-overflow"}, m.Verdict.Reasons)

	// The other shard alone lacks more: the rows, the baseline, the gate and both windows.
	m, err = evidence.Merge(b)
	require.NoError(t, err)
	assert.Equal(t, evidence.DecisionIncomplete, m.Verdict.Decision)
	assert.Equal(t, []string{"planned but not run: row vps-path, row redis-ready, baseline, gate step 1 (config:check), " +
		"gate step 2 (vps:precheck:remote), gate step 6 (30-minute canary), control, canary"}, m.Verdict.Reasons)
}

// Shards that planned different things say so as a run problem; the union is judged.
func TestMergePlansDiffer(t *testing.T) {
	a, b := shards()
	b.Plan = fullPlan(evidencetest.SampleRun())
	m, err := evidence.Merge(a, b)
	require.NoError(t, err)
	assert.Equal(t, fullPlan(evidencetest.SampleRun()), m.Plan, "the union, in first-seen order")
	assert.Equal(t, evidence.DecisionIncomplete, m.Verdict.Decision)
	assert.Equal(t, []string{
		"planned but not run: validation VAL-2, gate step 4 (VPS deploy)",
		"run problem: merge: the shards' plans differ: shard 1 (run shard-a) did not plan validation VAL-2, gate step 4 (VPS deploy), which another shard planned (run every shard with the same matrix and release-gate files)",
	}, m.Verdict.Reasons)

	a, b = shards()
	b.Plan = nil
	m, err = evidence.Merge(a, b)
	require.NoError(t, err)
	assert.Equal(t, a.Plan, m.Plan)
	assert.Equal(t, evidence.DecisionNoGo, m.Verdict.Decision)
	assert.Equal(t, []string{"run problem: merge: shard 2 (run shard-b) recorded no plan while another shard did: shards of one run record the same plan (re-run it with this harness)"}, m.Verdict.Reasons)

	// No shard with a plan (older evidence): no plan, no problem, judged as before.
	a, b = shards()
	a.Plan, b.Plan = nil, nil
	m, err = evidence.Merge(a, b)
	require.NoError(t, err)
	assert.Empty(t, m.Plan)
	assert.Equal(t, evidence.DecisionIncomplete, m.Verdict.Decision)
	assert.Equal(t, []string{"no plan recorded: cannot tell whether everything planned ran"}, m.Verdict.Reasons)
}

// The recorder writes the plan at the start: from then on every file names what has not
// run yet, and Finish without the rest is INCOMPLETE.
func TestRecorderSetPlan(t *testing.T) {
	rec := newRecorder(t, t.TempDir())
	plan := []evidence.PlannedItem{
		{Kind: evidence.PlanRow, ID: "r1"}, {Kind: evidence.PlanRow, ID: "r2"},
		{Kind: evidence.PlanGate, ID: "4", Name: "VPS deploy"}, {Kind: evidence.PlanCanary, ID: "canary"},
	}
	require.NoError(t, rec.SetPlan(plan))
	plan[0].ID = "changed" // the recorder keeps its own copy

	loaded, err := evidence.Load(rec.Path())
	require.NoError(t, err)
	assert.Equal(t, "r1", loaded.Plan[0].ID)
	assert.Len(t, evidence.NotRun(loaded), 4)

	require.NoError(t, recordSampleRow(t, rec, "r1").Pass())
	v, err := rec.Finish()
	require.NoError(t, err)
	assert.Equal(t, evidence.DecisionIncomplete, v.Decision)
	assert.Contains(t, v.Reasons, "planned but not run: row r2, gate step 4 (VPS deploy), canary")

	bad := newRecorder(t, t.TempDir())
	err = bad.SetPlan([]evidence.PlannedItem{
		{Kind: "matrix", ID: "r1"}, {Kind: evidence.PlanRow}, {Kind: evidence.PlanGate, ID: "four"},
		{Kind: evidence.PlanRow, ID: "r1"}, {Kind: evidence.PlanRow, ID: "r1"},
	})
	require.Error(t, err)
	for _, want := range []string{`item 1 (r1): kind "matrix"`, "item 2 (row): empty id", `gate step id "four"`, "item 5: row r1 is planned twice"} {
		assert.ErrorContains(t, err, want)
	}
	snap, err := bad.Snapshot()
	require.NoError(t, err)
	assert.Empty(t, snap.Plan, "a refused plan records nothing")
}
