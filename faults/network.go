package faults

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pocketbrain/chaos/harness/env"
)

// toxicAttrs lists, per Toxiproxy toxic type, the integer attributes it takes.
var toxicAttrs = map[string][]string{
	"latency":    {"latency", "jitter"},
	"timeout":    {"timeout"},
	"reset_peer": {"timeout"},
	"bandwidth":  {"rate"},
	"limit_data": {"bytes"},
	"slicer":     {"average_size", "size_variation", "delay"},
	"slow_close": {"delay"},
}

// network faults act on one edge through its Toxiproxy proxy: "down" disables the
// proxy (connections refused, open ones closed); every other action is a toxic.
type network struct {
	spec   Spec
	attrs  map[string]any
	stream string
}

func init() {
	kinds["network"] = func(s Spec) (Fault, error) {
		if _, ok := env.EdgeByName(s.Edge); !ok {
			var names []string
			for _, e := range env.Edges {
				names = append(names, e.Name)
			}
			return nil, fmt.Errorf("network fault: unknown edge %q; use one of %s", s.Edge, strings.Join(names, ", "))
		}
		n := &network{spec: s, attrs: map[string]any{}, stream: "downstream"}
		if st := s.Params["stream"]; st != "" {
			if st != "upstream" && st != "downstream" {
				return nil, fmt.Errorf("network fault on %s: stream %q; use upstream or downstream", s.Edge, st)
			}
			n.stream = st
		}
		if s.Action == "down" {
			return n, nil
		}
		names, ok := toxicAttrs[s.Action]
		if !ok {
			actions := []string{"down"}
			for a := range toxicAttrs {
				actions = append(actions, a)
			}
			return nil, oneOf("network", s.Action, actions...)
		}
		for k, v := range s.Params {
			if k == "stream" || k == "toxicity" {
				continue
			}
			known := false
			for _, name := range names {
				known = known || name == k
			}
			if !known {
				return nil, fmt.Errorf("network fault %s on %s: unknown parameter %q; %s takes %s", s.Action, s.Edge, k, s.Action, strings.Join(names, ", "))
			}
			i, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("network fault %s on %s: parameter %s=%q is not a whole number (Toxiproxy takes milliseconds, bytes or KB/s)", s.Action, s.Edge, k, v)
			}
			n.attrs[k] = i
		}
		return n, nil
	}
}

func (n *network) Spec() Spec          { return n.spec }
func (n *network) Changes() []env.Role { return nil }
func (n *network) toxicName() string   { return "pb_" + n.spec.Action }

func (n *network) Inject(ctx context.Context, e *env.Environment) error {
	if n.spec.Action == "down" {
		return e.Toxi().SetEnabled(ctx, n.spec.Edge, false)
	}
	return e.Toxi().AddToxic(ctx, n.spec.Edge, n.toxicName(), n.spec.Action, n.stream, 1, n.attrs)
}

func (n *network) Heal(ctx context.Context, e *env.Environment) error {
	if n.spec.Action == "down" {
		return e.Toxi().SetEnabled(ctx, n.spec.Edge, true)
	}
	return e.Toxi().RemoveToxic(ctx, n.spec.Edge, n.toxicName())
}

func (n *network) Proof(ctx context.Context, e *env.Environment) []Proof {
	dirty, err := e.Toxi().Dirty(ctx)
	if err != nil {
		return []Proof{{What: "toxiproxy state", Value: "unreadable: " + err.Error()}}
	}
	var mine []string
	for _, d := range dirty {
		if strings.HasPrefix(d, n.spec.Edge+":") {
			mine = append(mine, d)
		}
	}
	v := "clean (enabled, no toxics)"
	if len(mine) > 0 {
		v = strings.Join(mine, "; ")
	}
	return []Proof{{What: "toxiproxy proxy " + n.spec.Edge, Value: v}}
}
