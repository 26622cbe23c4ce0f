package signals

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

// RuleKind is "recording" or "alerting".
type RuleKind string

const (
	RecordingRule RuleKind = "recording"
	AlertingRule  RuleKind = "alerting"
)

// AlertState is an alert's state, as Prometheus names it.
type AlertState string

const (
	AlertUnknown  AlertState = "unknown" // not evaluated yet
	AlertInactive AlertState = "inactive"
	AlertPending  AlertState = "pending"
	AlertFiring   AlertState = "firing"
)

// Loud reports a trigger that is pending or firing: what "quiet" forbids, wherever the
// harness asks (steady state, a row's quiet triggers, control, canary, gate verify).
func (s AlertState) Loud() bool { return s == AlertPending || s == AlertFiring }

func stateRank(s AlertState) int {
	switch s {
	case AlertInactive:
		return 1
	case AlertPending:
		return 2
	case AlertFiring:
		return 3
	}
	return 0
}

// RuleInfo describes one loaded rule.
type RuleInfo struct {
	Kind  RuleKind `json:"kind"`
	Name  string   `json:"name"` // record: or alert: value
	File  string   `json:"file"`
	Group string   `json:"group"`
	Line  int      `json:"line"` // line of the rule in File
	Expr  string   `json:"expr"`
	// EffectiveExpr is the expression as evaluated when a window scale applies.
	EffectiveExpr string `json:"effective_expr,omitempty"`
	// Metrics are the metric names the expression selects, sorted. Selectors
	// without a literal name (e.g. {__name__=~"x.*"}) cannot be checked and are left out.
	Metrics []string          `json:"metrics"`
	Labels  map[string]string `json:"labels,omitempty"`
	// For is the rule's `for:` as written, EffectiveFor the one evaluated
	// (For × ForScale); likewise for keep_firing_for.
	For                    time.Duration `json:"for,omitempty"`
	EffectiveFor           time.Duration `json:"effective_for,omitempty"`
	KeepFiringFor          time.Duration `json:"keep_firing_for,omitempty"`
	EffectiveKeepFiringFor time.Duration `json:"effective_keep_firing_for,omitempty"`
}

// Location is "file:line".
func (ri RuleInfo) Location() string { return ri.File + ":" + strconv.Itoa(ri.Line) }

// AlertInstance is one label set of an alerting rule that is pending or firing.
type AlertInstance struct {
	Labels      labels.Labels `json:"labels"`
	Annotations labels.Labels `json:"annotations,omitempty"`
	State       AlertState    `json:"state"`
	ActiveAt    time.Time     `json:"active_at"`
	FiredAt     time.Time     `json:"fired_at,omitzero"`
	Value       float64       `json:"value"`
}

// AlertStatus is the state of one alert (all rules with that alert name merged).
type AlertStatus struct {
	Name  string     `json:"name"`
	State AlertState `json:"state"`
	// ActiveSince is when the condition started to hold (the earliest active
	// instance); zero while inactive.
	ActiveSince time.Time `json:"active_since,omitzero"`
	FiredAt     time.Time `json:"fired_at,omitzero"`
	// LastValue is the expression's value at the last evaluation (the largest
	// over active instances); HasValue is false when the expression was empty.
	LastValue float64         `json:"last_value"`
	HasValue  bool            `json:"has_value"`
	Instances []AlertInstance `json:"instances,omitempty"`
	Rules     []RuleInfo      `json:"rules"`
	LastEval  time.Time       `json:"last_eval,omitzero"`
	LastError string          `json:"last_error,omitempty"`
}

// AlertTransition is a change of an alert's merged state at an evaluation.
type AlertTransition struct {
	Alert string     `json:"alert"`
	T     time.Time  `json:"t"`
	From  AlertState `json:"from"`
	To    AlertState `json:"to"`
	Value float64    `json:"value"`
}

type ruleConfig struct {
	forScale    float64
	windowScale float64
}

// RuleOption configures rule loading.
type RuleOption func(*ruleConfig)

// WithForScale multiplies every `for:` and `keep_firing_for:` by f (e.g. 1.0/60
// turns a 5m hold into 5s for a fast profile). Range windows such as [15m] are
// not scaled: a run shorter than the window is covered whole.
func WithForScale(f float64) RuleOption {
	return func(c *ruleConfig) { c.forScale = f }
}

