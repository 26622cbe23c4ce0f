package pocketbrain

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/stack"
)

// Self-tests of the harness's own hygiene, registered only when PB_SELFTEST names one
// (suites/leaks does): an ordinary run never sees them, not even as skipped specs.
//
//	PB_SELFTEST=panic  the first row (or PB_SELFTEST_ROW) panics while its fault is active
//	PB_SELFTEST=break  a spec breaks the stack behind the guard's back (server, kv, the VPS
//	                   host's checkout) and fails; the first row (or PB_SELFTEST_ROW) runs
//	                   next and must pass (stack.Restore)
//	PB_SELFTEST=leak   a spec plants the run's generated secrets in an evidence field, a
//	                   progress line and a Gomega failure message, and fails (suites/secrets
//	                   then finds none of them in any output)
//	PB_SELFTEST=noop-rollback  RG-readiness-bad-release (or PB_SELFTEST_ROW) runs with a
//	                   mitigation that changes nothing: the harness heals nothing first,
//	                   so the row must fail at recovery (issue 12 §4; suites/leaks
//	                   TestNoopRollbackFails)
//	PB_SELFTEST=pause-control  the client fleet is paused (POST /pause) for the no-fault
//	                   control, which must fail naming the missing traffic (issue 12 §3:
//	                   quiet because absent is not quiet; suites/leaks TestPausedControlFails)
var _ = func() bool {
	if os.Getenv("PB_SELFTEST") != "panic" {
		return false
	}
	Describe("Harness self-test", Label("selftest"), func() {
		It("survives a panic in the middle of a faulted row", func(ctx SpecContext) {
			row := selftestRow()
			rr, err := rec.BeginRow(evidence.RowSpec{ID: "selftest-panic-" + row.ID, Name: "self-test: panic during " + row.ID, Runbook: row.Runbook})
			Expect(err).NotTo(HaveOccurred())
			hold := runner.Hold
			DeferCleanup(func() { runner.Hold = hold })
			runner.Hold = func(context.Context, program.Row) error {
				panic("selftest: a panic in the middle of a faulted row")
			}
			_ = runner.Run(ctx, row, rr)
		})
	})
	return true
}()

var _ = func() bool {
	if os.Getenv("PB_SELFTEST") != "leak" {
		return false
	}
	Describe("Harness self-test", Label("selftest", "security"), func() {
		It("plants the run's generated secrets in an evidence field, a progress line and a failure message", func() {
			planted := strings.Join(st.Env.Secrets.Values(), " ")
			Expect(rec.AddProblem("selftest leak: an evidence field holding the run's secrets: " + planted)).To(Succeed())
			fmt.Fprintln(progressOut(), "[selftest] selftest leak: a progress line holding the run's secrets: "+planted)
			Expect(planted).To(BeEmpty(), "selftest leak: a Gomega failure quoting the run's secrets")
		})
	})
	return true
}()

// selftestRow is PB_SELFTEST_ROW's row, or the matrix's first.
func selftestRow() program.Row {
	row := prog.Matrix.Rows[0]
	if id := os.Getenv("PB_SELFTEST_ROW"); id != "" {
		for _, r := range prog.Matrix.Rows {
			if r.ID == id {
				row = r
			}
		}
	}
	return row
}

// PB_SELFTEST=break: what the guard heals is not all a failed row can leave behind. The
// first spec replaces the server with a wrong database password (it still serves
// /metrics, so it "comes up", but never gets ready) and stops the KV container, both
// behind the guard's back, and fails. Ordered (so the row runs second) and
// ContinueOnFailure (so the failure does not skip it): the row must pass on the stack
// that the AfterEach restored.
var _ = func() bool {
	if os.Getenv("PB_SELFTEST") != "break" {
		return false
	}
	rowID := os.Getenv("PB_SELFTEST_ROW")
	Describe("Harness self-test: a failed row never fails the next row", Label("selftest"), Ordered, ContinueOnFailure, func() {
		It("breaks the stack behind the guard's back and fails", func(ctx SpecContext) {
			rr, err := rec.BeginRow(evidence.RowSpec{ID: "selftest-break", Name: "self-test: a failed row leaves the stack broken behind the guard's back"})
			Expect(err).NotTo(HaveOccurred())
			bad := strings.Replace(st.Env.CurrentEnv(env.Server)["DATABASE_URL"], st.Env.Secrets.PostgresPassword, "wrong-password", 1)
			Expect(st.Env.Replace(ctx, env.Server, env.Change{Env: env.Settings{"DATABASE_URL": bad}})).To(Succeed())
			Expect(st.RefreshTargets(ctx)).To(Succeed())
			kv, err := st.Env.Container(env.KV)
			Expect(err).NotTo(HaveOccurred())
			sctx, cancel := context.WithTimeout(ctx, st.Env.Config().Timeouts.DockerCall)
			defer cancel()
			stop := 2
			_, err = st.Env.Docker().Client().ContainerStop(sctx, kv.GetContainerID(), client.ContainerStopOptions{Timeout: &stop})
			Expect(err).NotTo(HaveOccurred())
			// The VPS host's checkout drifts too: a commit on the host, no fault to heal it.
			host, err := st.Env.VPSClient(sctx)
			Expect(err).NotTo(HaveOccurred())
			_, err = host.LocalCommit(sctx, "selftest: committed on the host behind the guard's back")
			Expect(err).NotTo(HaveOccurred())
			fmt.Fprintf(progressOut(), "[selftest] server replaced with a wrong database password, kv stopped, a commit on the VPS host's checkout; failing the spec\n")
			const why = "selftest: the stack is left broken behind the guard's back"
			_ = rr.Fail(why)
			Fail(why)
		}, NodeTimeout(3*time.Minute))

		It("then runs a matrix row that must pass "+rowID, func(ctx SpecContext) {
			row := selftestRow()
			rr, err := rec.BeginRow(evidence.RowSpec{ID: row.ID, Name: row.Mode + " — " + row.Name, Labels: row.GinkgoLabels(), Runbook: row.Runbook, Triggers: row.Triggers})
			Expect(err).NotTo(HaveOccurred())
			runErr := runner.Run(ctx, row, rr)
			if runErr != nil {
				_ = rr.Fail(st.Env.Redact(runErr.Error()))
			} else {
				_ = rr.Pass()
			}
			Expect(runErr).NotTo(HaveOccurred())
		}, NodeTimeout(6*time.Minute))
	})
	return true
}()

