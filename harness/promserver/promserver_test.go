package promserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pocketbrain/chaos/harness/signals"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestAgree(t *testing.T) {
	from, to, tol := at(0), at(60), 4*time.Second
	alerts := []string{"A", "B", "C", "D", "E"}
	emb := map[string][]time.Time{
		"A": {at(20)},  // both, 1.5 s apart
		"B": {at(30)},  // server never
		"D": {at(40)},  // server 6 s late
		"E": {at(-10)}, // before the span, in both: not counted
	}
	srv := map[string][]time.Time{
		"A": {at(21.5)},
		"C": {at(50)},
		"D": {at(46)},
		"E": {at(-9)},
	}
	a := Agree(alerts, nil, History{Fired: emb}, History{Fired: srv}, from, to, tol)
	assert.False(t, a.Agree)
	got := map[string]bool{}
	for _, x := range a.Alerts {
		got[x.Alert] = x.Agree
	}
	assert.Equal(t, map[string]bool{"A": true, "B": false, "C": false, "D": false, "E": true}, got)
	assert.Contains(t, a.Detail, "B fired at 12:00:30.000 in the embedded engine, never in the server")
	assert.Contains(t, a.Detail, "C fired at 12:00:50.000 in the server, never in the embedded engine")
	assert.Contains(t, a.Detail, "D fired at 12:00:40.000 in the embedded engine and at 12:00:46.000 in the server: 6s apart, more than 4s")
	require.NotNil(t, a.Alerts[0].Delta)
	assert.Equal(t, 1500*time.Millisecond, a.Alerts[0].Delta.Duration)
}

func TestAgreeAtTheEdges(t *testing.T) {
	from, to, tol := at(0), at(60), 4*time.Second
	// The engine fired just before the span, the server just after it began; the engine
	// fired at the end, the server after it (within tol): both agree.
	a := Agree([]string{"A", "B"}, nil,
		History{Fired: map[string][]time.Time{"A": {at(-1)}, "B": {at(59)}}},
		History{Fired: map[string][]time.Time{"A": {at(1)}, "B": {at(62)}}}, from, to, tol)
	assert.True(t, a.Agree, a.Detail)
	assert.Contains(t, a.Detail, "agree on 2 alerts")
	q := Agree([]string{"A"}, nil, History{}, History{}, from, to, tol)
	assert.True(t, q.Agree)
	assert.Contains(t, q.Detail, "none fired; 1 quiet in both")
}

// RG-deploy-drift-binary in CI: the server's redeploy left /ready failing about as long
// as ReadinessRegression's 2 s for:; the server's scrapes saw it fail for 3 evaluations
// and fired, the embedded engine's for 2 and did not. That is the sampling phase at the
// for:'s edge, not a disagreement; a pending run well short of the for: still is one.
func TestAgreeAtTheForEdge(t *testing.T) {
	from, to, tol := at(0), at(60), 4*time.Second
	holds := map[string]time.Duration{"Ready": 2 * time.Second, "Queue": 10 * time.Second, "NoFor": 0}
	srv := History{Fired: map[string][]time.Time{"Ready": {at(12)}, "Queue": {at(30)}, "NoFor": {at(40)}}}
	emb := History{Pending: map[string][]Run{
		"Ready": {{From: at(10.3), Until: at(12.3)}}, // began with the server's, held 2 s
		"Queue": {{From: at(20), Until: at(21)}},     // 1 s of a 10 s for:
	}}
	a := Agree([]string{"Ready", "Queue", "NoFor"}, holds, emb, srv, from, to, tol)
	assert.False(t, a.Agree)
	got := map[string]bool{}
	for _, x := range a.Alerts {
		got[x.Alert] = x.Agree
	}
	assert.Equal(t, map[string]bool{"Ready": true, "Queue": false, "NoFor": false}, got)
	assert.Equal(t, "fired at 12:00:12.000 in the server; the embedded engine held it pending 2s of its 2s for:", a.Alerts[0].AtTheEdge)
	assert.Contains(t, a.Detail, "Queue fired at 12:00:30.000 in the server, never in the embedded engine")
	assert.NotContains(t, a.Detail, "Ready")

	// The other way round, and the run must begin with the other side's (not a pending
	// run of its whole length an hour away).
	ok := Agree([]string{"Ready"}, holds, History{Fired: map[string][]time.Time{"Ready": {at(12)}}},
		History{Pending: map[string][]Run{"Ready": {{From: at(9.5), Until: at(11)}}}}, from, to, tol)
	assert.True(t, ok.Agree, ok.Detail)
	assert.Contains(t, ok.Detail, "at the for: edge: Ready fired at 12:00:12.000 in the embedded engine; the server held it pending 1.5s of its 2s for:")
	far := Agree([]string{"Ready"}, holds, History{Fired: map[string][]time.Time{"Ready": {at(50)}}},
		History{Pending: map[string][]Run{"Ready": {{From: at(9.5), Until: at(11.5)}}}}, from, to, tol)
	assert.False(t, far.Agree, far.Detail)
}

