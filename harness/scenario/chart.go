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
