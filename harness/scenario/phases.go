package scenario

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// settleTicks is how many monitor ticks RecordSettled lets pass before it evaluates: a
// state just observed over HTTP is then in a scrape too.
const settleTicks = 2

// Scenario is one run of the phases on one evidence row. Runner.Run drives a matrix row
// through them; a spec with assertions of its own (the validation specs) drives them
// itself, between its own checks. It remembers the row's moments (started, injected,
// detected, healed) and the faults it injected and has not removed yet.
//
// Every wait says what it awaits, and for how long, on the runner's Progress; every
// moment and measurement goes to the row's evidence, as for a matrix row.
type Scenario struct {
	r  *Runner
	id string
	rr *evidence.RowRecorder
	// RecordAction adds each injected fault's action to the params its evidence shows
	// ("action": "down"), as the validation specs' rows show them; a matrix row's
	// evidence has the params alone.
	RecordAction bool

	started, injected, detected, healed time.Time
	active                              []faults.Fault
	// proving holds the proofs running beside the phase waits (Inject's and the
	// mitigation's): a proof takes up to Timeouts.FaultProof and must not delay the
	// moment a detection or a recovery is seen. Proven joins them.
	proving []chan error
	stop    []context.CancelFunc
}

// Begin starts a scenario for the row id, recorded by rr; it starts now (the timeline
// starts here, Chart.From unless given).
func (r *Runner) Begin(id string, rr *evidence.RowRecorder) *Scenario {
	return &Scenario{r: r, id: id, rr: rr, started: time.Now()}
}

// ID is the row's id.
func (s *Scenario) ID() string { return s.id }

// Evidence is the row's recorder, for what a spec records itself (proofs, its own
// description of a composite fault).
func (s *Scenario) Evidence() *evidence.RowRecorder { return s.rr }

// Started is when Begin was called.
func (s *Scenario) Started() time.Time { return s.started }

// InjectedAt is when the fault set took effect (MarkInjected); zero before.
func (s *Scenario) InjectedAt() time.Time { return s.injected }

// DetectedAt is when detection was first seen (MarkDetected); zero before.
func (s *Scenario) DetectedAt() time.Time { return s.detected }

// HealedAt is when the mitigation healed the faults (Mitigate); zero before.
func (s *Scenario) HealedAt() time.Time { return s.healed }

// Say writes one progress line: "[id] phase     text".
func (s *Scenario) Say(phase, format string, args ...any) {
	if s.r.Progress != nil {
		fmt.Fprintf(s.r.Progress, "[%s] %-9s %s\n", s.id, phase, fmt.Sprintf(format, args...))
	}
}

// Wait waits on the monitor for cond, bounded by timeout, and says what it awaits and
// when it held. The error is the monitor's (what was awaited, for how long, what was
// last seen).
func (s *Scenario) Wait(ctx context.Context, phase string, timeout time.Duration, what string, cond signals.Condition) (time.Duration, error) {
	s.Say(phase, "awaiting %s (up to %s)", what, timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := s.r.Stack.Monitor.WaitFor(ctx, what, cond)
	if err == nil {
		s.Say(phase, "ok after %s", d.Round(time.Millisecond))
	}
	return d, err
}

// Poll is Wait for a condition the monitor cannot see (a service's own /state, a
// counter read over HTTP): cond is called every PollEvery (see Poll).
func (s *Scenario) Poll(ctx context.Context, phase string, timeout time.Duration, what string, cond PollCondition) error {
	s.Say(phase, "awaiting %s (up to %s)", what, timeout)
	began := time.Now()
	if err := Poll(ctx, timeout, what, cond); err != nil {
		return err
	}
	s.Say(phase, "ok after %s", time.Since(began).Round(time.Millisecond))
	return nil
}

// Steady waits (Timeouts.SteadyState) for the steady state cond before injection.
func (s *Scenario) Steady(ctx context.Context, what string, cond signals.Condition) error {
	if _, err := s.Wait(ctx, evidence.PhaseSteady, s.r.timeouts().SteadyState, what, cond); err != nil {
		return fmt.Errorf("steady state before injection: %w", err)
	}
	return nil
}

// Inject injects the fault set through the runner's guard, in order, records each spec
// as the row's fault (the evidence holds one fault per row: the last spec stays), marks
// the set injected once every fault is in, and then proves that each one acted: a fault
// whose target does not show its effect fails the row ("fault did not act").
func (s *Scenario) Inject(ctx context.Context, specs ...faults.Spec) error {
	var injected []faults.Fault
	for _, spec := range specs {
		f, err := s.injectFault(ctx, spec, true)
		if err != nil {
			return err
		}
		injected = append(injected, f)
	}
	s.MarkInjected()
	s.proveBeside(ctx, "after inject: ", faults.WaitActed, injected)
	return nil
}

// proveBeside starts a proof while the next phase waits; Proven joins it.
func (s *Scenario) proveBeside(ctx context.Context, prefix string, wait waitProof, fs []faults.Fault) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.prove(ctx, prefix, wait, fs) }()
	s.proving = append(s.proving, done)
	s.stop = append(s.stop, cancel)
}

