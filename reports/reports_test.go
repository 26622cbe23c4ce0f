package reports_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
	"github.com/pocketbrain/chaos/reports"
)

func fixedClock() time.Time { return evidencetest.T0().Add(time.Hour) }

// noGoRun is the sample with one failed row, lost data and a failed gate
// step: the report must say why it is NO-GO.
func noGoRun() *evidence.Run {
	run := evidencetest.SampleRun()
	r := &run.Rows[1]
	r.Status = evidence.StatusFailed
	r.Failure = "trigger ReadinessRegression never fired within 2m\n  at suites/rows_test.go:88"
	r.Times.Fire, r.Times.Recover = nil, nil
	r.DataLoss.Verdict, r.DataLoss.Lost = evidence.DataLossInvalid, 2
	run.Gate[0].Result, run.Gate[0].Detail = evidence.GateFail, "CORS_ORIGIN: unset; set it to the app origin"
	run.Verdict = evidence.ComputeVerdict(run)
	return run
}

func TestWriteAllAndRerenderFromJSON(t *testing.T) {
	dir := t.TempDir()
	run := noGoRun()
	opts := []reports.Option{reports.WithClock(fixedClock)}
	require.NoError(t, reports.WriteAll(run, dir, opts...))
	for _, f := range []string{evidence.FileName, reports.MarkdownFile, reports.HTMLFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.NotZero(t, st.Size(), f)
	}
	md1, _ := os.ReadFile(filepath.Join(dir, reports.MarkdownFile))
	html1, _ := os.ReadFile(filepath.Join(dir, reports.HTMLFile))

	// From the JSON alone, the same reports.
	loaded, err := evidence.Load(filepath.Join(dir, evidence.FileName))
	require.NoError(t, err)
	assert.Equal(t, run, loaded)
	dir2 := t.TempDir()
	require.NoError(t, reports.WriteMarkdown(loaded, filepath.Join(dir2, reports.MarkdownFile), opts...))
	require.NoError(t, reports.WriteHTML(loaded, filepath.Join(dir2, reports.HTMLFile), opts...))
	md2, _ := os.ReadFile(filepath.Join(dir2, reports.MarkdownFile))
	html2, _ := os.ReadFile(filepath.Join(dir2, reports.HTMLFile))
	assert.Equal(t, string(md1), string(md2))
	assert.Equal(t, string(html1), string(html2))
}

func TestMarkdownContentAndOrder(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, reports.RenderMarkdown(&b, noGoRun(), reports.WithClock(fixedClock)))
	md := b.String()
	assert.True(t, strings.HasPrefix(md, "# PocketBrain chaos evidence"))
	assertInOrder(t, md, "## Verdict: **NO-GO**", "redis-ready", "gate step 1", "## Provenance", "## Baseline captures",
		"## Release gate", "## Failure-mode rows", "### vps-path", "### redis-ready", "### queue-overflow",
		"## Control (no fault)", "## Canary", "## Summary")
	assert.Contains(t, md, "| 3.2 s | 12.4 s | 6.1 s |")
	assert.Contains(t, md, "not reached")
	assert.Contains(t, md, "Data loss: **invalid**")
	assert.Contains(t, md, "[docs/ops/DEPENDENCY\\_RUNBOOK.md](<docs/ops/DEPENDENCY_RUNBOOK.md>)")
	assert.Contains(t, md, "`increase(pocketbrain_redis_ready_failures_total[15m]) > 0`")
	assert.Contains(t, md, "shortened every production `for:` duration ×0.1")
}

func TestHTMLContentOrderAndSelfContained(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, reports.RenderHTML(&b, noGoRun(), reports.WithClock(fixedClock)))
	page := b.String()
	assertInOrder(t, page, `<div class="decision">NO-GO</div>`, `href="#row-redis-ready"`, `id="provenance"`, `id="baseline"`,
		`id="gate"`, `id="row-vps-path"`, `id="row-redis-ready"`, `id="row-queue-overflow"`, `id="control"`, `id="canary"`, `id="summary"`)
	assert.Equal(t, 5, strings.Count(page, "<svg "), "one chart per row, control and canary")
	for _, banned := range []string{"<script", "<link", "<img", "@import", "src=", "http://", "https://"} {
		if banned == "http://" {
			// the SVG namespace URI is an identifier, not a fetch
			page := strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
			assert.NotContains(t, page, banned)
			continue
		}
		assert.NotContains(t, page, banned, "the page must be self-contained")
	}
	assertWellFormedHTML(t, page)
}