// WithWindowScale multiplies every range window ([15m]) and subquery range of the
// rule expressions by f, so that a fast profile's triggers also resolve within its
// span (a [15m] window would keep "sustained increase" true for 15 minutes after the
// fault healed). RuleInfo.EffectiveExpr shows the expression as evaluated. Windows
// never shrink below minWindow, so rate() and increase() keep two samples.
func WithWindowScale(f float64) RuleOption {
	return func(c *ruleConfig) { c.windowScale = f }
}

// minWindow is the smallest scaled window: three 1 s scrapes.
const minWindow = 3 * time.Second

// RuleFile is a rule file's name (used in messages) and content.
type RuleFile struct {
	Name    string
	Content []byte
}

type loadedRule struct {
	info  RuleInfo
	rule  rules.Rule
	limit int
	// prev holds the series the last evaluation wrote, so the ones that
	// disappear get a staleness marker, as a Prometheus rule group does.
	prev      map[uint64]labels.Labels
	lastEval  time.Time
	lastError error
}

// Rules holds loaded recording and alerting rules and their alert state.
// Evaluate them with Eval; the accessors are safe to call concurrently.
type Rules struct {
	forScale    float64
	windowScale float64
	recording   []*loadedRule
	alerting    []*loadedRule

	evalMu sync.Mutex // one evaluation at a time: rule state is sequential

	mu          sync.Mutex
	lastStates  map[string]AlertState
	transitions []AlertTransition
}

// LoadRuleFiles reads and parses Prometheus rule files. Every problem in every
// file is reported, each naming the file and line and how to fix it.
func LoadRuleFiles(paths []string, opts ...RuleOption) (*Rules, error) {
	files := make([]RuleFile, 0, len(paths))
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read rule file: %w (check the path; it is resolved from the working directory)", err))
			continue
		}
		files = append(files, RuleFile{Name: p, Content: b})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ParseRuleFiles(files, opts...)
}