// Proven waits for every proof running beside the phases and returns the first that
// failed ("fault did not act", "fault still in effect after its heal"); nil when none
// is running. Detect, Mitigate, Recover and CheckDataLoss call it: no row passes a phase
// on an effect that was never proven.
func (s *Scenario) Proven() error {
	var first error
	for i, done := range s.proving {
		if err := <-done; err != nil && first == nil {
			first = err
		}
		s.stop[i]()
	}
	s.proving, s.stop = nil, nil
	return first
}

// Abandon stops the proofs still running (the row failed elsewhere) and waits for them.
func (s *Scenario) Abandon() {
	for _, cancel := range s.stop {
		cancel()
	}
	_ = s.Proven()
}

// InjectFault injects one fault through the guard (and refreshes the scrape targets if
// it replaced a container) without recording anything: for a spec that composes its
// fault of steps and marks the moment itself (MarkInjected).
func (s *Scenario) InjectFault(ctx context.Context, spec faults.Spec) (faults.Fault, error) {
	return s.injectFault(ctx, spec, false)
}

func (s *Scenario) injectFault(ctx context.Context, spec faults.Spec, record bool) (faults.Fault, error) {
	f, err := faults.New(spec)
	if err != nil {
		return nil, err
	}
	s.Say("inject", "%s", spec)
	if record {
		_ = s.rr.SetFault(spec.Kind, targetOf(spec), s.faultParams(spec))
	}
	if err := s.r.Guard.Inject(ctx, s.r.Stack.Env, f); err != nil {
		return nil, fmt.Errorf("inject %s: %w", spec, err)
	}
	s.active = append(s.active, f)
	if err := s.r.refresh(ctx, f); err != nil {
		return nil, err
	}
	return f, nil
}

func (s *Scenario) faultParams(spec faults.Spec) map[string]string {
	if !s.RecordAction {
		return spec.Params
	}
	params := map[string]string{"action": spec.Action}
	for k, v := range spec.Params {
		params[k] = v
	}
	return params
}

// RemoveFault heals one fault of InjectFault before the mitigation (a step of a
// composite fault that has done its part) and proves it gone; Mitigate then leaves it
// alone.
func (s *Scenario) RemoveFault(ctx context.Context, f faults.Fault) error {
	if err := s.r.Guard.Heal(ctx, s.r.Stack.Env, f); err != nil {
		return fmt.Errorf("remove %s: %w", f.Spec(), err)
	}
	s.forget(f)
	if err := s.r.refresh(ctx, f); err != nil {
		return err
	}
	return s.ProveHealed(ctx, "after removal: ", f)
}

func (s *Scenario) forget(f faults.Fault) {
	for i, a := range s.active {
		if a == f {
			s.active = append(s.active[:i], s.active[i+1:]...)
			return
		}
	}
}

// MarkInjected records now as the moment the fault took effect: detect and fire count
// from here.
func (s *Scenario) MarkInjected() {
	s.injected = time.Now()
	_ = s.rr.Injected(s.injected)
}

// Prove waits (Timeouts.FaultProof) until each fault's target shows its effect
// (faults.WaitActed) and records what it saw, each line's "what" prefixed ("after
// inject: "). The error is the first fault that did not act.
func (s *Scenario) Prove(ctx context.Context, prefix string, fs ...faults.Fault) error {
	return s.prove(ctx, prefix, faults.WaitActed, fs)
}

// ProveHealed is Prove after a heal: each fault's effect must be gone (faults.WaitHealed).
func (s *Scenario) ProveHealed(ctx context.Context, prefix string, fs ...faults.Fault) error {
	return s.prove(ctx, prefix, faults.WaitHealed, fs)
}

// waitProof is faults.WaitActed or faults.WaitHealed.
type waitProof func(context.Context, *env.Environment, faults.Fault, time.Duration) ([]faults.Proof, error)

func (s *Scenario) prove(ctx context.Context, prefix string, wait waitProof, fs []faults.Fault) error {
	for _, f := range fs {
		ps, err := wait(ctx, s.r.Stack.Env, f, s.r.timeouts().FaultProof)
		for _, p := range ps {
			_ = s.rr.AddProof(prefix+p.What, p.Value)
		}
		if err != nil {
			_ = s.rr.AddProof(prefix+"verdict", err.Error())
			return err
		}
		s.Say("proof", "%s%s: ok", prefix, f.Spec())
	}
	return nil
}

