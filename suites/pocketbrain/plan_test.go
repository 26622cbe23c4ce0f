package pocketbrain

import (
	"strconv"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/gate"
	"github.com/pocketbrain/chaos/harness/program"
)

// plannedItems is everything an unfiltered run of this suite records, for
// evidence.Recorder.SetPlan at the start of the run: every row of the matrix (matrix_test.go
// begins one evidence row per matrix row, under its id), the validation specs VAL-1..3
// (validation_common_test.go records each as an evidence row with that id), the baseline
// captures (baseline_test.go), every step of the release-gate file in its order
// (gate_test.go; steps 2–3 record n/a, which counts as run), the no-fault control
// (matrix_test.go) and the canary (gate step 6, which records it). ComputeVerdict reads an
// item the evidence lacks (filtered out by --label-filter, or in a shard left out of a
// merge) as "planned but not run": INCOMPLETE, never GO.
//
// The gate steps come from dir's release-gate file (gate.Load, as gate_test.go reads it).
// The self-test specs (PB_SELFTEST) and the security specs record no planned item.
func plannedItems(p *program.Program, dir string) ([]evidence.PlannedItem, error) {
	g, err := gate.Load(dir)
	if err != nil {
		return nil, err
	}
	var plan []evidence.PlannedItem
	for _, r := range p.Matrix.Rows {
		plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanRow, ID: r.ID, Name: r.Mode + " — " + r.Name})
	}
	// The ids validation_common_test.go's Describe gives validationSpec; keep them in step.
	for _, id := range []string{"VAL-1", "VAL-2", "VAL-3"} {
		plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanValidation, ID: id})
	}
	plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanBaseline, ID: evidence.PlanBaseline, Name: BaselineFile})
	for _, s := range g.Steps {
		plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanGate, ID: strconv.Itoa(s.Step), Name: s.Name})
	}
	plan = append(plan,
		evidence.PlannedItem{Kind: evidence.PlanControl, ID: evidence.PlanControl},
		evidence.PlannedItem{Kind: evidence.PlanCanary, ID: evidence.PlanCanary})
	return plan, nil
}