func TestHTMLEscapesEverything(t *testing.T) {
	run := evidencetest.SampleRun()
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	run.Rows[0].Name = evil
	run.Rows[0].Failure = evil
	run.Rows[0].Fault.Proof[0].Value = evil
	run.Rows[0].Timeline.Series[0].Name = evil
	run.Rows[0].Runbook = "javascript:alert(3)"
	run.Gate[0].Command = evil
	var b bytes.Buffer
	require.NoError(t, reports.RenderHTML(&b, run))
	page := b.String()
	assert.NotContains(t, page, "<script")
	assert.NotContains(t, page, "<img")
	assert.NotContains(t, page, `href="javascript:`)
	var m bytes.Buffer
	require.NoError(t, reports.RenderMarkdown(&m, run))
	md := m.String()
	assert.Contains(t, md, "### vps-path — &lt;script&gt;", "text outside code is escaped")
	assert.NotContains(t, md, "](javascript:")
	assert.NotContains(t, md, "](<javascript:")
}

func TestRedactionInEveryOutputFile(t *testing.T) {
	secrets := []string{"sk_test_4f9a8b7c6d5e4f3a2b1c", `pw<with>&"quotes'and\slash`, "kek-0123456789abcdef0123456789abcdef"}
	run := evidencetest.SampleRun()
	run.Rows[0].Status = evidence.StatusFailed
	run.Rows[0].Failure = "connect postgres://pocketbrain:" + secrets[1] + "@toxiproxy:15432 failed"
	run.Rows[0].Fault.Proof = append(run.Rows[0].Fault.Proof, evidence.Proof{What: "env", Value: "CLERK_SECRET_KEY=" + secrets[0]})
	run.Rows[0].Fault.Params["KEY_ENCRYPTION_SECRET"] = secrets[2]
	run.Rows[0].Fault.Params[secrets[0]] = "as a key"
	run.Rows[1].Evaluations[0].Expr = `up{token="` + secrets[0] + `"}`
	run.Rows[1].Timeline.Series[0].Name = "series " + secrets[1]
	run.Gate[0].Command = "KEY_ENCRYPTION_SECRET=" + secrets[2] + " pb-config-check"
	run.Control.Triggers[0].Alert = secrets[1]
	run.Problems = []string{"redis auth " + secrets[1]}
	run.Provenance.Host = secrets[2]
	run.Verdict = evidence.ComputeVerdict(run)

	dir := t.TempDir()
	require.NoError(t, reports.WriteAll(run, dir, reports.WithRedactor(evidence.NewRedactor(secrets...))))
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 3)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		require.NoError(t, err)
		assert.Contains(t, string(b), evidence.Redacted, f.Name())
		for _, s := range secrets {
			// The redactor for one secret knows all its escaped forms: if
			// it changes the file, some form of the secret is in there.
			if red := evidence.NewRedactor(s); !bytes.Equal(red.Bytes(b), b) {
				t.Errorf("%s contains secret %q (or an escaped form)", f.Name(), s)
			}
		}
	}
}

func TestRenderRejectsInvalidEvidence(t *testing.T) {
	run := evidencetest.SampleRun()
	run.Rows[0].Status = "green"
	err := reports.WriteAll(run, t.TempDir())
	assert.ErrorContains(t, err, `status "green"`)
}

func TestEmptyRunRenders(t *testing.T) {
	run := &evidence.Run{Schema: evidence.SchemaVersion, RunID: "empty", Profile: evidence.ProfileRelease, Started: evidencetest.T0()}
	run.Verdict = evidence.ComputeVerdict(run)
	dir := t.TempDir()
	require.NoError(t, reports.WriteAll(run, dir))
	b, _ := os.ReadFile(filepath.Join(dir, reports.HTMLFile))
	assert.Contains(t, string(b), "INCOMPLETE")
	assert.Contains(t, string(b), "No rows recorded")
	// No empty summary table: the summary says there is nothing to sum up.
	summary := string(b)[strings.Index(string(b), `id="summary"`):]
	assert.Contains(t, summary, "<p>No rows recorded.</p>")
	assert.NotContains(t, summary, "<table>")
	md, _ := os.ReadFile(filepath.Join(dir, reports.MarkdownFile))
	assert.True(t, strings.HasSuffix(string(md), "## Summary\n\nNo rows recorded.\n"), "report.md ends: %q", string(md)[max(0, len(md)-80):])
}

