package pocketbrain

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/model"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/promcanary"
	"github.com/pocketbrain/chaos/harness/promserver"
	"github.com/pocketbrain/chaos/harness/signals"
)

// `pbchaos canary --prometheus URL` (harness/promcanary) against the stack's own
// Prometheus server, which loaded the profile's copy of the rules: a quiet span is GO, a
// fault mid-span is NO-GO, and a server without the rules is refused with the
// difference named. The command is what a release manager points at production's
// Prometheus; here the stack stands in for production.
var _ = Describe("pbchaos canary against a Prometheus server", Label("canary-command"), Ordered, func() {
	var (
		rules []signals.RuleInfo
		// bare is a second server with the recording rules only: no rollback trigger.
		bare *promserver.Server
	)

	BeforeAll(func(ctx SpecContext) {
		if st.Server == nil {
			Skip("the Prometheus server is off (" + st.ServerOff + "): nothing to point the canary command at")
		}
		var err error
		rules, err = promcanary.LoadRules([]string{alertsFile()}, prof.ForScale)
		Expect(err).NotTo(HaveOccurred())
		recording, err := signals.LoadRuleFiles([]string{filepath.Join(filepath.Dir(alertsFile()), "recording.yml")},
			signals.WithForScale(prof.ForScale), signals.WithWindowScale(prof.ForScale))
		Expect(err).NotTo(HaveOccurred())
		bare, err = st.StartServer(ctx, "norules", recording, "the recording rules only: no rollback trigger")
		DeferCleanup(func(ctx SpecContext) { Expect(bare.Close(ctx)).To(Succeed()) })
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(2*time.Minute))

	run := func(ctx context.Context, name string, span time.Duration) (promcanary.Result, error) {
		return promcanary.Run(ctx, promcanary.Options{
			URL: st.Server.URL, Span: span, Interval: st.Monitor.Interval(), Rules: rules,
			ForScale: prof.ForScale, RuleFiles: []string{alertsFile()},
			OutDir: filepath.Join(prof.OutDir, "canary-command-"+name), Progress: progressOut(),
		})
	}

	It("is GO over a quiet span", func(ctx SpecContext) {
		Expect(serverQuiet(ctx)).To(Succeed())
		res, err := run(ctx, "go", 15*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Verdict).To(Equal(promcanary.Go), res.Line()+"\n"+strings.Join(append(res.NoGo, res.Inconclusive...), "\n"))
		Expect(res.Triggers).To(HaveLen(len(rules)))
	}, NodeTimeout(3*time.Minute))

	It("is NO-GO when a fault lands mid-span", func(ctx SpecContext) {
		Expect(serverQuiet(ctx)).To(Succeed())
		// Redis down behind the server (FM8's fault) makes readiness fail: ReadinessRegression.
		f, err := faults.New(faults.Spec{Kind: "network", Action: "down", Edge: "redis"})
		Expect(err).NotTo(HaveOccurred())
		injected := make(chan error, 1)
		go func() {
			if err := sleepCtx(ctx, 5*time.Second); err != nil {
				injected <- err
				return
			}
			injected <- guard.Inject(ctx, st.Env, f)
		}()
		DeferCleanup(func(ctx SpecContext) {
			if slices.Contains(guard.Active(), f) { // not healed yet: the spec failed early
				Expect(guard.Heal(ctx, st.Env, f)).To(Succeed())
			}
			Expect(serverQuiet(ctx)).To(Succeed(), "the stack is quiet again after the heal, for the next spec")
		}, NodeTimeout(3*time.Minute))
		res, err := run(ctx, "nogo", 60*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(<-injected).To(Succeed())
		Expect(res.Verdict).To(Equal(promcanary.NoGo), res.Line())
		Expect(strings.Join(res.NoGo, "\n")).To(ContainSubstring("ReadinessRegression"))
		Expect(res.StoppedEarly).To(BeTrue(), "the watch ends at the first NO-GO")
		// The agreement check can fail: the server without the triggers saw the same
		// samples and fired nothing, so over this span it disagrees with the engine (the
		// watch stopped at pending: the engine fires first, then the fault is healed).
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err = st.Monitor.WaitFor(fctx, "ReadinessRegression firing in the embedded engine", st.Monitor.AlertFiring("ReadinessRegression"))
		Expect(err).NotTo(HaveOccurred())
		Expect(guard.Heal(ctx, st.Env, f)).To(Succeed())
		a, err := bare.Compare(ctx, st.Rules, res.Started, time.Now())
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Agree).To(BeFalse(), a.Detail)
		Expect(a.Detail).To(MatchRegexp(`ReadinessRegression fired at \S+ in the embedded engine, never in the server`))
	}, NodeTimeout(4*time.Minute))

	It("refuses a Prometheus without the rules, naming what is missing", func(ctx SpecContext) {
		_, err := promcanary.Run(ctx, promcanary.Options{URL: bare.URL, Span: 10 * time.Second, Interval: time.Second, Rules: rules, ForScale: prof.ForScale})
		var se *promcanary.SetupError
		Expect(errors.As(err, &se)).To(BeTrue(), "want a *SetupError, got %v", err)
		for _, r := range rules {
			Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("alert %s: not loaded", r.Name)))
		}
	}, NodeTimeout(2*time.Minute))
})

// alertsFile is the program's alerting rule file (the six rollback triggers).
func alertsFile() string {
	for _, p := range prog.RulePaths() {
		if filepath.Base(p) == "alerts.yml" {
			return p
		}
	}
	Fail("program/rules/alerts.yml is not among the program's rule files")
	return ""
}

// serverQuiet waits until every trigger is quiet in the embedded engine and, a tolerance
// later, in the Prometheus server too (no ALERTS sample in the last tolerance).
func serverQuiet(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, st.Env.Config().Timeouts.SteadyState)
	defer cancel()
	if _, err := st.Monitor.WaitFor(qctx, "every trigger quiet before the canary command", st.Quiet()); err != nil {
		return err
	}
	for {
		// ALERTS holds a sample for every pending or firing alert: none means quiet.
		v, _, _, err := st.Server.API.Query(qctx, "count(ALERTS)", time.Now())
		if vec, ok := v.(model.Vector); err == nil && ok && len(vec) == 0 {
			return nil
		}
		if err := sleepCtx(qctx, time.Second); err != nil {
			return fmt.Errorf("the Prometheus server still has alerts pending or firing: %w", err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
