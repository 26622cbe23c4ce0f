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

func (p *provider) Proof(ctx context.Context, e *env.Environment) []Proof {
	out, err := p.post(ctx, e, "/control/stats", nil)
	if err != nil {
		return []Proof{{What: "provider double", Value: err.Error()}}
	}
	return []Proof{{What: "provider double stats", Value: string(bytes.TrimSpace(out))}}
}