// TestBrowserRendersReport opens report.html in headless Chromium: the DOM
// it builds must hold every row and the charts, and a screenshot is taken
// for a person to look at.
func TestBrowserRendersReport(t *testing.T) {
	browser := findChromium()
	if browser == "" {
		if os.Getenv("PB_SKIP_BROWSER") == "1" {
			t.Skip("PB_SKIP_BROWSER=1: headless Chromium check skipped")
		}
		t.Fatal("chromium not found: install it (Debian: apt-get install -y --no-install-recommends chromium fonts-dejavu-core), " +
			"or point PB_CHROMIUM at a Chrome/Chromium binary, or set PB_SKIP_BROWSER=1 to skip this check")
	}
	dir := t.TempDir()
	run := noGoRun()
	require.NoError(t, reports.WriteAll(run, dir, reports.WithClock(fixedClock)))
	page := filepath.Join(dir, reports.HTMLFile)
	shot := filepath.Join(dir, "report.png")

	dom := runChromium(t, browser, dir, "--dump-dom", "file://"+page)
	for _, row := range run.Rows {
		assert.Contains(t, dom, `id="`+"row-"+row.ID+`"`, "row %s missing from the rendered DOM", row.ID)
	}
	assert.Contains(t, dom, "<svg")
	assert.Contains(t, dom, "NO-GO")

	runChromium(t, browser, dir, "--screenshot="+shot, "--window-size=1280,4000", "file://"+page)
	st, err := os.Stat(shot)
	require.NoError(t, err, "chromium wrote no screenshot")
	assert.Greater(t, st.Size(), int64(10_000), "screenshot suspiciously small")
	if art := os.Getenv("PB_TEST_ARTIFACTS"); art != "" {
		require.NoError(t, os.MkdirAll(art, 0o755))
		for _, f := range []string{shot, page} {
			copyFile(t, f, filepath.Join(art, filepath.Base(f)))
		}
		t.Logf("report and screenshot copied to %s", art)
	}
}

func findChromium() string {
	if p := os.Getenv("PB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func runChromium(t *testing.T, browser, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--hide-scrollbars", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "chromium-profile")}
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, err, "chromium %v failed: %v\nstderr:\n%s", args, err, errb.String())
	return out.String()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(to)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

func assertInOrder(t *testing.T, s string, parts ...string) {
	t.Helper()
	at := 0
	for _, p := range parts {
		i := strings.Index(s[at:], p)
		if i < 0 {
			t.Errorf("%q missing or out of order (searched from byte %d)", p, at)
			return
		}
		at += i + len(p)
	}
}

