package reports_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/reports"
)

// rawValuesRun is a release run with the values a real run records: a 1/30 time scale,
// PromQL results with float noise, a note written by an older harness that called every
// profile "fast", and no label filter.
func rawValuesRun() *evidence.Run {
	run := noGoRun()
	run.Profile = evidence.ProfileRelease
	run.TimeScale = evidence.TimeScale{ForScale: 1.0 / 30,
		Note: "fast profile: every for: and range window of the rule files multiplied by 0.03333 (e.g. [15m] → 30s, for: 5m → 10s)"}
	run.Provenance.LabelFilter = ""
	run.Rows[0].Evaluations[1].Value = 70.00233341111371
	pts := run.Rows[0].Timeline.Series[0].Points
	pts[len(pts)-1].V = 0.03333333333333333
	run.Control.Triggers[0].MaxValue = 0.6666666666666666
	run.Dataset = &evidence.Dataset{SeededCaptures: 100000, Owners: 500, Prunes: 2, Horizon: 99500, SeedSeconds: 4.744396632, ResyncSeconds: 6.738234305}
	run.Restorations = []evidence.Restoration{{Spec: "row X", At: run.Started, Reason: "unsteady", SteadyAfter: true, Took: evidence.Millis(2345 * time.Millisecond)}}
	return run
}

// has is assert.Contains without the whole report in the message.
func has(t *testing.T, out, want, name string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Errorf("%s lacks %q", name, want)
	}
}

// hasNot is assert.NotContains, likewise.
func hasNot(t *testing.T, out, unwanted, name string) {
	t.Helper()
	if i := strings.Index(out, unwanted); i >= 0 {
		t.Errorf("%s has %q: …%s…", name, unwanted, out[max(0, i-60):min(len(out), i+len(unwanted)+20)])
	}
}

func renderBoth(t *testing.T, run *evidence.Run) (md, page string) {
	t.Helper()
	var m, h bytes.Buffer
	require.NoError(t, reports.RenderMarkdown(&m, run, reports.WithClock(fixedClock)))
	require.NoError(t, reports.RenderHTML(&h, run, reports.WithClock(fixedClock)))
	return m.String(), h.String()
}

func TestReportRoundsMeasuredValues(t *testing.T) {
	md, page := renderBoth(t, rawValuesRun())
	for name, out := range map[string]string{"report.md": md, "report.html": page} {
		for _, raw := range []string{"70.00233341111371", "0.03333333333333333", "0.6666666666666666", "4.744396632", "6.738234305", "2.345s"} {
			hasNot(t, out, raw, name)
		}
		has(t, out, "×1/30", name)
		has(t, out, "in 4.7 s; the fleet resynced past it in 6.7 s", name)
		has(t, out, "2.3 s", name)
	}
	has(t, md, "| release (for-scale ×1/30) |", "md")
	has(t, md, "| `increase(pocketbrain_worker_failure_causes_upstream_timeout[15m]) > 0` | 70 | true |", "md")
	has(t, md, "| `LocalDurabilityRegression` | 0.667 | false |", "md")
	has(t, md, "| 91 | 0 | 111 | 0.0333 |", "md")
	has(t, page, `<td class="num">70</td>`, "page")
	has(t, page, `<td class="num">0.667</td>`, "page")
	has(t, page, "release (for-scale ×1/30)", "page")
}

func TestReportNamesTheRunsProfile(t *testing.T) {
	md, page := renderBoth(t, rawValuesRun())
	for name, out := range map[string]string{"report.md": md, "report.html": page} {
		hasNot(t, out, "fast profile", name)
		hasNot(t, strings.ToLower(out), "fast", name)
	}
	has(t, md, `Profile "release" shortened every production`, "md")
	has(t, page, "Profile &#34;release&#34; shortened every production <code>for:</code> duration ×1/30 (every for: and range window", "page")
	hasNot(t, page, "`", "page") // Markdown's code spans have no business in the HTML
}

func TestEmptyLabelFilterReadsNone(t *testing.T) {
	md, page := renderBoth(t, rawValuesRun())
	has(t, md, "| Label filter | none |", "md")
	has(t, page, "<tr><th>Label filter</th><td>none</td></tr>", "page")

	run := rawValuesRun()
	run.Provenance.LabelFilter = "row:FM8-redis-down"
	md, page = renderBoth(t, run)
	has(t, md, "| Label filter | `row:FM8-redis-down` |", "md")
	has(t, page, "<tr><th>Label filter</th><td><code>row:FM8-redis-down</code></td></tr>", "page")
}
