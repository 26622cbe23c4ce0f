package evidence_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
)

func TestRoundTrip(t *testing.T) {
	run := evidencetest.SampleRun()
	path := filepath.Join(t.TempDir(), evidence.FileName)
	require.NoError(t, evidence.Write(path, run, nil))
	got, err := evidence.Load(path)
	require.NoError(t, err)
	assert.Equal(t, run, got)
	assert.Equal(t, evidence.DecisionGo, got.Verdict.Decision, "the sample is a GO run: %v", got.Verdict.Reasons)
}

func TestDurationIsWholeMilliseconds(t *testing.T) {
	b, err := json.Marshal(evidence.Times{Detect: evidence.MillisPtr(1500*time.Millisecond + 700*time.Microsecond)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"detect_ms":1500}`, string(b))
	var back evidence.Times
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Nil(t, back.Fire, "a moment not reached stays nil")
	assert.Equal(t, 1500*time.Millisecond, back.Detect.Duration)
}

func TestFloatSpecialValuesStayValidJSON(t *testing.T) {
	in := []evidence.Float{evidence.Float(math.NaN()), evidence.Float(math.Inf(1)), evidence.Float(math.Inf(-1)), 2.5}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.Equal(t, `["NaN","+Inf","-Inf",2.5]`, string(b))
	var out []evidence.Float
	require.NoError(t, json.Unmarshal(b, &out))
	assert.True(t, math.IsNaN(float64(out[0])))
	assert.True(t, math.IsInf(float64(out[1]), 1))
	assert.True(t, math.IsInf(float64(out[2]), -1))
	assert.Equal(t, evidence.Float(2.5), out[3])
}

func newRecorder(t *testing.T, dir string, opts ...evidence.Option) *evidence.Recorder {
	t.Helper()
	clock := evidencetest.T0()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
	rec, err := evidence.NewRecorder(dir, evidence.Meta{
		RunID: "run-1", Profile: evidence.ProfileFast,
		TimeScale:  evidence.TimeScale{ForScale: 0.1},
		Provenance: evidence.Provenance{HarnessRevision: "abc"},
	}, append([]evidence.Option{evidence.WithClock(now)}, opts...)...)
	require.NoError(t, err)
	return rec
}

func recordSampleRow(t *testing.T, rec *evidence.Recorder, id string) *evidence.RowRecorder {
	t.Helper()
	t0 := evidencetest.T0()
	rr, err := rec.BeginRow(evidence.RowSpec{ID: id, Name: "row " + id, Triggers: []string{"T"}, Runbook: "docs/ops/X.md"})
	require.NoError(t, err)
	require.NoError(t, rr.SetFault("network", "vps", map[string]string{"toxic": "timeout"}))
	require.NoError(t, rr.Injected(t0.Add(10*time.Second)))
	require.NoError(t, rr.AddProof("bytes", "0"))
	require.NoError(t, rr.Detected(t0.Add(12*time.Second+345*time.Millisecond)))
	require.NoError(t, rr.Detected(t0.Add(50*time.Second)), "a later detection is ignored")
	require.NoError(t, rr.Fired(t0.Add(20*time.Second)))
	require.NoError(t, rr.Mitigated("heal", t0.Add(30*time.Second)))
	require.NoError(t, rr.Healed(t0.Add(30*time.Second)))
	require.NoError(t, rr.Recovered(t0.Add(34*time.Second)))
	require.NoError(t, rr.AddEvaluation(evidence.Evaluation{Phase: evidence.PhaseFault, Expr: "x > 0", Value: 3, Present: true, Want: "> 0", Pass: true, At: t0.Add(15 * time.Second)}))
	require.NoError(t, rr.SetDataLoss(evidence.DataLoss{Verdict: evidence.DataLossValid, Ops: 10, Acknowledged: 10}))
	require.NoError(t, rr.AddSeries(evidence.Series{Name: "x", Expr: "x", Kind: evidence.KindSignal, Points: []evidence.Point{{T: t0, V: 0}, {T: t0.Add(time.Second), V: 1}}}))
	require.NoError(t, rr.AddWindow(evidence.Span{From: t0.Add(10 * time.Second), To: t0.Add(30 * time.Second), Label: "fault"}))
	return rr
}

func TestRecorderPersistsEveryStep(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(t, dir)

	loaded, err := evidence.Load(rec.Path())
	require.NoError(t, err, "the file is valid from the first moment")
	assert.False(t, loaded.Complete)
	assert.Equal(t, evidence.DecisionIncomplete, loaded.Verdict.Decision)

	rr := recordSampleRow(t, rec, "r1")
	loaded, err = evidence.Load(rec.Path())
	require.NoError(t, err)
	require.Len(t, loaded.Rows, 1)
	row := loaded.Rows[0]
	assert.Equal(t, evidence.StatusRunning, row.Status)
	assert.Equal(t, 2345*time.Millisecond, row.Times.Detect.Duration)
	assert.Equal(t, 10*time.Second, row.Times.Fire.Duration)
	assert.Equal(t, 4*time.Second, row.Times.Recover.Duration)
	require.NoError(t, rr.Pass())

	require.NoError(t, rec.AddBaseline(evidence.BaselineCheck{Endpoint: "GET /ready", Field: "ok", Document: "true", Observed: "true", Pass: true}))
	require.NoError(t, rec.SetGateStep(evidence.GateStep{Step: 6, Name: "canary", Result: evidence.GatePass}))
	require.NoError(t, rec.SetGateStep(evidence.GateStep{Step: 1, Name: "config:check", Result: evidence.GateFail}))
	require.NoError(t, rec.SetGateStep(evidence.GateStep{Step: 1, Name: "config:check", Result: evidence.GatePass}))
	quiet := []evidence.TriggerTrace{{Alert: "T", Expr: `ALERTS{alertname="T"}`}}
	require.NoError(t, rec.SetControl(evidence.Window{Started: evidencetest.T0(), Pass: true, Triggers: quiet}))
	require.NoError(t, rec.SetCanary(evidence.Window{Started: evidencetest.T0(), Pass: true, Triggers: quiet}))
	require.NoError(t, rec.SetPlan([]evidence.PlannedItem{{Kind: evidence.PlanRow, ID: "r1"}, {Kind: evidence.PlanBaseline, ID: "baseline"},
		{Kind: evidence.PlanGate, ID: "1", Name: "config:check"}, {Kind: evidence.PlanGate, ID: "6", Name: "canary"},
		{Kind: evidence.PlanControl, ID: "control"}, {Kind: evidence.PlanCanary, ID: "canary"}}))
	require.NoError(t, rec.AddImage(evidence.Image{Role: "server", Ref: "s:dev", ID: "sha256:1"}))
	require.NoError(t, rec.AddImage(evidence.Image{Role: "server", Ref: "s:dev", ID: "sha256:2"}))

	v, err := rec.Finish()
	require.NoError(t, err)
	assert.Equal(t, evidence.DecisionGo, v.Decision, "%v", v.Reasons)
	assert.ErrorIs(t, rr.Fail("late"), evidence.ErrFinished)

	loaded, err = evidence.Load(rec.Path())
	require.NoError(t, err)
	snap, err := rec.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, snap, loaded, "Snapshot is what the file holds")
	assert.True(t, loaded.Complete)
	assert.Equal(t, []int{1, 6}, []int{loaded.Gate[0].Step, loaded.Gate[1].Step})
	assert.Equal(t, evidence.GatePass, loaded.Gate[0].Result)
	assert.Equal(t, []evidence.Image{{Role: "server", Ref: "s:dev", ID: "sha256:2"}}, loaded.Provenance.Images)
	assert.Equal(t, evidence.StatusPassed, loaded.Rows[0].Status)
}

func TestRecorderErrorsNameTheFix(t *testing.T) {
	rec := newRecorder(t, t.TempDir())
	rr, err := rec.BeginRow(evidence.RowSpec{ID: "r"})
	require.NoError(t, err)
	assert.ErrorContains(t, rr.Detected(time.Now()), "call Injected")
	assert.ErrorContains(t, rr.Recovered(time.Now()), "call Mitigated")
	assert.ErrorContains(t, rr.End("weird", ""), "want passed")
	_, err = rec.BeginRow(evidence.RowSpec{})
	assert.ErrorContains(t, err, "empty ID")
	_, err = evidence.NewRecorder(t.TempDir(), evidence.Meta{RunID: "x", Profile: "slow"})
	assert.ErrorContains(t, err, "Profile")
}

func TestRecorderRetryReplacesRowAndCountsAttempts(t *testing.T) {
	rec := newRecorder(t, t.TempDir())
	rr := recordSampleRow(t, rec, "r1")
	require.NoError(t, rr.Fail("flake"))
	recordSampleRow(t, rec, "r2")
	rr = recordSampleRow(t, rec, "r1")
	require.NoError(t, rr.Pass())
	snap, err := rec.Snapshot()
	require.NoError(t, err)
	require.Len(t, snap.Rows, 2)
	assert.Equal(t, "r1", snap.Rows[0].ID, "a retried row keeps its place")
	assert.Equal(t, 2, snap.Rows[0].Attempts)
	assert.Equal(t, evidence.StatusPassed, snap.Rows[0].Status)
	assert.Empty(t, snap.Rows[0].Failure)
	assert.NotNil(t, rec.Row("r2"))
	assert.Nil(t, rec.Row("nope"))
}

func TestRecorderConcurrentRows(t *testing.T) {
	rec := newRecorder(t, t.TempDir())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			rr, err := rec.BeginRow(evidence.RowSpec{ID: fmt.Sprintf("row-%d", i)})
			if !assert.NoError(t, err) {
				return
			}
			for j := range 5 {
				assert.NoError(t, rr.AddProof("p", fmt.Sprint(j)))
			}
			assert.NoError(t, rr.Pass())
		})
	}
	wg.Wait()
	loaded, err := evidence.Load(rec.Path())
	require.NoError(t, err)
	require.Len(t, loaded.Rows, 8)
	for _, r := range loaded.Rows {
		assert.Len(t, r.Fault.Proof, 5)
		assert.Equal(t, evidence.StatusPassed, r.Status)
	}
}

func TestInterruptMarksRunningRows(t *testing.T) {
	rec := newRecorder(t, t.TempDir())
	rr := recordSampleRow(t, rec, "done")
	require.NoError(t, rr.Pass())
	recordSampleRow(t, rec, "mid")
	require.NoError(t, rec.Interrupt("signal interrupt"))
	require.NoError(t, rec.Row("mid").Healed(evidencetest.T0().Add(time.Minute)), "cleanup may still record after an interrupt")
	v, err := rec.Finish()
	require.NoError(t, err)
	assert.Equal(t, evidence.DecisionIncomplete, v.Decision)

	loaded, err := evidence.Load(rec.Path())
	require.NoError(t, err)
	assert.False(t, loaded.Complete)
	assert.True(t, loaded.Interrupted)
	assert.Equal(t, evidence.StatusInterrupted, loaded.Rows[1].Status)
	assert.Contains(t, strings.Join(loaded.Verdict.Reasons, "\n"), "signal interrupt")
}

func TestInterruptOnPanic(t *testing.T) {
	rec := newRecorder(t, t.TempDir())
	recordSampleRow(t, rec, "mid")
	assert.PanicsWithValue(t, "boom", func() {
		defer rec.InterruptOnPanic()
		panic("boom")
	})
	loaded, err := evidence.Load(rec.Path())
	require.NoError(t, err)
	assert.True(t, loaded.Interrupted)
	assert.Equal(t, "panic: boom", loaded.InterruptReason)
}

func TestInterruptOnSignal(t *testing.T) {
	rec := newRecorder(t, t.TempDir())
	stop := rec.InterruptOnSignal(syscall.SIGUSR1)
	defer stop()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	require.Eventually(t, func() bool {
		r, err := evidence.Load(rec.Path())
		return err == nil && r.Interrupted
	}, 5*time.Second, 10*time.Millisecond)
}

// TestKilledRecorderLeavesValidEvidence runs itself as a child that records
// two rows, begins a third and SIGKILLs itself: no deferred code, no
// cleanup. The file must still load, marked incomplete.
func TestKilledRecorderLeavesValidEvidence(t *testing.T) {
	if dir := os.Getenv("PB_EVIDENCE_CRASH_DIR"); dir != "" {
		rec := newRecorder(t, dir)
		for _, id := range []string{"r1", "r2"} {
			require.NoError(t, recordSampleRow(t, rec, id).Pass())
		}
		recordSampleRow(t, rec, "r3")
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute) // never reached
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRecorderLeavesValidEvidence$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PB_EVIDENCE_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "child should die by SIGKILL, got err=%v output:\n%s", err, out)
	ws, ok := ee.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child should die by SIGKILL, got %v; output:\n%s", ws, out)

	loaded, err := evidence.Load(filepath.Join(dir, evidence.FileName))
	require.NoError(t, err)
	assert.False(t, loaded.Complete)
	assert.False(t, loaded.Interrupted, "a killed process cannot say it was interrupted")
	assert.Equal(t, evidence.DecisionIncomplete, loaded.Verdict.Decision)
	require.Len(t, loaded.Rows, 3)
	assert.Equal(t, evidence.StatusPassed, loaded.Rows[1].Status)
	assert.Equal(t, evidence.StatusRunning, loaded.Rows[2].Status)
	assertNoTempFiles(t, dir)

	// The next recorder in that directory sweeps leftovers of a kill during a write.
	stale := filepath.Join(dir, ".evidence.json.tmp-123")
	require.NoError(t, os.WriteFile(stale, []byte("{"), 0o644))
	newRecorder(t, dir)
	assertNoTempFiles(t, dir)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".tmp-", "temp file left behind")
	}
}

func TestLoadErrorsNameFileAndFix(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	_, err := evidence.Load(filepath.Join(dir, "missing.json"))
	assert.ErrorContains(t, err, "missing.json")

	p := write("old.json", `{"schema":"pocketbrain.chaos/evidence/v0"}`)
	_, err = evidence.Load(p)
	assert.ErrorContains(t, err, p)
	assert.ErrorContains(t, err, `schema "pocketbrain.chaos/evidence/v0"`)
	assert.ErrorContains(t, err, "pbreport from the harness revision")

	p = write("none.json", `{"rows":[]}`)
	_, err = evidence.Load(p)
	assert.ErrorContains(t, err, "not a PocketBrain evidence file")

	p = write("trunc.json", `{"schema":"pocketbrain.chaos/evidence/v1","ru`)
	_, err = evidence.Load(p)
	assert.ErrorContains(t, err, "not valid JSON")

	p = write("typo.json", `{"schema":"pocketbrain.chaos/evidence/v1","run_id":"x","profile":"fast","verdict":{"decision":"GO"},"rows":[],"rowz":[]}`)
	_, err = evidence.Load(p)
	assert.ErrorContains(t, err, "rowz")

	p = write("bad.json", `{"schema":"pocketbrain.chaos/evidence/v1","run_id":"","profile":"fast","verdict":{"decision":"MAYBE"},"rows":[{"id":"a","status":"ok"}]}`)
	_, err = evidence.Load(p)
	assert.ErrorContains(t, err, "run_id is empty")
	assert.ErrorContains(t, err, `decision "MAYBE"`)
	assert.ErrorContains(t, err, `row "a": status "ok"`)
}

func TestComputeVerdict(t *testing.T) {
	cases := []struct {
		name     string
		mutate   func(r *evidence.Run)
		decision string
		reason   string // substring of some reason
	}{
		{"all good", func(*evidence.Run) {}, evidence.DecisionGo, ""},
		{"not complete", func(r *evidence.Run) { r.Complete = false }, evidence.DecisionIncomplete, "not complete"},
		{"interrupted", func(r *evidence.Run) { r.Complete, r.Interrupted, r.InterruptReason = false, true, "SIGINT" }, evidence.DecisionIncomplete, "SIGINT"},
		{"incomplete still lists failures", func(r *evidence.Run) { r.Complete = false; r.Rows[0].Status = evidence.StatusFailed }, evidence.DecisionIncomplete, "row vps-path"},
		{"row failed", func(r *evidence.Run) {
			r.Rows[1].Status, r.Rows[1].Failure = evidence.StatusFailed, "trigger never fired\nstack..."
		}, evidence.DecisionNoGo, "row redis-ready (Redis readiness degradation): failed: trigger never fired …"},
		{"row skipped", func(r *evidence.Run) { r.Rows[0].Status = evidence.StatusSkipped }, evidence.DecisionNoGo, "row vps-path (Worker->VPS path instability): skipped"},
		{"data lost", func(r *evidence.Run) {
			r.Rows[2].DataLoss.Verdict, r.Rows[2].DataLoss.Lost = evidence.DataLossInvalid, 3
		}, evidence.DecisionNoGo, "data loss invalid (lost 3"},
		{"data unknown", func(r *evidence.Run) { r.Rows[2].DataLoss.Verdict = evidence.DataLossUnknown }, evidence.DecisionNoGo, "data loss unknown"},
		{"no data check", func(r *evidence.Run) { r.Rows[0].DataLoss = nil }, evidence.DecisionNoGo, "no data-loss check"},
		{"no rows", func(r *evidence.Run) { r.Rows = nil }, evidence.DecisionIncomplete, "planned but not run: row vps-path, row redis-ready, row queue-overflow"},
		{"control fired", func(r *evidence.Run) {
			r.Control.Pass = false
			r.Control.Triggers[1].EverFired = true
		}, evidence.DecisionNoGo, "control window failed: triggers fired: QueueNonRecovery"},
		{"no canary", func(r *evidence.Run) { r.Canary = nil }, evidence.DecisionIncomplete, "planned but not run: canary"},
		{"gate failed", func(r *evidence.Run) { r.Gate[0].Result, r.Gate[0].Detail = evidence.GateFail, "CORS_ORIGIN unset" }, evidence.DecisionNoGo, "gate step 1 (config:check): fail: CORS_ORIGIN unset"},
		{"gate skipped", func(r *evidence.Run) { r.Gate[2].Result = evidence.GateSkipped }, evidence.DecisionNoGo, "gate step 6"},
		{"gate n/a is fine", func(r *evidence.Run) { r.Gate[0].Result = evidence.GateNA }, evidence.DecisionGo, ""},
		{"no gate", func(r *evidence.Run) { r.Gate = nil }, evidence.DecisionIncomplete, "planned but not run: gate step 1 (config:check), gate step 2 (vps:precheck:remote), gate step 6 (30-minute canary)"},
		{"baseline differs", func(r *evidence.Run) { r.Baseline[1].Pass, r.Baseline[1].Observed = false, "1" }, evidence.DecisionNoGo, "pocketbrain_redis_ready_degraded: observed \"1\""},
		{"run problem", func(r *evidence.Run) { r.Problems = []string{"guard could not heal vps"} }, evidence.DecisionNoGo, "guard could not heal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := evidencetest.SampleRun()
			tc.mutate(run)
			v := evidence.ComputeVerdict(run)
			assert.Equal(t, tc.decision, v.Decision, "reasons: %v", v.Reasons)
			if tc.reason == "" {
				assert.Empty(t, v.Reasons)
			} else {
				assert.Contains(t, strings.Join(v.Reasons, "\n"), tc.reason)
			}
		})
	}
}
