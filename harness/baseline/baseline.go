// Package baseline is the reliability program's "Baseline Captures" as data
// (program/baseline.yaml): loading and validating the file, taking the captures on a
// healthy stack, and comparing a capture with the document's values.
//
// The suite (suites/pocketbrain/baseline_test.go) takes the captures once per Ginkgo
// process, before any fault, and asserts that every check passes; `pbchaos check`
// validates the file offline.
package baseline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pocketbrain/chaos/harness/program"

	"github.com/pocketbrain/chaos/harness/env"
)

// File is program/baseline.yaml, relative to the program directory.
const File = "baseline.yaml"

// Formats an endpoint may answer in.
const (
	FormatJSON       = "json"
	FormatPrometheus = "prometheus"
)

// Spec is program/baseline.yaml.
type Spec struct {
	Version int `yaml:"version"`
	// Document names the section of the reliability program the values come from.
	Document  string     `yaml:"document"`
	Endpoints []Endpoint `yaml:"endpoints"`
}

// Endpoint is one request of the document's baseline and the values it must answer.
type Endpoint struct {
	Name string `yaml:"name"` // e.g. "GET /ready"
	Role string `yaml:"role"` // the service that answers it: server or worker
	Path string `yaml:"path"`
	// DocumentURL is where the document read it (for the reader; never requested).
	DocumentURL string   `yaml:"document_url"`
	Format      string   `yaml:"format"` // FormatJSON or FormatPrometheus
	Expect      []Expect `yaml:"expect"`
}

// Expect is one value of the document.
//
// Field is, for a JSON endpoint, a dotted path a.b.c, where a trailing ".*" stands for
// every leaf below (each leaf found is its own check, finding none a failed check); for a
// Prometheus text endpoint, a bare metric name whose every sample must match. Value is
// compared as a number when both sides parse as one, otherwise as text.
type Expect struct {
	Field string `yaml:"field"`
	Value string `yaml:"value"`
}

// Label is how an endpoint appears in the evidence: the service and the request.
func (e Endpoint) Label() string { return e.Role + " " + e.Name }

// Load reads and validates dir/baseline.yaml.
func Load(dir string) (*Spec, error) {
	path := filepath.Join(dir, File)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (the baseline captures live there; restore it from git)", path, err)
	}
	return Parse(path, b)
}

// Parse decodes and validates the content of a baseline file; path names it in errors.
// Every problem names the file, the entry and its field, and the fix; all are reported
// at once.
func Parse(path string, b []byte) (*Spec, error) {
	var s Spec
	if err := program.DecodeStrict(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w; fix the YAML (fields: version, document, endpoints[name, role, path, document_url, format, expect[field, value]])", path, err)
	}
	if probs := s.problems(); len(probs) > 0 {
		return nil, fmt.Errorf("%s:\n  %s", path, strings.Join(probs, "\n  "))
	}
	return &s, nil
}

func (s *Spec) problems() []string {
	var probs []string
	if s.Version != 1 {
		probs = append(probs, fmt.Sprintf("version %d: only version 1 is known; write version: 1", s.Version))
	}
	if s.Document == "" {
		probs = append(probs, "document: required; name the section of the reliability program the values come from")
	}
	if len(s.Endpoints) == 0 {
		probs = append(probs, "no endpoints: list the document's baseline endpoints")
	}
	seen := map[string]int{}
	for i, e := range s.Endpoints {
		where := fmt.Sprintf("endpoints[%d] (%s)", i, e.Name)
		if e.Name == "" {
			probs = append(probs, fmt.Sprintf("endpoints[%d]: name is required (the request as the document writes it, e.g. GET /ready)", i))
		}
		if j, dup := seen[e.Label()]; dup {
			probs = append(probs, fmt.Sprintf("%s: role and name repeat endpoints[%d]; list each endpoint once", where, j))
		} else {
			seen[e.Label()] = i
		}
		if !slices.Contains(env.FullStack, env.Role(e.Role)) || env.HTTPPort(env.Role(e.Role)) == 0 {
			probs = append(probs, fmt.Sprintf("%s: role %q serves no HTTP in the stack; use server or worker", where, e.Role))
		}
		if !strings.HasPrefix(e.Path, "/") {
			probs = append(probs, fmt.Sprintf("%s: path %q must start with /", where, e.Path))
		}
		if e.Format != FormatJSON && e.Format != FormatPrometheus {
			probs = append(probs, fmt.Sprintf("%s: format %q: use json or prometheus", where, e.Format))
		}
		if len(e.Expect) == 0 {
			probs = append(probs, where+": no expect entries; list the document's values as expect: [{field: ..., value: ...}]")
		}
		for j, x := range e.Expect {
			if x.Field == "" || x.Value == "" {
				probs = append(probs, fmt.Sprintf("%s expect[%d]: field and value are both required", where, j))
			}
			if e.Format == FormatPrometheus && strings.ContainsAny(x.Field, ".*{") {
				probs = append(probs, fmt.Sprintf("%s expect[%d]: field %q: a Prometheus endpoint's field is a bare metric name", where, j, x.Field))
			}
		}
	}
	return probs
}
