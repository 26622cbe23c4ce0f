package signals

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// A fast profile scales range windows too: a [15m] "sustained increase" must resolve
// within the scaled window after the counter stops growing, not 15 minutes later.
func TestWindowScaleResolvesSustainedIncrease(t *testing.T) {
	rules, err := ParseRuleFiles([]RuleFile{{Name: "a.yml", Content: []byte(`groups:
- name: g
  rules:
  - alert: Sustained
    expr: sum(increase(errors_total[15m])) > 0
    for: 5m
`)}}, WithForScale(1.0/30), WithWindowScale(1.0/30))
	require.NoError(t, err)
	info, ok := rules.Rule("Sustained")
	require.True(t, ok)
	require.Equal(t, "sum(increase(errors_total[30s])) > 0", info.EffectiveExpr)
	require.Equal(t, 10*time.Second, info.EffectiveFor)

	store := NewStore()
	eng := NewEngine(store)
	t0 := time.Unix(1_700_000_000, 0)
	ls := labels.FromStrings("__name__", "errors_total", "job", "w")
	ctx := context.Background()
	v := 0.0
	var firedAt, resolvedAt time.Duration = -1, -1
	for i := 0; i <= 90; i++ {
		ts := t0.Add(time.Duration(i) * time.Second)
		if i >= 10 && i < 40 {
			v++ // the counter grows for 30 s, then stops
		}
		require.NoError(t, store.Append(ls, ts, v))
		require.NoError(t, rules.Eval(ctx, eng, ts))
		firing := rules.Firing("Sustained")
		if firing && firedAt < 0 {
			firedAt = time.Duration(i) * time.Second
		}
		if !firing && firedAt >= 0 && resolvedAt < 0 {
			resolvedAt = time.Duration(i) * time.Second
		}
	}
	require.InDelta(t, 21, firedAt.Seconds(), 2, "fires after the scaled for: (10 s) of growth")
	require.Greater(t, resolvedAt, 40*time.Second)
	require.LessOrEqual(t, resolvedAt, 72*time.Second, "resolves once the scaled 30 s window no longer sees growth")
}

func TestWindowScaleRefusesNonsense(t *testing.T) {
	_, err := ParseRuleFiles(nil, WithWindowScale(0))
	require.ErrorContains(t, err, "window-scale")
}
