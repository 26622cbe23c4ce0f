// Package canary is release-gate step 6 on the reference stack: steady client load with
// no fault for the profile's canary span (30 minutes in the release profile), every
// rollback trigger evaluated at every tick. Any trigger pending or firing fails it, and
// with it the release (NO-GO).
//
// Two evaluations run side by side:
//   - the run's own rules (the stack's, through Options.Observe, as the control does): in
//     the release profile they are the rule files at production timing (ForScale 1); in
//     the fast profile their windows and for: are scaled, so that they resolve within the
//     run;
//   - the rule files loaded again, unscaled (production `for:` and `[15m]` windows), and
//     evaluated on every tick by an independent Evaluator over its own copy of the
//     samples, whose windows start with the canary: the canary judges the release, not
//     the chaos before it.
//
// The suite (suites/pocketbrain) runs it as the gate's last step and asserts its verdict.
package canary

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/promserver"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/signals"
	"github.com/pocketbrain/chaos/harness/stack"
)

// ProductionSettle is how long, in production time, a trigger may stay true after a
// fault ends: after a matrix row, "sustained increase over [15m]" stays true for the
// window plus its for:. 20 minutes covers the rule files' longest window and hold.
const ProductionSettle = 20 * time.Minute

// nodeMargin is what a canary spec gets beyond its settle budget and span: the load
// check, the traces and the evidence.
const nodeMargin = 5 * time.Minute

// QuietBudget bounds the wait for every trigger to be quiet before the window opens:
// ProductionSettle at the profile's scale plus the stack's steady-state timeout.
func QuietBudget(forScale float64, steady time.Duration) time.Duration {
	return time.Duration(float64(ProductionSettle)*forScale) + steady
}

// NodeTimeout bounds a whole canary of span: QuietBudget, the span and a margin.
func NodeTimeout(forScale float64, steady, span time.Duration) time.Duration {
	return QuietBudget(forScale, steady) + span + nodeMargin
}

// SettleTicks is how many consecutive ticks the stack must look settled.
const SettleTicks = 3

// DefaultQueueResume is the clients' QUEUE_RESUME when the stack does not set it: the
// queue depth at which a blocked client resumes (docs/CONTRACTS.md).
const DefaultQueueResume = "10"

// SettledExpr holds when no client queue is blocked or deeper than resume.
func SettledExpr(resume string) string {
	return "max(sync_queue_blocked) == 0 and max(sync_queue_depth) <= " + resume
}

// Settled holds when quiet holds (no trigger pending or firing) and SettledExpr(resume)
// is true on eng, on SettleTicks new ticks of m in a row.
func Settled(quiet signals.Condition, m Ticker, eng *signals.Engine, resume string) signals.Condition {
	expr := SettledExpr(resume)
	streak, lastT := 0, time.Time{}
	return func(ctx context.Context) (bool, error) {
		last, _ := m.LastTick()
		if !last.T.After(lastT) {
			return false, nil
		}
		lastT = last.T
		q, err := quiet(ctx)
		if err != nil {
			return false, err
		}
		_, drained, err := eng.Value(ctx, expr, last.T)
		if err != nil {
			return false, signals.Permanent(err)
		}
		if !q || !drained {
			signals.Observe(ctx, "quiet %t, %q %t", q, expr, drained)
			streak = 0
			return false, nil
		}
		streak++
		return streak >= SettleTicks, nil
	}
}

// FiredSince lists, as notes, every transition to firing at or after from.
func FiredSince(trs []signals.AlertTransition, from time.Time) []string {
	var notes []string
	for _, tr := range trs {
		if tr.To == signals.AlertFiring && !tr.T.Before(from) {
			notes = append(notes, fmt.Sprintf("before the window, while the stack settled after the deploy: %s fired at %s (value %g)", tr.Alert, tr.T.UTC().Format(time.RFC3339), tr.Value))
		}
	}
	return notes
}

// Options configure Run.
type Options struct {
	// Span is the canary window (profile.CanarySpan).
	Span time.Duration
	// ForScale is the run's rules' scale (1 = production timing) and ScaleNote its
	// description for the evidence.
	ForScale  float64
	ScaleNote string
	// DeployStartedAt is when release-gate step 4 began (zero if it did not run): what
	// fired since is reported.
	DeployStartedAt time.Time
	// Quiet holds when none of the run's triggers is pending or firing.
	Quiet signals.Condition
	// Observe watches the run's rules over a window of span with no fault (the suite's
	// control window); Run takes its triggers and verdict.
	Observe func(ctx context.Context, span time.Duration) (evidence.Window, error)
}

