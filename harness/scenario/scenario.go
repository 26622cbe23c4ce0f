// Package scenario runs one failure-mode row of the matrix against a running stack:
// steady state → inject → detect → fire → mitigate → recover → no data lost, measuring
// each phase and recording everything as evidence. The workload only records a history;
// the checker (harness/checker) judges it separately.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
	"github.com/pocketbrain/chaos/harness/stack"
)

// Runner runs rows on one stack.
type Runner struct {
	Stack *stack.Stack
	Guard *faults.Guard
	// Progress receives one line per phase: which row, which phase, what is awaited.
	Progress io.Writer
	// DataLoss, when set, judges the workload after each row (nil: not checked).
	DataLoss func(ctx context.Context) (*evidence.DataLoss, error)
	// Hold, when set, runs right after the fire phase (and after the row's own hold),
	// while the fault is still active: `pbchaos hold` keeps the stack faulted there
	// until the engineer is done. An error stops the row before the mitigation.
	Hold func(ctx context.Context, row program.Row) error
}

func (r *Runner) say(row program.Row, phase, format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, "[%s] %-9s %s\n", row.ID, phase, fmt.Sprintf(format, args...))
	}
}

func (r *Runner) timeouts() env.Timeouts { return r.Stack.Env.Config().Timeouts }

