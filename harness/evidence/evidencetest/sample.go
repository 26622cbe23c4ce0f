// Package evidencetest builds realistic evidence for tests of the evidence
// model, the reports and pbreport. It is not used by the harness itself.
package evidencetest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// T0 is the fixed start of sample runs (whole milliseconds, UTC, so
// samples survive a JSON round trip unchanged).
func T0() time.Time { return time.Date(2026, 2, 14, 9, 30, 0, 0, time.UTC) }

// SampleRow returns a passed row with a full timeline: steady 20 s, fault
// 40 s, mitigation, recovery.
func SampleRow(id, name, signal, trigger string, t0 time.Time) evidence.Row {
	inj := t0.Add(20 * time.Second)
	mit := inj.Add(40 * time.Second)
	var sig, trig []evidence.Point
	var counter float64
	for s := 0; s <= 90; s++ {
		t := t0.Add(time.Duration(s) * time.Second)
		if t.After(inj.Add(2*time.Second)) && t.Before(mit) {
			counter += 3
		}
		fired := 0.0
		if t.After(inj.Add(12*time.Second)) && t.Before(mit.Add(5*time.Second)) {
			fired = 1
		}
		sig = append(sig, evidence.Point{T: t, V: evidence.Float(counter)})
		trig = append(trig, evidence.Point{T: t, V: evidence.Float(fired)})
	}
	return evidence.Row{
		ID:       id,
		Name:     name,
		Labels:   []string{"row", id},
		Runbook:  "docs/ops/DEPENDENCY_RUNBOOK.md",
		Triggers: []string{trigger},
		Status:   evidence.StatusPassed,
		Attempts: 1,
		Started:  t0,
		Ended:    t0.Add(95 * time.Second),
		Fault: evidence.Fault{
			Kind: "network", Target: "vps",
			Params:     map[string]string{"toxic": "timeout", "timeout": "0"},
			InjectedAt: inj, HealedAt: mit,
			Proof: []evidence.Proof{{What: "toxiproxy vps downstream bytes during fault", Value: "0"}},
		},
		Mitigation: evidence.Mitigation{Action: "Recover upstream network/API path, confirm circuit closes", AppliedAt: mit},
		Times: evidence.Times{
			Detect:  evidence.MillisPtr(3200 * time.Millisecond),
			Fire:    evidence.MillisPtr(12400 * time.Millisecond),
			Recover: evidence.MillisPtr(6100 * time.Millisecond),
		},
		Evaluations: []evidence.Evaluation{
			{Phase: evidence.PhaseSteady, Expr: "ALERTS{alertname=\"" + trigger + "\"}", Value: 0, Present: false, Want: "absent", Pass: true, At: inj.Add(-time.Second)},
			{Phase: evidence.PhaseFault, Expr: "increase(" + signal + "[15m]) > 0", Value: 117, Present: true, Want: "> 0", Pass: true, At: inj.Add(15 * time.Second)},
			{Phase: evidence.PhaseRecovered, Expr: "probe_success{probe=\"server_ready\"}", Value: 1, Present: true, Want: "== 1", Pass: true, At: mit.Add(7 * time.Second)},
		},
		DataLoss: &evidence.DataLoss{Verdict: evidence.DataLossValid, Ops: 2400, Acknowledged: 2310},
		Timeline: &evidence.Timeline{
			Series: []evidence.Series{
				{Name: signal, Expr: signal, Kind: evidence.KindSignal, Points: sig},
				{Name: trigger, Expr: "ALERTS{alertname=\"" + trigger + "\",alertstate=\"firing\"}", Kind: evidence.KindTrigger, Points: trig},
			},
			Windows: []evidence.Span{{From: inj, To: mit, Label: "fault"}},
		},
	}
}

