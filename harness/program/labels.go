package program

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pocketbrain/chaos/harness/env"
)

// LabelSpec is one label a target's series carry whose values are known (targets.yaml,
// a target's labels:). Exactly one of Values (the whole set) or Pattern (the shape of
// an open set, e.g. every HTTP status) is given.
type LabelSpec struct {
	Name string `yaml:"name"`
	// Series the label is on; empty: every series of the target.
	Series []string `yaml:"series,omitempty"`
	Values []string `yaml:"values,omitempty"`
	// Pattern is an RE2 expression, anchored at both ends, that every value matches.
	Pattern string `yaml:"pattern,omitempty"`
	// Means says in words what a value is (used in messages), e.g. "an HTTP status".
	Means string `yaml:"means,omitempty"`
}

// Labels the collector sets itself (harness/signals): they are derived from the target
// names, never listed in targets.yaml.
var derivedLabels = []string{model.JobLabel, model.InstanceLabel, "probe"}

// probeSeries are the series of a probe target, in the blackbox-exporter convention.
var probeSeries = []string{"probe_success", "probe_http_status_code", "probe_duration_seconds"}

// scrapeSeries are the series the collector adds for every target it scrapes.
var scrapeSeries = []string{"up", "scrape_duration_seconds"}

// checkLabels validates the labels: entries of every target.
func (p *Program) checkLabels() error {
	file := filepath.Join(p.Dir, TargetsFile)
	var errs []error
	for _, t := range p.Targets {
		seen := map[string]bool{}
		for i, l := range t.Labels {
			at := fmt.Sprintf("%s: target %q: labels[%d] (%s)", file, t.Name, i, l.Name)
			switch {
			case !model.LegacyValidation.IsValidLabelName(l.Name) || l.Name == labels.MetricName:
				errs = append(errs, fmt.Errorf("%s: %q is not a Prometheus 2.x label name; use [a-zA-Z_][a-zA-Z0-9_]*", at, l.Name))
				continue
			case slices.Contains(derivedLabels, l.Name):
				errs = append(errs, fmt.Errorf("%s: %s is set by the collector from the target names; remove the entry", at, l.Name))
				continue
			case seen[l.Name]:
				errs = append(errs, fmt.Errorf("%s: label %s is listed twice; keep one entry (with series: for the series it is on)", at, l.Name))
			}
			seen[l.Name] = true
			switch {
			case (len(l.Values) == 0) == (l.Pattern == ""):
				errs = append(errs, fmt.Errorf("%s: give exactly one of values: (every value) or pattern: (the shape of every value)", at))
			case l.Pattern != "":
				if _, err := regexp.Compile("^(?:" + l.Pattern + ")$"); err != nil {
					errs = append(errs, fmt.Errorf("%s: pattern %q: %w; write an RE2 expression (anchored for you)", at, l.Pattern, err))
				}
				if l.Means == "" {
					errs = append(errs, fmt.Errorf("%s: a pattern needs means: (what a value is, in words), for the messages that name it", at))
				}
			}
			for _, s := range l.Series {
				if !slices.Contains(t.Series, s) {
					errs = append(errs, fmt.Errorf("%s: series %q is not in the target's series; list it there or fix the name", at, s))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// valueSet is what the catalogue knows of one label of one series.
type valueSet struct {
	values   []string // sorted, unique
	patterns []*regexp.Regexp
	means    []string
}

func (s *valueSet) add(v ...string) {
	for _, x := range v {
		if !slices.Contains(s.values, x) {
			s.values = append(s.values, x)
		}
	}
	sort.Strings(s.values)
}

func (s *valueSet) addPattern(l LabelSpec) {
	if slices.Contains(s.means, l.Means) {
		return
	}
	s.patterns = append(s.patterns, regexp.MustCompile("^(?:"+l.Pattern+")$"))
	s.means = append(s.means, l.Means)
}

func (s *valueSet) has(v string) bool {
	if slices.Contains(s.values, v) {
		return true
	}
	for _, re := range s.patterns {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

func (s *valueSet) String() string {
	parts := append([]string{}, s.values...)
	parts = append(parts, s.means...)
	return strings.Join(parts, ", ")
}

// suggest is the known value closest to v, or "" when none is close.
func (s *valueSet) suggest(v string) string {
	best, bestD := "", -1
	for _, k := range s.values {
		d := editDistance(strings.ToLower(v), strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD < 0 || bestD > max(2, len(v)/3) {
		return ""
	}
	return best
}

// LabelCheck knows, for each series the catalogue lists, the values of the labels it
// enumerates, and checks the label matchers of an expression against them.
//
// Known: job and instance (every series of a target carries its name in both,
// harness/signals), probe (the probe targets' names, on their probe_* series), the
// labels: a target lists in targets.yaml, and on ALERTS alertname (the alerts of the
// rule files) and alertstate (pending, firing). Everything else is NOT checked: labels
// the catalogue does not enumerate (client ids, revision, …), series written by the
// recording rules, negative matchers (!=, !~, which cannot empty a selector by a typo),
// and a regex that is not a list of literals on a label known only by its pattern.
type LabelCheck struct {
	bySeries map[string]map[string]*valueSet
	// anySeries serves selectors without a literal metric name ({job="server"}).
	anySeries map[string]*valueSet
}

// LabelCheck builds the check for the targets of roles (nil: all) and the alerts of the
// rule files (nil: alertname unchecked).
func (p *Program) LabelCheck(roles []env.Role, alerts map[string]bool) *LabelCheck {
	c := &LabelCheck{bySeries: map[string]map[string]*valueSet{}, anySeries: map[string]*valueSet{}}
	known := func(series, label string) *valueSet {
		m := c.bySeries[series]
		if m == nil {
			m = map[string]*valueSet{}
			c.bySeries[series] = m
		}
		if m[label] == nil {
			m[label] = &valueSet{}
		}
		return m[label]
	}
	listedBy := map[[2]string]int{}
	exposedBy := map[string]int{}
	for _, t := range p.Targets {
		if roles != nil && t.Role != "" && !slices.Contains(roles, t.Role) {
			continue
		}
		page := append([]string{}, t.Series...)
		if t.Kind == "probe" {
			page = append(page, probeSeries...)
		}
		for _, s := range append(slices.Clone(page), scrapeSeries...) {
			known(s, model.JobLabel).add(t.Name)
			known(s, model.InstanceLabel).add(t.Name)
		}
		anyOf := []string{model.JobLabel, model.InstanceLabel}
		if t.Kind == "probe" {
			for _, s := range probeSeries {
				known(s, "probe").add(t.Name)
			}
			anyOf = append(anyOf, "probe")
		}
		for _, l := range anyOf {
			if c.anySeries[l] == nil {
				c.anySeries[l] = &valueSet{}
			}
			c.anySeries[l].add(t.Name)
		}
		for _, s := range t.Series {
			exposedBy[s]++
		}
		for _, l := range t.Labels {
			on := l.Series
			if len(on) == 0 {
				on = t.Series
			}
			for _, s := range on {
				listedBy[[2]string{s, l.Name}]++
				vs := known(s, l.Name)
				vs.add(l.Values...)
				if l.Pattern != "" {
					vs.addPattern(l)
				}
			}
		}
	}
	// A label listed by one target of a series but not by another that also exposes it
	// has values the catalogue does not know: it is left unchecked for that series.
	for k, n := range listedBy {
		if n < exposedBy[k[0]] {
			delete(c.bySeries[k[0]], k[1])
		}
	}
	if alerts != nil {
		var names []string
		for a := range alerts {
			names = append(names, a)
		}
		for _, s := range []string{"ALERTS", "ALERTS_FOR_STATE"} {
			known(s, model.AlertNameLabel).add(names...)
		}
		known("ALERTS", "alertstate").add("pending", "firing")
	}
	return c
}

// Expr checks every label matcher of expr and returns one message per matcher that
// matches no value the catalogue knows for its series, each naming the matcher, the
// series, the known values and the fix. An expression that does not parse yields no
// message (its syntax is reported where it is parsed).
func (c *LabelCheck) Expr(expr string) []string {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				continue
			}
			if msg := c.matcher(name, m); msg != "" {
				out = append(out, msg)
			}
		}
		return nil
	})
	return out
}

func (c *LabelCheck) matcher(series string, m *labels.Matcher) string {
	var set *valueSet
	of := "any series"
	if series == "" {
		set = c.anySeries[m.Name]
	} else {
		set = c.bySeries[series][m.Name]
		of = series
	}
	if set == nil || (len(set.values) == 0 && len(set.patterns) == 0) {
		return "" // a label the catalogue does not enumerate for this series
	}
	known := fmt.Sprintf("the %s values %s carries are %s", m.Name, of, set)
	switch m.Type {
	case labels.MatchEqual:
		if m.Value == "" {
			if series == "" {
				return "" // {probe=""}: every series without the label, a real set
			}
			return fmt.Sprintf("matcher %s matches no series: an empty value selects %s series without %s, and every one has it (%s); fix: name a value or drop the matcher", m, series, m.Name, known)
		}
		if set.has(m.Value) {
			return ""
		}
		return fmt.Sprintf("matcher %s matches no value a target exposes (%s); fix: %s", m, known, c.fixFor(series, m, set, []string{m.Value}))
	case labels.MatchRegexp:
		if lits := m.SetMatches(); len(lits) > 0 {
			var bad []string
			for _, v := range lits {
				if v != "" && !set.has(v) {
					bad = append(bad, v)
				}
			}
			if len(bad) == 0 {
				return ""
			}
			what := "matches no value a target exposes"
			if len(bad) < len(lits) {
				// A typo in one alternative silently narrows the selector.
				what = fmt.Sprintf("has alternatives that match no value a target exposes (%s)", strings.Join(quoteAll(bad), ", "))
			}
			return fmt.Sprintf("matcher %s %s (%s); fix: %s", m, what, known, c.fixFor(series, m, set, bad))
		}
		if len(set.patterns) > 0 || m.Matches("") {
			return "" // not a list of literals: undecidable against a pattern; ".*" matches all
		}
		for _, v := range set.values {
			if m.Matches(v) {
				return ""
			}
		}
		return fmt.Sprintf("matcher %s matches none of the values a target exposes (%s); fix: correct the regex so that it matches one of them", m, known)
	}
	return ""
}

// fixFor names the corrected matcher when every bad value has a close known value,
// else the values to choose from and where the catalogue keeps them.
func (c *LabelCheck) fixFor(series string, m *labels.Matcher, set *valueSet, bad []string) string {
	fixed := m.Value
	for _, b := range bad {
		s := set.suggest(b)
		if s == "" {
			if all := c.anySeries[m.Name]; series != "" && all != nil && all.has(b) {
				return fmt.Sprintf("use %s (%q is a target, but %s does not come from it)", set.choices(), b, series)
			}
			return "use " + set.choices() + whereKept(m.Name, bad)
		}
		if m.Type == labels.MatchEqual {
			fixed = s
		} else {
			fixed = replaceAlternative(fixed, b, s)
		}
	}
	fm, err := labels.NewMatcher(m.Type, m.Name, fixed)
	if err != nil {
		return "use " + set.choices()
	}
	return fmt.Sprintf("did you mean %s?", fm)
}

// choices says what a value may be: "one of a, b", a pattern's meaning, or both.
func (s *valueSet) choices() string {
	var parts []string
	if len(s.values) > 0 {
		parts = append(parts, "one of "+strings.Join(s.values, ", "))
	}
	parts = append(parts, s.means...)
	return strings.Join(parts, ", or ")
}

// whereKept says where the catalogue would learn of a value it does not know.
func whereKept(label string, bad []string) string {
	vals := strings.Join(quoteAll(bad), ", ")
	switch label {
	case model.JobLabel, model.InstanceLabel, "probe":
		return fmt.Sprintf(" (the target names of %s; if %s should be a target, add it there)", TargetsFile, vals)
	case model.AlertNameLabel, "alertstate":
		return ""
	}
	return fmt.Sprintf(", or, if a target really exposes %s, add it to the label's values: or pattern: in %s", vals, TargetsFile)
}

// replaceAlternative replaces the literal alternative old of a regex a|b|c by repl.
func replaceAlternative(re, old, repl string) string {
	alts := strings.Split(re, "|")
	for i, a := range alts {
		if a == old {
			alts[i] = repl
		}
	}
	return strings.Join(alts, "|")
}

func quoteAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// editDistance is the optimal-string-alignment distance: a swap of two neighbours
// ("raedy" for "ready") counts one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