// Run runs the canary on s: (1) it waits, within QuietBudget, until the stack settled
// (Settled); (2) it makes sure the client fleet runs; (3) it observes the window with the
// production-timing Evaluator alongside; (4) it measures the load over the window; (5) it
// returns the window with the verdict of both evaluations (Pass) and a redacted Detail.
// An error means the canary could not run, not that it failed.
func Run(ctx context.Context, s *stack.Stack, o Options) (evidence.Window, error) {
	// 1. Settled before the window: every trigger quiet (earlier rows' windows have
	// passed) and the client queues drained back to their steady depth (a deploy just
	// restarted the server), for SettleTicks consecutive ticks.
	resume := s.Env.CurrentEnv(env.Clients)["QUEUE_RESUME"]
	if resume == "" {
		resume = DefaultQueueResume
	}
	began := time.Now()
	qctx, cancel := context.WithTimeout(ctx, QuietBudget(o.ForScale, s.Env.Config().Timeouts.SteadyState))
	_, err := s.Monitor.WaitFor(qctx, "every rollback trigger quiet and every client queue drained before the canary", Settled(o.Quiet, s.Monitor, s.Engine, resume))
	cancel()
	if err != nil {
		return evidence.Window{}, fmt.Errorf("the stack did not settle within %s before the canary: %w", time.Since(began).Round(time.Second), err)
	}
	quietWait := time.Since(began)
	// Anything that fired since the deploy (or since the canary was due) is reported,
	// even though it happened before the window.
	from := o.DeployStartedAt
	if from.IsZero() || from.After(began) {
		from = began
	}
	notes := FiredSince(s.Rules.Transitions(), from)

	// 2. Steady load: the users of the client fleet must be running.
	fleet, err := ensureFleetRuns(ctx, s.Env)
	if err != nil {
		return evidence.Window{}, err
	}
	notes = append(notes, fleet...)

	// 3. The window, with the production-timing evaluator alongside.
	prodRules, err := signals.LoadRuleFiles(s.Program.RulePaths())
	if err != nil {
		return evidence.Window{}, fmt.Errorf("rule files at production timing: %w", err)
	}
	prod := NewEvaluator(prodRules, s.Store, s.Rules)
	// With the stack's Prometheus server on, a second server loads the same files as
	// written and starts with the canary, as the evaluator does: the real server must
	// stay as quiet at production timing.
	var prodServer *promserver.Server
	if s.Server != nil {
		if prodServer, err = s.StartServer(ctx, "canary", prodRules, "the rule files as written (production timing), started with the canary"); err != nil {
			return evidence.Window{}, fmt.Errorf("the canary's production-timing Prometheus server: %w", err)
		}
		defer func() { _ = prodServer.Close(ctx) }()
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); prod.Run(sctx, s.Monitor) }()
	w, werr := o.Observe(ctx, o.Span)
	stop()
	wg.Wait()
	if werr != nil {
		return w, werr
	}

	// The run's triggers as evaluated: in a scaled profile the rules run their
	// EffectiveExpr (scaled windows), so that is what the trace shows and plots.
	for i, tr := range w.Triggers {
		info, ok := s.Rules.Rule(tr.Alert)
		if !ok || info.EffectiveExpr == "" || info.EffectiveExpr == tr.Expr {
			continue
		}
		if fixed, err := scenario.Trace(ctx, s.Engine, tr.Alert, info.EffectiveExpr, w.Started, w.Ended, s.Monitor.Interval()); err == nil {
			fixed.EverFired = tr.EverFired
			w.Triggers[i] = fixed
		}
	}

	// 4. Evidence of the load over the window.
	l := load{secs: int(math.Max(1, math.Round(w.Ended.Sub(w.Started).Seconds())))}
	l.pushed, l.present, l.err = s.Engine.Value(ctx, LoadExpr(l.secs), w.Ended)

	// The production-timing server against the production-timing evaluator.
	if prodServer != nil {
		a, err := prodServer.Compare(ctx, prodRules, w.Started, w.Ended)
		if err != nil {
			return w, fmt.Errorf("comparing with the production-timing Prometheus server: %w", err)
		}
		w.ProductionServer = &a
	}

	// 5. The verdict of both evaluations.
	v := verdict{run: w, span: o.Span, scaleNote: o.ScaleNote, prod: prod.Result(), prodAlerts: len(prod.AlertNames()),
		load: l, notes: notes, quietWait: quietWait}
	pass, detail := v.judge()
	if a := w.ProductionServer; a != nil && !a.Agree {
		pass = false
		detail = "the production-timing Prometheus server disagrees with the production-timing evaluator: " + a.Detail + "; " + detail
	}
	// In a scaled profile the production-timing traces differ from the run's: show both.
	if o.ForScale != 1 {
		w.Triggers = append(w.Triggers, prod.Traces(ctx, w.Started, w.Ended, s.Monitor.Interval())...)
	}
	w.Pass = pass
	w.Detail = s.Env.Redact(detail)
	return w, nil
}