// ParseRuleFiles parses rule files held in memory; see LoadRuleFiles.
func ParseRuleFiles(files []RuleFile, opts ...RuleOption) (*Rules, error) {
	cfg := ruleConfig{forScale: 1, windowScale: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if !(cfg.forScale > 0) || math.IsInf(cfg.forScale, 0) {
		return nil, fmt.Errorf("for-scale %v must be a positive finite factor, e.g. 1.0/60 for a fast profile or 1 for production timing", cfg.forScale)
	}
	if !(cfg.windowScale > 0) || math.IsInf(cfg.windowScale, 0) {
		return nil, fmt.Errorf("window-scale %v must be a positive finite factor, e.g. 1.0/30 for a fast profile or 1 for production windows", cfg.windowScale)
	}
	r := &Rules{forScale: cfg.forScale, windowScale: cfg.windowScale, lastStates: map[string]AlertState{}}
	p := parser.NewParser(parser.Options{})
	logger := promslog.NewNopLogger()
	var errs []error
	for _, f := range files {
		lines := ruleLines(f.Content)
		// Legacy names: the files must load in the Prometheus 2.x operators run.
		groups, perrs := rulefmt.Parse(f.Content, false, model.LegacyValidation, p, logger)
		seen := map[string]bool{}
		for _, e := range perrs {
			// rulefmt decodes the YAML twice and may report a syntax error twice.
			if fe := ruleFileError(f.Name, lines, e); !seen[fe.Error()] {
				seen[fe.Error()] = true
				errs = append(errs, fe)
			}
		}
		if len(perrs) > 0 {
			continue
		}
		for gi, g := range groups.Groups {
			for ri, rl := range g.Rules {
				lr, err := r.build(f.Name, lines.rules[[2]int{gi, ri}], g, rl, p)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if lr.info.Kind == RecordingRule {
					r.recording = append(r.recording, lr)
				} else {
					r.alerting = append(r.alerting, lr)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func (r *Rules) build(file string, line int, g rulefmt.RuleGroup, rl rulefmt.Rule, p parser.Parser) (*loadedRule, error) {
	expr, err := p.ParseExpr(rl.Expr)
	if err != nil { // rulefmt has parsed it already; kept for safety
		return nil, fmt.Errorf("%s:%d: %w (fix the PromQL in expr)", file, line, err)
	}
	lbls := map[string]string{}
	for k, v := range g.Labels {
		lbls[k] = v
	}
	for k, v := range rl.Labels {
		lbls[k] = v
	}
	info := RuleInfo{File: file, Group: g.Name, Line: line, Expr: rl.Expr, Metrics: ReferencedMetrics(expr)}
	if r.windowScale != 1 {
		scaleWindows(expr, r.windowScale)
		info.EffectiveExpr = expr.String()
	}
	if len(lbls) > 0 {
		info.Labels = lbls
	}
	lr := &loadedRule{limit: g.Limit}
	if rl.Record != "" {
		info.Kind, info.Name = RecordingRule, rl.Record
		lr.rule = rules.NewRecordingRule(rl.Record, expr, labels.FromMap(lbls))
	} else {
		info.Kind, info.Name = AlertingRule, rl.Alert
		info.For, info.KeepFiringFor = time.Duration(rl.For), time.Duration(rl.KeepFiringFor)
		info.EffectiveFor, info.EffectiveKeepFiringFor = r.scale(info.For), r.scale(info.KeepFiringFor)
		// restored=true: there is no earlier state to restore, and only restored
		// rules emit ALERTS samples.
		lr.rule = rules.NewAlertingRule(rl.Alert, expr, info.EffectiveFor, info.EffectiveKeepFiringFor,
			labels.FromMap(lbls), labels.FromMap(rl.Annotations), labels.EmptyLabels(), "", true, promslog.NewNopLogger())
	}
	lr.info = info
	return lr, nil
}

// scaleWindows rewrites every range window of expr in place; false when it has none.
func scaleWindows(expr parser.Expr, f float64) (found bool) {
	scale := func(d time.Duration) time.Duration {
		out := time.Duration(math.Round(float64(d)*f/float64(time.Second))) * time.Second
		return max(out, minWindow)
	}
	eachRange(expr, func(r *time.Duration) { *r, found = scale(*r), true })
	return found
}

// eachRange calls f with every range window and subquery range of expr, in place.
func eachRange(expr parser.Expr, f func(*time.Duration)) {
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch x := n.(type) {
		case *parser.MatrixSelector:
			f(&x.Range)
		case *parser.SubqueryExpr:
			f(&x.Range)
		}
		return nil
	})
}

// ScaleExpr is expr with every range window and subquery range multiplied by f, as
// WithWindowScale scales a rule's: for the expressions of the matrix, which name the
// same production windows as the rule files. f == 1 returns expr as written.
func ScaleExpr(expr string, f float64) (string, error) {
	if f == 1 {
		return expr, nil
	}
	if !(f > 0) || math.IsInf(f, 0) {
		return "", fmt.Errorf("window-scale %v must be a positive finite factor, e.g. 1.0/30 for a fast profile or 1 for production windows", f)
	}
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return "", err
	}
	if !scaleWindows(e, f) {
		return expr, nil // no window: the text as written
	}
	return e.String(), nil
}

// LongestRange is the longest range window or subquery range in exprs (0 when none has
// one): how long an event stays in what they read.
func LongestRange(exprs ...string) (time.Duration, error) {
	var longest time.Duration
	for _, expr := range exprs {
		e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
		if err != nil {
			return 0, fmt.Errorf("expression %q: %w", expr, err)
		}
		eachRange(e, func(r *time.Duration) { longest = max(longest, *r) })
	}
	return longest, nil
}

// LongestWindow is the longest range window any rule evaluates (scaled, as evaluated):
// an event stays in some trigger's input for that long, so a disturbance's residue has
// cleared from every trigger only once it has passed.
func (r *Rules) LongestWindow() time.Duration {
	var exprs []string
	for _, ri := range r.Rules() {
		if ri.EffectiveExpr != "" {
			exprs = append(exprs, ri.EffectiveExpr)
		} else {
			exprs = append(exprs, ri.Expr)
		}
	}
	d, _ := LongestRange(exprs...) // every rule parsed when it was loaded
	return d
}

// WindowScale is the factor applied to range windows (1 = as written).
func (r *Rules) WindowScale() float64 { return r.windowScale }

func (r *Rules) scale(d time.Duration) time.Duration {
	return time.Duration(math.Round(float64(d) * r.forScale))
}

// ForScale is the factor applied to every for: (1 unless WithForScale).
func (r *Rules) ForScale() float64 { return r.forScale }

// Rules returns every rule, recording rules first, each in file order.
func (r *Rules) Rules() []RuleInfo {
	out := make([]RuleInfo, 0, len(r.recording)+len(r.alerting))
	for _, lr := range r.recording {
		out = append(out, lr.info)
	}
	for _, lr := range r.alerting {
		out = append(out, lr.info)
	}
	return out
}

// Rule returns the rule (recording or alerting) with this name.
func (r *Rules) Rule(name string) (RuleInfo, bool) {
	for _, ri := range r.Rules() {
		if ri.Name == name {
			return ri, true
		}
	}
	return RuleInfo{}, false
}

// ReferencedMetrics returns the metric names expr selects, sorted.
func ReferencedMetrics(expr parser.Expr) []string {
	set := map[string]struct{}{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		// A MatrixSelector's VectorSelector is its child, so this covers both.
		if vs, ok := node.(*parser.VectorSelector); ok {
			if vs.Name != "" {
				set[vs.Name] = struct{}{}
				return nil
			}
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					set[m.Value] = struct{}{}
				}
			}
		}
		return nil
	})
	return sortedKeys(set)
}

