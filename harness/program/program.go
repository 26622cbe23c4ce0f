// Package program loads the reliability program as data: the failure-mode matrix, the
// catalogue of scrape targets and the Prometheus rule files, and validates them against
// each other before any container starts.
package program

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
)

// Files names the program's files relative to its directory.
const (
	MatrixFile    = "matrix.yaml"
	TargetsFile   = "targets.yaml"
	RecordingFile = "rules/recording.yml"
	AlertsFile    = "rules/alerts.yml"
)

// Matrix is program/matrix.yaml.
type Matrix struct {
	Version  int `yaml:"version"`
	Defaults struct {
		Recover []string `yaml:"recover"`
	} `yaml:"defaults"`
	Rows []Row `yaml:"rows"`
}

// Row is one failure-mode spec.
type Row struct {
	ID         string        `yaml:"id" json:"id"`
	Mode       string        `yaml:"mode" json:"mode"` // the document's failure mode (or release-gate item)
	Name       string        `yaml:"name" json:"name"`
	Runbook    string        `yaml:"runbook" json:"runbook"`
	Faults     []faults.Spec `yaml:"faults" json:"faults"`
	Detect     []string      `yaml:"detect" json:"detect"`
	Surface    []string      `yaml:"surface,omitempty" json:"surface,omitempty"`
	Triggers   []string      `yaml:"triggers,omitempty" json:"triggers,omitempty"`
	Mitigation Mitigation    `yaml:"mitigation" json:"mitigation"`
	Recover    []string      `yaml:"recover,omitempty" json:"recover,omitempty"`
	// Hold keeps the fault in place at least this long after detection (e.g. until enough
	// clients hit their cap), as a Go duration; empty means no extra hold.
	Hold string `yaml:"hold,omitempty" json:"hold,omitempty"`
	// Quiet are rollback triggers that must stay quiet (neither pending nor firing) from
	// injection until the mitigation: the row proves the fault is absorbed, not that it
	// pages (e.g. a primary store failure that the fallback op-log covers).
	Quiet []string `yaml:"quiet,omitempty" json:"quiet,omitempty"`
	// Labels are extra Ginkgo labels; row id, edges and fault kinds are added.
	Labels []string `yaml:"labels,omitempty" json:"labels,omitempty"`
	line   int
}

// Mitigation is the first mitigation of the document, as the harness applies it.
type Mitigation struct {
	// Action: "heal" undoes the faults; "apply" applies Faults alone (restore a config
	// overlap, roll back to another image) with the injected faults left in place, so
	// that only the mitigation can bring the row back.
	Action string        `yaml:"action" json:"action"`
	Faults []faults.Spec `yaml:"faults,omitempty" json:"faults,omitempty"`
	Note   string        `yaml:"note" json:"note"`
}

// Target is one entry of program/targets.yaml.
type Target struct {
	Name   string   `yaml:"name"`
	Role   env.Role `yaml:"role"`
	Kind   string   `yaml:"kind"` // prometheus, json, probe, static
	Path   string   `yaml:"path"`
	Prefix string   `yaml:"prefix"`
	Lazy   bool     `yaml:"lazy"`
	Series []string `yaml:"series"`
	// Labels are the labels of the target's series whose values are known, so that a
	// matcher on them that can match nothing is refused at load (see LabelCheck).
	Labels []LabelSpec `yaml:"labels,omitempty"`
}

// Program is everything loaded from the program directory.
type Program struct {
	Dir     string
	Matrix  Matrix
	Targets []Target
	// Hashes of every file, for provenance (path relative to Dir → sha256).
	Hashes map[string]string
}

// RulePaths are the rule files, recording first.
func (p *Program) RulePaths() []string {
	return []string{filepath.Join(p.Dir, RecordingFile), filepath.Join(p.Dir, AlertsFile)}
}

// Load reads and structurally validates the program in dir. Cross-checks that need the
// rule files (trigger names, series) are in Validate.
func Load(dir string) (*Program, error) {
	p := &Program{Dir: dir, Hashes: map[string]string{}}
	for _, f := range []string{MatrixFile, TargetsFile, RecordingFile, AlertsFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("read program file: %w; the program directory must hold %s, %s, %s and %s", err, MatrixFile, TargetsFile, RecordingFile, AlertsFile)
		}
		sum := sha256.Sum256(b)
		p.Hashes[f] = hex.EncodeToString(sum[:])
	}
	if err := decodeStrict(filepath.Join(dir, MatrixFile), &p.Matrix); err != nil {
		return nil, err
	}
	var t struct {
		Targets []Target `yaml:"targets"`
	}
	if err := decodeStrict(filepath.Join(dir, TargetsFile), &t); err != nil {
		return nil, err
	}
	p.Targets = t.Targets
	if err := errors.Join(p.checkTargets(), p.checkLabels(), p.checkMatrix()); err != nil {
		return nil, err
	}
	return p, nil
}