// Detect waits (Timeouts.Detect) for the detection cond and records the moment.
func (s *Scenario) Detect(ctx context.Context, what string, cond signals.Condition) error {
	_, err := s.Wait(ctx, "detect", s.r.timeouts().Detect, what, cond)
	if err == nil {
		s.MarkDetected()
	}
	// A fault that did not act explains a missing detection better than the timeout.
	if perr := s.Proven(); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("detection: %w", err)
	}
	return nil
}

// MarkDetected records now as the moment of detection (the first one counts).
func (s *Scenario) MarkDetected() {
	s.detected = time.Now()
	_ = s.rr.Detected(s.detected)
}

// Fire waits (Timeouts.Fire) for every trigger firing and records the moment; no
// trigger, no wait.
func (s *Scenario) Fire(ctx context.Context, triggers []string) error {
	if len(triggers) == 0 {
		return nil
	}
	var firing []signals.Condition
	for _, trig := range triggers {
		firing = append(firing, s.r.Stack.Monitor.AlertFiring(trig))
	}
	if _, err := s.Wait(ctx, "fire", s.r.timeouts().Fire, "rollback trigger(s) firing: "+strings.Join(triggers, ", "), signals.All(firing...)); err != nil {
		return fmt.Errorf("rollback trigger: %w", err)
	}
	_ = s.rr.Fired(time.Now())
	s.awaitServer(ctx, triggers)
	return nil
}

// awaitServer keeps the fault in place until the real Prometheus server (when the stack
// runs one) has fired the triggers too, for at most its agreement tolerance. The server
// sees a sample a scrape or two after the embedded engine does; a trigger that resolves
// the moment the mitigation lands (a rollback that removes the failing series) would
// otherwise be gone before the server's next evaluation, and the run would read that as
// a disagreement. It asserts nothing: the row's comparison with the server judges.
func (s *Scenario) awaitServer(ctx context.Context, triggers []string) {
	srv := s.r.Stack.Server
	if srv == nil {
		return
	}
	began := time.Now()
	err := Poll(ctx, srv.Tolerance(), "the Prometheus server firing "+strings.Join(triggers, ", "), func() (bool, string, error) {
		onsets, err := srv.Onsets(ctx, s.injected, time.Now())
		if err != nil {
			return false, "", err
		}
		var missing []string
		for _, t := range triggers {
			if len(onsets[t]) == 0 {
				missing = append(missing, t)
			}
		}
		return len(missing) == 0, "not yet firing there: " + strings.Join(missing, ", "), nil
	})
	if err != nil {
		s.Say("fire", "%v; the comparison with the server judges", err)
		return
	}
	s.Say("fire", "the Prometheus server fired them too, %s later", time.Since(began).Round(time.Millisecond))
}

// Mitigation is a first mitigation, as the document writes it.
type Mitigation struct {
	// Action is the mitigation as the evidence records it.
	Action string
	// Line is the progress line (Action when empty).
	Line string
	// Apply, when not empty, are the changes the mitigation makes (faults.Specs: a
	// config change, a rollback to another image). They are applied alone: the injected
	// faults stay in place, so only the mitigation can bring the row back (a rollback that
	// changes nothing fails the row). Empty: the mitigation is to heal the faults.
	Apply []faults.Spec
}

// Mitigate applies the first mitigation. Without Apply it heals every fault still
// active (last injected first) and proves each one gone (faults.WaitHealed). With Apply
// it heals nothing: it applies the changes, proves that each one acted, and hands the
// faults they superseded (the same role's config, replaced) over to them, so that the
// guard, healing the change after the row, restores what ran before the fault.
func (s *Scenario) Mitigate(ctx context.Context, m Mitigation) error {
	line := m.Line
	if line == "" {
		line = m.Action
	}
	if err := s.Proven(); err != nil {
		return err
	}
	s.Say("mitigate", "%s", line)
	if len(m.Apply) > 0 {
		return s.apply(ctx, m)
	}
	healed := append([]faults.Fault(nil), s.active...)
	for i := len(healed) - 1; i >= 0; i-- {
		f := healed[i]
		if err := s.r.Guard.Heal(ctx, s.r.Stack.Env, f); err != nil {
			return fmt.Errorf("mitigation: heal %s: %w", f.Spec(), err)
		}
		s.forget(f)
		if err := s.r.refresh(ctx, f); err != nil {
			return err
		}
	}
	s.healed = time.Now()
	_ = s.rr.Healed(s.healed)
	_ = s.rr.Mitigated(m.Action, time.Now())
	s.proveBeside(ctx, "after mitigation: ", faults.WaitHealed, healed)
	return nil
}

