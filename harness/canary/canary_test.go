package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Production-timing rules in the shape the program ships: a recording rule, a sustained
// increase over [15m] and a level held for 5m.
const prodRules = `groups:
- name: aliases
  rules:
  - record: errors_level
    expr: sum(errors_total)
- name: triggers
  rules:
  - alert: ErrorsIncrease
    expr: sum(increase(errors_total[15m])) > 0
  - alert: ErrorsHigh
    expr: errors_level > 100
    for: 5m
`

func parseRules(t *testing.T, src string) *signals.Rules {
	t.Helper()
	r, err := signals.ParseRuleFiles([]signals.RuleFile{{Name: "rules.yml", Content: []byte(src)}})
	require.NoError(t, err)
	return r
}

var (
	t0      = time.Unix(1_700_000_000, 0)
	errs    = labels.FromStrings("__name__", "errors_total", "job", "server")
	level   = labels.FromStrings("__name__", "errors_level")
	alertsS = labels.FromStrings("__name__", "ALERTS", "alertname", "ErrorsIncrease", "alertstate", "firing")
)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// The evaluator's windows start with Start: a fault before the canary (the counter grew
// during an earlier row) cannot hold its [15m] window true, although the run's own store
// still sees it; a growth during the canary is a violation.
func TestEvaluatorWindowsStartWithTheCanary(t *testing.T) {
	ctx := context.Background()
	source := signals.NewStore()
	v := 0.0
	for s := 0; s <= 120; s++ {
		if s >= 10 && s < 60 {
			v++ // an earlier row's fault
		}
		require.NoError(t, source.Append(errs, at(s), v))
		// Series a rule set produces in the run's store: never copied.
		require.NoError(t, source.Append(level, at(s), 1000))
		require.NoError(t, source.Append(alertsS, at(s), 1))
	}
	// On the run's store the production window still sees the earlier growth.
	runEng := signals.NewEngine(source)
	_, present, err := runEng.Value(ctx, "sum(increase(errors_total[15m])) > 0", at(120))
	require.NoError(t, err)
	require.True(t, present, "the scenario needs the run's window to be true")

	ev := NewEvaluator(parseRules(t, prodRules), source, nil)
	assert.ElementsMatch(t, []string{"ErrorsIncrease", "ErrorsHigh"}, ev.AlertNames())
	ev.Start(at(100))
	for s := 101; s <= 120; s++ {
		ev.Tick(ctx, at(s))
	}
	r := ev.Result()
	assert.Empty(t, r.Violations, "nothing grew during the canary")
	assert.Equal(t, 20, r.Evals)
	assert.Zero(t, r.EvalErrs)
	// Only the scraped series were copied, from the canary on.
	_, present, err = ev.Engine().Value(ctx, `count(ALERTS{alertstate="firing"})`, at(120))
	require.NoError(t, err)
	assert.False(t, present, "the run's ALERTS are not copied")
	lvl, present, err := ev.Engine().Value(ctx, "errors_level", at(120))
	require.NoError(t, err)
	require.True(t, present, "the evaluator records its own errors_level")
	assert.Equal(t, 50.0, lvl, "recorded from the copied counter, not the run's 1000")
	pts := ev.Engine().Store().Series(errs, t0, at(200))
	require.NotEmpty(t, pts)
	assert.True(t, at(101).Equal(pts[0].T), "samples before Start are never copied: first %s", pts[0].T)

	// The counter grows during the canary: ErrorsIncrease fires, at every tick after.
	for s := 121; s <= 125; s++ {
		require.NoError(t, source.Append(errs, at(s), v+float64(s-120)))
		ev.Tick(ctx, at(s))
	}
	r = ev.Result()
	require.NotEmpty(t, r.Violations)
	assert.True(t, strings.HasPrefix(r.Violations[0], "ErrorsIncrease firing at "+at(121).UTC().Format(time.RFC3339)+" (value "), r.Violations[0])
	assert.Equal(t, map[string]bool{"ErrorsIncrease": true}, r.Fired)

	traces := ev.Traces(ctx, at(101), at(125), time.Second)
	require.Len(t, traces, 2)
	byName := map[string]evidence.TriggerTrace{}
	for _, tr := range traces {
		byName[tr.Alert] = tr
	}
	inc := byName["ErrorsIncrease"+TraceSuffix]
	assert.True(t, inc.EverFired)
	assert.Equal(t, "sum(increase(errors_total[15m])) > 0", inc.Expr)
	assert.NotEmpty(t, inc.Points)
	assert.False(t, byName["ErrorsHigh"+TraceSuffix].EverFired)
}