// checkTargets validates the catalogue alone. A path is appended to the role's base URL
// (http://host:port + path), so it must begin with "/": "metrics" would scrape
// http://host:portmetrics and fail only once the stack is up.
func (p *Program) checkTargets() error {
	file := filepath.Join(p.Dir, TargetsFile)
	var errs []error
	for i, t := range p.Targets {
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		switch {
		case t.Path == "" && t.Kind != "static":
			errs = append(errs, fmt.Errorf("%s: target %q has no path; give the URL path it is scraped at, beginning with \"/\" (e.g. path: /metrics)", file, name))
		case t.Path != "" && !strings.HasPrefix(t.Path, "/"):
			errs = append(errs, fmt.Errorf("%s: target %q: path %q must begin with \"/\" (it is appended to the service's base URL); write path: /%s", file, name, t.Path, t.Path))
		}
	}
	return errors.Join(errs...)
}

// DecodeStrict decodes one YAML document of the program into v, refusing fields v does
// not have: a typo in a program file fails at load, not as a silently ignored setting.
// Every program file goes through it (matrix, targets, baseline, release gate).
func DecodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func decodeStrict(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := DecodeStrict(b, v); err != nil {
		return fmt.Errorf("%s: %w; fix the YAML (unknown fields are refused, see the comments at the top of the file)", path, err)
	}
	// Remember each row's line for later messages.
	if m, ok := v.(*Matrix); ok {
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) == nil && len(doc.Content) > 0 {
			for i, n := range doc.Content[0].Content {
				if n.Value == "rows" && i+1 < len(doc.Content[0].Content) {
					for j, rn := range doc.Content[0].Content[i+1].Content {
						if j < len(m.Rows) {
							m.Rows[j].line = rn.Line
						}
					}
				}
			}
		}
	}
	return nil
}

func (p *Program) where(r Row) string {
	return fmt.Sprintf("%s:%d (row %s)", filepath.Join(p.Dir, MatrixFile), r.line, r.ID)
}