// ensureFleetRuns resumes a paused client fleet and notes how many clients load the
// stack; a fleet that cannot be read is left as it is (the load check judges it).
func ensureFleetRuns(ctx context.Context, e *env.Environment) ([]string, error) {
	fleetCall := e.Config().Timeouts.FleetCall
	resp, err := e.Do(ctx, env.Clients, env.Request{Path: "/state", Timeout: fleetCall})
	if err != nil || resp.Status != http.StatusOK {
		return nil, nil
	}
	var st struct {
		Paused  bool              `json:"paused"`
		Clients []json.RawMessage `json:"clients"`
	}
	if json.Unmarshal(resp.Body, &st) != nil {
		return nil, nil
	}
	var notes []string
	if st.Paused {
		if _, err := e.Do(ctx, env.Clients, env.Request{Method: http.MethodPost, Path: "/resume", Timeout: fleetCall}); err != nil {
			return nil, fmt.Errorf("the client fleet is paused and did not resume: %w", err)
		}
		notes = append(notes, "client fleet was paused and was resumed")
	}
	return append(notes, fmt.Sprintf("%d clients under load", len(st.Clients))), nil
}

// LoadExpr is the mutations the server acknowledged over the last secs seconds.
func LoadExpr(secs int) string {
	return fmt.Sprintf("sum(increase(pocketbrain_sync_push_mutations_total[%ds]))", secs)
}

// load is LoadExpr's answer at the window's end.
type load struct {
	secs    int
	pushed  float64
	present bool
	err     error
}

func (l load) ok() bool { return l.err == nil && l.present && l.pushed > 0 }

// maxViolationsShown bounds the production-timing violations quoted in the detail.
const maxViolationsShown = 10

// verdict is what the canary saw, for judge.
type verdict struct {
	run        evidence.Window // the run's rules over the window
	span       time.Duration
	scaleNote  string
	prod       Result // the production-timing evaluator's
	prodAlerts int
	load       load
	notes      []string // what fired before the window, the fleet's state
	quietWait  time.Duration
}

// judge passes when the run's rules stayed quiet, the production-timing evaluation saw
// no violation and no failed evaluation, and the stack was under load; the detail says
// why, part by part.
func (v verdict) judge() (bool, string) {
	pass := v.run.Pass && len(v.prod.Violations) == 0 && v.prod.EvalErrs == 0 && v.load.ok()
	var detail []string
	if !v.run.Pass {
		detail = append(detail, "run's rules: "+v.run.Detail)
	} else {
		detail = append(detail, fmt.Sprintf("run's rules: %d rollback triggers quiet (never pending or firing) at every tick for %s (%s)", len(v.run.Triggers), v.span, v.scaleNote))
	}
	if n := len(v.prod.Violations); n > 0 {
		shown := v.prod.Violations
		if n > maxViolationsShown {
			shown = append(shown[:maxViolationsShown:maxViolationsShown], fmt.Sprintf("… and %d more", n-maxViolationsShown))
		}
		detail = append(detail, "rule files at production timing: "+strings.Join(shown, "; "))
	} else {
		detail = append(detail, fmt.Sprintf("rule files at production timing (for: and [15m] windows as written, over the canary's own samples): %d alerts quiet at all %d evaluations", v.prodAlerts, v.prod.Evals))
	}
	if v.prod.EvalErrs > 0 {
		detail = append(detail, fmt.Sprintf("%d production-timing evaluations failed (last: %s)", v.prod.EvalErrs, v.prod.LastErr))
	}
	l := v.load
	if !l.ok() {
		detail = append(detail, fmt.Sprintf("no steady load: %s = %v (present %t, err %v)", LoadExpr(l.secs), l.pushed, l.present, l.err))
	}
	detail = append(detail, v.notes...)
	if l.ok() {
		detail = append(detail, fmt.Sprintf("%.0f mutations acknowledged by the server during the window", l.pushed))
	}
	detail = append(detail, fmt.Sprintf("the window opened after %s, once every trigger was quiet and every client queue back at its steady depth", v.quietWait.Round(time.Second)))
	return pass, strings.Join(detail, "; ")
}
