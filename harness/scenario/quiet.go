package scenario

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// HoldQuiet keeps the fault long enough for the quiet triggers (absorbed faults must not
// page) to show what they would do: from the injection, at least their longest
// effective for: plus two ticks, so "sustained" had its chance. Then it checks that none
// of them was pending or firing at any tick since the injection, records one evaluation
// per trigger and says which went loud.
func (s *Scenario) HoldQuiet(ctx context.Context, quiet []string) error {
	t0 := s.injected
	interval := s.r.Stack.Monitor.Interval()
	var fors []time.Duration
	for _, q := range quiet {
		if info, ok := s.r.Stack.Rules.Rule(q); ok {
			fors = append(fors, info.EffectiveFor)
		}
	}
	deadline := t0.Add(quietSpan(interval, fors))
	if rest := time.Until(deadline); rest > 0 {
		s.Say("quiet", "keeping the fault %s more: %s must stay quiet", rest.Round(time.Millisecond), strings.Join(quiet, ", "))
	}
	// Quiet because absent is not quiet: at every tick of the hold (and once at its end),
	// every target the quiet triggers read must be up and their series present.
	for {
		last, _ := s.r.Stack.Monitor.LastTick()
		if !last.T.IsZero() {
			bad, err := s.r.Stack.Unobserved(ctx, last.T, quiet, nil)
			if err != nil {
				return err
			}
			if len(bad) > 0 {
				return fmt.Errorf("quiet triggers: %s cannot see what they read at %s: %s; quiet because absent is not quiet",
					strings.Join(quiet, ", "), last.T.UTC().Format(time.RFC3339), strings.Join(bad, "; "))
			}
		}
		rest := time.Until(deadline)
		if rest <= 0 {
			break
		}
		if err := Sleep(ctx, min(rest, interval)); err != nil {
			return err
		}
	}
	now := time.Now()
	loud := quietBreaches(s.r.Stack.Rules.Transitions(), quiet, t0, s.r.Stack.Rules.State)
	var bad []string
	for _, q := range quiet {
		_ = s.rr.AddEvaluation(evidence.Evaluation{Phase: evidence.PhaseFault, Expr: `ALERTS{alertname="` + q + `"}`, Present: len(loud[q]) > 0,
			Want: "does not hold", Pass: len(loud[q]) == 0, At: now})
		if len(loud[q]) > 0 {
			bad = append(bad, q+" ("+strings.Join(loud[q], ", ")+")")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("quiet triggers: %s went loud during the fault; the row says the fault is absorbed and must not page", strings.Join(bad, "; "))
	}
	s.Say("quiet", "ok: %s stayed quiet for %s of fault", strings.Join(quiet, ", "), now.Sub(t0).Round(time.Millisecond))
	return nil
}

// quietSpan is how long quiet triggers are watched from the injection: two ticks, or
// the longest effective for: of them plus two ticks.
func quietSpan(interval time.Duration, effectiveFors []time.Duration) time.Duration {
	span := 2 * interval
	for _, f := range effectiveFors {
		span = max(span, f+2*interval)
	}
	return span
}

// quietBreaches lists, per quiet trigger, how it went loud since t0: every transition to
// pending or firing at or after t0, or, when there is none, its state now if that is
// pending or firing (it went loud before t0 and stayed so).
func quietBreaches(transitions []signals.AlertTransition, quiet []string, t0 time.Time, stateNow func(string) signals.AlertState) map[string][]string {
	loud := map[string][]string{}
	for _, tr := range transitions {
		if tr.T.Before(t0) || !slices.Contains(quiet, tr.Alert) {
			continue
		}
		if tr.To.Loud() {
			loud[tr.Alert] = append(loud[tr.Alert], fmt.Sprintf("%s at %s", tr.To, tr.T.UTC().Format(time.RFC3339)))
		}
	}
	for _, q := range quiet {
		if st := stateNow(q); st.Loud() && len(loud[q]) == 0 {
			loud[q] = append(loud[q], fmt.Sprintf("%s now", st))
		}
	}
	return loud
}
