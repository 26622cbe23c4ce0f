package pocketbrain

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/signals"
)

// The canary (release-gate step 6): steady client load with no fault for prof.CanarySpan
// (30 minutes in the release profile), every rollback trigger evaluated at every tick.
// Any trigger pending or firing fails it, and with it the release (NO-GO).
//
// Two evaluations run side by side:
//   - the run's own rules (st.Rules, through observeWindow, as the control does): in the
//     release profile they are the rule files at production timing (ForScale 1); in the
//     fast profile their windows and for: are scaled, so that they resolve within the run;
//   - the rule files loaded again, unscaled (production `for:` and `[15m]` windows), and
//     evaluated on every tick by an independent evaluator. It reads the same scraped
//     samples but keeps its own store, for two reasons: evaluating a second rule set on
//     st.Engine would write a second set of ALERTS and recorded series into the run's
//     store (the run's charts and triggers read them); and its windows start with the
//     canary, so a fault injected by an earlier matrix row cannot hold a production
//     window true during the canary — the canary judges the release, not the chaos
//     before it. A run shorter than a window is covered whole.

// canaryQuietBudget bounds the wait for every trigger to be quiet before the window opens:
// after a matrix row, "sustained increase over [15m]" stays true for the (scaled) window
// plus its (scaled) for:. 20 minutes of production time covers the rule files' longest
// window and hold; the steady-state timeout is added for the stack itself.
func canaryQuietBudget() time.Duration {
	return time.Duration(float64(20*time.Minute)*prof.ForScale) + st.Env.Config().Timeouts.SteadyState
}

func canaryNodeTimeout() time.Duration {
	// st is not up while the tree is built: the steady-state default stands in for it.
	return time.Duration(float64(20*time.Minute)*prof.ForScale) + env.DefaultTimeouts().SteadyState + prof.CanarySpan + 5*time.Minute
}

// deployStartedAt is when release-gate step 4 began replacing the server (zero if it did
// not run in this process).
var deployStartedAt time.Time

// settleTicks is how many consecutive ticks the stack must look settled.
const settleTicks = 3

// settled holds when no trigger is pending or firing and no client queue is blocked or
// deeper than its resume mark, for settleTicks ticks in a row.
func settled() signals.Condition {
	quiet := runnerQuiet()
	resume := st.Env.CurrentEnv(env.Clients)["QUEUE_RESUME"]
	if resume == "" {
		resume = "10"
	}
	expr := "max(sync_queue_blocked) == 0 and max(sync_queue_depth) <= " + resume
	streak, lastT := 0, time.Time{}
	return func(ctx context.Context) (bool, error) {
		last, _ := st.Monitor.LastTick()
		if !last.T.After(lastT) {
			return false, nil
		}
		lastT = last.T
		q, err := quiet(ctx)
		if err != nil {
			return false, err
		}
		_, drained, err := st.Engine.Value(ctx, expr, last.T)
		if err != nil {
			return false, signals.Permanent(err)
		}
		if !q || !drained {
			signals.Observe(ctx, "quiet %t, %q %t", q, expr, drained)
			streak = 0
			return false, nil
		}
		streak++
		return streak >= settleTicks, nil
	}
}

