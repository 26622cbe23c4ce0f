package scenario

import (
	"context"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Curve samples expr over [from, to] every step and returns the first series' points:
// one curve per expression, for a row's or a spec's timeline chart.
func Curve(ctx context.Context, eng *signals.Engine, expr string, from, to time.Time, step time.Duration) ([]evidence.Point, error) {
	m, err := eng.RangeQuery(ctx, expr, from, to, step)
	if err != nil || len(m) == 0 {
		return nil, err
	}
	pts := make([]evidence.Point, 0, len(m[0].Floats))
	for _, f := range m[0].Floats {
		pts = append(pts, evidence.Point{T: time.UnixMilli(f.T), V: evidence.Float(f.F)})
	}
	return pts, nil
}

// Trace samples a trigger's expression over [from, to] every step: the points of every
// series it returned and the highest value seen, for the control's and canary's traces.
// On a query error the trace has no points (and the error says why).
func Trace(ctx context.Context, eng *signals.Engine, alert, expr string, from, to time.Time, step time.Duration) (evidence.TriggerTrace, error) {
	tr := evidence.TriggerTrace{Alert: alert, Expr: expr}
	m, err := eng.RangeQuery(ctx, expr, from, to, step)
	if err != nil {
		return tr, err
	}
	for _, s := range m {
		for _, f := range s.Floats {
			v := evidence.Float(f.F)
			tr.Points = append(tr.Points, evidence.Point{T: time.UnixMilli(f.T), V: v})
			tr.MaxValue = max(tr.MaxValue, v)
		}
	}
	return tr, nil
}

// TimelineLead is how far before a matrix row's start its chart begins, so the steady
// state before the fault shows.
const TimelineLead = 5 * time.Second

// Chart is what a row's timeline draws besides the fault window.
type Chart struct {
	// From is where the chart starts (zero: the scenario's start).
	From time.Time
	// Signals are drawn as the value their comparison compares (see Signal).
	Signals []string
	// Triggers are drawn as 0 quiet, 0.5 pending, 1 firing, from their transitions.
	Triggers []string
	// OmitEmpty leaves out a signal with no sample in the span; else it is recorded
	// with no points.
	OmitEmpty bool
}

// Timeline samples the chart's signals and triggers' states from c.From to now, adds
// them to the row's timeline and shades the fault window (injection to heal, or to now
// while the fault is still in). A signal whose query fails is left out.
func (s *Scenario) Timeline(ctx context.Context, c Chart) {
	from, to := c.From, time.Now()
	if from.IsZero() {
		from = s.started
	}
	for _, e := range c.Signals {
		sig := Signal(e)
		pts, err := Curve(ctx, s.r.Stack.Engine, sig, from, to, s.r.Stack.Monitor.Interval())
		if err != nil || (c.OmitEmpty && len(pts) == 0) {
			continue
		}
		_ = s.rr.AddSeries(evidence.Series{Name: sig, Expr: sig, Kind: evidence.KindSignal, Points: pts})
	}
	transitions := s.r.Stack.Rules.Transitions()
	for _, trig := range c.Triggers {
		_ = s.rr.AddSeries(evidence.Series{Name: trig + " (0 quiet, 0.5 pending, 1 firing)", Expr: `ALERTS{alertname="` + trig + `"}`,
			Kind: evidence.KindTrigger, Points: TriggerCurve(transitions, trig, from, to)})
	}
	if w, ok := faultWindow(s.injected, s.healed, to); ok {
		_ = s.rr.AddWindow(w)
	}
}

// TriggerCurve is an alert's state over [from, to] as a step curve: 0 quiet, 0.5
// pending, 1 firing, starting quiet at from, with a vertical step at each transition
// (the state before it and after it, at its moment) and the last state held to to.
func TriggerCurve(transitions []signals.AlertTransition, alert string, from, to time.Time) []evidence.Point {
	pts := []evidence.Point{{T: from, V: 0}}
	state := 0.0
	for _, tr := range transitions {
		if tr.Alert != alert || tr.T.Before(from) {
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
	return append(pts, evidence.Point{T: to, V: evidence.Float(state)})
}

// faultWindow is the shaded fault span: from the injection to the heal (to now while
// not healed); none before the injection.
func faultWindow(injected, healed, now time.Time) (evidence.Span, bool) {
	if injected.IsZero() {
		return evidence.Span{}, false
	}
	if healed.IsZero() {
		healed = now
	}
	return evidence.Span{From: injected, To: healed, Label: "fault"}, true
}
