package evidence_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
)

// agreeing is the Prometheus server agreeing with the embedded engine over a span.
func agreeing(from, to time.Time, fired ...string) *evidence.ServerAgreement {
	a := &evidence.ServerAgreement{From: from, To: to, Agree: true, Tolerance: evidence.Millis(20 * time.Second), Detail: "all alerts agree"}
	for _, name := range fired {
		at := from.Add(10 * time.Second)
		a.Alerts = append(a.Alerts, evidence.AlertAgreement{Alert: name, EmbeddedFired: true, ServerFired: true,
			EmbeddedAt: at, ServerAt: at.Add(time.Second), Delta: evidence.MillisPtr(time.Second), Agree: true})
	}
	return a
}

// disagreeing is the server firing alert 45 s after the embedded engine, past the tolerance.
func disagreeing(from, to time.Time, alert string) *evidence.ServerAgreement {
	at := from.Add(10 * time.Second)
	return &evidence.ServerAgreement{From: from, To: to, Tolerance: evidence.Millis(20 * time.Second),
		Detail: alert + ": the server fired 45s after the embedded engine\nsecond line",
		Alerts: []evidence.AlertAgreement{{Alert: alert, EmbeddedFired: true, ServerFired: true,
			EmbeddedAt: at, ServerAt: at.Add(45 * time.Second), Delta: evidence.MillisPtr(45 * time.Second)}}}
}

// serverGoRun is the GO sample run with the Prometheus server on and every row and window
// agreeing with it.
func serverGoRun() *evidence.Run {
	run := evidencetest.SampleRun()
	run.PrometheusServer = &evidence.PrometheusServer{Enabled: true, Version: "2.42.0", Image: "pocketbrain-local/prometheus:2.42",
		ScrapeInterval: evidence.Millis(time.Second), EvalInterval: evidence.Millis(time.Second)}
	for i := range run.Rows {
		r := &run.Rows[i]
		r.Server = agreeing(r.Started, r.Ended, r.Triggers...)
	}
	run.Control.Server = agreeing(run.Control.Started, run.Control.Ended)
	run.Canary.Server = agreeing(run.Canary.Started, run.Canary.Ended)
	return run
}

