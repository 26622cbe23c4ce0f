package signals

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultInterval is the scrape and evaluation interval (DESIGN.md: 1 s in tests).
const DefaultInterval = time.Second

// TickResult is what one tick did.
type TickResult struct {
	T       time.Time
	Scrapes []ScrapeResult
	// RuleErr is a rule evaluation failure (also returned by Tick).
	RuleErr error
}

// Monitor scrapes all targets at one timestamp and then evaluates the rules at
// that timestamp, every interval.
type Monitor struct {
	collector *Collector
	engine    *Engine
	rules     *Rules
	interval  time.Duration
	now       func() time.Time
	onTick    func(TickResult)

	tickMu sync.Mutex // ticks are sequential: rule state depends on order

	mu       sync.Mutex
	tickCh   chan struct{} // closed and replaced after every tick, to wake waiters
	last     TickResult
	lastErr  error
	cancel   context.CancelFunc
	done     chan struct{}
	runError error
}

// MonitorOption configures NewMonitor.
type MonitorOption func(*Monitor)

// WithInterval sets the tick interval (DefaultInterval when unset).
func WithInterval(d time.Duration) MonitorOption {
	return func(m *Monitor) {
		if d > 0 {
			m.interval = d
		}
	}
}

// WithClock sets the clock that stamps ticks (time.Now by default).
func WithClock(now func() time.Time) MonitorOption {
	return func(m *Monitor) { m.now = now }
}

// WithTickHook calls f after every tick, e.g. to stream evidence. f runs on
// the tick's goroutine and must not block for long.
func WithTickHook(f func(TickResult)) MonitorOption {
	return func(m *Monitor) { m.onTick = f }
}

// NewMonitor returns a Monitor; rules may be nil (scrape only).
func NewMonitor(c *Collector, e *Engine, r *Rules, opts ...MonitorOption) *Monitor {
	m := &Monitor{collector: c, engine: e, rules: r, interval: DefaultInterval, now: time.Now, tickCh: make(chan struct{})}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Engine returns the monitor's engine.
func (m *Monitor) Engine() *Engine { return m.engine }

// Rules returns the monitor's rules (may be nil).
func (m *Monitor) Rules() *Rules { return m.rules }

// Collector returns the monitor's collector.
func (m *Monitor) Collector() *Collector { return m.collector }

// Interval returns the tick interval.
func (m *Monitor) Interval() time.Duration { return m.interval }

// Tick scrapes and evaluates once, now.
func (m *Monitor) Tick(ctx context.Context) (TickResult, error) {
	return m.TickAt(ctx, m.now())
}

// TickAt scrapes every target and evaluates the rules, both at ts. Tests
// drive it with synthetic timestamps. Failed scrapes are data (up 0), not
// errors; the error is a rule evaluation failure or ctx ending.
func (m *Monitor) TickAt(ctx context.Context, ts time.Time) (TickResult, error) {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	ts = ts.Truncate(time.Millisecond) // the store's resolution
	res := TickResult{T: ts}
	if m.collector != nil {
		res.Scrapes = m.collector.ScrapeOnce(ctx, ts)
	}
	var err error
	if cerr := ctx.Err(); cerr != nil {
		err = fmt.Errorf("tick at %s: %w", ts.UTC().Format(time.RFC3339), cerr)
	} else if m.rules != nil {
		res.RuleErr = m.rules.Eval(ctx, m.engine, ts)
		err = res.RuleErr
	}
	m.mu.Lock()
	m.last, m.lastErr = res, err
	close(m.tickCh)
	m.tickCh = make(chan struct{})
	m.mu.Unlock()
	if m.onTick != nil {
		m.onTick(res)
	}
	return res, err
}

// LastTick returns the latest tick and its error.
func (m *Monitor) LastTick() (TickResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, m.lastErr
}

// Start ticks every interval, first at once, until ctx ends or Stop is called.
// A tick's error does not stop the loop; LastTick reports it.
func (m *Monitor) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return errors.New("monitor already started: call Stop first")
	}
	runCtx, cancel := context.WithCancel(ctx)
	m.cancel, m.done = cancel, make(chan struct{})
	go m.loop(runCtx, m.done)
	return nil
}

func (m *Monitor) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		_, _ = m.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop ends the loop and waits for the tick in progress to finish. It is safe
// to call more than once, and without Start.
func (m *Monitor) Stop() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.cancel, m.done = nil, nil
	m.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Condition is a predicate WaitFor polls. It may call Observe(ctx, ...) to
// record what it saw, which WaitFor reports if the wait times out.
type Condition func(ctx context.Context) (bool, error)

