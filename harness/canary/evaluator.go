package canary

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Ticker is what the evaluator reads of the run's monitor (*signals.Monitor is one).
type Ticker interface {
	LastTick() (signals.TickResult, error)
	Interval() time.Duration
}

// Evaluator evaluates a rule set over its own copy of the scraped samples, tick by tick:
// the canary's production-timing evaluation (the rule files unscaled).
//
// It keeps its own store and engine for two reasons: evaluating a second rule set on the
// run's engine would write a second set of ALERTS and recorded series into the run's
// store (the run's charts and triggers read them); and its windows start with Start, so
// a fault injected before (an earlier matrix row) cannot hold a production window true
// during the canary. A span shorter than a window is covered whole.
type Evaluator struct {
	rules  *signals.Rules
	source *signals.Store
	store  *signals.Store
	engine *signals.Engine
	skip   map[string]bool // series rules produce: never copied

	mu         sync.Mutex
	copiedTo   time.Time
	violations []string
	evals      int
	evalErrs   int
	lastErr    string
	fired      map[string]bool
}

// NewEvaluator returns an evaluator of rules over the samples of source. The series any
// rule set produces (ALERTS, ALERTS_FOR_STATE, the recorded names of rules and of the
// run's own rules runRules, which may be nil) are never copied: rules records its own.
func NewEvaluator(rules *signals.Rules, source *signals.Store, runRules *signals.Rules) *Evaluator {
	store := signals.NewStore()
	s := &Evaluator{rules: rules, source: source, store: store, engine: signals.NewEngine(store),
		skip: map[string]bool{"ALERTS": true, "ALERTS_FOR_STATE": true}, fired: map[string]bool{}}
	for n := range rules.RecordedNames() {
		s.skip[n] = true
	}
	if runRules != nil {
		for n := range runRules.RecordedNames() {
			s.skip[n] = true
		}
	}
	return s
}

// Engine is the evaluator's own engine, over its own store.
func (s *Evaluator) Engine() *signals.Engine { return s.engine }

// AlertNames are the alerting rules evaluated.
func (s *Evaluator) AlertNames() []string {
	var out []string
	for _, a := range s.rules.Alerts() {
		out = append(out, a.Name)
	}
	return out
}

// Start opens the evaluator's windows at t: samples up to t are never copied.
func (s *Evaluator) Start(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.copiedTo = t
}

// Run starts the windows now and evaluates on every new tick of m until ctx ends,
// looking for one four times per interval.
func (s *Evaluator) Run(ctx context.Context, m Ticker) {
	s.Start(time.Now())
	var lastT time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.Interval() / 4):
		}
		last, _ := m.LastTick()
		if !last.T.After(lastT) || !last.T.After(s.copied()) {
			continue
		}
		lastT = last.T
		s.Tick(ctx, last.T)
	}
}

func (s *Evaluator) copied() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copiedTo
}

// Tick copies the source's samples since the last tick (after Start) up to t, evaluates
// the rules at t, and records every alert pending or firing as a violation. Ticks must
// come from one goroutine, in time order.
func (s *Evaluator) Tick(ctx context.Context, t time.Time) {
	from := s.copied()
	for _, sp := range s.source.Range(from.Add(time.Millisecond), t) {
		if s.skip[sp.Labels.Get(labels.MetricName)] {
			continue
		}
		for _, p := range sp.Points {
			_ = s.store.Append(sp.Labels, p.T, p.V)
		}
	}
	err := s.rules.Eval(ctx, s.engine, t)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.copiedTo = t
	if ctx.Err() != nil {
		return
	}
	s.evals++
	if err != nil {
		s.evalErrs++
		s.lastErr = err.Error()
	}
	for _, a := range s.rules.Alerts() {
		if a.State.Loud() {
			s.violations = append(s.violations, fmt.Sprintf("%s %s at %s (value %g)", a.Name, a.State, t.UTC().Format(time.RFC3339), a.LastValue))
			if a.State == signals.AlertFiring {
				s.fired[a.Name] = true
			}
		}
	}
}

// Result is what the evaluator saw.
type Result struct {
	// Violations are "ALERT state at time (value v)", one per alert and tick.
	Violations []string
	Evals      int    // ticks evaluated
	EvalErrs   int    // evaluations that failed
	LastErr    string // the last failure's message
	// Fired are the alerts that were firing at some tick.
	Fired map[string]bool
}

// Result returns a copy of what the evaluator saw so far.
func (s *Evaluator) Result() Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	fired := map[string]bool{}
	for k, v := range s.fired {
		fired[k] = v
	}
	return Result{Violations: append([]string(nil), s.violations...), Evals: s.evals, EvalErrs: s.evalErrs, LastErr: s.lastErr, Fired: fired}
}

// TraceSuffix names a production-timing trace apart from the run's trace of the alert.
const TraceSuffix = " @ production timing"

// Traces are the alerting rules' expressions over [from, to] at step on the evaluator's
// own samples, named ALERT + TraceSuffix, each marked if it ever fired.
func (s *Evaluator) Traces(ctx context.Context, from, to time.Time, step time.Duration) []evidence.TriggerTrace {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []evidence.TriggerTrace
	for _, info := range s.rules.Rules() {
		if info.Kind != signals.AlertingRule {
			continue
		}
		tr, _ := scenario.Trace(ctx, s.engine, info.Name+TraceSuffix, info.Expr, from, to, step)
		tr.EverFired = s.fired[info.Name]
		out = append(out, tr)
	}
	return out
}
