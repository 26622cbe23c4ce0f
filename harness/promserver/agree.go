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

// Run is a stretch of consecutive evaluations that saw an alert in one state: From is
// the first of them, Until the first evaluation after them (the state had ended).
type Run struct{ From, Until time.Time }

// Held is how long the state lasted.
func (r Run) Held() time.Duration { return r.Until.Sub(r.From) }

// History is what one evaluator did with the alerts: when each went to firing, and the
// runs in which each was pending (its condition held, its for: not yet over).
type History struct {
	Fired   map[string][]time.Time
	Pending map[string][]Run
}

// Onsets are the times each alert went to firing in the server (History's Fired).
func (s *Server) Onsets(ctx context.Context, from, to time.Time) (map[string][]time.Time, error) {
	h, err := s.History(ctx, from, to)
	return h.Fired, err
}

// History reads the server's own ALERTS series back over (from, to] (raw samples, so the
// times are its evaluation times). A run of firing samples that began at or before from
// continues from before: only later onsets count. Pending runs are kept whole. A server
// that never scraped the harness is an error (AwaitScraping), never an empty history.
func (s *Server) History(ctx context.Context, from, to time.Time) (History, error) {
	if err := s.AwaitScraping(ctx); err != nil {
		return History{}, err
	}
	span := to.Sub(from) + 2*s.cfg.Interval
	q := fmt.Sprintf(`ALERTS[%s]`, model.Duration(span.Round(time.Millisecond)+time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	v, _, _, err := s.API.Query(cctx, q, to)
	if err != nil {
		return History{}, fmt.Errorf("prometheus server: query %s: %w", q, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return History{}, fmt.Errorf("prometheus server: query %s: got %s, want a matrix", q, v.Type())
	}
	firing, pending := map[string][]time.Time{}, map[string][]time.Time{}
	for _, ss := range m {
		name := string(ss.Metric[model.AlertNameLabel])
		byState := pending
		if ss.Metric["alertstate"] == "firing" {
			byState = firing
		}
		for _, p := range ss.Values {
			byState[name] = append(byState[name], p.Timestamp.Time())
		}
	}
	gap := 3 * s.cfg.Interval / 2
	h := History{Fired: map[string][]time.Time{}, Pending: map[string][]Run{}}
	for name, ts := range firing {
		for _, r := range runsOf(ts, gap, s.cfg.Interval) {
			if r.From.After(from) {
				h.Fired[name] = append(h.Fired[name], r.From)
			}
		}
	}
	for name, ts := range pending {
		h.Pending[name] = runsOf(ts, gap, s.cfg.Interval)
	}
	return h, nil
}

// runsOf sorts the sample times of one alert in one state (all its label sets) and
// groups them into runs: samples closer than gap belong together; a run lasts until
// one interval after its last sample, when the next evaluation no longer saw it.
func runsOf(ts []time.Time, gap, interval time.Duration) []Run {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var out []Run
	for i, t := range ts {
		if i > 0 && t.Sub(ts[i-1]) <= gap {
			out[len(out)-1].Until = t.Add(interval)
			continue
		}
		out = append(out, Run{From: t, Until: t.Add(interval)})
	}
	return out
}

// EmbeddedHistory is the embedded engine's History, from its transitions; a pending
// run still open at until ends there.
func EmbeddedHistory(trs []signals.AlertTransition, until time.Time) History {
	h := History{Fired: map[string][]time.Time{}, Pending: map[string][]Run{}}
	open := map[string]time.Time{}
	for _, tr := range trs {
		if from, ok := open[tr.Alert]; ok {
			h.Pending[tr.Alert] = append(h.Pending[tr.Alert], Run{From: from, Until: tr.T})
			delete(open, tr.Alert)
		}
		switch tr.To {
		case signals.AlertFiring:
			h.Fired[tr.Alert] = append(h.Fired[tr.Alert], tr.T)
		case signals.AlertPending:
			open[tr.Alert] = tr.T
		}
	}
	for name, from := range open {
		h.Pending[name] = append(h.Pending[name], Run{From: from, Until: until})
	}
	return h
}

// Holds are the for: of each alert as evaluated (the shortest, when rules share a name).
func Holds(rules *signals.Rules) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, ri := range rules.Rules() {
		if ri.Kind != signals.AlertingRule {
			continue
		}
		if d, ok := out[ri.Name]; !ok || ri.EffectiveFor < d {
			out[ri.Name] = ri.EffectiveFor
		}
	}
	return out
}

// atTheEdge finds, for an alert the other evaluator fired at t, a pending run of this
// one that began about when the other's did (within tol of t − hold) and lasted at
// least hold − tol/2. Both then saw the condition hold for as long as the for:, to
// within a sample at each end (tol/2 is two intervals); which side of the for: each
// landed on is the sampling phase, not the code (a server redeployed in 2 s at a 2 s
// for:). A run shorter than that, or an alert without a for:, is no excuse.
func atTheEdge(pending []Run, hold time.Duration, t time.Time, tol time.Duration) (Run, bool) {
	if hold <= 0 {
		return Run{}, false
	}
	began := t.Add(-hold)
	for _, r := range pending {
		if r.From.Sub(began).Abs() <= tol && r.Held() >= hold-tol/2 {
			return r, true
		}
	}
	return Run{}, false
}

// Agree compares, alert by alert, the first onset of each evaluator within the span: the
// embedded engine's in (from, to], the server's in (from, to+tol] (it sees everything
// later). Both fired within tol of each other, or neither fired: they agree. An onset of
// one side is matched against any onset of the other within tol, so an alert that fired
// at the very edge of the span is not called a disagreement; nor is one that fired in
// one evaluator while the other held it pending for its whole for: (atTheEdge).
func Agree(alerts []string, holds map[string]time.Duration, embedded, server History, from, to time.Time, tol time.Duration) evidence.ServerAgreement {
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
	edge := func(name, fired, pending string, at time.Time, runs []Run) (string, bool) {
		r, ok := atTheEdge(runs, holds[name], at, tol)
		if !ok {
			return "", false
		}
		return fmt.Sprintf("fired at %s in the %s; the %s held it pending %s of its %s for:", clock(at), fired, pending,
			r.Held().Round(time.Millisecond), holds[name]), true
	}
	var bad, fired, edges []string
	quiet := 0
	for _, name := range alerts {
		aa := evidence.AlertAgreement{Alert: name}
		aa.EmbeddedAt = first(embedded.Fired[name], from, to)
		aa.ServerAt = first(server.Fired[name], from, to.Add(tol))
		switch {
		case !aa.EmbeddedAt.IsZero() && aa.ServerAt.IsZero():
			aa.ServerAt = near(server.Fired[name], aa.EmbeddedAt)
		case aa.EmbeddedAt.IsZero() && !aa.ServerAt.IsZero():
			aa.EmbeddedAt = near(embedded.Fired[name], aa.ServerAt)
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
			aa.AtTheEdge, aa.Agree = edge(name, "embedded engine", "server", aa.EmbeddedAt, server.Pending[name])
			if !aa.Agree {
				bad = append(bad, fmt.Sprintf("%s fired at %s in the embedded engine, never in the server", name, clock(aa.EmbeddedAt)))
			}
		case aa.ServerFired:
			aa.AtTheEdge, aa.Agree = edge(name, "server", "embedded engine", aa.ServerAt, embedded.Pending[name])
			if !aa.Agree {
				bad = append(bad, fmt.Sprintf("%s fired at %s in the server, never in the embedded engine", name, clock(aa.ServerAt)))
			}
		default:
			aa.Agree = true
			quiet++
		}
		if aa.AtTheEdge != "" {
			edges = append(edges, name+" "+aa.AtTheEdge)
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
		if len(edges) > 0 {
			a.Detail += "; at the for: edge: " + strings.Join(edges, "; ")
		}
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
	srv, err := s.History(ctx, from.Add(-s.Tolerance()), to.Add(s.Tolerance()))
	if err != nil {
		return evidence.ServerAgreement{}, err
	}
	var alerts []string
	for _, ri := range rules.Rules() {
		if ri.Kind == signals.AlertingRule && !slices.Contains(alerts, ri.Name) {
			alerts = append(alerts, ri.Name)
		}
	}
	return Agree(alerts, Holds(rules), EmbeddedHistory(rules.Transitions(), to), srv, from, to, s.Tolerance()), nil
}