// The run's recorded series are not copied either.
func TestEvaluatorSkipsTheRunsRecordedSeries(t *testing.T) {
	run := parseRules(t, "groups:\n- name: g\n  rules:\n  - record: run_only\n    expr: sum(errors_total)\n")
	source := signals.NewStore()
	require.NoError(t, source.Append(labels.FromStrings("__name__", "run_only"), at(1), 5))
	require.NoError(t, source.Append(errs, at(1), 5))
	ev := NewEvaluator(parseRules(t, prodRules), source, run)
	ev.Start(t0)
	ev.Tick(context.Background(), at(1))
	names := ev.Engine().Store().MetricNames()
	assert.Contains(t, names, "errors_total")
	assert.NotContains(t, names, "run_only")
}

type fakeTicker struct {
	mu       sync.Mutex
	t        time.Time
	interval time.Duration
}

func (f *fakeTicker) LastTick() (signals.TickResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return signals.TickResult{T: f.t}, nil
}
func (f *fakeTicker) Interval() time.Duration { return f.interval }
func (f *fakeTicker) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t
}

// Run evaluates once per new tick of the monitor, none before it started.
func TestEvaluatorRunFollowsTheMonitor(t *testing.T) {
	ft := &fakeTicker{t: time.Now().Add(-time.Minute), interval: 20 * time.Millisecond}
	ev := NewEvaluator(parseRules(t, prodRules), signals.NewStore(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(ctx, ft) }()
	time.Sleep(5 * ft.interval)
	assert.Zero(t, ev.Result().Evals, "a tick from before the canary is not evaluated")
	for i := 1; i <= 3; i++ {
		ft.set(time.Now())
		require.Eventually(t, func() bool { return ev.Result().Evals == i }, 2*time.Second, 5*time.Millisecond)
		time.Sleep(3 * ft.interval) // the same tick again: no second evaluation
		assert.Equal(t, i, ev.Result().Evals)
	}
	cancel()
	<-done
}

func TestSettled(t *testing.T) {
	ctx := context.Background()
	store := signals.NewStore()
	eng := signals.NewEngine(store)
	ft := &fakeTicker{interval: time.Second}
	quiet := true
	cond := Settled(func(context.Context) (bool, error) { return quiet, nil }, ft, eng, "10")
	blocked := labels.FromStrings("__name__", "sync_queue_blocked", "client", "c01")
	depth := labels.FromStrings("__name__", "sync_queue_depth", "client", "c01")
	tick := func(s int, b, d float64) bool {
		require.NoError(t, store.Append(blocked, at(s), b))
		require.NoError(t, store.Append(depth, at(s), d))
		ft.set(at(s))
		ok, err := cond(ctx)
		require.NoError(t, err)
		return ok
	}
	assert.False(t, tick(1, 0, 3))
	ok, _ := cond(ctx)
	assert.False(t, ok, "the same tick does not count twice")
	assert.False(t, tick(2, 0, 3))
	assert.False(t, tick(3, 0, 11), "a queue deeper than its resume mark resets the streak")
	assert.False(t, tick(4, 0, 10))
	assert.False(t, tick(5, 0, 2))
	assert.True(t, tick(6, 0, 2), "SettleTicks settled ticks in a row")
	quiet = false
	assert.False(t, tick(7, 0, 2), "a trigger not quiet resets it")
	quiet = true
	assert.False(t, tick(8, 1, 2), "a blocked client resets it")

	boom := errors.New("boom")
	_, err := Settled(func(context.Context) (bool, error) { return false, boom }, ft, eng, "10")(ctx)
	assert.ErrorIs(t, err, boom)
}

func TestFiredSince(t *testing.T) {
	trs := []signals.AlertTransition{
		{Alert: "Old", T: at(1), To: signals.AlertFiring, Value: 1},
		{Alert: "Pending", T: at(5), To: signals.AlertPending, Value: 1},
		{Alert: "New", T: at(5), To: signals.AlertFiring, Value: 2.5},
	}
	assert.Equal(t, []string{"before the window, while the stack settled after the deploy: New fired at " + at(5).UTC().Format(time.RFC3339) + " (value 2.5)"}, FiredSince(trs, at(5)))
}

func TestBudgets(t *testing.T) {
	assert.Equal(t, 20*time.Minute+time.Minute, QuietBudget(1, time.Minute))
	assert.Equal(t, 40*time.Second+time.Minute, QuietBudget(1.0/30, time.Minute))
	assert.Equal(t, 40*time.Second+time.Minute+30*time.Minute+5*time.Minute, NodeTimeout(1.0/30, time.Minute, 30*time.Minute))
}

func TestJudge(t *testing.T) {
	quietRun := evidence.Window{Pass: true, Triggers: make([]evidence.TriggerTrace, 7)}
	v := verdict{run: quietRun, span: 20 * time.Second, scaleNote: "×1/30", prod: Result{Evals: 19}, prodAlerts: 7,
		load: load{secs: 20, pushed: 123.4, present: true}, notes: []string{"10 clients under load"}, quietWait: 3400 * time.Millisecond}
	pass, detail := v.judge()
	assert.True(t, pass)
	assert.Equal(t, "run's rules: 7 rollback triggers quiet (never pending or firing) at every tick for 20s (×1/30); "+
		"rule files at production timing (for: and [15m] windows as written, over the canary's own samples): 7 alerts quiet at all 19 evaluations; "+
		"10 clients under load; 123 mutations acknowledged by the server during the window; "+
		"the window opened after 3s, once every trigger was quiet and every client queue back at its steady depth", detail)

	// Each part fails on its own.
	for name, edit := range map[string]func(*verdict){
		"run":       func(v *verdict) { v.run = evidence.Window{Pass: false, Detail: "X firing"} },
		"prod":      func(v *verdict) { v.prod.Violations = []string{"A firing at t"} },
		"eval errs": func(v *verdict) { v.prod.EvalErrs, v.prod.LastErr = 2, "bad query" },
		"no load":   func(v *verdict) { v.load.pushed = 0 },
		"load err":  func(v *verdict) { v.load.err = errors.New("no series") },
		"absent":    func(v *verdict) { v.load.present = false },
	} {
		w := v
		edit(&w)
		pass, detail := w.judge()
		assert.False(t, pass, name)
		switch name {
		case "run":
			assert.True(t, strings.HasPrefix(detail, "run's rules: X firing; "), detail)
		case "prod":
			assert.Contains(t, detail, "rule files at production timing: A firing at t; ")
		case "eval errs":
			assert.Contains(t, detail, "2 production-timing evaluations failed (last: bad query)")
		default:
			assert.NotContains(t, detail, "mutations acknowledged", name)
			assert.Contains(t, detail, "no steady load: sum(increase(pocketbrain_sync_push_mutations_total[20s])) = ")
			assert.Less(t, strings.Index(detail, "no steady load"), strings.Index(detail, "10 clients under load"), "as before: the load problem precedes the notes")
		}
	}

	// At most ten violations are quoted.
	w := v
	for i := range 12 {
		w.prod.Violations = append(w.prod.Violations, fmt.Sprintf("A%d firing", i))
	}
	_, detail = w.judge()
	assert.Contains(t, detail, "A9 firing; … and 2 more; ")
	assert.NotContains(t, detail, "A10 firing")
	assert.Len(t, w.prod.Violations, 12, "the result is not modified")
}