func TestRunsOfGroupsSamples(t *testing.T) {
	ts := []time.Time{at(5), at(-2), at(-1), at(0), at(1), at(10), at(11)}
	assert.Equal(t, []Run{{From: at(-2), Until: at(2)}, {From: at(5), Until: at(6)}, {From: at(10), Until: at(12)}},
		runsOf(ts, 1500*time.Millisecond, time.Second))
}

func TestEmbeddedHistory(t *testing.T) {
	trs := []signals.AlertTransition{
		{Alert: "A", T: at(1), To: signals.AlertPending},
		{Alert: "A", T: at(3), To: signals.AlertFiring},
		{Alert: "A", T: at(8), To: signals.AlertInactive},
		{Alert: "B", T: at(4), To: signals.AlertPending},
		{Alert: "B", T: at(5), To: signals.AlertInactive},
		{Alert: "B", T: at(7), To: signals.AlertPending},
	}
	h := EmbeddedHistory(trs, at(9))
	assert.Equal(t, map[string][]time.Time{"A": {at(3)}}, h.Fired)
	assert.Equal(t, map[string][]Run{
		"A": {{From: at(1), Until: at(3)}},
		"B": {{From: at(4), Until: at(5)}, {From: at(7), Until: at(9)}},
	}, h.Pending)
}

// The rule file the server loads is one Prometheus 2.42 accepts, with the scaled
// windows and for: the embedded engine evaluates.
func TestRuleFileLoadsInPromtool(t *testing.T) {
	root, err := filepath.Abs("../../program/rules")
	require.NoError(t, err)
	paths, _ := filepath.Glob(filepath.Join(root, "*.yml"))
	require.NotEmpty(t, paths)
	r, err := signals.LoadRuleFiles(paths, signals.WithForScale(1.0/30), signals.WithWindowScale(1.0/30))
	require.NoError(t, err)
	b, err := RuleFile(r, false)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "[15m]", "windows are scaled")
	promtoolCheck(t, b)

	// One group: every rule, recording rules first, in the engine's order.
	b, err = RuleFile(r, true)
	require.NoError(t, err)
	var rg rulefmt.RuleGroups
	require.NoError(t, yaml.Unmarshal(b, &rg))
	require.Len(t, rg.Groups, 1)
	var names []string
	for _, rl := range rg.Groups[0].Rules {
		names = append(names, rl.Record+rl.Alert)
	}
	// The engine's order, read from the files themselves: every recording rule, file by
	// file in rule order, then every alert the same way (signals.Rules.Eval).
	var records, alerts []string
	for _, p := range paths {
		src, err := os.ReadFile(p)
		require.NoError(t, err)
		var f rulefmt.RuleGroups
		require.NoError(t, yaml.Unmarshal(src, &f))
		for _, g := range f.Groups {
			for _, rl := range g.Rules {
				if rl.Record != "" {
					records = append(records, rl.Record)
				} else {
					alerts = append(alerts, rl.Alert)
				}
			}
		}
	}
	require.NotEmpty(t, records)
	require.NotEmpty(t, alerts)
	assert.Equal(t, append(records, alerts...), names)
	promtoolCheck(t, b)
}

func promtoolCheck(t *testing.T, b []byte) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian's prometheus package)")
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(f, b, 0o600))
	out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "SUCCESS")
}

func TestConfigFileDropsHarnessAlertsAndRecordings(t *testing.T) {
	b, err := ConfigFile(Config{Scrape: "127.0.0.1:4000", Interval: time.Second, Drop: []string{"ALERTS", "job:x:rate5m"}})
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{"honor_labels: true", "regex: ALERTS|job:x:rate5m", "action: drop", "127.0.0.1:4000", "evaluation_interval: 1s"} {
		assert.True(t, strings.Contains(s, want), "config lacks %q:\n%s", want, s)
	}
	_, err = ConfigFile(Config{Scrape: "nope", Interval: time.Second})
	assert.Error(t, err)
}
