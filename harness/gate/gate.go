// Package gate is the reliability program's "Release Gate Checklist" as data
// (program/release-gate.yaml) and the steps the reference stack runs: the config check
// (step 1) in one-off containers of the service images; precheck, sync, deploy and verify
// (steps 2–5, remote.go) over SSH against the stack's VPS host; step 6, the canary, is
// harness/canary.
//
// The suite (suites/pocketbrain/gate_test.go) runs the steps in the file's order and
// asserts on their results; `pbchaos check` validates the file offline.
package gate

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pocketbrain/chaos/harness/program"

	"gopkg.in/yaml.v3"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
)

// File is program/release-gate.yaml, relative to the program directory.
const File = "release-gate.yaml"

// Steps is how many steps the document's checklist has.
const Steps = 6

// Spec is program/release-gate.yaml.
type Spec struct {
	Version  int    `yaml:"version"`
	Document string `yaml:"document"`
	// Steps are the checklist's steps in the document's order, numbered from 1.
	Steps       []Step      `yaml:"steps"`
	ConfigCheck ConfigCheck `yaml:"config_check"`
	// ProductionStart is, per service (server, worker), what a production start sets on
	// top of the stack's own configuration of the role.
	ProductionStart map[string]env.Settings `yaml:"production_start"`
}

// Step is one step of the checklist: exactly one of OnReferenceStack (how it runs here)
// and NA (why it cannot) is set.
type Step struct {
	Step             int    `yaml:"step"`
	Name             string `yaml:"name"`
	Command          string `yaml:"command"` // as the document writes it
	OnReferenceStack string `yaml:"on_reference_stack"`
	NA               string `yaml:"na"`
}

// ConfigCheck is step 1: the config gate binary shipped in the service images, the
// canonical environment it must accept and the unsafe changes it must refuse.
type ConfigCheck struct {
	Binary       string         `yaml:"binary"`
	Images       []string       `yaml:"images"` // roles whose image ships Binary
	OKOutput     string         `yaml:"ok_output"`
	CanonicalEnv env.Settings   `yaml:"canonical_env"`
	Unsafe       []UnsafeChange `yaml:"unsafe"`
	// CanonicalOrder is the file's order of CanonicalEnv's variables (the document's
	// command line); filled by Load.
	CanonicalOrder []string `yaml:"-"`
}

// UnsafeChange is one unsafe change on top of the canonical environment.
type UnsafeChange struct {
	Set   env.Settings `yaml:"set"`   // "" unsets a variable
	Names string       `yaml:"names"` // the variable the refusal must name
	// Start are the services whose production start must exit non-zero naming it.
	Start []string `yaml:"start"`
}

// Label is the change as a reader sees it; secret-named values show by length only.
func (u UnsafeChange) Label() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(u.Set)) {
		v := u.Set[k]
		switch {
		case v == "":
			parts = append(parts, k+" unset")
		case evidence.IsSecretEnvName(k):
			parts = append(parts, fmt.Sprintf("%s=<%d bytes>", k, len(v)))
		default:
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// Load reads and validates dir/release-gate.yaml.
func Load(dir string) (*Spec, error) {
	path := filepath.Join(dir, File)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (the release gate lives there; restore it from git)", path, err)
	}
	return Parse(path, b)
}

// Parse decodes and validates the content of a release-gate file; path names it in
// errors. Every problem names the file, the field and the fix; all are reported at once.
func Parse(path string, b []byte) (*Spec, error) {
	var s Spec
	if err := program.DecodeStrict(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w; fix the YAML (fields: version, document, steps[step, name, command, on_reference_stack, na], config_check[binary, images, ok_output, canonical_env, unsafe[set, names, start]], production_start)", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err == nil {
		s.ConfigCheck.CanonicalOrder = mappingKeys(&root, "config_check", "canonical_env")
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
	for i, sp := range s.Steps {
		if sp.Step != i+1 {
			probs = append(probs, fmt.Sprintf("steps[%d]: step %d out of order; number the steps 1, 2, 3... as the document does", i, sp.Step))
		}
		if sp.Name == "" || sp.Command == "" {
			probs = append(probs, fmt.Sprintf("steps[%d]: name and command are required", i))
		}
		if (sp.NA == "") == (sp.OnReferenceStack == "") {
			probs = append(probs, fmt.Sprintf("steps[%d] (%s): give exactly one of on_reference_stack (how it runs here) or na (why it cannot)", i, sp.Name))
		}
	}
	if len(s.Steps) != Steps {
		probs = append(probs, fmt.Sprintf("steps: %d steps: the document's checklist has %d", len(s.Steps), Steps))
	}
	cc := s.ConfigCheck
	if cc.Binary == "" || len(cc.Images) == 0 || cc.OKOutput == "" || len(cc.CanonicalEnv) == 0 {
		probs = append(probs, "config_check: binary, images, ok_output and canonical_env are required")
	}
	for _, im := range cc.Images {
		if im != string(env.Server) && im != string(env.Worker) {
			probs = append(probs, fmt.Sprintf("config_check.images: %q: the config gate ships in the server and worker images", im))
		}
	}
	for i, u := range cc.Unsafe {
		if len(u.Set) == 0 || u.Names == "" {
			probs = append(probs, fmt.Sprintf("config_check.unsafe[%d]: set and names are required", i))
		}
		for _, r := range u.Start {
			if _, ok := s.ProductionStart[r]; !ok {
				probs = append(probs, fmt.Sprintf("config_check.unsafe[%d]: start %q has no production_start entry; use server or worker", i, r))
			}
		}
	}
	for r := range s.ProductionStart {
		if r != string(env.Server) && r != string(env.Worker) {
			probs = append(probs, fmt.Sprintf("production_start.%s: not a service the harness starts in production; use server or worker", r))
		}
	}
	return probs
}

// mappingKeys returns the keys of the mapping at path, in the file's order.
func mappingKeys(n *yaml.Node, path ...string) []string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	var keys []string
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// CommandLine renders an environment and a command as the document writes step 1 (its
// variables in the given order, any others sorted after them), with every secret-named
// value shown by its length only.
func CommandLine(e env.Settings, order []string, cmd string) string {
	var parts []string
	keys := slices.Clone(order)
	for _, k := range slices.Sorted(maps.Keys(e)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if _, ok := e[k]; !ok {
			continue
		}
		v := e[k]
		if evidence.IsSecretEnvName(k) {
			v = fmt.Sprintf("<%d bytes>", len(v))
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(append(parts, cmd), " ")
}

// ProblemsNamed lists the variables the config check's "PROBLEM VAR: ..." lines name.
func ProblemsNamed(out string) []string {
	var vars []string
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "PROBLEM "); ok {
			if v, _, ok := strings.Cut(rest, ":"); ok {
				vars = append(vars, v)
			}
		}
	}
	return vars
}

// oneLineMax bounds a container's output quoted in a step's detail: enough for the
// config check's first problems, short enough for a report's table cell.
const oneLineMax = 300

// OneLine folds a container's output into one line of at most oneLineMax bytes.
func OneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > oneLineMax {
		s = s[:oneLineMax] + "…"
	}
	return s
}
