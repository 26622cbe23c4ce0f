package signals

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
)

// Engine evaluates PromQL over a Store with the real Prometheus engine.
//
// Range selectors need no special set-up for runs shorter than their window:
// `increase(x[15m])` over a 3-minute run selects the whole run, and the
// engine's extrapolation stops at a counter's zero, so a counter exported at 0
// from start yields (close to) the real increase.
type Engine struct {
	store  *Store
	ng     *promql.Engine
	parser parser.Parser
}

type engineConfig struct {
	lookback   time.Duration
	timeout    time.Duration
	maxSamples int
}

// EngineOption configures NewEngine.
type EngineOption func(*engineConfig)

// WithLookbackDelta sets how far back an instant selector looks for a sample
// (Prometheus default 5m).
func WithLookbackDelta(d time.Duration) EngineOption {
	return func(c *engineConfig) { c.lookback = d }
}

// WithQueryTimeout bounds every query in addition to the caller's context
// (default 1m).
func WithQueryTimeout(d time.Duration) EngineOption {
	return func(c *engineConfig) { c.timeout = d }
}

// WithMaxSamples bounds the samples one query may load (default 50M).
func WithMaxSamples(n int) EngineOption {
	return func(c *engineConfig) { c.maxSamples = n }
}

// NewEngine returns an Engine over store.
func NewEngine(store *Store, opts ...EngineOption) *Engine {
	cfg := engineConfig{lookback: 5 * time.Minute, timeout: time.Minute, maxSamples: 50_000_000}
	for _, o := range opts {
		o(&cfg)
	}
	p := parser.NewParser(parser.Options{})
	ng := promql.NewEngine(promql.EngineOpts{
		// Zero MaxSamples or Timeout would make every query fail, so both are set.
		MaxSamples:    cfg.maxSamples,
		Timeout:       cfg.timeout,
		LookbackDelta: cfg.lookback,
		Parser:        p,
		// No registerer: engines are per run and must not collide on a global registry.
	})
	return &Engine{store: store, ng: ng, parser: p}
}

// Store returns the store the engine reads.
func (e *Engine) Store() *Store { return e.store }

// Parser returns the PromQL parser the engine uses (rule files are parsed with it too).
func (e *Engine) Parser() parser.Parser { return e.parser }

// Query evaluates expr at ts and returns a promql.Vector, promql.Scalar or
// promql.String (or a promql.Matrix for a bare range selector).
func (e *Engine) Query(ctx context.Context, expr string, ts time.Time) (parser.Value, error) {
	q, err := e.ng.NewInstantQuery(ctx, e.store, nil, expr, ts)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w (fix the PromQL)", expr, err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("query %q at %s: %w", expr, ts.UTC().Format(time.RFC3339Nano), res.Err)
	}
	// Close returns matrix memory to a pool, so hand out a copy.
	if m, ok := res.Value.(promql.Matrix); ok {
		return copyMatrix(m), nil
	}
	return res.Value, nil
}

// Vector evaluates expr at ts as a vector; a scalar result becomes one sample
// without labels.
func (e *Engine) Vector(ctx context.Context, expr string, ts time.Time) (promql.Vector, error) {
	v, err := e.Query(ctx, expr, ts)
	if err != nil {
		return nil, err
	}
	switch r := v.(type) {
	case promql.Vector:
		return r, nil
	case promql.Scalar:
		return promql.Vector{{T: r.T, F: r.V, Metric: labels.EmptyLabels()}}, nil
	default:
		return nil, fmt.Errorf("query %q returned a %s, want an instant vector or scalar (drop the range selector or wrap it in a function)", expr, v.Type())
	}
}

// Value evaluates expr at ts and returns the scalar, or the sum of the vector's
// samples (a one-element vector is its value). present is false when the
// vector is empty: a condition such as `A and B` with B absent yields nothing.
func (e *Engine) Value(ctx context.Context, expr string, ts time.Time) (v float64, present bool, err error) {
	vec, err := e.Vector(ctx, expr, ts)
	if err != nil || len(vec) == 0 {
		return 0, false, err
	}
	for _, s := range vec {
		v += s.F
	}
	return v, true, nil
}

// RangeQuery evaluates expr at every step in [from, to], as Prometheus'
// query_range does; evidence timelines come from it.
func (e *Engine) RangeQuery(ctx context.Context, expr string, from, to time.Time, step time.Duration) (promql.Matrix, error) {
	if step <= 0 {
		return nil, fmt.Errorf("range query %q: step %s must be positive (use the scrape interval)", expr, step)
	}
	q, err := e.ng.NewRangeQuery(ctx, e.store, nil, expr, from, to, step)
	if err != nil {
		return nil, fmt.Errorf("range query %q: %w (fix the PromQL)", expr, err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("range query %q over [%s, %s]: %w", expr, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), res.Err)
	}
	m, err := res.Matrix()
	if err != nil {
		return nil, fmt.Errorf("range query %q: %w", expr, err)
	}
	return copyMatrix(m), nil
}

// QueryFunc adapts the engine for the prometheus/rules package.
func (e *Engine) QueryFunc() rules.QueryFunc {
	return rules.EngineQueryFunc(e.ng, e.store)
}

func copyMatrix(m promql.Matrix) promql.Matrix {
	out := make(promql.Matrix, len(m))
	for i, s := range m {
		out[i] = promql.Series{Metric: s.Metric, Floats: append([]promql.FPoint(nil), s.Floats...)}
		if len(s.Histograms) > 0 {
			out[i].Histograms = append([]promql.HPoint(nil), s.Histograms...)
		}
	}
	return out
}
