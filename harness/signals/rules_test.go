package signals

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An alias map (recording rules) and triggers (alerting rules) in the shape
// the harness ships, with production windows and for: durations.
const aliasRules = `groups:
  - name: pocketbrain-aliases
    rules:
      - record: invalidClerkConfig
        expr: pocketbrain_worker_reliability_auth_config_missing_clerk_config + pocketbrain_worker_reliability_auth_config_partial_clerk_config
      - record: queue_overflow_events
        expr: sync_queue_block_events
`

const triggerRules = `groups:
  - name: pocketbrain-rollback-triggers
    rules:
      - alert: QueueNonRecovery
        expr: increase(queue_overflow_events[15m]) >= 5 and increase(sync_queue_recovery_events[15m]) == 0
        labels:
          severity: rollback
      - alert: WorkerConfigRegression
        expr: increase(invalidClerkConfig[15m]) > 0
        for: 5m
        annotations:
          summary: "invalid Clerk config grows ({{ $value }})"
`

func parseRules(t *testing.T, opts []RuleOption, files ...RuleFile) *Rules {
	t.Helper()
	r, err := ParseRuleFiles(files, opts...)
	require.NoError(t, err)
	return r
}

func TestLoadRuleFilesFromDiskAndInfo(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "aliases.yml"), filepath.Join(dir, "triggers.yml")
	require.NoError(t, os.WriteFile(a, []byte(aliasRules), 0o600))
	require.NoError(t, os.WriteFile(b, []byte(triggerRules), 0o600))
	r, err := LoadRuleFiles([]string{a, b}, WithForScale(1.0/60))
	require.NoError(t, err)

	infos := r.Rules()
	require.Len(t, infos, 4)
	assert.Equal(t, RecordingRule, infos[0].Kind)
	assert.Equal(t, "invalidClerkConfig", infos[0].Name)
	assert.Equal(t, a+":4", infos[0].Location())
	assert.Equal(t, []string{
		"pocketbrain_worker_reliability_auth_config_missing_clerk_config",
		"pocketbrain_worker_reliability_auth_config_partial_clerk_config",
	}, infos[0].Metrics)

	wc, ok := r.Rule("WorkerConfigRegression")
	require.True(t, ok)
	assert.Equal(t, b+":8", wc.Location())
	assert.Equal(t, 5*time.Minute, wc.For)
	assert.Equal(t, 5*time.Second, wc.EffectiveFor, "for: scaled by 1/60")
	assert.Equal(t, "increase(invalidClerkConfig[15m]) > 0", wc.Expr)
	assert.Equal(t, []string{"invalidClerkConfig"}, wc.Metrics)

	qn, _ := r.Rule("QueueNonRecovery")
	assert.Equal(t, []string{"queue_overflow_events", "sync_queue_recovery_events"}, qn.Metrics)
	assert.Equal(t, map[string]string{"severity": "rollback"}, qn.Labels)

	_, err = LoadRuleFiles([]string{filepath.Join(dir, "missing.yml")})
	require.ErrorContains(t, err, "missing.yml")
}

func TestMalformedRulesNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{
			name: "bad PromQL",
			content: `groups:
  - name: g
    rules:
      - alert: Fine
        expr: up == 0
      - alert: Broken
        expr: increase(sync_queue_block_events[15m) >= 5
`,
			want: []string{"triggers.yml:7:", `"Broken"`, "could not parse expression", "fix: correct the PromQL"},
		},
		{
			name: "bad YAML",
			content: `groups:
  - name: g
    rules:
      - alert: Broken
        expr: up == 0
       for: 5m
`,
			// yaml.v3 (and so promtool) reports the line of the enclosing block.
			want: []string{"triggers.yml:3:", "yaml", "fix: correct the YAML"},
		},
		{
			name: "unknown field",
			content: `groups:
  - name: g
    rules:
      - alert: Broken
        expr: up == 0
        fore: 5m
`,
			want: []string{"triggers.yml:6:", "fore", "misspelt field"},
		},
		{
			name: "invalid label name has no node in rulefmt; the rule's line is used",
			content: `groups:
  - name: g
    rules:
      - alert: Fine
        expr: up == 0
      - alert: Broken
        expr: up == 0
        labels:
          bad-label: x
`,
			want: []string{"triggers.yml:6:", "invalid label name", "[a-zA-Z_:]"},
		},
		{
			name: "UTF-8 record name is not valid in Prometheus 2.x",
			content: `groups:
  - name: g
    rules:
      - record: queue.overflow
        expr: up
`,
			want: []string{"triggers.yml:4:", "invalid recording rule name"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRuleFiles([]RuleFile{{Name: "rules/triggers.yml", Content: []byte(tc.content)}})
			require.Error(t, err)
			t.Log(err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := ParseRuleFiles(nil, WithForScale(0))
	require.ErrorContains(t, err, "positive")
}

// feed appends the worker's clerk counters and the queue counters at second s.
func feed(t *testing.T, s *Store, sec int, missingClerk, blockEvents float64) {
	w := []string{"job", "worker", "instance", "worker"}
	c := []string{"job", "clients", "instance", "clients", "client", "c01"}
	mustAppend(t, s, lbl("pocketbrain_worker_reliability_auth_config_missing_clerk_config", w...), at(sec), missingClerk)
	mustAppend(t, s, lbl("pocketbrain_worker_reliability_auth_config_partial_clerk_config", w...), at(sec), 0)
	mustAppend(t, s, lbl("sync_queue_block_events", c...), at(sec), blockEvents)
	mustAppend(t, s, lbl("sync_queue_recovery_events", c...), at(sec), 0)
}

func TestForSemanticsScaled(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	r := parseRules(t, []RuleOption{WithForScale(1.0 / 60)},
		RuleFile{Name: "aliases.yml", Content: []byte(aliasRules)},
		RuleFile{Name: "triggers.yml", Content: []byte(triggerRules)})

	assert.Equal(t, AlertUnknown, r.State("WorkerConfigRegression"), "not evaluated yet")
	// Steady state: counters at 0, nothing holds.
	for sec := 0; sec < 10; sec++ {
		feed(t, s, sec, 0, 0)
		require.NoError(t, r.Eval(ctx, e, at(sec)))
	}
	assert.Equal(t, AlertInactive, r.State("WorkerConfigRegression"))
	assert.False(t, r.Firing("QueueNonRecovery"))

	// From second 10 the counter grows: pending at 10, firing once 5s (5m/60) have passed.
	for sec := 10; sec <= 16; sec++ {
		feed(t, s, sec, float64(sec-9), 0)
		require.NoError(t, r.Eval(ctx, e, at(sec)))
		st, ok := r.Alert("WorkerConfigRegression")
		require.True(t, ok)
		if sec < 15 {
			assert.Equal(t, AlertPending, st.State, "second %d", sec)
		} else {
			assert.Equal(t, AlertFiring, st.State, "second %d", sec)
			assert.Equal(t, at(15), st.FiredAt)
		}
		assert.Equal(t, at(10), st.ActiveSince)
		assert.True(t, st.HasValue)
		assert.Greater(t, st.LastValue, 0.0)
	}
	st, _ := r.Alert("WorkerConfigRegression")
	require.Len(t, st.Instances, 1)
	assert.Equal(t, "worker", st.Instances[0].Labels.Get("job"))
	assert.Equal(t, "invalid Clerk config grows (7)", st.Instances[0].Annotations.Get("summary"), "annotation templates are expanded")

	// The recording rule's output is in the store, usable by queries.
	v, ok, err := e.Value(ctx, `invalidClerkConfig`, at(16))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 7.0, v)

	// ALERTS series: pending from 10 to 14, then firing; pending ends with a staleness marker.
	alerts := s.Range(at(0), at(16), labels.MustNewMatcher(labels.MatchEqual, "alertname", "WorkerConfigRegression"))
	require.Len(t, alerts, 2)
	assert.Equal(t, "firing", alerts[0].Labels.Get("alertstate"))
	assert.Equal(t, at(15), alerts[0].Points[0].T)
	assert.Equal(t, "pending", alerts[1].Labels.Get("alertstate"))
	require.Len(t, alerts[1].Points, 6)
	assert.True(t, IsStale(alerts[1].Points[5].V))

	tr := r.Transitions()
	var wc []AlertTransition
	for _, x := range tr {
		if x.Alert == "WorkerConfigRegression" {
			wc = append(wc, x)
		}
	}
	require.Len(t, wc, 3)
	assert.Equal(t, []AlertState{AlertInactive, AlertPending, AlertFiring}, []AlertState{wc[0].To, wc[1].To, wc[2].To})
	assert.Equal(t, at(15), wc[2].T)

	// The condition stops holding: the alert resolves at once (no keep_firing_for).
	for sec := 17; sec < 17+16*60; sec += 60 {
		feed(t, s, sec, 7, 0)
	}
	require.NoError(t, r.Eval(ctx, e, at(17+15*60+1)))
	assert.Equal(t, AlertInactive, r.State("WorkerConfigRegression"))
}

func TestForUnscaledNeedsTheFullHold(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	r := parseRules(t, nil,
		RuleFile{Name: "aliases.yml", Content: []byte(aliasRules)},
		RuleFile{Name: "triggers.yml", Content: []byte(triggerRules)})
	wc, _ := r.Rule("WorkerConfigRegression")
	assert.Equal(t, wc.For, wc.EffectiveFor)
	// One sample every 10 s for 6 minutes, the counter growing throughout.
	for sec := 0; sec <= 360; sec += 10 {
		feed(t, s, sec, float64(sec/10), 0)
		require.NoError(t, r.Eval(ctx, e, at(sec)))
		want := AlertPending
		if sec == 0 {
			want = AlertInactive
		}
		if sec >= 10+300 { // active from 10 s (increase needs two samples), firing 5m later
			want = AlertFiring
		}
		require.Equal(t, want, r.State("WorkerConfigRegression"), "second %d", sec)
	}
}

func TestQueueNonRecoveryWithoutFor(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	r := parseRules(t, nil,
		RuleFile{Name: "aliases.yml", Content: []byte(aliasRules)},
		RuleFile{Name: "triggers.yml", Content: []byte(triggerRules)})
	for sec := 0; sec <= 20; sec++ {
		feed(t, s, sec, 0, float64(sec/4)) // 5 block events by second 20
		require.NoError(t, r.Eval(ctx, e, at(sec)))
	}
	assert.True(t, r.Firing("QueueNonRecovery"), "no for: fires at the first true evaluation")
	st, _ := r.Alert("QueueNonRecovery")
	assert.Equal(t, "rollback", st.Instances[0].Labels.Get("severity"))
	assert.Equal(t, "c01", st.Instances[0].Labels.Get("client"))
}

func TestKeepFiringFor(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	r := parseRules(t, []RuleOption{WithForScale(0.5)}, RuleFile{Name: "k.yml", Content: []byte(`groups:
  - name: g
    rules:
      - alert: Flappy
        expr: x > 0
        for: 2s
        keep_firing_for: 4s
`)})
	info, _ := r.Rule("Flappy")
	assert.Equal(t, 1*time.Second, info.EffectiveFor)
	assert.Equal(t, 2*time.Second, info.EffectiveKeepFiringFor)
	vals := []float64{1, 1, 0, 0, 0, 0}
	want := []AlertState{AlertPending, AlertFiring, AlertFiring, AlertFiring, AlertInactive, AlertInactive}
	for sec, v := range vals {
		mustAppend(t, s, lbl("x"), at(sec), v)
		require.NoError(t, r.Eval(ctx, e, at(sec)))
		assert.Equal(t, want[sec], r.State("Flappy"), "second %d", sec)
	}
}

func TestEvalErrorNamesRuleAndKeepsGoing(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	r := parseRules(t, nil, RuleFile{Name: "r.yml", Content: []byte(`groups:
  - name: g
    rules:
      - record: dup
        expr: label_replace(x, "k", "same", "", "")
      - alert: Other
        expr: y > 0
`)})
	mustAppend(t, s, lbl("x", "k", "a"), at(0), 1)
	mustAppend(t, s, lbl("x", "k", "b"), at(0), 1)
	mustAppend(t, s, lbl("y"), at(0), 1)
	err := r.Eval(context.Background(), e, at(0))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `r.yml:4: recording rule "dup"`)
	assert.True(t, r.Firing("Other"), "one failing rule does not stop the others")
}

