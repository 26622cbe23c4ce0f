package faults

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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
		if s.Action == "latency" {
			l, _ := n.attrs["latency"].(int)
			j, _ := n.attrs["jitter"].(int)
			if l <= 0 || j >= l {
				return nil, fmt.Errorf("network fault latency on %s: latency=%d jitter=%d; give a latency above the jitter (ms), or no probe can tell the toxic from a healthy edge", s.Edge, l, j)
			}
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

// config reads the proxy's state from Toxiproxy: what is in place on the edge.
func (n *network) config(ctx context.Context, e *env.Environment) (mine []string, err error) {
	dirty, err := e.Toxi().Dirty(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range dirty {
		if strings.HasPrefix(d, n.spec.Edge+":") {
			mine = append(mine, d)
		}
	}
	return mine, nil
}

// probeWait is how long a probe waits for an answer: long enough to see a latency toxic
// add its delay, short enough to look again soon.
func (n *network) probeWait() time.Duration {
	if n.spec.Action == "latency" {
		return 2*n.latency() + time.Second
	}
	return 1500 * time.Millisecond
}

func (n *network) latency() time.Duration {
	l, _ := n.attrs["latency"].(int)
	j, _ := n.attrs["jitter"].(int)
	return time.Duration(max(l-j, 0)) * time.Millisecond
}

// Acted: Toxiproxy has the proxy disabled or the toxic in place, and a probe through the
// proxy met it: refused, cut or left unanswered (down, timeout, reset_peer), or answered
// no sooner than the latency. The other toxics (bandwidth, slicer, slow_close, limit_data)
// have no probe that tells them apart from a healthy edge; their proof is the toxic in
// Toxiproxy and an answer through it.
func (n *network) Acted(ctx context.Context, e *env.Environment) ([]Proof, error) {
	mine, err := n.config(ctx, e)
	if err != nil {
		return []Proof{{What: "toxiproxy proxy " + n.spec.Edge, Value: "unreadable: " + err.Error()}}, err
	}
	want := n.shows()
	ps := []Proof{{What: "toxiproxy proxy " + n.spec.Edge, Value: strings.Join(mine, "; ")}}
	if !slices.Contains(mine, want) {
		return ps, fmt.Errorf("Toxiproxy does not show %q on proxy %s (it shows %q)", want, n.spec.Edge, strings.Join(mine, "; "))
	}
	p, err := probeEdge(ctx, e, n.spec.Edge, n.probeWait())
	if err != nil {
		return ps, err
	}
	ps = append(ps, Proof{What: "probe through proxy " + n.spec.Edge, Value: p.String()})
	switch n.spec.Action {
	case "down", "timeout", "reset_peer":
		if p.Outcome == probeAnswered {
			return ps, fmt.Errorf("a probe through proxy %s was answered after %s: traffic still passes", n.spec.Edge, p.RTT.Round(time.Millisecond))
		}
	case "latency":
		if p.Outcome != probeAnswered || p.RTT < n.latency() {
			return ps, fmt.Errorf("a probe through proxy %s was %s, not answered after at least %s", n.spec.Edge, p, n.latency())
		}
	default:
		if p.Outcome != probeAnswered {
			return ps, fmt.Errorf("a probe through proxy %s was %s", n.spec.Edge, p)
		}
	}
	return ps, nil
}

// Healed: this fault is gone from the proxy (enabled again, or its toxic removed), and
// a probe through it is answered (within half the latency, for a latency toxic). When
// another fault of the row still holds the same proxy (a composite fault: a timeout
// removed while the edge is down), the probe cannot tell and is skipped.
func (n *network) Healed(ctx context.Context, e *env.Environment) ([]Proof, error) {
	mine, err := n.config(ctx, e)
	if err != nil {
		return []Proof{{What: "toxiproxy proxy " + n.spec.Edge, Value: "unreadable: " + err.Error()}}, err
	}
	v := "clean (enabled, no toxics)"
	if len(mine) > 0 {
		v = strings.Join(mine, "; ")
	}
	ps := []Proof{{What: "toxiproxy proxy " + n.spec.Edge, Value: v}}
	if slices.Contains(mine, n.shows()) {
		return ps, fmt.Errorf("Toxiproxy still shows %q", n.shows())
	}
	if len(mine) > 0 {
		ps = append(ps, Proof{What: "probe through proxy " + n.spec.Edge, Value: "skipped: the proxy still holds another fault"})
		return ps, nil
	}
	p, err := probeEdge(ctx, e, n.spec.Edge, n.probeWait())
	if err != nil {
		return ps, err
	}
	ps = append(ps, Proof{What: "probe through proxy " + n.spec.Edge, Value: p.String()})
	if p.Outcome != probeAnswered || (n.spec.Action == "latency" && p.RTT >= n.latency()/2) {
		return ps, fmt.Errorf("a probe through proxy %s was %s", n.spec.Edge, p)
	}
	return ps, nil
}

// shows is how Toxiproxy's state (Toxi.Dirty) lists this fault.
func (n *network) shows() string {
	if n.spec.Action == "down" {
		return n.spec.Edge + ": disabled"
	}
	return fmt.Sprintf("%s: toxic %s (%s)", n.spec.Edge, n.toxicName(), n.spec.Action)
}
