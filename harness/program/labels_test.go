package program

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/env"
)

// realAlerts are the alerts of program/rules/alerts.yml (the rule loader is not
// needed to test the matrix side).
var realAlerts = map[string]bool{
	"LocalDurabilityRegression": true, "QueueNonRecovery": true, "WorkerConfigRoutingRegression": true,
	"SecretKVRegression": true, "ReadinessRegression": true, "DeployDrift": true,
}

// realRecorded are the records of program/rules/recording.yml.
var realRecorded = map[string]bool{
	"invalidClerkConfig": true, "invalidRotationSecret": true, "kvFailures": true, "kv_unavailable": true,
	"provider_network_error": true, "queue_overflow_events": true, "queue_overflow_blocked_mutations": true,
	"queue_overflow_recoveries": true,
}

// Issue 12 §3: a label matcher that matches no exposed value makes a selector empty, so
// a trigger over it reads quiet by absence. A row with probe="server_raedy" is refused
// at load, naming the row, the matcher, the known values and the fix.
func TestMatrixLabelTypoIsRefused(t *testing.T) {
	dir := copyProgram(t, func(m string) string {
		from := "      - min(probe_success{probe=\"server_ready\"}) == 0"
		require.Contains(t, m, from, "test fixture drifted from matrix.yaml")
		return strings.Replace(m, from, "      - min(probe_success{probe=\"server_raedy\"}) == 0", 1)
	})
	p, err := Load(dir)
	require.NoError(t, err)
	err = p.Validate(nil, realRecorded, realAlerts)
	require.Error(t, err)
	for _, w := range []string{
		MatrixFile + ":", "(row FM8-redis-down)",
		`matcher probe="server_raedy" matches no value a target exposes`,
		"the probe values probe_success carries are server_ready, worker_ready",
		`did you mean probe="server_ready"?`,
	} {
		require.Contains(t, err.Error(), w)
	}
	require.Equal(t, 1, strings.Count(err.Error(), `matcher probe="server_raedy"`), "one message per bad matcher:\n%s", err)

	// The defaults are every row's recovery: named once, as defaults.recover.
	dir = copyProgram(t, func(m string) string {
		return strings.Replace(m, `    - min(probe_success{probe="server_ready"}) == 1`, `    - min(probe_success{probe="worker_raedy"}) == 1`, 1)
	})
	p, err = Load(dir)
	require.NoError(t, err)
	err = p.Validate(nil, realRecorded, realAlerts)
	require.Error(t, err)
	require.Contains(t, err.Error(), MatrixFile+": defaults.recover:")
	require.Contains(t, err.Error(), `did you mean probe="worker_ready"?`)
	require.Equal(t, 1, strings.Count(err.Error(), `matcher probe="worker_raedy"`), "named once, not once per row:\n%s", err)
}

func TestLabelCheckExpressions(t *testing.T) {
	p, err := Load(programDir)
	require.NoError(t, err)
	lc := p.LabelCheck(nil, realAlerts)
	cases := []struct {
		expr string
		want []string // nil: accepted
	}{
		// Known values and shapes pass.
		{`min(probe_success{probe="server_ready"}) == 0`, nil},
		{`min by (probe) (probe_success{probe=~"server_ready|worker_ready"}) == 0`, nil},
		{`probe_success{probe=~"server_.*"}`, nil},
		{`sum(increase(ai_requests_total{code=~"504|503"}[30s])) > 0`, nil},
		{`sum(increase(sync_push_requests_total{code="error"}[30s])) > 0`, nil},
		{`up{job="server", instance="server"} == 0`, nil},
		{`up{job="server_ready"} == 0`, nil},
		{`sync_queue_depth{client="c01"}`, nil},
		{`toxiproxy_proxy_received_bytes_total{proxy="redis", direction="upstream"}`, nil},
		{`ALERTS{alertname="ReadinessRegression", alertstate="firing"}`, nil},
		{`{job="worker"}`, nil},
		// Labels the catalogue does not enumerate, and negative matchers, are not checked.
		{`pocketbrain_build_info{revision="0badc0ffee00-drift"}`, nil},
		{`probe_success{probe!="server_raedy"}`, nil},
		{`toxiproxy_proxy_sent_bytes_total{listener="0.0.0.0:1"}`, nil},
		// Refused, with the fix.
		{`probe_success{probe="server_raedy"}`, []string{`did you mean probe="server_ready"?`}},
		{`probe_success{probe=~"server_ready|worker_raedy"}`, []string{`has alternatives that match no value a target exposes ("worker_raedy")`, `did you mean probe=~"server_ready|worker_ready"?`}},
		{`probe_success{probe=~"serv_.*"}`, []string{`matches none of the values a target exposes`, "server_ready, worker_ready"}},
		{`probe_success{probe=""}`, []string{`an empty value selects probe_success series without probe`}},
		{`up{job="sever"}`, []string{`did you mean job="server"?`}},
		{`probe_success{job="server"}`, []string{`the job values probe_success carries are server_ready, worker_ready`, `use one of server_ready, worker_ready ("server" is a target, but probe_success does not come from it)`}},
		{`up{job="postgres"}`, []string{`use one of clients, release, server, server_ready, toxiproxy, vps_head, worker, worker_ready (the target names of targets.yaml; if "postgres" should be a target, add it there)`}},
		{`pocketbrain_worker_circuits_vps_open{instance="server"}`, []string{`the instance values pocketbrain_worker_circuits_vps_open carries are worker`}},
		{`sum(increase(ai_requests_total{code="50e"}[30s]))`, []string{`an HTTP status (200, 503, …) or error (no answer)`}},
		{`sum(increase(ai_requests_total{code=~"504|5o3"}[30s]))`, []string{`("5o3")`}},
		{`sync_queue_depth{client="c1"}`, []string{`a client id (c01, c02, …)`}},
		{`toxiproxy_proxy_sent_bytes_total{proxy="reddis"}`, []string{`did you mean proxy="redis"?`}},
		{`ALERTS{alertname="ReadinessRegresion"}`, []string{`did you mean alertname="ReadinessRegression"?`}},
		{`ALERTS{alertstate="fired"}`, []string{"pending", "firing"}},
		{`{probe="server_raedy"}`, []string{"the probe values any series carries are server_ready, worker_ready"}},
	}
	for _, c := range cases {
		got := lc.Expr(c.expr)
		if c.want == nil {
			require.Empty(t, got, c.expr)
			continue
		}
		require.Len(t, got, 1, c.expr)
		for _, w := range c.want {
			require.Contains(t, got[0], w, c.expr)
		}
	}
}

