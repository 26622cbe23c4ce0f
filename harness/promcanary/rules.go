package promcanary

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pocketbrain/chaos/harness/signals"
)

// SetupError means the canary cannot judge: the options are wrong, the server does not
// answer before the watch, or it does not evaluate the program's rules. No verdict
// (`pbchaos canary` exits 2).
type SetupError struct {
	// Server is the server's URL without credentials ("" before one is known).
	Server string
	// Problems are one line each, naming what is wrong and the fix.
	Problems []string
}

func (e *SetupError) Error() string {
	prefix := ""
	if e.Server != "" {
		prefix = "prometheus " + e.Server + ": "
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = prefix + p
	}
	return strings.Join(lines, "\n")
}

func setupErr(server, format string, a ...any) *SetupError {
	return &SetupError{Server: server, Problems: []string{fmt.Sprintf(format, a...)}}
}

// CheckForScale accepts a factor in (0, 1]: 1 is production timing; below 1, the scaled
// copy of the rules a fast-profile server loads.
func CheckForScale(f float64) error {
	if !(f > 0 && f <= 1) {
		return fmt.Errorf("for-scale %v: want a factor in (0, 1]: 1 (production timing, the default) or the factor the server's scaled copy of the rules was written with (e.g. 1/30)", f)
	}
	return nil
}

// ParseForScale reads a for-scale as a number ("0.5") or a fraction ("1/30", exact: 5m
// × 1/30 is 10s, where 0.0333 would give 9.99s and not match the server's rule).
func ParseForScale(s string) (float64, error) {
	var f float64
	if num, den, ok := strings.Cut(s, "/"); ok {
		n, err1 := strconv.ParseFloat(strings.TrimSpace(num), 64)
		d, err2 := strconv.ParseFloat(strings.TrimSpace(den), 64)
		if err1 != nil || err2 != nil || d == 0 {
			return 0, fmt.Errorf("for-scale %q: want a number or a fraction such as 1/30", s)
		}
		f = n / d
	} else {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("for-scale %q: want a number or a fraction such as 1/30", s)
		}
		f = v
	}
	return f, CheckForScale(f)
}

// LoadRules loads rule files with the harness's loader, scaled as a server holding them
// at forScale evaluates them: every `for:` and every range window (1: as written).
func LoadRules(paths []string, forScale float64) ([]signals.RuleInfo, error) {
	if err := CheckForScale(forScale); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no rule file given: the canary needs the program's alerting rules (program/rules/alerts.yml)")
	}
	r, err := signals.LoadRuleFiles(paths, signals.WithForScale(forScale), signals.WithWindowScale(forScale))
	if err != nil {
		return nil, err
	}
	infos := r.Rules()
	if len(alertsOf(infos)) == 0 {
		return nil, fmt.Errorf("%s: no alerting rule: the canary watches the rollback triggers; give program/rules/alerts.yml", strings.Join(paths, ", "))
	}
	return infos, nil
}

func alertsOf(rules []signals.RuleInfo) []signals.RuleInfo {
	var out []signals.RuleInfo
	for _, r := range rules {
		if r.Kind == signals.AlertingRule {
			out = append(out, r)
		}
	}
	return out
}

// serverRule is one rule the server holds.
type serverRule struct {
	group    string
	interval time.Duration
	expr     string
	dur      time.Duration // for:, alerting rules only
	alerting *v1.AlertingRule
}

// ruleIndex is the server's rules by kind and name (a name may be loaded more than once).
type ruleIndex struct {
	alerts, records map[string][]serverRule
}

func indexRules(res v1.RulesResult) ruleIndex {
	idx := ruleIndex{alerts: map[string][]serverRule{}, records: map[string][]serverRule{}}
	for _, g := range res.Groups {
		iv := seconds(g.Interval)
		for _, r := range g.Rules {
			switch r := r.(type) {
			case v1.AlertingRule:
				idx.alerts[r.Name] = append(idx.alerts[r.Name], serverRule{group: g.Name, interval: iv, expr: r.Query, dur: seconds(r.Duration), alerting: &r})
			case v1.RecordingRule:
				idx.records[r.Name] = append(idx.records[r.Name], serverRule{group: g.Name, interval: iv, expr: r.Query})
			}
		}
	}
	return idx
}