// wait waits for cond with a phase timeout and a progress line.
func (r *Runner) wait(ctx context.Context, row program.Row, phase string, timeout time.Duration, what string, cond signals.Condition) (time.Duration, error) {
	r.say(row, phase, "awaiting %s (up to %s)", what, timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := r.Stack.Monitor.WaitFor(ctx, what, cond)
	if err == nil {
		r.say(row, phase, "ok after %s", d.Round(time.Millisecond))
	}
	return d, err
}

func (r *Runner) exprs(exprs []string, want bool) signals.Condition {
	var cs []signals.Condition
	for _, e := range exprs {
		if want {
			cs = append(cs, r.Stack.Monitor.ExprTrue(e))
		} else {
			cs = append(cs, r.Stack.Monitor.ExprFalse(e))
		}
	}
	return signals.All(cs...)
}

// record evaluates exprs now and adds them to the row's evidence.
func (r *Runner) record(ctx context.Context, rr *evidence.RowRecorder, phase string, exprs []string, want bool) {
	last, _ := r.Stack.Monitor.LastTick()
	for _, e := range exprs {
		v, present, err := r.Stack.Engine.Value(ctx, e, last.T)
		w := "holds"
		if !want {
			w = "does not hold"
		}
		ev := evidence.Evaluation{Phase: phase, Expr: e, Value: evidence.Float(v), Present: present, Want: w, Pass: err == nil && present == want, At: last.T}
		_ = rr.AddEvaluation(ev)
	}
}

// Run runs one row. It returns an error describing the first phase that failed; the
// evidence holds everything measured up to there. The caller's guard heals whatever
// is left active (the caller also runs it on panics and interrupts).
func (r *Runner) Run(ctx context.Context, row program.Row, rr *evidence.RowRecorder) (err error) {
	t := r.timeouts()
	prog := r.Stack.Program
	recoverExprs := prog.RecoverExprs(row)
	observed := time.Now()
	var t0, healed time.Time
	defer func() { r.timeline(context.WithoutCancel(ctx), row, rr, observed.Add(-5*time.Second), t0, healed) }()

	// 1. Steady state: every trigger quiet, the row's detection false, recovery true.
	if _, err := r.wait(ctx, row, "steady", t.SteadyState, "steady state (triggers quiet, detection false)", r.Stack.Steady(row)); err != nil {
		return fmt.Errorf("steady state before injection: %w", err)
	}
	r.record(ctx, rr, "steady", row.Detect, false)

	// 2. Inject.
	var injected []faults.Fault
	for _, s := range row.Faults {
		f, err := faults.New(s)
		if err != nil {
			return err
		}
		r.say(row, "inject", "%s", s)
		_ = rr.SetFault(s.Kind, targetOf(s), s.Params)
		if err := r.Guard.Inject(ctx, r.Stack.Env, f); err != nil {
			return fmt.Errorf("inject %s: %w", s, err)
		}
		injected = append(injected, f)
		if err := r.refresh(ctx, f); err != nil {
			return err
		}
	}
	t0 = time.Now()
	_ = rr.Injected(t0)
	for _, f := range injected {
		for _, p := range f.Proof(ctx, r.Stack.Env) {
			_ = rr.AddProof("after inject: "+p.What, p.Value)
		}
	}

	// 3. Detect, 4. surface, 5. fire.
	if _, err := r.wait(ctx, row, "detect", t.Detect, "detection: "+strings.Join(row.Detect, " and "), r.exprs(row.Detect, true)); err != nil {
		return fmt.Errorf("detection: %w", err)
	}
	_ = rr.Detected(time.Now())
	r.record(ctx, rr, "fault", row.Detect, true)
	if len(row.Surface) > 0 {
		if _, err := r.wait(ctx, row, "surface", t.Detect, "user/ops surface: "+strings.Join(row.Surface, " and "), r.exprs(row.Surface, true)); err != nil {
			return fmt.Errorf("user/ops surface: %w", err)
		}
		r.record(ctx, rr, "fault", row.Surface, true)
	}
	var firing []signals.Condition
	for _, trig := range row.Triggers {
		firing = append(firing, r.Stack.Monitor.AlertFiring(trig))
	}
	if len(firing) > 0 {
		if _, err := r.wait(ctx, row, "fire", t.Fire, "rollback trigger(s) firing: "+strings.Join(row.Triggers, ", "), signals.All(firing...)); err != nil {
			return fmt.Errorf("rollback trigger: %w", err)
		}
		_ = rr.Fired(time.Now())
	}
	if hold, _ := row.HoldFor(); hold > 0 {
		r.say(row, "hold", "keeping the fault for %s more", hold)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(hold):
		}
	}
	if r.Hold != nil {
		if err := r.Hold(ctx, row); err != nil {
			return fmt.Errorf("hold: %w", err)
		}
	}

	// 5b. Quiet triggers: absorbed faults must not page. They stay quiet from injection
	// for at least their longest effective for: plus two ticks, so "sustained" had its chance.
	if len(row.Quiet) > 0 {
		if err := r.holdQuiet(ctx, row, rr, t0); err != nil {
			return err
		}
	}

	// 6. First mitigation: heal the faults, then apply the row's changes, if any.
	r.say(row, "mitigate", "%s: %s", row.Mitigation.Action, row.Mitigation.Note)
	for i := len(injected) - 1; i >= 0; i-- {
		if err := r.Guard.Heal(ctx, r.Stack.Env, injected[i]); err != nil {
			return fmt.Errorf("mitigation: heal %s: %w", injected[i].Spec(), err)
		}
		if err := r.refresh(ctx, injected[i]); err != nil {
			return err
		}
	}
	healed = time.Now()
	_ = rr.Healed(healed)
	for _, s := range row.Mitigation.Faults {
		f, err := faults.New(s)
		if err != nil {
			return err
		}
		r.say(row, "mitigate", "apply %s", s)
		if err := r.Guard.Inject(ctx, r.Stack.Env, f); err != nil {
			return fmt.Errorf("mitigation: apply %s: %w", s, err)
		}
		if err := r.refresh(ctx, f); err != nil {
			return err
		}
	}
	t1 := time.Now()
	_ = rr.Mitigated(mitigationText(row), t1)
	for _, f := range injected {
		for _, p := range f.Proof(ctx, r.Stack.Env) {
			_ = rr.AddProof("after mitigation: "+p.What, p.Value)
		}
	}

	// 7. Recovery: signals back, every trigger quiet, readiness 200.
	if _, err := r.wait(ctx, row, "recover", t.Recover, "recovery: "+strings.Join(recoverExprs, " and ")+" with every trigger quiet", signals.All(r.exprs(recoverExprs, true), r.Stack.Quiet())); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	_ = rr.Recovered(time.Now())
	r.record(ctx, rr, "recovered", recoverExprs, true)

	// 8. No acknowledged capture lost, none duplicated.
	if r.DataLoss != nil {
		r.say(row, "check", "final sync and data-loss check")
		dl, err := r.DataLoss(ctx)
		if dl != nil {
			_ = rr.SetDataLoss(*dl)
		}
		if err != nil {
			return fmt.Errorf("data-loss check: %w", err)
		}
		if dl.Verdict != evidence.DataLossValid {
			return fmt.Errorf("data-loss check: verdict %s: %s", dl.Verdict, dl.Detail)
		}
	}
	return nil
}