func runCanary(ctx context.Context) (evidence.Window, error) {
	// 1. Settled before the window: every trigger quiet (earlier rows' windows have
	// passed) and the client queues drained back to their steady depth (a deploy just
	// restarted the server), for settleTicks consecutive ticks.
	began := time.Now()
	qctx, cancel := context.WithTimeout(ctx, canaryQuietBudget())
	_, err := st.Monitor.WaitFor(qctx, "every rollback trigger quiet and every client queue drained before the canary", settled())
	cancel()
	if err != nil {
		return evidence.Window{}, fmt.Errorf("the stack did not settle within %s before the canary: %w", time.Since(began).Round(time.Second), err)
	}
	quietWait := time.Since(began)
	var notes []string
	// Anything that fired since the deploy (or since the canary was due) is reported,
	// even though it happened before the window.
	from := deployStartedAt
	if from.IsZero() || from.After(began) {
		from = began
	}
	for _, tr := range st.Rules.Transitions() {
		if tr.To == signals.AlertFiring && !tr.T.Before(from) {
			notes = append(notes, fmt.Sprintf("before the window, while the stack settled after the deploy: %s fired at %s (value %g)", tr.Alert, tr.T.UTC().Format(time.RFC3339), tr.Value))
		}
	}

	// 2. Steady load: the users of the client fleet must be running.
	if body, code, err := stackGet(ctx, env.Clients, "/state"); err == nil && code == http.StatusOK {
		var s struct {
			Paused  bool              `json:"paused"`
			Clients []json.RawMessage `json:"clients"`
		}
		if json.Unmarshal(body, &s) == nil {
			if s.Paused {
				if _, _, err := stackDo(ctx, env.Clients, http.MethodPost, "/resume", nil, []byte{}); err != nil {
					return evidence.Window{}, fmt.Errorf("the client fleet is paused and did not resume: %w", err)
				}
				notes = append(notes, "client fleet was paused and was resumed")
			}
			notes = append(notes, fmt.Sprintf("%d clients under load", len(s.Clients)))
		}
	}

	// 3. The window, with the production-timing evaluator alongside.
	prodRules, err := signals.LoadRuleFiles(st.Program.RulePaths())
	if err != nil {
		return evidence.Window{}, fmt.Errorf("rule files at production timing: %w", err)
	}
	shadow := newShadowEval(prodRules)
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); shadow.run(sctx) }()
	w, werr := observeWindow(ctx, prof.CanarySpan, nil)
	stop()
	wg.Wait()
	if werr != nil {
		return w, werr
	}

	// The run's triggers as evaluated: in a scaled profile the rules run their
	// EffectiveExpr (scaled windows), so that is what the trace shows and plots.
	for i, tr := range w.Triggers {
		info, ok := st.Rules.Rule(tr.Alert)
		if !ok || info.EffectiveExpr == "" || info.EffectiveExpr == tr.Expr {
			continue
		}
		if fixed, err := scenario.Trace(ctx, st.Engine, tr.Alert, info.EffectiveExpr, w.Started, w.Ended, st.Monitor.Interval()); err == nil {
			fixed.EverFired = tr.EverFired
			w.Triggers[i] = fixed
		}
	}

	// 4. Evidence of the load over the window.
	secs := int(math.Max(1, math.Round(w.Ended.Sub(w.Started).Seconds())))
	pushed, present, perr := st.Engine.Value(ctx, fmt.Sprintf("sum(increase(pocketbrain_sync_push_mutations_total[%ds]))", secs), w.Ended)
	loadOK := perr == nil && present && pushed > 0
	if loadOK {
		notes = append(notes, fmt.Sprintf("%.0f mutations acknowledged by the server during the window", pushed))
	}

	// 5. The verdict of both evaluations.
	shadowViolations, evals, evalErrs := shadow.result()
	pass := w.Pass && len(shadowViolations) == 0 && evalErrs == 0 && loadOK
	var detail []string
	if !w.Pass {
		detail = append(detail, "run's rules: "+w.Detail)
	} else {
		detail = append(detail, fmt.Sprintf("run's rules: %d rollback triggers quiet (never pending or firing) at every tick for %s (%s)", len(w.Triggers), prof.CanarySpan, prof.ScaleNote()))
	}
	if len(shadowViolations) > 0 {
		v := shadowViolations
		if len(v) > 10 {
			v = append(v[:10], fmt.Sprintf("… and %d more", len(shadowViolations)-10))
		}
		detail = append(detail, "rule files at production timing: "+strings.Join(v, "; "))
	} else {
		detail = append(detail, fmt.Sprintf("rule files at production timing (for: and [15m] windows as written, over the canary's own samples): %d alerts quiet at all %d evaluations", len(shadow.alertNames()), evals))
	}
	if evalErrs > 0 {
		detail = append(detail, fmt.Sprintf("%d production-timing evaluations failed (last: %s)", evalErrs, shadow.lastErr))
	}
	if !loadOK {
		detail = append(detail, fmt.Sprintf("no steady load: sum(increase(pocketbrain_sync_push_mutations_total[%ds])) = %v (present %t, err %v)", secs, pushed, present, perr))
	}
	detail = append(detail, notes...)
	detail = append(detail, fmt.Sprintf("the window opened after %s, once every trigger was quiet and every client queue back at its steady depth", quietWait.Round(time.Second)))
	// In a scaled profile the production-timing traces differ from the run's: show both.
	if prof.ForScale != 1 {
		w.Triggers = append(w.Triggers, shadow.traces(ctx, w.Started, w.Ended)...)
	}
	w.Pass = pass
	w.Detail = st.Env.Redact(strings.Join(detail, "; "))
	return w, nil
}