// assertWellFormedHTML checks that the page tokenizes and that elements
// we open are closed in order (a cheap guard against a broken template).
func assertWellFormedHTML(t *testing.T, page string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(page))
	void := map[string]bool{"meta": true, "br": true, "rect": true, "line": true, "path": true, "hr": true, "img": true, "input": true, "link": true}
	var stack []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("html tokenizer: %v", z.Err())
			}
			assert.Empty(t, stack, "unclosed elements")
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !void[string(name)] {
				stack = append(stack, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("unbalanced </%s>, open: %v", name, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// The store the rows ran on and every stack check after a failed spec are in both reports.
func TestDatasetAndRestorationsRender(t *testing.T) {
	run := noGoRun()
	run.Dataset = &evidence.Dataset{SeededCaptures: 1000000, Owners: 5000, Prunes: 2, Horizon: 990000, SeedSeconds: 30.7, ResyncSeconds: 43.8}
	run.Restorations = []evidence.Restoration{
		{Spec: "breaks the stack", Rows: []string{"selftest-break"}, Restored: true, Reason: "kv: exited", Actions: []string{"kv started in place"}, SteadyAfter: true, Took: evidence.Duration{Duration: 93 * time.Second}},
		{Spec: "VAL-3", Rows: []string{"VAL-3"}, Reason: "spec failed", SteadyAfter: true},
	}
	var md, page bytes.Buffer
	require.NoError(t, reports.RenderMarkdown(&md, run, reports.WithClock(fixedClock)))
	require.NoError(t, reports.RenderHTML(&page, run, reports.WithClock(fixedClock)))
	for _, out := range []string{md.String(), page.String()} {
		assert.Contains(t, out, "1000000 captures seeded before the first row over 5000 client ids")
		assert.Contains(t, out, "kv started in place")
		assert.Contains(t, out, "none: steady state returned by itself")
	}
	assertWellFormedHTML(t, page.String())
}

// Reports are the run's own output: files 0600, a new directory 0700 (issue 17 §4.1).
func TestWriteAllOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "run")
	require.NoError(t, reports.WriteAll(evidencetest.SampleRun(), dir))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "output directory")
	for _, f := range []string{evidence.FileName, reports.MarkdownFile, reports.HTMLFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
}

// outsideCode drops what the Markdown report may legitimately hold raw: fenced code
// blocks, code spans, the row anchors and the link destinations it writes itself.
func outsideCode(md string) string {
	var keep []string
	fence := ""
	for _, line := range strings.Split(md, "\n") {
		t := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(t, fence) && strings.Trim(t, "`") == "" {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(t, "```") {
			fence = t[:len(t)-len(strings.TrimLeft(t, "`"))]
			continue
		}
		keep = append(keep, line)
	}
	s := strings.Join(keep, "\n")
	// Code spans: a run of n backticks up to the next run of exactly n.
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '`' || (i > 0 && s[i-1] == '\\') {
			b.WriteByte(s[i])
			i++
			continue
		}
		n := 0
		for i+n < len(s) && s[i+n] == '`' {
			n++
		}
		run := strings.Repeat("`", n)
		end := -1
		for j := i + n; j < len(s); {
			k := strings.Index(s[j:], run)
			if k < 0 {
				break
			}
			k += j
			if k+n < len(s) && s[k+n] == '`' {
				j = k + n + 1
				for j < len(s) && s[j] == '`' {
					j++
				}
				continue
			}
			end = k
			break
		}
		if end < 0 {
			b.WriteString(run)
			i += n
			continue
		}
		i = end + n
	}
	s = regexp.MustCompile(`<a id="row-[a-z0-9_-]+"></a>`).ReplaceAllString(b.String(), "")
	return regexp.MustCompile(`\]\(<[^<>\n]*>\)`).ReplaceAllString(s, "]")
}

// Evidence text never injects HTML into report.md: `<` and `&` outside code become
// entities, while code spans (PromQL) and the failure's fenced block stay verbatim,
// as entities there would show literally (issue 17 §4.6).
func TestMarkdownEscapesEvidenceText(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	const expr = `rate(x[1m]) < 0.5`
	run := evidencetest.SampleRun()
	run.Rows[0].Status = evidence.StatusFailed
	run.Rows[0].Failure = "expected " + expr + "\n" + evil
	run.Rows[0].Name = "name " + evil
	run.Rows[0].Evaluations[0].Expr = expr
	run.Rows[0].Evaluations[0].Want = "a|b"
	run.Rows[0].Fault.Target = "server"
	run.Rows[0].Fault.Proof[0].What = "what " + evil
	run.Rows[0].Fault.Proof[0].Value = "a|b < c"
	run.Rows[0].DataLoss.Detail = "detail " + evil
	run.Gate[0].Detail = "gate " + evil + " AT&T &lt;b&gt;"
	run.Problems = []string{"problem " + evil}
	run.Restorations = []evidence.Restoration{{Spec: "spec " + evil, Rows: []string{"r1"}, Reason: "reason " + evil, Actions: []string{"action " + evil}, SteadyAfter: true}}
	run.TimeScale = evidence.TimeScale{ForScale: 0.1, Note: "note " + evil}
	run.Interrupted, run.InterruptReason = true, "interrupted "+evil
	run.Provenance.Host = "host " + evil
	run.Control.Detail = "control " + evil
	run.Verdict = evidence.ComputeVerdict(run)

	var b bytes.Buffer
	require.NoError(t, reports.RenderMarkdown(&b, run, reports.WithClock(fixedClock)))
	md := b.String()

	text := outsideCode(md)
	assert.NotContains(t, text, "<", "no raw < outside code:\n%s", text)
	for _, want := range []string{"gate &lt;script&gt;alert(1)&lt;/script&gt;", "reason &lt;script&gt;", "note &lt;script&gt;",
		"interrupted &lt;script&gt;", "host &lt;script&gt;", "spec &lt;script&gt;", "problem &lt;script&gt;", "detail &lt;script&gt;"} {
		assert.Contains(t, md, want)
	}
	// & is escaped too, so an entity in the evidence shows as written.
	assert.Contains(t, md, "AT&amp;T &amp;lt;b&amp;gt;")
	assert.NotContains(t, md, "&amp;amp;", "escaped once")

	// Code stays verbatim: the failure's fenced block and the expression's code span.
	assert.Contains(t, md, "```text\nexpected "+expr+"\n"+evil+"\n```")
	assert.Contains(t, md, "| `"+expr+"` |", "PromQL in a table cell, unescaped")
	assert.NotContains(t, md, "rate(x[1m]) &lt;")
	// A pipe: escaped inside a table cell (GFM shows it as |), verbatim elsewhere.
	assert.Contains(t, md, "| `a\\|b` |")
	assert.Contains(t, md, "= `a|b < c`", "a code span in a list item keeps | and <")
	assert.Contains(t, md, "shortened every production `for:` duration ×0.1")
}