// All holds when every condition holds; it stops at the first that does not (or errs).
func All(conds ...Condition) Condition {
	return func(ctx context.Context) (bool, error) {
		for _, c := range conds {
			if ok, err := c(ctx); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
}

type observationKey struct{}

type observation struct {
	mu   sync.Mutex
	text string
}

// Observe records the value a Condition saw; WaitFor's timeout error quotes
// the last one. Outside WaitFor it does nothing.
func Observe(ctx context.Context, format string, args ...any) {
	if o, ok := ctx.Value(observationKey{}).(*observation); ok {
		o.mu.Lock()
		o.text = fmt.Sprintf(format, args...)
		o.mu.Unlock()
	}
}

// permanentError stops WaitFor at once: waiting longer cannot help.
type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// Permanent marks a Condition error that must end the wait at once (e.g. bad PromQL).
func Permanent(err error) error { return permanentError{err} }

// WaitFor polls cond after every tick (and at least every interval, so it
// also works while tests drive TickAt) until it holds, and returns how long
// that took. ctx carries the timeout. On timeout the error names what was
// awaited, how long, and the last value the condition observed (or its last
// error). A Condition error is retried unless marked Permanent.
func (m *Monitor) WaitFor(ctx context.Context, description string, cond Condition) (time.Duration, error) {
	start := time.Now()
	obs := &observation{}
	cctx := context.WithValue(ctx, observationKey{}, obs)
	var lastErr error
	for {
		m.mu.Lock()
		wake := m.tickCh
		m.mu.Unlock()
		ok, err := cond(cctx)
		if err == nil && ok {
			return time.Since(start), nil
		}
		if err != nil {
			lastErr = err
			var perm permanentError
			if errors.As(err, &perm) {
				return time.Since(start), fmt.Errorf("waiting for %s: %w", description, perm.error)
			}
		}
		timer := time.NewTimer(m.interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			obs.mu.Lock()
			seen := obs.text
			obs.mu.Unlock()
			if seen == "" {
				seen = "condition false"
			}
			if lastErr != nil {
				seen += "; last error: " + lastErr.Error()
			}
			return time.Since(start), fmt.Errorf("waiting for %s: not met after %s (%w); last seen: %s",
				description, time.Since(start).Round(time.Millisecond), ctx.Err(), seen)
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// AlertIn is a Condition: the named alert is in state want.
func (m *Monitor) AlertIn(name string, want AlertState) Condition {
	return func(ctx context.Context) (bool, error) {
		if m.rules == nil {
			return false, Permanent(errors.New("monitor has no rules: load the rule files and pass them to NewMonitor"))
		}
		st, ok := m.rules.Alert(name)
		if !ok {
			return false, Permanent(fmt.Errorf("no alerting rule named %q: check the alert: names in the rule files", name))
		}
		if st.HasValue {
			Observe(ctx, "alert %s %s (value %g, active since %s)", name, st.State, st.LastValue, st.ActiveSince.UTC().Format(time.RFC3339))
		} else {
			Observe(ctx, "alert %s %s", name, st.State)
		}
		return st.State == want, nil
	}
}

// AlertFiring is a Condition: the named alert is firing.
func (m *Monitor) AlertFiring(name string) Condition { return m.AlertIn(name, AlertFiring) }

// ValueCond is a Condition on the value of expr at the latest tick (see
// Engine.Value): pred gets the value and whether the result was non-empty.
func (m *Monitor) ValueCond(expr string, pred func(v float64, present bool) bool) Condition {
	if _, err := m.engine.Parser().ParseExpr(expr); err != nil {
		return func(context.Context) (bool, error) {
			return false, Permanent(fmt.Errorf("expression %q: %w (fix the PromQL)", expr, err))
		}
	}
	return func(ctx context.Context) (bool, error) {
		last, _ := m.LastTick()
		ts := last.T
		if ts.IsZero() {
			Observe(ctx, "%s: no tick yet", expr)
			return false, nil
		}
		v, present, err := m.engine.Value(ctx, expr, ts)
		if err != nil {
			return false, err
		}
		if present {
			Observe(ctx, "%s = %g at %s", expr, v, ts.UTC().Format(time.RFC3339))
		} else {
			Observe(ctx, "%s empty (absent) at %s", expr, ts.UTC().Format(time.RFC3339))
		}
		return pred(v, present), nil
	}
}

// ExprTrue is a Condition that holds when expr returns anything, the way an
// alerting rule's expression is true (e.g. `x > 0 and y == 0`).
func (m *Monitor) ExprTrue(expr string) Condition {
	return m.ValueCond(expr, func(_ float64, present bool) bool { return present })
}

// ExprFalse holds when expr returns nothing.
func (m *Monitor) ExprFalse(expr string) Condition {
	return m.ValueCond(expr, func(_ float64, present bool) bool { return !present })
}