func TestValidateAgainst(t *testing.T) {
	r := parseRules(t, nil,
		RuleFile{Name: "aliases.yml", Content: []byte(aliasRules)},
		RuleFile{Name: "triggers.yml", Content: []byte(triggerRules)})
	exposed := map[string]struct{}{
		"pocketbrain_worker_reliability_auth_config_missing_clerk_config": {},
		"pocketbrain_worker_reliability_auth_config_partial_clerk_config": {},
		"sync_queue_block_events": {},
	}
	err := r.ValidateAgainst(exposed)
	require.Error(t, err)
	t.Log(err)
	msg := err.Error()
	assert.Contains(t, msg, "1 series")
	assert.Contains(t, msg, `triggers.yml:4: alerting rule "QueueNonRecovery"`)
	assert.Contains(t, msg, "sync_queue_recovery_events")
	assert.NotContains(t, msg, "queue_overflow_events,", "recording-rule outputs count as exposed")
	assert.Contains(t, msg, "fix:")

	exposed["sync_queue_recovery_events"] = struct{}{}
	require.NoError(t, r.ValidateAgainst(exposed))

	delete(exposed, "sync_queue_block_events")
	delete(exposed, "sync_queue_recovery_events")
	err = r.ValidateAgainst(exposed)
	require.ErrorContains(t, err, "2 series")
	assert.Contains(t, err.Error(), `aliases.yml:6: recording rule "queue_overflow_events"`)
}

func TestLongestWindowIsTheLongestScaledRange(t *testing.T) {
	files := []RuleFile{{Name: "aliases.yml", Content: []byte(aliasRules)}, {Name: "triggers.yml", Content: []byte(triggerRules)}}
	assert.Equal(t, 15*time.Minute, parseRules(t, nil, files...).LongestWindow())
	assert.Equal(t, 30*time.Second, parseRules(t, []RuleOption{WithWindowScale(1.0 / 30)}, files...).LongestWindow())

	d, err := LongestRange("rate(a[5m])", "max_over_time(rate(b[1m])[20m:1m])", "c")
	require.NoError(t, err)
	assert.Equal(t, 20*time.Minute, d)
	_, err = LongestRange("rate(a[5m]")
	assert.ErrorContains(t, err, `expression "rate(a[5m]"`)
}
