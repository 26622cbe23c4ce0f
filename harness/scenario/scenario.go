// Package scenario runs one failure-mode row of the matrix against a running stack:
// steady state → inject → detect → fire → mitigate → recover → no data lost, measuring
// each phase and recording everything as evidence. The workload only records a history;
// the checker (harness/checker) judges it separately.
//
// The phases are a Scenario's methods (phases.go): Runner.Run drives a matrix row
// through them, and a spec with assertions of its own (the validation specs) drives the
// same phases itself, between its checks.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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

func (r *Runner) timeouts() env.Timeouts { return r.Stack.Env.Config().Timeouts }

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

// Run runs one row through the phases of a Scenario. It returns an error describing
// the first phase that failed; the evidence holds everything measured up to there. The
// caller's guard heals whatever is left active (the caller also runs it on panics and
// interrupts).
func (r *Runner) Run(ctx context.Context, row program.Row, rr *evidence.RowRecorder) error {
	t := r.timeouts()
	recoverExprs := r.Stack.Program.RecoverExprs(row)
	s := r.Begin(row.ID, rr)
	defer s.Abandon()
	chart := Chart{From: s.Started().Add(-TimelineLead), Signals: row.Detect, Triggers: append(append([]string{}, row.Triggers...), row.Quiet...)}
	defer s.Timeline(context.WithoutCancel(ctx), chart)

	// 1. Steady state: every trigger quiet, the row's detection false, recovery true.
	if err := s.Steady(ctx, "steady state (triggers quiet, detection false)", r.Stack.Steady(row)); err != nil {
		return err
	}
	_ = s.Record(ctx, evidence.PhaseSteady, false, row.Detect...)

	// 2. Inject.
	if err := s.Inject(ctx, row.Faults...); err != nil {
		return err
	}

	// 3. Detect, 4. surface, 5. fire.
	if err := s.Detect(ctx, "detection: "+strings.Join(row.Detect, " and "), r.exprs(row.Detect, true)); err != nil {
		return err
	}
	_ = s.Record(ctx, evidence.PhaseFault, true, row.Detect...)
	if len(row.Surface) > 0 {
		if _, err := s.Wait(ctx, "surface", t.Detect, "user/ops surface: "+strings.Join(row.Surface, " and "), r.exprs(row.Surface, true)); err != nil {
			return fmt.Errorf("user/ops surface: %w", err)
		}
		_ = s.Record(ctx, evidence.PhaseFault, true, row.Surface...)
	}
	if err := s.Fire(ctx, row.Triggers); err != nil {
		return err
	}
	if hold, _ := row.HoldFor(); hold > 0 {
		s.Say("hold", "keeping the fault for %s more", hold)
		if err := Sleep(ctx, hold); err != nil {
			return err
		}
	}
	if r.Hold != nil {
		if err := r.Hold(ctx, row); err != nil {
			return fmt.Errorf("hold: %w", err)
		}
	}

	// 5b. Quiet triggers: absorbed faults must not page.
	if len(row.Quiet) > 0 {
		if err := s.HoldQuiet(ctx, row.Quiet); err != nil {
			return err
		}
	}

	// 6. First mitigation: heal the faults, then apply the row's changes, if any.
	if err := s.Mitigate(ctx, Mitigation{Action: mitigationText(row), Line: row.Mitigation.Action + ": " + row.Mitigation.Note, Apply: row.Mitigation.Faults}); err != nil {
		return err
	}

	// 7. Recovery: signals back, every trigger quiet, readiness 200.
	if err := s.Recover(ctx, "recovery: "+strings.Join(recoverExprs, " and ")+" with every trigger quiet", signals.All(r.exprs(recoverExprs, true), r.Stack.Quiet())); err != nil {
		return err
	}
	_ = s.Record(ctx, evidence.PhaseRecovered, true, recoverExprs...)

	// 8. No acknowledged capture lost, none duplicated.
	if r.DataLoss != nil {
		dl, err := s.CheckDataLoss(ctx)
		if err != nil {
			return err
		}
		return ValidVerdict(dl)
	}
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

// Unsupported says why this stack cannot judge row, "" when it can. A row that ends the
// client fleet's process (kill, stop, restart) needs the client journal: without it
// (a remote Docker engine) the history lives in the fleet's memory and dies with it, and
// the checker would read every mutation since the last read as never attempted.
func (r *Runner) Unsupported(row program.Row) string {
	for _, f := range row.Faults {
		if f.Kind == "process" && f.Target == string(env.Clients) && f.Action != "pause" && r.Stack.Env.JournalDir() == "" {
			return fmt.Sprintf("%s ends the client fleet's process, and this run has no client journal (only a local Docker engine bind-mounts one): its history would die with the process", f)
		}
	}
	return ""
}
