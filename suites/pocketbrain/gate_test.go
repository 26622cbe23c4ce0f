package pocketbrain

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/gate"
)

// ReleaseGateFile is program/release-gate.yaml: the document's checklist as data
// (harness/gate loads and validates it; the steps the reference stack runs are there).
const ReleaseGateFile = gate.File

var _ = Describe("Release gate", Ordered, Label("gate"), func() {
	g, err := gate.Load(programDir())
	if err != nil {
		panic(err.Error())
	}
	done := map[int]bool{}
	halted := ""
	record := func(s evidence.GateStep) {
		Expect(rec.SetGateStep(s)).To(Succeed())
		done[s.Step] = true
		if s.Result == evidence.GateFail && halted == "" {
			halted = fmt.Sprintf("step %d (%s) failed and the checklist halts there", s.Step, s.Name)
		}
		fmt.Fprintf(progressOut(), "[gate] step %d %s: %s — %s\n", s.Step, s.Name, s.Result, s.Detail)
	}
	// A step that must be run and fails records "fail"; any error on the way too.
	failStep := func(n int, err error) {
		record(g.Step(n).Record(evidence.GateFail, st.Env.Redact(err.Error())))
	}

	// Every step not run (filtered out, or after a failed step) is recorded as skipped,
	// so a partial checklist can never read as a passed one.
	AfterAll(func() {
		if rec == nil {
			return
		}
		why := halted
		if why == "" {
			why = fmt.Sprintf("not run in this invocation (label filter %q)", GinkgoLabelFilter())
		}
		for _, s := range g.Steps {
			if !done[s.Step] {
				Expect(rec.SetGateStep(s.Record(evidence.GateSkipped, why))).To(Succeed())
			}
		}
	})

	It("step 1: the config check passes the canonical env and refuses every unsafe one", func(ctx SpecContext) {
		s, err := gate.RunConfigCheck(ctx, g, st.Env.Config().Images, gate.Runner(st.Env), GinkgoWriter)
		if err != nil {
			failStep(1, err)
			Fail(err.Error())
		}
		record(s)
		Expect(s.Result).To(Equal(evidence.GatePass), s.Detail)
	}, NodeTimeout(5*time.Minute))

	It("steps 2–5: precheck, sync, deploy and verify run over SSH on the VPS host and put the intended release in place", func(ctx SpecContext) {
		deployStartedAt = time.Now()
		remote, err := gate.RemoteFor(ctx, st)
		if err != nil {
			failStep(gate.RemoteSteps[0], err)
			Fail(err.Error())
		}
		steps := gate.RunRemote(ctx, st, g, remote)
		for _, s := range steps {
			record(s)
		}
		for _, s := range steps {
			Expect(s.Result).To(Equal(evidence.GatePass), "step %d (%s): %s", s.Step, s.Name, s.Detail)
		}
	}, NodeTimeout(5*time.Minute))

	It("step 6: the canary runs with no rollback trigger firing", Label("canary"), func(ctx SpecContext) {
		s := g.Step(6)
		w, err := runCanary(ctx)
		if err != nil {
			failStep(6, fmt.Errorf("canary: %w", err))
			Fail(err.Error())
		}
		Expect(rec.SetCanary(w)).To(Succeed())
		res := evidence.GatePass
		if !w.Pass {
			res = evidence.GateFail
		}
		step := s.Record(res, w.Detail)
		step.Command += fmt.Sprintf(" (this profile: %s, %s)", prof.Name, prof.CanarySpan)
		record(step)
		Expect(w.Pass).To(BeTrue(), w.Detail)
	}, NodeTimeout(canaryNodeTimeout()))
})