// RecordedNames are the metric names the recording rules write.
func (r *Rules) RecordedNames() map[string]struct{} {
	out := map[string]struct{}{}
	for _, lr := range r.recording {
		out[lr.info.Name] = struct{}{}
	}
	return out
}

// ValidateAgainst refuses rules that select a series no target exposes: such
// a trigger could never fire (`A and B` needs both sides). names is the set of
// exposed metric names (Store.MetricNames after a scrape); recording-rule
// outputs and ALERTS count as exposed. The error lists every missing series
// with the rule and file:line naming it.
func (r *Rules) ValidateAgainst(names map[string]struct{}) error {
	exposed := r.RecordedNames()
	for n := range names {
		exposed[n] = struct{}{}
	}
	if len(r.alerting) > 0 {
		exposed["ALERTS"], exposed["ALERTS_FOR_STATE"] = struct{}{}, struct{}{}
	}
	var missing []string
	for _, ri := range r.Rules() {
		for _, m := range ri.Metrics {
			if _, ok := exposed[m]; !ok {
				missing = append(missing, fmt.Sprintf("  %s: %s rule %q (group %q) selects %s, which no target exposes", ri.Location(), ri.Kind, ri.Name, ri.Group, m))
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%d series named by rules are not exposed by any scrape target:\n%s\nfix: correct the metric name in the rule file, or make the target export the series (at 0 from start) and add it to the collector",
		len(missing), strings.Join(missing, "\n"))
}

// ValidateMatchers refuses rules whose label matchers can match no value the targets
// expose (probe="server_raedy"): such a selector is empty, so the rule never fires and
// its trigger reads quiet by absence. check returns one message per bad matcher of an
// expression, each naming the matcher, the known values and the fix (the target
// catalogue's program.LabelCheck.Expr); expressions are checked as written, before any
// window scaling. The error lists every message with the rule and its file:line.
func (r *Rules) ValidateMatchers(check func(expr string) []string) error {
	var bad []string
	for _, ri := range r.Rules() {
		for _, msg := range check(ri.Expr) {
			bad = append(bad, fmt.Sprintf("  %s: %s rule %q (group %q): %s", ri.Location(), ri.Kind, ri.Name, ri.Group, msg))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	what := fmt.Sprintf("%d label matchers in rules match", len(bad))
	if len(bad) == 1 {
		what = "1 label matcher in rules matches"
	}
	return fmt.Errorf("%s no value any scrape target exposes:\n%s\nfix: correct the label value in the rule file as each line says, or, if a target really exposes the value, list it in the target catalogue",
		what, strings.Join(bad, "\n"))
}

// Eval evaluates every rule at ts: recording rules first, their results
// appended to the store so alerting rules can use them, then alerting rules,
// whose ALERTS{alertname,alertstate} series are appended too. A failing rule
// does not stop the others; the error names each failure.
func (r *Rules) Eval(ctx context.Context, e *Engine, ts time.Time) error {
	r.evalMu.Lock()
	defer r.evalMu.Unlock()
	q := e.QueryFunc()
	var errs []error
	for _, set := range [][]*loadedRule{r.recording, r.alerting} {
		for _, lr := range set {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("rule evaluation at %s interrupted: %w", ts.UTC().Format(time.RFC3339), err)
			}
			if err := r.evalOne(ctx, e, q, lr, ts); err != nil {
				errs = append(errs, err)
			}
		}
	}
	r.recordTransitions(ts)
	return errors.Join(errs...)
}

func (r *Rules) evalOne(ctx context.Context, e *Engine, q rules.QueryFunc, lr *loadedRule, ts time.Time) error {
	start := time.Now()
	vec, err := lr.rule.Eval(ctx, 0, ts, q, nil, lr.limit)
	lr.rule.SetEvaluationTimestamp(ts)
	lr.rule.SetEvaluationDuration(time.Since(start))
	lr.rule.SetLastError(err)
	r.mu.Lock()
	lr.lastEval, lr.lastError = ts, err
	r.mu.Unlock()
	if err != nil {
		lr.rule.SetHealth(rules.HealthBad)
		// Like Prometheus, keep the previous output as it is (no staleness) on error.
		return fmt.Errorf("%s: %s rule %q: %w", lr.info.Location(), lr.info.Kind, lr.info.Name, err)
	}
	lr.rule.SetHealth(rules.HealthGood)
	fresh := make(map[uint64]labels.Labels, len(vec))
	for _, s := range vec {
		// ALERTS_FOR_STATE only serves restoring state across restarts, which a run never does.
		if s.Metric.Get(labels.MetricName) == "ALERTS_FOR_STATE" {
			continue
		}
		if err := e.store.Append(s.Metric, ts, s.F); err != nil {
			return fmt.Errorf("%s: %s rule %q: %w", lr.info.Location(), lr.info.Kind, lr.info.Name, err)
		}
		fresh[s.Metric.Hash()] = s.Metric
	}
	for h, l := range lr.prev {
		if _, ok := fresh[h]; !ok {
			_ = e.store.Append(l, ts, staleNaN)
		}
	}
	lr.prev = fresh
	return nil
}

func (r *Rules) recordTransitions(ts time.Time) {
	for _, name := range r.alertNames() {
		st, _ := r.Alert(name)
		r.mu.Lock()
		prev, ok := r.lastStates[name]
		if !ok {
			prev = AlertUnknown
		}
		if prev != st.State {
			r.transitions = append(r.transitions, AlertTransition{Alert: name, T: ts, From: prev, To: st.State, Value: st.LastValue})
			r.lastStates[name] = st.State
		}
		r.mu.Unlock()
	}
}

func (r *Rules) alertNames() []string {
	var out []string
	for _, lr := range r.alerting {
		if !slices.Contains(out, lr.info.Name) {
			out = append(out, lr.info.Name)
		}
	}
	return out
}

// Transitions returns every alert state change so far, in time order.
func (r *Rules) Transitions() []AlertTransition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.transitions)
}

// Alert returns the state of the named alert; false if no rule has that name.
func (r *Rules) Alert(name string) (AlertStatus, bool) {
	st := AlertStatus{Name: name, State: AlertUnknown}
	found := false
	for _, lr := range r.alerting {
		if lr.info.Name != name {
			continue
		}
		found = true
		ar := lr.rule.(*rules.AlertingRule)
		st.Rules = append(st.Rules, lr.info)
		s := AlertState(ar.State().String())
		if stateRank(s) > stateRank(st.State) {
			st.State = s
		}
		r.mu.Lock()
		if lr.lastEval.After(st.LastEval) {
			st.LastEval = lr.lastEval
		}
		if lr.lastError != nil {
			st.LastError = lr.lastError.Error()
		}
		r.mu.Unlock()
		for _, a := range ar.ActiveAlerts() {
			if a.State != rules.StatePending && a.State != rules.StateFiring {
				continue
			}
			in := AlertInstance{Labels: a.Labels, Annotations: a.Annotations, State: AlertState(a.State.String()), ActiveAt: a.ActiveAt, FiredAt: a.FiredAt, Value: a.Value}
			st.Instances = append(st.Instances, in)
			if st.ActiveSince.IsZero() || in.ActiveAt.Before(st.ActiveSince) {
				st.ActiveSince = in.ActiveAt
			}
			if !in.FiredAt.IsZero() && (st.FiredAt.IsZero() || in.FiredAt.Before(st.FiredAt)) {
				st.FiredAt = in.FiredAt
			}
			if !st.HasValue || in.Value > st.LastValue {
				st.LastValue, st.HasValue = in.Value, true
			}
		}
	}
	slices.SortFunc(st.Instances, func(a, b AlertInstance) int { return labels.Compare(a.Labels, b.Labels) })
	return st, found
}

// Alerts returns the state of every alert, in file order.
func (r *Rules) Alerts() []AlertStatus {
	names := r.alertNames()
	out := make([]AlertStatus, 0, len(names))
	for _, n := range names {
		st, _ := r.Alert(n)
		out = append(out, st)
	}
	return out
}

// State returns the named alert's state (AlertUnknown if there is no such alert).
func (r *Rules) State(name string) AlertState {
	st, _ := r.Alert(name)
	return st.State
}

// Firing reports whether any instance of the named alert is firing.
func (r *Rules) Firing(name string) bool { return r.State(name) == AlertFiring }

var yamlLineRe = regexp.MustCompile(`line (\d+)`)
var posRe = regexp.MustCompile(`^(\d+):(\d+): `)

// ruleFileError makes a rulefmt error name the file and line, and say how to fix it.
func ruleFileError(file string, lines fileLines, err error) error {
	msg := err.Error()
	var where string
	var rfe *rulefmt.Error
	switch {
	case posRe.MatchString(msg):
		where = file + ":" // rulefmt put line:col first
	case errors.As(err, &rfe):
		where = fmt.Sprintf("%s:%d: ", file, lineOfRule(lines, rfe))
	default:
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			where = file + ":" + m[1] + ": "
		} else {
			where = file + ": "
		}
	}
	return fmt.Errorf("%s%w (fix: %s)", where, err, ruleFix(msg))
}