// checkMatrix validates what the matrix alone can tell: ids, fault specs, PromQL syntax.
func (p *Program) checkMatrix() error {
	var errs []error
	if p.Matrix.Version != 1 {
		errs = append(errs, fmt.Errorf("%s: version %d; this harness reads version 1", filepath.Join(p.Dir, MatrixFile), p.Matrix.Version))
	}
	if len(p.Matrix.Rows) == 0 {
		errs = append(errs, fmt.Errorf("%s: no rows", filepath.Join(p.Dir, MatrixFile)))
	}
	seen := map[string]bool{}
	for _, r := range p.Matrix.Rows {
		at := p.where(r)
		if r.ID == "" || strings.ContainsAny(r.ID, " &|!,()/:") {
			errs = append(errs, fmt.Errorf("%s: id %q must be non-empty, without spaces or any of &|!,()/: (it becomes a Ginkgo label)", at, r.ID))
		}
		if seen[r.ID] {
			errs = append(errs, fmt.Errorf("%s: duplicate id %q", at, r.ID))
		}
		seen[r.ID] = true
		if len(r.Faults) == 0 {
			errs = append(errs, fmt.Errorf("%s: no faults; a row needs at least one", at))
		}
		for _, s := range append(append([]faults.Spec{}, r.Faults...), r.Mitigation.Faults...) {
			if _, err := faults.New(s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
			}
		}
		if len(r.Detect) == 0 {
			errs = append(errs, fmt.Errorf("%s: no detect expression; a row must name the signal that detects it", at))
		}
		for _, q := range r.Quiet {
			if slices.Contains(r.Triggers, q) {
				errs = append(errs, fmt.Errorf("%s: trigger %q is listed both in triggers (must fire) and quiet (must stay quiet); keep it in one list", at, q))
			}
		}
		if d, err := r.HoldFor(); err != nil {
			errs = append(errs, fmt.Errorf("%s: hold does not parse: %w", at, err))
		} else if d < 0 {
			errs = append(errs, fmt.Errorf("%s: hold %q is negative; write how long the fault stays in place after detection, e.g. hold: 10s, or leave hold out for none", at, r.Hold))
		}
		switch r.Mitigation.Action {
		case "heal":
		case "apply":
			if len(r.Mitigation.Faults) == 0 {
				errs = append(errs, fmt.Errorf("%s: mitigation apply without faults; list the changes to apply", at))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: mitigation action %q; use heal or apply", at, r.Mitigation.Action))
		}
		for _, e := range r.Expressions(p.Matrix.Defaults.Recover) {
			if _, err := promql.ParseExpr(e); err != nil {
				errs = append(errs, fmt.Errorf("%s: invalid PromQL %q: %w", at, e, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Expressions lists every PromQL expression of the row (defaults included).
func (r Row) Expressions(defaultRecover []string) []string {
	out := append([]string{}, r.Detect...)
	out = append(out, r.Surface...)
	out = append(out, r.Recover...)
	return append(out, defaultRecover...)
}

// RecoverExprs is the row's recovery expressions with the defaults.
func (p *Program) RecoverExprs(r Row) []string {
	return append(append([]string{}, r.Recover...), p.Matrix.Defaults.Recover...)
}

// GinkgoLabels are the labels of a row's spec: row id, edges, fault kinds and extras.
func (r Row) GinkgoLabels() []string {
	l := []string{"row:" + r.ID}
	for _, f := range r.Faults {
		l = append(l, "kind:"+f.Kind)
		if f.Edge != "" {
			l = append(l, "edge:"+f.Edge)
		}
		if f.Target != "" {
			l = append(l, "target:"+strings.ReplaceAll(f.Target, ",", "+"))
		}
	}
	l = append(l, r.Labels...)
	slices.Sort(l)
	return slices.Compact(l)
}

// HoldFor parses the row's hold duration (Load refuses one that does not parse).
func (r Row) HoldFor() (d parsedDuration, err error) { return parseDuration(r.Hold) }

// Exposed is the set of series the catalogue says the targets expose, for the roles
// that run (nil roles: all), plus the probe and up series.
func (p *Program) Exposed(roles []env.Role) map[string]bool {
	out := map[string]bool{}
	for _, t := range p.Targets {
		if roles != nil && t.Role != "" && !slices.Contains(roles, t.Role) {
			continue
		}
		for _, s := range t.Series {
			out[s] = true
		}
		switch t.Kind {
		case "probe":
			out["probe_success"], out["probe_http_status_code"], out["probe_duration_seconds"] = true, true, true
		case "prometheus", "json":
			out["up"] = true
		}
	}
	return out
}

// SeriesIn lists the metric names an expression selects.
func SeriesIn(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			if name != "" {
				set[name] = true
			}
		}
		return nil
	})
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Validate cross-checks the matrix against the catalogue and the rules: every series an
// expression names is exposed by some target or recorded by a rule, every label matcher
// can match a value the catalogue knows (LabelCheck), and every trigger a row names is
// an alert of the rule files. recorded and alerts come from the rule loader, so that no
// expression is kept twice.
func (p *Program) Validate(roles []env.Role, recorded, alerts map[string]bool) error {
	exposed := p.Exposed(roles)
	lc := p.LabelCheck(roles, alerts)
	var errs []error
	for _, e := range p.Matrix.Defaults.Recover {
		for _, msg := range lc.Expr(e) {
			errs = append(errs, fmt.Errorf("%s: defaults.recover: expression %q: %s", filepath.Join(p.Dir, MatrixFile), e, msg))
		}
	}
	for _, r := range p.Matrix.Rows {
		at := p.where(r)
		for _, e := range r.Expressions(nil) {
			for _, msg := range lc.Expr(e) {
				errs = append(errs, fmt.Errorf("%s: expression %q: %s", at, e, msg))
			}
		}
		for _, e := range r.Expressions(p.Matrix.Defaults.Recover) {
			names, err := SeriesIn(e)
			if err != nil {
				continue // reported by checkMatrix
			}
			for _, n := range names {
				if !exposed[n] && !recorded[n] {
					errs = append(errs, fmt.Errorf("%s: expression %q names series %q, which no target exposes; fix the name or add it to %s", at, e, n, TargetsFile))
				}
			}
		}
		for _, t := range append(append([]string{}, r.Triggers...), r.Quiet...) {
			if !alerts[t] {
				var names []string
				for a := range alerts {
					names = append(names, a)
				}
				sort.Strings(names)
				errs = append(errs, fmt.Errorf("%s: trigger %q is not an alert in %s; use one of %s", at, t, AlertsFile, strings.Join(names, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// DeployedImage is an image the matrix deploys (config/deploy_image), with the rows that do.
type DeployedImage struct {
	Ref  string
	Role env.Role
	Rows []string
}

// DeployImages lists every image a row's faults or mitigation deploy, sorted by reference.
func (p *Program) DeployImages() []DeployedImage {
	by := map[string]*DeployedImage{}
	for _, r := range p.Matrix.Rows {
		for _, s := range append(append([]faults.Spec{}, r.Faults...), r.Mitigation.Faults...) {
			ref := faults.DeployImage(s)
			if ref == "" {
				continue
			}
			d := by[ref]
			if d == nil {
				d = &DeployedImage{Ref: ref, Role: env.Role(s.Target)}
				by[ref] = d
			}
			if !slices.Contains(d.Rows, r.ID) {
				d.Rows = append(d.Rows, r.ID)
			}
		}
	}
	out := make([]DeployedImage, 0, len(by))
	for _, d := range by {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out
}

// CheckDeployImages fails, before any container starts, when the local engine (lookup)
// lacks an image a row deploys for one of roles (nil: every role). Images are never
// pulled; the error names each missing image, its rows and the fix.
func (p *Program) CheckDeployImages(ctx context.Context, lookup faults.ImageLookup, roles []env.Role) error {
	var errs []error
	for _, d := range p.DeployImages() {
		if roles != nil && !slices.Contains(roles, d.Role) {
			continue
		}
		if err := faults.CheckLocalImage(ctx, lookup, d.Role, d.Ref); err != nil {
			errs = append(errs, fmt.Errorf("%s (rows %s): %w", filepath.Join(p.Dir, MatrixFile), strings.Join(d.Rows, ", "), err))
		}
	}
	return errors.Join(errs...)
}
