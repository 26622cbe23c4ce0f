// Package faults holds the fault kinds the matrix can name, one file per kind (the etcd
// robustness-test habit). A fault follows roachprod's lifecycle: Inject, then wait until
// its target shows the effect (WaitActed), Heal, then wait until the effect is gone
// (WaitHealed); a row whose fault did not act fails. A Guard heals whatever a spec left
// active.
package faults

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/pocketbrain/chaos/harness/env"
)

// Spec is a fault as the matrix file writes it.
type Spec struct {
	Kind   string            `yaml:"kind" json:"kind"`                         // network, process, config, storage, provider
	Action string            `yaml:"action" json:"action"`                     // e.g. down, latency, stop, set_env, fill, respond
	Edge   string            `yaml:"edge,omitempty" json:"edge,omitempty"`     // network faults: the proxy name
	Target string            `yaml:"target,omitempty" json:"target,omitempty"` // role, or volume(s) for storage
	Params map[string]string `yaml:"params,omitempty" json:"params,omitempty"`
}

// String is a one-line description for logs and reports (never secret values).
func (s Spec) String() string {
	where := s.Edge
	if where == "" {
		where = s.Target
	}
	var ps []string
	for k, v := range s.Params {
		if s.Kind == "config" && k != "image" {
			v = "…" // config values may hold secrets; names are enough (an image is not one)
		}
		ps = append(ps, k+"="+v)
	}
	sort.Strings(ps)
	out := fmt.Sprintf("%s/%s on %s", s.Kind, s.Action, where)
	if len(ps) > 0 {
		out += " (" + strings.Join(ps, ", ") + ")"
	}
	return out
}

// Proof is one observation that a fault acted (or was healed).
type Proof struct {
	What  string `json:"what"`
	Value string `json:"value"`
}

// Fault is an injectable, healable failure.
type Fault interface {
	Spec() Spec
	Inject(ctx context.Context, e *env.Environment) error
	Heal(ctx context.Context, e *env.Environment) error
	// Acted looks at the fault's target itself, never at the harness's own bookkeeping:
	// the proxy and traffic through it, the volume, the container. It returns what it saw,
	// and an error naming what is missing unless the effect is there now. WaitActed polls
	// it after Inject.
	Acted(ctx context.Context, e *env.Environment) ([]Proof, error)
	// Healed is Acted's mirror after Heal: nil once the effect is gone (WaitHealed).
	Healed(ctx context.Context, e *env.Environment) ([]Proof, error)
	// Changes lists the roles whose container (and so published port) the fault replaced
	// or restarted, so scrape targets can be refreshed.
	Changes() []env.Role
}

// kinds maps a kind to its constructor; each file registers its own.
var kinds = map[string]func(Spec) (Fault, error){}

// Kinds lists the known fault kinds.
func Kinds() []string {
	var out []string
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New validates a spec and builds its fault. Errors name the problem and the fix.
func New(s Spec) (Fault, error) {
	mk, ok := kinds[s.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown fault kind %q; use one of %s", s.Kind, strings.Join(Kinds(), ", "))
	}
	return mk(s)
}

func needRole(s Spec, allowed ...env.Role) (env.Role, error) {
	for _, r := range allowed {
		if string(r) == s.Target {
			return r, nil
		}
	}
	var names []string
	for _, r := range allowed {
		names = append(names, string(r))
	}
	return "", fmt.Errorf("%s fault: unknown target %q; use one of %s", s.Kind, s.Target, strings.Join(names, ", "))
}

func oneOf(kind, action string, actions ...string) error {
	for _, a := range actions {
		if a == action {
			return nil
		}
	}
	return fmt.Errorf("%s fault: unknown action %q; use one of %s", kind, action, strings.Join(actions, ", "))
}