// PB_SELFTEST=pause-control: the client fleet is paused during the no-fault control. A
// paused fleet stays up and exposes every series, so every trigger is quiet and every
// detection false; the control must still fail, naming the traffic that is missing.
var _ = func() bool {
	if os.Getenv("PB_SELFTEST") != "pause-control" {
		return false
	}
	Describe("Harness self-test: a paused fleet fails the control", Label("selftest"), func() {
		It("pauses the clients during the no-fault control, which fails", func(ctx SpecContext) {
			rr, err := rec.BeginRow(evidence.RowSpec{ID: "selftest-pause-control", Name: "self-test: the no-fault control with the client fleet paused"})
			Expect(err).NotTo(HaveOccurred())
			fleet := func(ctx context.Context, path string) error {
				req := env.Request{Method: http.MethodPost, Path: path, Timeout: st.Env.Config().Timeouts.FleetCall}
				resp, err := st.Env.Do(ctx, env.Clients, req)
				if err != nil {
					return err
				}
				return resp.Err(env.Clients, req)
			}
			Expect(fleet(ctx, "/pause")).To(Succeed())
			DeferCleanup(func() { _ = fleet(context.WithoutCancel(ctx), "/resume") })
			fmt.Fprintf(progressOut(), "[selftest] client fleet paused; awaiting no traffic, then the control\n")
			idle, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err = st.Monitor.WaitFor(idle, "no traffic once the fleet is paused", st.Monitor.ValueCond(stack.Traffic, func(_ float64, present bool) bool { return !present }))
			Expect(err).NotTo(HaveOccurred())
			w, err := observeWindow(ctx, prof.ControlSpan, controlExprs(prog))
			if err != nil {
				_ = rr.Fail(st.Env.Redact(err.Error()))
			} else if !w.Pass {
				_ = rr.Fail(st.Env.Redact(w.Detail))
			} else {
				_ = rr.Pass()
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(w.Pass).To(BeTrue(), w.Detail)
		}, NodeTimeout(prof.ControlSpan+3*time.Minute))
	})
	return true
}()

// PB_SELFTEST=noop-rollback: the rollback row with a mitigation that changes nothing (an
// inert variable, so the role restarts with what it ran). Since the harness no longer
// heals the fault before the mitigation, only a rollback to a different artifact brings
// the row back: this one must fail (with the heal first, it passed).
var _ = func() bool {
	if os.Getenv("PB_SELFTEST") != "noop-rollback" {
		return false
	}
	Describe("Harness self-test: a rollback that changes nothing fails its row", Label("selftest"), func() {
		It("runs the bad-release row with a no-op rollback, which fails", func(ctx SpecContext) {
			row := noopRollbackRow()
			rr, err := rec.BeginRow(evidence.RowSpec{ID: "selftest-noop-rollback-" + row.ID, Name: "self-test: " + row.ID + " with a rollback that redeploys the bad artifact", Runbook: row.Runbook})
			Expect(err).NotTo(HaveOccurred())
			runErr := runner.Run(ctx, row, rr)
			if runErr != nil {
				_ = rr.Fail(st.Env.Redact(runErr.Error()))
			} else {
				_ = rr.Pass()
			}
			Expect(runErr).NotTo(HaveOccurred())
		}, NodeTimeout(8*time.Minute))
	})
	return true
}()

// noopRollbackRow is PB_SELFTEST_ROW's row (default RG-readiness-bad-release) with a
// mitigation that does nothing for the row: an inert variable set on each role the fault
// redeployed (a restart of whatever runs there, like a rollback to the same artifact).
func noopRollbackRow() program.Row {
	id := os.Getenv("PB_SELFTEST_ROW")
	if id == "" {
		id = "RG-readiness-bad-release"
	}
	var row program.Row
	for _, r := range prog.Matrix.Rows {
		if r.ID == id {
			row = r
		}
	}
	Expect(row.ID).NotTo(BeEmpty(), "PB_SELFTEST_ROW=%s is not a row of the matrix", id)
	var noop []faults.Spec
	for _, f := range row.Faults {
		if faults.DeployImage(f) != "" {
			noop = append(noop, faults.Spec{Kind: "config", Action: "set_env", Target: f.Target, Params: map[string]string{"PB_SELFTEST_NOOP": "1"}})
		}
	}
	Expect(noop).NotTo(BeEmpty(), "row %s deploys no artifact to roll back", id)
	row.Mitigation = program.Mitigation{Action: "apply", Faults: noop, Note: "self-test: a mitigation that changes nothing for the row"}
	return row
}
