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

	It("steps 2–3: precheck and sync have no remote VPS to act on (n/a, with the reason)", func() {
		for _, n := range []int{2, 3} {
			record(g.Step(n).Record(evidence.GateNA, g.Step(n).NA))
		}
	})

	It("step 4: deploy puts the release's server image with the intended revision in place", func(ctx SpecContext) {
		deployStartedAt = time.Now()
		s, err := gate.Deploy(ctx, st, g, deployStartedAt)
		if err != nil {
			failStep(4, fmt.Errorf("deploy: %w", err))
			Fail(err.Error())
		}
		record(s)
	}, NodeTimeout(3*time.Minute))

	It("step 5: verify finds the stack ready at the intended revision with no drift", func(ctx SpecContext) {
		s, problems := gate.Verify(ctx, st, g, st.IntendedRevision())
		record(s)
		Expect(problems).To(BeEmpty())
	}, NodeTimeout(3*time.Minute))

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