// The real program's matchers all match known values: it still loads and validates.
func TestRealProgramLabelsAreKnown(t *testing.T) {
	p, err := Load(programDir)
	require.NoError(t, err)
	lc := p.LabelCheck(nil, realAlerts)
	for _, r := range p.Matrix.Rows {
		for _, e := range r.Expressions(p.Matrix.Defaults.Recover) {
			require.Empty(t, lc.Expr(e), "row %s: %s", r.ID, e)
		}
	}
	require.NoError(t, p.Validate(nil, realRecorded, realAlerts))
}

// The catalogue's toxiproxy proxy values are the harness's edges.
func TestCatalogueProxyValuesAreTheEdges(t *testing.T) {
	p, err := Load(programDir)
	require.NoError(t, err)
	var got []string
	for _, tg := range p.Targets {
		for _, l := range tg.Labels {
			if tg.Role == env.Toxiproxy && l.Name == "proxy" {
				got = append(got, l.Values...)
			}
		}
	}
	var want []string
	for _, e := range env.Edges {
		want = append(want, e.Name)
	}
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got, "list every edge of harness/env as a proxy value in %s", TargetsFile)
}

func TestBadCatalogueLabels(t *testing.T) {
	anchor := "      - name: proxy\n"
	cases := []struct {
		name, entry string
		want        []string
	}{
		{"values and pattern", "      - {name: x, values: [a], pattern: a, means: an a}\n", []string{`labels[0] (x)`, "exactly one of values: (every value) or pattern:"}},
		{"neither", "      - {name: x}\n", []string{"exactly one of values:"}},
		{"bad pattern", "      - {name: x, pattern: \"a(\", means: an a}\n", []string{`pattern "a("`, "RE2"}},
		{"pattern without means", "      - {name: x, pattern: a}\n", []string{"a pattern needs means:"}},
		{"derived", "      - {name: job, values: [a]}\n", []string{"job is set by the collector"}},
		{"bad name", "      - {name: 1x, values: [a]}\n", []string{`"1x" is not a Prometheus 2.x label name`}},
		{"series not on target", "      - {name: x, values: [a], series: [up_nope]}\n", []string{`series "up_nope" is not in the target's series`}},
		{"unknown field", "      - {name: x, value: [a]}\n", []string{TargetsFile, "field value not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyProgramTargets(t, func(s string) string {
				require.True(t, strings.Contains(s, anchor), "test fixture drifted from targets.yaml")
				return strings.Replace(s, anchor, c.entry+anchor, 1)
			})
			_, err := Load(dir)
			require.Error(t, err)
			for _, w := range append([]string{TargetsFile}, c.want...) {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// Issue 12 §3: a hold: that does not parse is refused at load, naming the row and the fix.
func TestBadHoldIsRefusedAtLoad(t *testing.T) {
	for hold, want := range map[string]string{
		"10":          `duration "10": time: missing unit`,
		"ten seconds": `duration "ten seconds": time: invalid duration`,
		"-5s":         `hold "-5s" is negative`,
	} {
		t.Run(hold, func(t *testing.T) {
			dir := copyProgram(t, func(m string) string {
				require.Contains(t, m, "    hold: 10s\n", "test fixture drifted from matrix.yaml")
				return strings.Replace(m, "    hold: 10s\n", "    hold: "+hold+"\n", 1)
			})
			_, err := Load(dir)
			require.Error(t, err)
			for _, w := range []string{MatrixFile + ":", "(row FM1-primary-volume-full)", want, "e.g. hold: 10s"} {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}