func (idx ruleIndex) lookup(ri signals.RuleInfo) []serverRule {
	if ri.Kind == signals.AlertingRule {
		return idx.alerts[ri.Name]
	}
	return idx.records[ri.Name]
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// CheckRules reads the server's rules and compares every rule of want with them. The
// error, a *SetupError, names every difference (the caller sets its Server).
func CheckRules(ctx context.Context, api v1.API, want []signals.RuleInfo) error {
	res, err := api.Rules(ctx, nil)
	if err != nil {
		return setupErr("", "cannot read the server's rules (GET /api/v1/rules): %v; give the URL of the Prometheus server itself (e.g. http://prometheus:9090) and check it is up", err)
	}
	if probs := compareRules(indexRules(res), want); len(probs) > 0 {
		return &SetupError{Problems: probs}
	}
	return nil
}

// compareRules lists, in want's order, every rule the server lacks or holds otherwise.
func compareRules(idx ruleIndex, want []signals.RuleInfo) []string {
	var probs []string
	for _, ri := range want {
		cands := idx.lookup(ri)
		if len(cands) == 0 {
			probs = append(probs, fmt.Sprintf("%s: not loaded; %s", ruleLabel(ri), fix(ri)))
			continue
		}
		// A name loaded twice is fine when one copy is the program's: the other copy can
		// only make the canary stricter.
		var first []string
		for i, c := range cands {
			d := ruleDiffs(ri, c)
			if len(d) == 0 {
				first = nil
				break
			}
			if i == 0 {
				first = d
			}
		}
		for _, d := range first {
			probs = append(probs, fmt.Sprintf("%s: %s; %s", ruleLabel(ri), d, fix(ri)))
		}
	}
	return probs
}

// ruleDiffs compares one server rule with the program's.
func ruleDiffs(ri signals.RuleInfo, c serverRule) []string {
	var d []string
	if got, want := Normalize(c.expr), Normalize(WantExpr(ri)); got != want {
		d = append(d, fmt.Sprintf("expr differs: server %q, program %q", got, want))
	}
	if ri.Kind == signals.AlertingRule {
		// The API gives for: in float seconds; Prometheus keeps milliseconds.
		if diff := c.dur - ri.EffectiveFor; diff > time.Millisecond || diff < -time.Millisecond {
			d = append(d, fmt.Sprintf("for differs: server %s, program %s", c.dur, ri.EffectiveFor))
		}
	}
	return d
}

func ruleLabel(ri signals.RuleInfo) string {
	if ri.Kind == signals.AlertingRule {
		return "alert " + ri.Name
	}
	return "recording rule " + ri.Name
}

// fix says how to make the server hold the program's rule.
func fix(ri signals.RuleInfo) string {
	if scaled(ri) {
		return fmt.Sprintf("load the scaled copy of %s (for: and range windows × the --for-scale, as harness/promserver writes it) into this Prometheus (rule_files:) and reload it, or pass the --for-scale that copy was written with", ri.File)
	}
	return fmt.Sprintf("load %s into this Prometheus (rule_files:) and reload it", ri.File)
}

func scaled(ri signals.RuleInfo) bool {
	return ri.EffectiveExpr != "" || ri.EffectiveFor != ri.For
}

// WantExpr is the expression the server must evaluate: the scaled one when a window
// scale applies.
func WantExpr(ri signals.RuleInfo) string {
	if ri.EffectiveExpr != "" {
		return ri.EffectiveExpr
	}
	return ri.Expr
}

// Normalize prints expr as the PromQL parser does, so that whitespace, line breaks,
// quotes and where a by clause stands do not count (parentheses do: the parser keeps
// them); text that does not parse is compared with its whitespace collapsed.
func Normalize(expr string) string {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return strings.Join(strings.Fields(expr), " ")
	}
	return e.String()
}
