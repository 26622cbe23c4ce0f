package promserver

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// AwaitCaughtUp waits until the server has seen and judged everything the harness had
// at t, and reports whether it had by deadline (false: deadline came first, or ctx
// ended). Caught up means, from the server's own API:
//
//  1. a scrape of the harness that began after t has ended (it carries every sample the
//     harness held at t);
//  2. every rule was evaluated after that scrape ended;
//  3. unless the server evaluates its rules as one group in the engine's order
//     (Config.OneGroup), every rule was evaluated once more after the last of those
//     evaluations: an alert reads recorded series that another group computes, at its
//     own phase. One group evaluates its recording rules before its alerts in one pass.
//
// Then every onset the server owes the embedded engine up to t has happened. This
// replaces a fixed wait of the whole tolerance after every row (4 intervals) by what the
// server actually needs, typically one or two intervals; the deadline keeps the old
// wait as the bound.
func (s *Server) AwaitCaughtUp(ctx context.Context, t, deadline time.Time) bool {
	every := max(s.cfg.Interval/10, 10*time.Millisecond)
	var scraped, evaluated time.Time // the ends of step 1 and step 2; zero until reached
	for {
		if s.caughtUpStep(ctx, t, &scraped, &evaluated) {
			return true
		}
		wait := min(every, time.Until(deadline))
		if wait <= 0 {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// caughtUpStep reads the API once and advances the steps; true once all three hold. An
// API error counts as not yet: the deadline bounds the wait.
func (s *Server) caughtUpStep(ctx context.Context, t time.Time, scraped, evaluated *time.Time) bool {
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	if scraped.IsZero() {
		tr, err := s.API.Targets(cctx)
		if err != nil {
			return false
		}
		for _, tg := range tr.Active {
			if tg.LastScrape.After(t) {
				*scraped = tg.LastScrape.Add(time.Duration(tg.LastScrapeDuration * float64(time.Second)))
			}
		}
		if scraped.IsZero() {
			return false
		}
	}
	oldest, newestEnd, err := s.ruleEvaluations(cctx)
	if err != nil || oldest.Before(*scraped) {
		return false
	}
	if s.cfg.OneGroup {
		// A group queries at its scheduled tick and stamps each rule when the rule
		// starts, a little later: a group that woke late could look evaluated after the
		// scrape while its queries ran at a tick before it. The margin bounds that lag.
		return !oldest.Before(scraped.Add(wakeMargin(s.cfg.Interval)))
	}
	if evaluated.IsZero() {
		*evaluated = newestEnd
	}
	return !oldest.Before(*evaluated)
}

// wakeMargin is how late after its tick a OneGroup server's group may wake and still
// be taken to have queried after a scrape it looks evaluated after (a tenth of the
// interval: 100 ms at 1 s; the tick itself is usually a millisecond or two late).
func wakeMargin(interval time.Duration) time.Duration { return interval / 10 }

// ruleEvaluations are the oldest last evaluation among the server's rules and the
// latest end of one (start plus its evaluation time).
func (s *Server) ruleEvaluations(ctx context.Context) (oldest, newestEnd time.Time, err error) {
	rr, err := s.API.Rules(ctx, nil)
	if err != nil {
		return oldest, newestEnd, err
	}
	n := 0
	for _, g := range rr.Groups {
		for _, r := range g.Rules {
			var last time.Time
			var took float64
			switch x := r.(type) {
			case v1.AlertingRule:
				last, took = x.LastEvaluation, x.EvaluationTime
			case v1.RecordingRule:
				last, took = x.LastEvaluation, x.EvaluationTime
			default:
				return oldest, newestEnd, fmt.Errorf("rules API: a rule of type %T", r)
			}
			if n == 0 || last.Before(oldest) {
				oldest = last
			}
			if end := last.Add(time.Duration(took * float64(time.Second))); end.After(newestEnd) {
				newestEnd = end
			}
			n++
		}
	}
	if n == 0 {
		return oldest, newestEnd, fmt.Errorf("rules API: no rules loaded")
	}
	return oldest, newestEnd, nil
}
