package reports_test

import (
	"html"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
	"github.com/pocketbrain/chaos/reports"
)

// quietAlerts are the rules neither evaluator fires in the sample agreements.
var quietAlerts = []string{"LocalDurabilityRegression", "AuthSpike"}

// agreement is the Prometheus server agreeing with the embedded engine over a span: the
// fired alerts first, each firing within a second of the embedded engine, then quietAlerts.
func agreement(from, to time.Time, fired ...string) *evidence.ServerAgreement {
	a := &evidence.ServerAgreement{From: from, To: to, Agree: true, Tolerance: evidence.Millis(20 * time.Second), Detail: "all alerts agree"}
	for i, name := range fired {
		at := from.Add(time.Duration(10+i) * time.Second)
		a.Alerts = append(a.Alerts, evidence.AlertAgreement{Alert: name, EmbeddedFired: true, ServerFired: true,
			EmbeddedAt: at, ServerAt: at.Add(time.Second), Delta: evidence.MillisPtr(time.Second), Agree: true})
	}
	for _, name := range quietAlerts {
		a.Alerts = append(a.Alerts, evidence.AlertAgreement{Alert: name, Agree: true})
	}
	return a
}

// serverRun is the GO sample with the Prometheus server on, every row and window agreeing.
func serverRun() *evidence.Run {
	run := evidencetest.SampleRun()
	run.PrometheusServer = &evidence.PrometheusServer{Enabled: true, Version: "2.42.0", Image: "pocketbrain-local/prometheus:2.42",
		Rules: "scaled copy (for-scale ×0.1)", ScrapeInterval: evidence.Millis(time.Second), EvalInterval: evidence.Millis(time.Second),
		BootSeconds: 3.24, MemoryBytes: 123_400_000}
	for i := range run.Rows {
		r := &run.Rows[i]
		r.Server = agreement(r.Started, r.Ended, r.Triggers...)
	}
	run.Control.Server = agreement(run.Control.Started, run.Control.Ended)
	run.Canary.Server = agreement(run.Canary.Started, run.Canary.Ended)
	run.Verdict = evidence.ComputeVerdict(run)
	return run
}

func TestServerAgreementRenders(t *testing.T) {
	run := serverRun()
	require.Equal(t, evidence.DecisionGo, run.Verdict.Decision, "reasons: %v", run.Verdict.Reasons)
	md, page := renderBoth(t, run)
	for name, out := range map[string]string{"report.md": md, "report.html": html.UnescapeString(page)} {
		has(t, out, "on, 2.42.0, image pocketbrain-local/prometheus:2.42, rules scaled copy (for-scale ×0.1), scrape 1.0 s / eval 1.0 s, boot 3.2 s, peak memory 123 MB", name)
		has(t, out, "2 alerts quiet in both.", name)
		has(t, out, "tolerance 20.0 s", name)
		has(t, out, "+1.0 s", name)
		hasNot(t, out, "DISAGREES", name)
		hasNot(t, out, "AuthSpike", name) // quiet alerts are counted, not listed
	}
	has(t, md, "| [vps-path](#row-vps-path) | network vps | 3.2 s | 12.4 s | 6.1 s | valid | agrees | **passed** |", "report.md")
	has(t, md, "## Canary: **pass**\n\nPlanned 3m 00s", "report.md")
	has(t, md, "Prometheus server: **agrees** over 2026-02-14 09:40:00.000Z → 2026-02-14 09:43:00.000Z, tolerance 20.0 s (all alerts agree)\n\n2 alerts quiet in both.", "report.md")
	assertWellFormedHTML(t, page)
}