// ComputeVerdict's serverCheck: with the Prometheus server on, every passed row and window
// needs an agreement, and a recorded disagreement is a NO-GO whatever the embedded engine said.
func TestComputeVerdictServerCheck(t *testing.T) {
	const (
		rowDisagrees = "row redis-ready (Redis readiness degradation): the Prometheus server disagrees with the embedded engine: ReadinessRegression: the server fired 45s after the embedded engine …"
		rowMissing   = "row vps-path (Worker->VPS path instability): no agreement with the Prometheus server recorded"
	)
	cases := []struct {
		name     string
		mutate   func(r *evidence.Run)
		decision string
		reasons  []string // exactly these reasons, in order (none for GO)
	}{
		{"server on, all agree", func(*evidence.Run) {}, evidence.DecisionGo, nil},
		{"row disagrees", func(r *evidence.Run) {
			row := &r.Rows[1]
			row.Server = disagreeing(row.Started, row.Ended, "ReadinessRegression")
		}, evidence.DecisionNoGo, []string{rowDisagrees}},
		{"passed row without agreement", func(r *evidence.Run) { r.Rows[0].Server = nil }, evidence.DecisionNoGo, []string{rowMissing}},
		{"failed row without agreement: only its failure", func(r *evidence.Run) {
			r.Rows[0].Status, r.Rows[0].Failure, r.Rows[0].Server = evidence.StatusFailed, "trigger never fired", nil
		}, evidence.DecisionNoGo, []string{"row vps-path (Worker->VPS path instability): failed: trigger never fired"}},
		{"failed row that disagrees: both", func(r *evidence.Run) {
			row := &r.Rows[1]
			row.Status, row.Failure = evidence.StatusFailed, "trigger never fired"
			row.Server = disagreeing(row.Started, row.Ended, "ReadinessRegression")
		}, evidence.DecisionNoGo, []string{"row redis-ready (Redis readiness degradation): failed: trigger never fired", rowDisagrees}},
		{"control window disagrees", func(r *evidence.Run) {
			r.Control.Server = disagreeing(r.Control.Started, r.Control.Ended, "QueueNonRecovery")
		}, evidence.DecisionNoGo, []string{"control window: the Prometheus server disagrees with the embedded engine: QueueNonRecovery: the server fired 45s after the embedded engine …"}},
		{"passed canary without agreement", func(r *evidence.Run) { r.Canary.Server = nil }, evidence.DecisionNoGo,
			[]string{"canary window: no agreement with the Prometheus server recorded"}},
		{"failed control without agreement: only its failure", func(r *evidence.Run) {
			r.Control.Pass, r.Control.Triggers[1].EverFired, r.Control.Server = false, true, nil
		}, evidence.DecisionNoGo, []string{"control window failed: triggers fired: QueueNonRecovery"}},
		{"server disabled, no agreements", func(r *evidence.Run) {
			r.PrometheusServer = &evidence.PrometheusServer{Reason: "PB_PROMETHEUS=off"}
			dropAgreements(r)
		}, evidence.DecisionGo, nil},
		{"server not recorded (older evidence), no agreements", func(r *evidence.Run) {
			r.PrometheusServer = nil
			dropAgreements(r)
		}, evidence.DecisionGo, nil},
		{"server disabled, a recorded disagreement still counts", func(r *evidence.Run) {
			r.PrometheusServer.Enabled, r.PrometheusServer.Reason = false, "PB_PROMETHEUS=off"
			row := &r.Rows[1]
			row.Server = disagreeing(row.Started, row.Ended, "ReadinessRegression")
		}, evidence.DecisionNoGo, []string{rowDisagrees}},
		{"incomplete run still lists a disagreement", func(r *evidence.Run) {
			r.Complete = false
			row := &r.Rows[1]
			row.Server = disagreeing(row.Started, row.Ended, "ReadinessRegression")
		}, evidence.DecisionIncomplete, []string{
			"run not complete: the harness stopped before finishing (crash or kill?) or is still running", rowDisagrees}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := serverGoRun()
			tc.mutate(run)
			v := evidence.ComputeVerdict(run)
			assert.Equal(t, tc.decision, v.Decision, "reasons: %v", v.Reasons)
			assert.Equal(t, tc.reasons, v.Reasons)
		})
	}
}

// The sample run without any server field is GO: evidence from before the server is judged
// as before.
func TestComputeVerdictWithoutServerUnchanged(t *testing.T) {
	run := evidencetest.SampleRun()
	require.Nil(t, run.PrometheusServer)
	v := evidence.ComputeVerdict(run)
	assert.Equal(t, evidence.DecisionGo, v.Decision, "reasons: %v", v.Reasons)
	assert.NotContains(t, strings.Join(v.Reasons, "\n"), "Prometheus server")
}

// The agreements survive a write and a load unchanged, and so does the verdict.
func TestServerAgreementRoundTrip(t *testing.T) {
	run := serverGoRun()
	row := &run.Rows[1]
	row.Server = disagreeing(row.Started, row.Ended, "ReadinessRegression")
	run.Verdict = evidence.ComputeVerdict(run)
	b, err := evidence.Marshal(run, nil)
	require.NoError(t, err)
	got, err := evidence.Decode("evidence.json", b)
	require.NoError(t, err)
	assert.Equal(t, run, got)
	assert.Equal(t, run.Verdict, evidence.ComputeVerdict(got))
}

func dropAgreements(r *evidence.Run) {
	for i := range r.Rows {
		r.Rows[i].Server = nil
	}
	r.Control.Server, r.Canary.Server = nil, nil
}
