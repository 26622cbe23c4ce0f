package stack

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Observed is a Condition (issue 12 §3, "quiet never means absent"): at the latest tick,
// every target exposing a series that the named alerts or the expressions read is up
// (up{job=<target>} == 1), and every such series is present, but those of a lazy target
// (targets.yaml lazy: they appear only on events; the target must still be up). Recorded
// names are resolved to the series their recording rules read. A trigger or detection
// that reads nothing it can see is not quiet, it is blind: the condition is false and
// Observe names what is down or absent.
func (s *Stack) Observed(alerts, exprs []string) signals.Condition {
	return func(ctx context.Context) (bool, error) {
		last, _ := s.Monitor.LastTick()
		if last.T.IsZero() {
			signals.Observe(ctx, "targets read: no tick yet")
			return false, nil
		}
		bad, err := s.Unobserved(ctx, last.T, alerts, exprs)
		if err != nil {
			return false, signals.Permanent(err)
		}
		if len(bad) > 0 {
			signals.Observe(ctx, "quiet because absent is not quiet: %s", strings.Join(bad, "; "))
		}
		return len(bad) == 0, nil
	}
}

// Unobserved lists, at ts, each target read by the alerts or expressions that is not up
// and each non-lazy series they read that is absent (see Observed); empty when all is seen.
// A stack without a program (no target catalogue, as in unit tests) has nothing to check.
func (s *Stack) Unobserved(ctx context.Context, ts time.Time, alerts, exprs []string) ([]string, error) {
	if s.Program == nil || s.Rules == nil {
		return nil, nil
	}
	readers, err := s.readMetrics(alerts, exprs)
	if err != nil {
		return nil, err
	}
	type exposure struct {
		target program.Target
		series string
	}
	var exposed []exposure
	for _, t := range s.Program.Targets {
		if t.Role != "" && !slices.Contains(s.opts.Roles, t.Role) {
			continue // not running in this stack: nothing of it can be read
		}
		series := t.Series
		if t.Kind == "probe" {
			series = []string{"probe_success", "probe_http_status_code", "probe_duration_seconds"}
		}
		for _, n := range series {
			if _, ok := readers[n]; ok {
				exposed = append(exposed, exposure{t, n})
			}
		}
	}
	var bad []string
	upChecked := map[string]bool{}
	for _, e := range exposed {
		t := e.target
		if !upChecked[t.Name] {
			upChecked[t.Name] = true
			q := fmt.Sprintf("up{job=%q}", t.Name)
			v, present, err := s.Engine.Value(ctx, q, ts)
			if err != nil {
				return nil, err
			}
			if !present || v != 1 {
				seen := "absent"
				if present {
					seen = fmt.Sprintf("%g", v)
				}
				bad = append(bad, fmt.Sprintf("target %s is down (%s = %s), read by %s", t.Name, q, seen, s.readBy(readers, t)))
			}
		}
		if t.Lazy {
			continue
		}
		q := e.series
		if t.Kind == "probe" {
			q = fmt.Sprintf("%s{probe=%q}", e.series, t.Name)
		} else {
			q = fmt.Sprintf("%s{job=%q}", e.series, t.Name)
		}
		if _, present, err := s.Engine.Value(ctx, q, ts); err != nil {
			return nil, err
		} else if !present {
			bad = append(bad, fmt.Sprintf("series %s absent, read by %s", q, strings.Join(readers[e.series], ", ")))
		}
	}
	return bad, nil
}

// readBy names who reads any series of t.
func (s *Stack) readBy(readers map[string][]string, t program.Target) string {
	series := t.Series
	if t.Kind == "probe" {
		series = []string{"probe_success", "probe_http_status_code", "probe_duration_seconds"}
	}
	var who []string
	for _, n := range series {
		who = append(who, readers[n]...)
	}
	sort.Strings(who)
	return strings.Join(slices.Compact(who), ", ")
}

// readMetrics maps each metric name the alerts' rules and the expressions read (recorded
// names resolved to what their recording rules read) to who reads it.
func (s *Stack) readMetrics(alerts, exprs []string) (map[string][]string, error) {
	recorded := s.Rules.RecordedNames()
	out := map[string][]string{}
	var add func(reader string, names []string, seen map[string]bool)
	add = func(reader string, names []string, seen map[string]bool) {
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			if _, ok := recorded[n]; ok {
				for _, ri := range s.Rules.Rules() {
					if ri.Kind == signals.RecordingRule && ri.Name == n {
						add(reader, ri.Metrics, seen)
					}
				}
				continue
			}
			if !slices.Contains(out[n], reader) {
				out[n] = append(out[n], reader)
			}
		}
	}
	for _, a := range alerts {
		ri, ok := s.Rules.Rule(a)
		if !ok || ri.Kind != signals.AlertingRule {
			return nil, fmt.Errorf("no alerting rule named %q: check the alert: names in the rule files", a)
		}
		add(a, ri.Metrics, map[string]bool{})
	}
	for _, e := range exprs {
		pe, err := s.Engine.Parser().ParseExpr(e)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w (fix the PromQL)", e, err)
		}
		add(fmt.Sprintf("%q", e), signals.ReferencedMetrics(pe), map[string]bool{})
	}
	return out, nil
}

// Traffic holds while the client fleet's pushes reach the server: a paused or idle fleet
// exposes every series and stays up, and only this shows that a no-fault window saw no load.
const Traffic = "sum(increase(pocketbrain_sync_push_mutations_total[10s])) > 0"

// AlertNames are the names of every alerting rule, in rule-file order.
func (s *Stack) AlertNames() []string {
	var out []string
	if s.Rules == nil {
		return nil
	}
	for _, ri := range s.Rules.Rules() {
		if ri.Kind == signals.AlertingRule {
			out = append(out, ri.Name)
		}
	}
	return out
}