// A row whose alerts the server fired too late disagrees: the report shows both times, the
// difference, and names the row behind the NO-GO.
func TestServerDisagreementRenders(t *testing.T) {
	run := serverRun()
	row := &run.Rows[1]
	a := row.Server.Alerts[0]
	embedded, server := a.EmbeddedAt, a.EmbeddedAt.Add(45*time.Second)
	row.Server.Alerts[0] = evidence.AlertAgreement{Alert: a.Alert, EmbeddedFired: true, ServerFired: true,
		EmbeddedAt: embedded, ServerAt: server, Delta: evidence.MillisPtr(45 * time.Second)}
	row.Server.Agree, row.Server.Detail = false, "ReadinessRegression: the server fired 45s after the embedded engine (tolerance 20s)"
	// The canary: the server fired an alert the embedded engine never did.
	run.Canary.Server.Alerts[0] = evidence.AlertAgreement{Alert: "SyncLagHigh", ServerFired: true, ServerAt: run.Canary.Started.Add(time.Minute)}
	run.Canary.Server.Agree, run.Canary.Server.Detail = false, "SyncLagHigh: fired by the server only"
	run.Verdict = evidence.ComputeVerdict(run)
	require.Equal(t, evidence.DecisionNoGo, run.Verdict.Decision)

	md, page := renderBoth(t, run)
	for name, out := range map[string]string{"report.md": md, "report.html": html.UnescapeString(page)} {
		has(t, out, "DISAGREES", name)
		has(t, out, "2026-02-14 09:37:10.000Z", name) // embedded
		has(t, out, "2026-02-14 09:37:55.000Z", name) // server
		has(t, out, "+45.0 s", name)
		has(t, out, "not fired", name)
		has(t, out, "2026-02-14 09:41:00.000Z", name) // the canary's server-only alert
	}
	assertInOrder(t, md, "## Verdict: **NO-GO**",
		"row redis-ready (Redis readiness degradation): the Prometheus server disagrees",
		"canary window: the Prometheus server disagrees",
		"Rows behind the verdict: [redis-ready](#row-redis-ready) (passed)",
		"### redis-ready",
		"Prometheus server: **DISAGREES** over",
		"(ReadinessRegression: the server fired 45s after the embedded engine (tolerance 20s))",
		"| Alert | Embedded fired at | Server fired at | Δ (server − embedded) | Agrees |",
		"| `ReadinessRegression` | 2026-02-14 09:37:10.000Z | 2026-02-14 09:37:55.000Z | +45.0 s | ✘ DISAGREES |",
		"2 alerts quiet in both.",
		"## Canary: **pass**",
		"| `SyncLagHigh` | not fired | 2026-02-14 09:41:00.000Z | — | ✘ DISAGREES |",
		"1 alert quiet in both.",
		"| [redis-ready](#row-redis-ready) | network vps | 3.2 s | 12.4 s | 6.1 s | valid | DISAGREES | **passed** |")
	assertInOrder(t, page, `href="#row-redis-ready"`, `id="row-redis-ready"`, `<span class="badge fail">DISAGREES</span> over`,
		`<td><code>ReadinessRegression</code></td><td class="nw">2026-02-14 09:37:10.000Z</td><td class="nw">2026-02-14 09:37:55.000Z</td><td class="num">&#43;45.0 s</td><td><span class="badge fail">DISAGREES</span></td>`,
		`id="canary"`, `<td><code>SyncLagHigh</code></td><td class="nw">not fired</td>`)
	assertWellFormedHTML(t, page)
}