// holdQuiet keeps the fault long enough for the row's quiet triggers to show what they
// would do, then checks that none of them was pending or firing at any tick since t0.
func (r *Runner) holdQuiet(ctx context.Context, row program.Row, rr *evidence.RowRecorder, t0 time.Time) error {
	span := 2 * r.Stack.Monitor.Interval()
	for _, q := range row.Quiet {
		if info, ok := r.Stack.Rules.Rule(q); ok {
			span = max(span, info.EffectiveFor+2*r.Stack.Monitor.Interval())
		}
	}
	if rest := span - time.Since(t0); rest > 0 {
		r.say(row, "quiet", "keeping the fault %s more: %s must stay quiet", rest.Round(time.Millisecond), strings.Join(row.Quiet, ", "))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rest):
		}
	}
	now := time.Now()
	loud := map[string][]string{}
	for _, tr := range r.Stack.Rules.Transitions() {
		if tr.T.Before(t0) || !slices.Contains(row.Quiet, tr.Alert) {
			continue
		}
		if tr.To == signals.AlertPending || tr.To == signals.AlertFiring {
			loud[tr.Alert] = append(loud[tr.Alert], fmt.Sprintf("%s at %s", tr.To, tr.T.UTC().Format(time.RFC3339)))
		}
	}
	for _, q := range row.Quiet {
		if st := r.Stack.Rules.State(q); (st == signals.AlertPending || st == signals.AlertFiring) && len(loud[q]) == 0 {
			loud[q] = append(loud[q], fmt.Sprintf("%s now", st))
		}
	}
	var bad []string
	for _, q := range row.Quiet {
		_ = rr.AddEvaluation(evidence.Evaluation{Phase: "fault", Expr: `ALERTS{alertname="` + q + `"}`, Present: len(loud[q]) > 0,
			Want: "does not hold", Pass: len(loud[q]) == 0, At: now})
		if len(loud[q]) > 0 {
			bad = append(bad, q+" ("+strings.Join(loud[q], ", ")+")")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("quiet triggers: %s went loud during the fault; the row says the fault is absorbed and must not page", strings.Join(bad, "; "))
	}
	r.say(row, "quiet", "ok: %s stayed quiet for %s of fault", strings.Join(row.Quiet, ", "), now.Sub(t0).Round(time.Millisecond))
	return nil
}

func (r *Runner) refresh(ctx context.Context, f faults.Fault) error {
	if len(f.Changes()) == 0 {
		return nil
	}
	return r.Stack.RefreshTargets(ctx)
}

func targetOf(s faults.Spec) string {
	if s.Edge != "" {
		return "edge " + s.Edge
	}
	return s.Target
}

func mitigationText(row program.Row) string {
	out := row.Mitigation.Action
	for _, s := range row.Mitigation.Faults {
		out += "; " + s.String()
	}
	if row.Mitigation.Note != "" {
		out += " — " + row.Mitigation.Note
	}
	return out
}

// timeline samples the row's signals (each detection expression without its final
// comparison, so the curve shows the value and not just "true") and its triggers'
// states over the observed span, and shades the fault window.
func (r *Runner) timeline(ctx context.Context, row program.Row, rr *evidence.RowRecorder, from, faultFrom, faultTo time.Time) {
	to := time.Now()
	step := r.Stack.Monitor.Interval()
	for _, e := range row.Detect {
		sig := Signal(e)
		pts, err := Curve(ctx, r.Stack.Engine, sig, from, to, step)
		if err != nil {
			continue
		}
		_ = rr.AddSeries(evidence.Series{Name: sig, Expr: sig, Kind: "signal", Points: pts})
	}
	for _, trig := range append(append([]string{}, row.Triggers...), row.Quiet...) {
		var pts []evidence.Point
		state := 0.0
		pts = append(pts, evidence.Point{T: from, V: 0})
		for _, tr := range r.Stack.Rules.Transitions() {
			if tr.Alert != trig || tr.T.Before(from) {
				continue
			}
			pts = append(pts, evidence.Point{T: tr.T, V: evidence.Float(state)})
			switch tr.To {
			case signals.AlertFiring:
				state = 1
			case signals.AlertPending:
				state = 0.5
			default:
				state = 0
			}
			pts = append(pts, evidence.Point{T: tr.T, V: evidence.Float(state)})
		}
		pts = append(pts, evidence.Point{T: to, V: evidence.Float(state)})
		_ = rr.AddSeries(evidence.Series{Name: trig + " (0 quiet, 0.5 pending, 1 firing)", Expr: "ALERTS{alertname=\"" + trig + "\"}", Kind: "trigger", Points: pts})
	}
	if !faultFrom.IsZero() {
		if faultTo.IsZero() {
			faultTo = to
		}
		_ = rr.AddWindow(evidence.Span{From: faultFrom, To: faultTo, Label: "fault"})
	}
}

// Signal strips a top-level comparison with a number (`max(x) == 1` → `max(x)`), so a
// timeline can draw the value the detection compares.
func Signal(expr string) string {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return expr
	}
	if be, ok := e.(*parser.BinaryExpr); ok && be.Op.IsComparisonOperator() && !be.ReturnBool {
		if _, isNum := be.RHS.(*parser.NumberLiteral); isNum {
			return be.LHS.String()
		}
	}
	return expr
}

// ErrNoRow is returned when a row id is not in the matrix.
var ErrNoRow = errors.New("no such row in the matrix")