func lineOfRule(fl fileLines, e *rulefmt.Error) int {
	gi := slices.Index(fl.groups, e.Group)
	return fl.rules[[2]int{gi, e.Rule - 1}]
}

func ruleFix(msg string) string {
	switch {
	case strings.Contains(msg, "could not parse expression"):
		return "correct the PromQL in expr; `promtool check rules FILE` reports the same"
	case strings.Contains(msg, "not found in type"):
		return "remove or correct the misspelt field; rules take record|alert, expr, for, keep_firing_for, labels, annotations"
	case strings.Contains(msg, "yaml:"):
		return "correct the YAML at that line: indentation, a missing ':' or '-', or quote the expression"
	case strings.Contains(msg, "invalid recording rule name"), strings.Contains(msg, "invalid label name"):
		return "use a Prometheus 2.x name matching [a-zA-Z_:][a-zA-Z0-9_:]*"
	case strings.Contains(msg, "must be set"):
		return "give each rule exactly one of record: or alert:, and an expr:"
	case strings.Contains(msg, "is repeated"):
		return "give every group in a file its own name"
	}
	return "correct the rule as the message says; `promtool check rules FILE` gives the same verdict"
}

// fileLines locates groups and rules in a rule file's YAML.
type fileLines struct {
	groups []string       // group names by index
	rules  map[[2]int]int // {group index, rule index} → line
}

func ruleLines(content []byte) fileLines {
	out := fileLines{rules: map[[2]int]int{}}
	var doc yaml.Node
	if yaml.Unmarshal(content, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	groups := mapValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return out
	}
	for gi, g := range groups.Content {
		name := ""
		if n := mapValue(g, "name"); n != nil {
			name = n.Value
		}
		out.groups = append(out.groups, name)
		rs := mapValue(g, "rules")
		if rs == nil || rs.Kind != yaml.SequenceNode {
			continue
		}
		for ri, rn := range rs.Content {
			out.rules[[2]int{gi, ri}] = rn.Line
		}
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