// SampleRun returns a complete run whose verdict is GO: its plan (PlanOf) lists exactly
// its rows, baseline, gate steps, control and canary.
func SampleRun() *evidence.Run {
	t0 := T0()
	run := &evidence.Run{
		Schema:    evidence.SchemaVersion,
		RunID:     "20260214T093000Z-abc1234",
		Profile:   evidence.ProfileFast,
		TimeScale: evidence.TimeScale{ForScale: 0.1, Note: "for: 5m shortened to 30s"},
		Started:   t0,
		Ended:     t0.Add(20 * time.Minute),
		Complete:  true,
		Provenance: evidence.Provenance{
			HarnessRevision: "abc1234def5678",
			GoVersion:       "go1.26.8",
			DockerVersion:   "26.1.5",
			Images: []evidence.Image{
				{Role: "server", Ref: "pocketbrain-local/server:dev", ID: "sha256:1111"},
				{Role: "worker", Ref: "pocketbrain-local/worker:dev", ID: "sha256:2222"},
			},
			Files: []evidence.FileHash{
				{Path: "suites/matrix.yaml", SHA256: "aa11"},
				{Path: "harness/rules/triggers.rules.yml", SHA256: "bb22"},
			},
			Host: "ci-1",
		},
		Baseline: []evidence.BaselineCheck{
			{Endpoint: "GET /ready", Field: "ok", Document: "true", Observed: "true", Pass: true},
			{Endpoint: "GET /metrics", Field: "pocketbrain_redis_ready_degraded", Document: "0", Observed: "0", Pass: true},
		},
		Gate: []evidence.GateStep{
			{Step: 1, Name: "config:check", Command: "pb-config-check", Result: evidence.GatePass},
			{Step: 2, Name: "vps:precheck:remote", Result: evidence.GateNA, Detail: "no remote VPS in the harness"},
			{Step: 6, Name: "30-minute canary", Result: evidence.GatePass, Detail: "scaled to 3m"},
		},
		Control: sampleWindow(t0.Add(time.Minute), 3*time.Minute),
		Canary:  sampleWindow(t0.Add(10*time.Minute), 3*time.Minute),
	}
	for i, r := range []struct{ id, name, signal, trigger string }{
		{"vps-path", "Worker->VPS path instability", "pocketbrain_worker_failure_causes_upstream_timeout", "WorkerConfigRoutingRegression"},
		{"redis-ready", "Redis readiness degradation", "pocketbrain_redis_ready_failures_total", "ReadinessRegression"},
		{"queue-overflow", "Sync queue overflow/backpressure", "sync_queue_block_events", "QueueNonRecovery"},
	} {
		run.Rows = append(run.Rows, SampleRow(r.id, r.name, r.signal, r.trigger, t0.Add(time.Duration(5+2*i)*time.Minute)))
	}
	run.Plan = PlanOf(run)
	run.Verdict = evidence.ComputeVerdict(run)
	return run
}

// PlanOf is the plan a run's evidence covers exactly: a row item per row (a validation
// item for VAL-n), the baseline when recorded, one item per gate step, the control and
// the canary when recorded. Tests build full runs, then drop what a filter or a missing
// shard would not have run.
func PlanOf(run *evidence.Run) []evidence.PlannedItem {
	var plan []evidence.PlannedItem
	for _, r := range run.Rows {
		kind := evidence.PlanRow
		if strings.HasPrefix(r.ID, "VAL-") {
			kind = evidence.PlanValidation
		}
		plan = append(plan, evidence.PlannedItem{Kind: kind, ID: r.ID, Name: r.Name})
	}
	if len(run.Baseline) > 0 {
		plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanBaseline, ID: evidence.PlanBaseline})
	}
	for _, g := range run.Gate {
		plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanGate, ID: strconv.Itoa(g.Step), Name: g.Name})
	}
	if run.Control != nil {
		plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanControl, ID: evidence.PlanControl})
	}
	if run.Canary != nil {
		plan = append(plan, evidence.PlannedItem{Kind: evidence.PlanCanary, ID: evidence.PlanCanary})
	}
	return plan
}

func sampleWindow(start time.Time, span time.Duration) *evidence.Window {
	w := &evidence.Window{Planned: evidence.Millis(span), Started: start, Ended: start.Add(span), Pass: true}
	for _, alert := range []string{"LocalDurabilityRegression", "QueueNonRecovery", "ReadinessRegression"} {
		tr := evidence.TriggerTrace{Alert: alert, Expr: fmt.Sprintf("ALERTS{alertname=%q}", alert)}
		for s := time.Duration(0); s <= span; s += 10 * time.Second {
			tr.Points = append(tr.Points, evidence.Point{T: start.Add(s), V: 0})
		}
		w.Triggers = append(w.Triggers, tr)
	}
	return w
}
