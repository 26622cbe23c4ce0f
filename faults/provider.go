package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

// provider faults program the AI-provider double, a stand-in for a third party: it
// answers with a status after a latency, for the next count requests (0 = until reset).
// Only third-party doubles are programmable; the services under test never are.
type provider struct {
	spec    Spec
	control map[string]any
}

func init() {
	kinds["provider"] = func(s Spec) (Fault, error) {
		if err := oneOf("provider", s.Action, "respond"); err != nil {
			return nil, err
		}
		c := map[string]any{"status": 200, "count": 0}
		for k, v := range s.Params {
			switch k {
			case "status", "count":
				i, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("provider fault: %s=%q is not a whole number", k, v)
				}
				c[k] = i
			case "latency":
				if _, err := time.ParseDuration(v); err != nil {
					return nil, fmt.Errorf("provider fault: latency=%q is not a duration (e.g. 3s)", v)
				}
				c[k] = v
			default:
				return nil, fmt.Errorf("provider fault: unknown parameter %q; use status, latency, count", k)
			}
		}
		return &provider{spec: s, control: c}, nil
	}
}

func (p *provider) Spec() Spec          { return p.spec }
func (p *provider) Changes() []env.Role { return nil }

// post sends body to the provider double's path (a GET when body is nil).
func (p *provider) post(ctx context.Context, e *env.Environment, path string, body any) ([]byte, error) {
	req := env.Request{Method: http.MethodGet, Path: path, Limit: 1 << 16} // Timeouts.HTTPCall
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("provider double %s: %w", path, err)
		}
		req.Method, req.Body = http.MethodPost, b
	}
	resp, err := e.Do(ctx, env.Provider, req)
	if err != nil {
		return nil, err
	}
	if err := resp.Err(env.Provider, req); err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (p *provider) Inject(ctx context.Context, e *env.Environment) error {
	_, err := p.post(ctx, e, "/control", p.control)
	return err
}

func (p *provider) Heal(ctx context.Context, e *env.Environment) error {
	_, err := p.post(ctx, e, "/control/reset", map[string]any{})
	return err
}

// state reads the double's rule (GET /control) and stats (GET /control/stats).
func (p *provider) state(ctx context.Context, e *env.Environment) (active bool, st providerStats, ps []Proof, err error) {
	ctl, err := p.post(ctx, e, "/control", nil)
	if err != nil {
		return false, st, []Proof{{What: "provider double", Value: err.Error()}}, err
	}
	stats, err := p.post(ctx, e, "/control/stats", nil)
	if err != nil {
		return false, st, []Proof{{What: "provider double", Value: err.Error()}}, err
	}
	var c struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(ctl, &c); err != nil {
		return false, st, nil, fmt.Errorf("provider double /control: %w", err)
	}
	if err := json.Unmarshal(stats, &st); err != nil {
		return false, st, nil, fmt.Errorf("provider double /control/stats: %w", err)
	}
	ps = []Proof{
		{What: "provider double rule", Value: string(bytes.TrimSpace(ctl))},
		{What: "provider double stats", Value: string(bytes.TrimSpace(stats))},
	}
	return c.Active, st, ps, nil
}

// providerStats is the double's GET /control/stats (fixtures/provider.Stats).
type providerStats struct {
	Requests int64            `json:"requests"`
	ByStatus map[string]int64 `json:"byStatus"`
	Canceled int64            `json:"canceled"`
	Ruled    int64            `json:"ruled"`
}

// Acted: the rule is active, the worker's requests met it, and for an error status the
// double served that status.
func (p *provider) Acted(ctx context.Context, e *env.Environment) ([]Proof, error) {
	active, st, ps, err := p.state(ctx, e)
	if err != nil {
		return ps, err
	}
	status := strconv.Itoa(p.control["status"].(int))
	limited := p.control["count"].(int) > 0
	switch {
	case !active && !limited: // a counted rule may be used up before the first look
		return ps, fmt.Errorf("the provider double has no rule active")
	case st.Ruled == 0:
		return ps, fmt.Errorf("no request reached the provider double under its rule")
	case status != "200" && st.ByStatus[status] == 0:
		return ps, fmt.Errorf("the provider double has served no %s answer yet", status)
	}
	return ps, nil
}

// Healed: no rule is active and a completion the harness sends itself is answered 200.
func (p *provider) Healed(ctx context.Context, e *env.Environment) ([]Proof, error) {
	active, _, ps, err := p.state(ctx, e)
	if err != nil {
		return ps, err
	}
	if active {
		return ps, fmt.Errorf("the provider double still has a rule active")
	}
	req := env.Request{Method: http.MethodPost, Path: "/v1/complete", Body: []byte(`{"prompt":"pb-chaos heal probe"}`), Limit: 1 << 16}
	began := time.Now()
	resp, err := e.Do(ctx, env.Provider, req)
	if err != nil {
		return ps, err
	}
	ps = append(ps, Proof{What: "probe completion", Value: fmt.Sprintf("%d after %s", resp.Status, time.Since(began).Round(time.Millisecond))})
	if err := resp.Err(env.Provider, req); err != nil {
		return ps, err
	}
	return ps, nil
}