func (s *Scenario) apply(ctx context.Context, m Mitigation) error {
	var applied []faults.Fault
	for _, spec := range m.Apply {
		f, err := faults.New(spec)
		if err != nil {
			return err
		}
		s.Say("mitigate", "apply %s (the injected faults stay in place)", spec)
		if err := s.r.Guard.Inject(ctx, s.r.Stack.Env, f); err != nil {
			return fmt.Errorf("mitigation: apply %s: %w", spec, err)
		}
		if err := s.r.refresh(ctx, f); err != nil {
			return err
		}
		// Newest first: the oldest superseded fault's "before" is merged last and wins.
		for i := len(s.active) - 1; i >= 0; i-- {
			old := s.active[i]
			if faults.Supersede(f, old) {
				s.forget(old)
				s.r.Guard.Forget(old)
			}
		}
		applied = append(applied, f)
	}
	// The moment the mitigation took effect: recovery counts from here.
	s.healed = time.Now()
	_ = s.rr.Healed(s.healed)
	_ = s.rr.Mitigated(m.Action, time.Now())
	s.proveBeside(ctx, "after mitigation: ", faults.WaitActed, applied)
	return nil
}

// Recover waits (Timeouts.Recover) for the recovery cond and records the moment.
func (s *Scenario) Recover(ctx context.Context, what string, cond signals.Condition) error {
	_, err := s.Wait(ctx, "recover", s.r.timeouts().Recover, what, cond)
	if err == nil {
		s.MarkRecovered()
	}
	if perr := s.Proven(); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	return nil
}

// MarkRecovered records now as the moment of recovery (recover counts from the
// mitigation).
func (s *Scenario) MarkRecovered() { _ = s.rr.Recovered(time.Now()) }

// Record evaluates exprs at the monitor's last tick and adds each to the row's
// evidence (phase, value, whether it should hold, pass). It returns an error naming
// those that do not match want; a caller whose wait already asserted them ignores it.
func (s *Scenario) Record(ctx context.Context, phase string, want bool, exprs ...string) error {
	last, _ := s.r.Stack.Monitor.LastTick()
	w := "holds"
	if !want {
		w = "does not hold"
	}
	var bad []string
	for _, e := range exprs {
		v, present, err := s.r.Stack.Engine.Value(ctx, e, last.T)
		pass := err == nil && present == want
		_ = s.rr.AddEvaluation(evidence.Evaluation{Phase: phase, Expr: e, Value: evidence.Float(v), Present: present, Want: w, Pass: pass, At: last.T})
		if !pass {
			bad = append(bad, fmt.Sprintf("%q should %s (value %g, present %t, err %v)", e, strings.TrimSuffix(w, "s"), v, present, err))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// RecordSettled is Record after settleTicks monitor ticks, so that a state the caller
// just observed over HTTP has been scraped.
func (s *Scenario) RecordSettled(ctx context.Context, phase string, want bool, exprs ...string) error {
	_ = Sleep(ctx, settleTicks*s.r.Stack.Monitor.Interval())
	return s.Record(ctx, phase, want, exprs...)
}

// CheckDataLoss runs the runner's DataLoss check (final sync, history, checker) and
// records its verdict. The error says why it could not judge; whether the verdict is
// valid is ValidVerdict's question.
func (s *Scenario) CheckDataLoss(ctx context.Context) (*evidence.DataLoss, error) {
	if err := s.Proven(); err != nil {
		return nil, err
	}
	if s.r.DataLoss == nil {
		return nil, errors.New("data-loss check: the runner has no DataLoss check (no client fleet?)")
	}
	s.Say("check", "final sync and data-loss check")
	began := time.Now()
	dl, err := s.r.DataLoss(ctx)
	if dl != nil {
		_ = s.rr.SetDataLoss(*dl)
		s.Say("check", "verdict %s after %s (%d ops)", dl.Verdict, time.Since(began).Round(time.Millisecond), dl.Ops)
	}
	if err != nil {
		return dl, fmt.Errorf("data-loss check: %w", err)
	}
	return dl, nil
}

// ValidVerdict is nil for a valid data-loss verdict, else an error naming it.
func ValidVerdict(dl *evidence.DataLoss) error {
	if dl == nil {
		return errors.New("data-loss check: no verdict")
	}
	if dl.Verdict != evidence.DataLossValid {
		return fmt.Errorf("data-loss check: verdict %s: %s", dl.Verdict, dl.Detail)
	}
	return nil
}