// shadowEval evaluates a rule set over its own copy of the scraped samples, tick by tick.
type shadowEval struct {
	rules  *signals.Rules
	store  *signals.Store
	engine *signals.Engine
	skip   map[string]bool // series the rules themselves produce: never copied

	mu         sync.Mutex
	copiedTo   time.Time
	violations []string
	evals      int
	evalErrs   int
	lastErr    string
	fired      map[string]bool
}

func newShadowEval(r *signals.Rules) *shadowEval {
	store := signals.NewStore()
	s := &shadowEval{rules: r, store: store, engine: signals.NewEngine(store), skip: map[string]bool{"ALERTS": true, "ALERTS_FOR_STATE": true}, fired: map[string]bool{}}
	for n := range r.RecordedNames() {
		s.skip[n] = true
	}
	for n := range st.Rules.RecordedNames() {
		s.skip[n] = true
	}
	return s
}

func (s *shadowEval) alertNames() []string {
	var out []string
	for _, a := range s.rules.Alerts() {
		out = append(out, a.Name)
	}
	return out
}

// run evaluates on every new monitor tick until ctx ends. Its windows start now.
func (s *shadowEval) run(ctx context.Context) {
	s.copiedTo = time.Now()
	var lastT time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(st.Monitor.Interval() / 4):
		}
		last, _ := st.Monitor.LastTick()
		if !last.T.After(lastT) || !last.T.After(s.copiedTo) {
			continue
		}
		lastT = last.T
		s.tick(ctx, last.T)
	}
}

func (s *shadowEval) tick(ctx context.Context, t time.Time) {
	for _, sp := range st.Store.Range(s.copiedTo.Add(time.Millisecond), t) {
		if s.skip[sp.Labels.Get(labels.MetricName)] {
			continue
		}
		for _, p := range sp.Points {
			_ = s.store.Append(sp.Labels, p.T, p.V)
		}
	}
	s.copiedTo = t
	err := s.rules.Eval(ctx, s.engine, t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	s.evals++
	if err != nil {
		s.evalErrs++
		s.lastErr = err.Error()
	}
	for _, a := range s.rules.Alerts() {
		if a.State == signals.AlertPending || a.State == signals.AlertFiring {
			s.violations = append(s.violations, fmt.Sprintf("%s %s at %s (value %g)", a.Name, a.State, t.UTC().Format(time.RFC3339), a.LastValue))
			if a.State == signals.AlertFiring {
				s.fired[a.Name] = true
			}
		}
	}
}

func (s *shadowEval) result() (violations []string, evals, evalErrs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...), s.evals, s.evalErrs
}

// traces are the production-timing triggers over the window, named as such.
func (s *shadowEval) traces(ctx context.Context, from, to time.Time) []evidence.TriggerTrace {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []evidence.TriggerTrace
	for _, info := range s.rules.Rules() {
		if info.Kind != signals.AlertingRule {
			continue
		}
		tr, _ := scenario.Trace(ctx, s.engine, info.Name+" @ production timing", info.Expr, from, to, st.Monitor.Interval())
		tr.EverFired = s.fired[info.Name]
		out = append(out, tr)
	}
	return out
}
