package promserver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Tolerance is the largest fire-time difference that still counts as agreement: the
// server sees a sample one harness scrape and one server scrape after the engine does,
// and evaluates up to one interval later: two scrape plus two evaluation intervals.
func (s *Server) Tolerance() time.Duration { return 4 * s.cfg.Interval }

// Onsets are the times each alert went to firing in the server, read back from its own
// ALERTS series (raw samples, so the times are its evaluation times). A run of firing
// samples that began at or before from continues from before: only later onsets count.
func (s *Server) Onsets(ctx context.Context, from, to time.Time) (map[string][]time.Time, error) {
	span := to.Sub(from) + 2*s.cfg.Interval
	q := fmt.Sprintf(`ALERTS{alertstate="firing"}[%s]`, model.Duration(span.Round(time.Millisecond)+time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	v, _, _, err := s.API.Query(cctx, q, to)
	if err != nil {
		return nil, fmt.Errorf("prometheus server: query %s: %w", q, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("prometheus server: query %s: got %s, want a matrix", q, v.Type())
	}
	times := map[string][]time.Time{}
	for _, ss := range m {
		name := string(ss.Metric[model.AlertNameLabel])
		for _, p := range ss.Values {
			times[name] = append(times[name], p.Timestamp.Time())
		}
	}
	out := map[string][]time.Time{}
	for name, ts := range times {
		out[name] = runStarts(ts, 3*s.cfg.Interval/2, from)
	}
	return out, nil
}

// runStarts sorts the sample times of one alert (all its label sets) and returns the
// first time of every run (samples closer than gap) that starts after from.
func runStarts(ts []time.Time, gap time.Duration, from time.Time) []time.Time {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var out []time.Time
	for i, t := range ts {
		if i > 0 && t.Sub(ts[i-1]) <= gap {
			continue
		}
		if t.After(from) {
			out = append(out, t)
		}
	}
	return out
}

// EmbeddedOnsets are the times each alert went to firing in the embedded engine.
func EmbeddedOnsets(trs []signals.AlertTransition) map[string][]time.Time {
	out := map[string][]time.Time{}
	for _, tr := range trs {
		if tr.To == signals.AlertFiring {
			out[tr.Alert] = append(out[tr.Alert], tr.T)
		}
	}
	return out
}

// Agree compares, alert by alert, the first onset of each evaluator within the span: the
// embedded engine's in (from, to], the server's in (from, to+tol] (it sees everything
// later). Both fired within tol of each other, or neither fired: they agree. An onset of
// one side is matched against any onset of the other within tol, so an alert that fired
// at the very edge of the span is not called a disagreement.
func Agree(alerts []string, embedded, server map[string][]time.Time, from, to time.Time, tol time.Duration) evidence.ServerAgreement {
	a := evidence.ServerAgreement{From: from, To: to, Agree: true, Tolerance: evidence.Millis(tol)}
	first := func(ts []time.Time, lo, hi time.Time) time.Time {
		for _, t := range ts {
			if t.After(lo) && !t.After(hi) {
				return t
			}
		}
		return time.Time{}
	}
	near := func(ts []time.Time, t time.Time) time.Time {
		return first(ts, t.Add(-tol-time.Nanosecond), t.Add(tol))
	}
	var bad, fired []string
	quiet := 0
	for _, name := range alerts {
		aa := evidence.AlertAgreement{Alert: name}
		aa.EmbeddedAt = first(embedded[name], from, to)
		aa.ServerAt = first(server[name], from, to.Add(tol))
		switch {
		case !aa.EmbeddedAt.IsZero() && aa.ServerAt.IsZero():
			aa.ServerAt = near(server[name], aa.EmbeddedAt)
		case aa.EmbeddedAt.IsZero() && !aa.ServerAt.IsZero():
			aa.EmbeddedAt = near(embedded[name], aa.ServerAt)
		}
		aa.EmbeddedFired, aa.ServerFired = !aa.EmbeddedAt.IsZero(), !aa.ServerAt.IsZero()
		switch {
		case aa.EmbeddedFired && aa.ServerFired:
			d := aa.ServerAt.Sub(aa.EmbeddedAt)
			aa.Delta = evidence.MillisPtr(d)
			aa.Agree = d.Abs() <= tol
			fired = append(fired, fmt.Sprintf("%s (Δ %s)", name, d.Round(time.Millisecond)))
			if !aa.Agree {
				bad = append(bad, fmt.Sprintf("%s fired at %s in the embedded engine and at %s in the server: %s apart, more than %s", name, clock(aa.EmbeddedAt), clock(aa.ServerAt), d.Abs().Round(time.Millisecond), tol))
			}
		case aa.EmbeddedFired:
			bad = append(bad, fmt.Sprintf("%s fired at %s in the embedded engine, never in the server", name, clock(aa.EmbeddedAt)))
		case aa.ServerFired:
			bad = append(bad, fmt.Sprintf("%s fired at %s in the server, never in the embedded engine", name, clock(aa.ServerAt)))
		default:
			aa.Agree = true
			quiet++
		}
		if !aa.Agree {
			a.Agree = false
		}
		a.Alerts = append(a.Alerts, aa)
	}
	if a.Agree {
		what := "none fired"
		if len(fired) > 0 {
			what = "both fired " + strings.Join(fired, ", ")
		}
		a.Detail = fmt.Sprintf("agree on %d alerts: %s; %d quiet in both (tolerance %s)", len(alerts), what, quiet, tol)
	} else {
		a.Detail = strings.Join(bad, "; ")
	}
	return a
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// Compare waits until the server has caught up with the span's end (AwaitCaughtUp,
// bounded by the tolerance), then compares its onsets with the embedded engine's over
// (from, to].
func (s *Server) Compare(ctx context.Context, rules *signals.Rules, from, to time.Time) (evidence.ServerAgreement, error) {
	s.AwaitCaughtUp(ctx, to, to.Add(s.Tolerance()))
	if err := ctx.Err(); err != nil {
		return evidence.ServerAgreement{}, err
	}
	// From from-tol: an onset just before from is one Agree may match an edge onset with.
	srv, err := s.Onsets(ctx, from.Add(-s.Tolerance()), to.Add(s.Tolerance()))
	if err != nil {
		return evidence.ServerAgreement{}, err
	}
	var alerts []string
	for _, ri := range rules.Rules() {
		if ri.Kind == signals.AlertingRule && !slices.Contains(alerts, ri.Name) {
			alerts = append(alerts, ri.Name)
		}
	}
	return Agree(alerts, EmbeddedOnsets(rules.Transitions()), srv, from, to, s.Tolerance()), nil
}