// With the server off, the report says so and why, so a reader sees every row was judged
// by the embedded engine alone; evidence from before the server says it was not recorded.
func TestServerOffRenders(t *testing.T) {
	run := evidencetest.SampleRun()
	run.PrometheusServer = &evidence.PrometheusServer{Reason: "PB_PROMETHEUS=off <script>x</script>"}
	run.Verdict = evidence.ComputeVerdict(run)
	require.Equal(t, evidence.DecisionGo, run.Verdict.Decision, "reasons: %v", run.Verdict.Reasons)
	md, page := renderBoth(t, run)
	const off = "off (PB\\_PROMETHEUS=off &lt;script&gt;x&lt;/script&gt;): every row and window was judged by the embedded engine alone"
	assertInOrder(t, md, "## Verdict: **GO**", "> Prometheus server: "+off+".", "## Provenance", "| Prometheus server | "+off+" |")
	has(t, md, "| valid | off | **passed** |", "report.md")
	hasNot(t, md, "Prometheus server: **", "report.md") // no per-row block
	assertInOrder(t, page, `<div class="note">Prometheus server: off (PB_PROMETHEUS=off &lt;script&gt;x&lt;/script&gt;): every row`,
		`<th>Prometheus server</th><td>off (PB_PROMETHEUS=off &lt;script&gt;x&lt;/script&gt;)`, `<span class="badge na">off</span>`)
	hasNot(t, page, "<script", "report.html")
	assertWellFormedHTML(t, page)

	run.PrometheusServer = nil
	md, page = renderBoth(t, run)
	for name, out := range map[string]string{"report.md": md, "report.html": page} {
		has(t, out, "not recorded (evidence from before the Prometheus server): every row and window was judged by the embedded engine alone", name)
		hasNot(t, out, "note\">Prometheus", name)
	}
	has(t, md, "| valid | — | **passed** |", "report.md")
	hasNot(t, md, "> Prometheus server", "report.md")
}

// With the server on, a passed row without an agreement is not compared (and a NO-GO).
func TestServerOnWithoutAgreementRenders(t *testing.T) {
	run := serverRun()
	run.Rows[0].Server = nil
	run.Verdict = evidence.ComputeVerdict(run)
	md, page := renderBoth(t, run)
	assertInOrder(t, md, "row vps-path (Worker-&gt;VPS path instability): no agreement with the Prometheus server recorded",
		"Rows behind the verdict: [vps-path](#row-vps-path)", "### vps-path", "Prometheus server: **not compared** (no agreement recorded)",
		"| valid | not compared | **passed** |")
	has(t, page, `<span class="badge fail">not compared</span> (no agreement recorded)`, "report.html")
	assertWellFormedHTML(t, page)
}

func TestSummaryTableWithServer(t *testing.T) {
	run := serverRun()
	run.Rows[1].Server.Agree = false
	run.Rows[2].Server = nil
	got := reports.SummaryTable(run)
	t.Log("\n" + got)
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	require.Len(t, lines, 1+3+1+5)
	assert.Equal(t, []string{"row", "status", "detect", "fire", "recover", "data", "loss", "server"}, strings.Fields(lines[0]))
	assert.Equal(t, "agrees", lastField(lines[1]))
	assert.Equal(t, "DISAGREES", lastField(lines[2]))
	assert.Equal(t, []string{"not", "compared"}, strings.Fields(lines[3])[len(strings.Fields(lines[3]))-2:])
	assert.Regexp(t, `^prometheus +on 2\.42\.0 — 4 compared, 3 agree — redis-ready disagrees, queue-overflow not compared$`, lines[9])

	run.PrometheusServer = &evidence.PrometheusServer{Reason: "PB_PROMETHEUS=off"}
	got = reports.SummaryTable(run)
	lines = strings.Split(strings.TrimRight(got, "\n"), "\n")
	assert.NotContains(t, lines[0], "server", "no server column with the server off")
	assert.Regexp(t, `^prometheus +off \(PB_PROMETHEUS=off\)$`, lines[len(lines)-1])
}

func lastField(s string) string {
	f := strings.Fields(s)
	return f[len(f)-1]
}

// The canary's production-timing server (the rule files as written) gets its own line.
func TestProductionServerRenders(t *testing.T) {
	run := serverRun()
	run.Canary.ProductionServer = agreement(run.Canary.Started, run.Canary.Ended)
	md, page := renderBoth(t, run)
	for name, out := range map[string]string{"report.md": md, "report.html": html.UnescapeString(page)} {
		has(t, out, "Production-timing Prometheus server (the rule files as written): ", name)
	}
	has(t, md, "Production-timing Prometheus server (the rule files as written): **agrees** over 2026-02-14 09:40:00.000Z", "report.md")
	assertWellFormedHTML(t, page)
	run.Canary.ProductionServer = nil
	md, _ = renderBoth(t, run)
	hasNot(t, md, "Production-timing", "report.md")
}
