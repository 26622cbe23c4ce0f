package promcanary_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/promcanary"
	"github.com/pocketbrain/chaos/harness/promcanary/promcanarytest"
	"github.com/pocketbrain/chaos/harness/signals"
)

var alertsFile = filepath.Join("..", "..", "program", "rules", "alerts.yml")

// Tiny spans: every test watches for a fraction of a second.
const (
	span     = 300 * time.Millisecond
	interval = 50 * time.Millisecond
)

func loadRules(t *testing.T, forScale float64) []signals.RuleInfo {
	t.Helper()
	rules, err := promcanary.LoadRules([]string{alertsFile}, forScale)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// canary runs the canary against fake with the program's rules at production timing.
func canary(t *testing.T, fake *promcanarytest.Server, rules []signals.RuleInfo, edit func(*promcanary.Options)) (promcanary.Result, string, error) {
	t.Helper()
	var progress bytes.Buffer
	o := promcanary.Options{URL: fake.URL, Span: span, Interval: interval, Rules: rules, RuleFiles: []string{alertsFile},
		OutDir: filepath.Join(t.TempDir(), "out"), RunID: "test-canary", Progress: &progress, CallTimeout: 2 * time.Second}
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := promcanary.Run(ctx, o)
	return res, progress.String(), err
}

func newFake(t *testing.T, rules []signals.RuleInfo) *promcanarytest.Server {
	t.Helper()
	fake := promcanarytest.New(rules)
	t.Cleanup(fake.Close)
	return fake
}

func wantSetupError(t *testing.T, err error, wants ...string) *promcanary.SetupError {
	t.Helper()
	var se *promcanary.SetupError
	if !errors.As(err, &se) {
		t.Fatalf("want a *SetupError, got %T: %v", err, err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%s", w, err)
		}
	}
	return se
}

func wantVerdict(t *testing.T, res promcanary.Result, err error, v promcanary.Verdict, wants ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Verdict != v {
		t.Fatalf("verdict %s, want %s: %s\nno-go %q\ninconclusive %q", res.Verdict, v, res.Line(), res.NoGo, res.Inconclusive)
	}
	all := res.Line() + "\n" + strings.Join(res.NoGo, "\n") + "\n" + strings.Join(res.Inconclusive, "\n") + "\n" + strings.Join(res.Notes, "\n")
	for _, w := range wants {
		if !strings.Contains(all, w) {
			t.Errorf("result lacks %q:\n%s", w, all)
		}
	}
}

func TestRuleMissingIsSetupError(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) { s.Remove("QueueNonRecovery"); s.Remove("DeployDrift") })
	out := ""
	_, _, err := canary(t, fake, rules, func(o *promcanary.Options) { out = o.OutDir })
	se := wantSetupError(t, err,
		"prometheus "+fake.URL+": alert QueueNonRecovery: not loaded; load "+alertsFile+" into this Prometheus (rule_files:) and reload it",
		"prometheus "+fake.URL+": alert DeployDrift: not loaded")
	if len(se.Problems) != 2 {
		t.Errorf("want one problem per missing alert, got %q", se.Problems)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a bad setup wrote %s (err %v)", out, err)
	}
}

func TestExprDiffersNamesBoth(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) {
		s.Rule("LocalDurabilityRegression").Expr = "sum(capture_persistence_fallback_failures) > 1"
		s.Rule("ReadinessRegression").For = time.Minute
	})
	_, _, err := canary(t, fake, rules, nil)
	wantSetupError(t, err,
		`alert LocalDurabilityRegression: expr differs: server "sum(capture_persistence_fallback_failures) > 1", program "sum(capture_persistence_fallback_failures) > 0"`,
		"alert ReadinessRegression: for differs: server 1m0s, program 2m0s")
}

// TestExprFormattingDoesNotCount: the server prints expressions its own way.
func TestExprFormattingDoesNotCount(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) {
		s.Rule("QueueNonRecovery").Expr = "sum(increase(sync_queue_block_events[15m]))>=5 and sum(increase(sync_queue_recovery_events[15m]))==0"
		s.Rule("ReadinessRegression").Expr = "min(probe_success{probe=~'server_ready|worker_ready'}) by (probe) == 0"
	})
	res, _, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.Go)
}

func TestQuietIsGo(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	res, progress, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.Go)
	if want := "canary verdict: GO (6 triggers quiet for 300ms at " + fake.URL + ")"; res.Line() != want {
		t.Errorf("line %q, want %q", res.Line(), want)
	}
	if res.ExitCode() != 0 {
		t.Errorf("exit code %d", res.ExitCode())
	}
	if res.Ticks < 5 || res.Ticks > 8 {
		t.Errorf("%d ticks over %s every %s", res.Ticks, span, interval)
	}
	if !strings.Contains(progress, "watching 6 triggers for 300ms, every 50ms (--interval)") {
		t.Errorf("progress:\n%s", progress)
	}
	// The sweep over the span ran, and every series was checked at every tick.
	qs := strings.Join(fake.Queries(), "\n")
	for _, w := range []string{"count_over_time(ALERTS{alertname=~", `{__name__=~"capture_persistence_fallback_failures|`, "up == 0"} {
		if !strings.Contains(qs, w) {
			t.Errorf("no query with %q:\n%s", w, qs)
		}
	}

	// The evidence and the report, as the harness writes them.
	dir := filepath.Dir(res.EvidencePath)
	for _, p := range []string{res.EvidencePath, res.MarkdownPath, res.HTMLPath} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != evidence.FileMode {
			t.Errorf("%s: mode %v", p, st.Mode().Perm())
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != evidence.DirMode {
		t.Errorf("%s: mode %v (err %v)", dir, st.Mode().Perm(), err)
	}
	run, err := evidence.Load(res.EvidencePath)
	if err != nil {
		t.Fatal(err)
	}
	w := run.Canary
	if w == nil || !w.Pass || w.Planned.Duration != span || len(w.Triggers) != 6 {
		t.Fatalf("canary window %+v", w)
	}
	if !strings.HasPrefix(w.Detail, "GO: 6 triggers quiet") {
		t.Errorf("detail %q", w.Detail)
	}
	// The plan is the canary alone: the report's run verdict is the canary's.
	if run.Verdict.Decision != evidence.DecisionGo {
		t.Errorf("run verdict %s %v, want GO", run.Verdict.Decision, run.Verdict.Reasons)
	}
	for _, tr := range w.Triggers {
		if tr.EverFired || tr.MaxValue != 0 || len(tr.Points) != res.Ticks || tr.Expr == "" {
			t.Errorf("trace %s: fired %t, max %v, %d points, expr %q", tr.Alert, tr.EverFired, tr.MaxValue, len(tr.Points), tr.Expr)
		}
	}
	if run.Profile != evidence.ProfileRelease || run.TimeScale.ForScale != 1 || len(run.Provenance.Files) != 1 {
		t.Errorf("profile %s, scale %v, files %v", run.Profile, run.TimeScale, run.Provenance.Files)
	}
	md, _ := os.ReadFile(res.MarkdownPath)
	if !strings.Contains(string(md), "## Canary") || !strings.Contains(string(md), "QueueNonRecovery") {
		t.Errorf("report.md lacks the canary:\n%s", md)
	}
}

func TestPendingMidSpanIsNoGo(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) {
		// Read 1 is the rules check; the ticks follow.
		s.OnRules = func(s *promcanarytest.Server, n int) {
			switch n {
			case 4:
				r := s.Rule("SecretKVRegression")
				r.State, r.Value = "pending", "3"
			case 5:
				s.Rule("SecretKVRegression").State = "inactive"
			}
		}
	})
	res, progress, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.NoGo, "SecretKVRegression pending (value 3) at 20", "halt the promotion")
	if res.ExitCode() != 1 || !res.StoppedEarly {
		t.Errorf("exit %d, stopped early %t", res.ExitCode(), res.StoppedEarly)
	}
	if !strings.Contains(progress, "NO-GO: SecretKVRegression pending") {
		t.Errorf("progress:\n%s", progress)
	}
	run, err := evidence.Load(res.EvidencePath)
	if err != nil {
		t.Fatal(err)
	}
	if run.Canary.Pass || !strings.HasPrefix(run.Canary.Detail, "NO-GO: loud triggers: SecretKVRegression pending (value 3) at ") {
		t.Errorf("window pass %t, detail %q", run.Canary.Pass, run.Canary.Detail)
	}
	for _, tr := range run.Canary.Triggers {
		if tr.Alert == "SecretKVRegression" && (tr.MaxValue != 0.5 || tr.EverFired) {
			t.Errorf("trace %+v", tr)
		}
	}
}

// TestKeepWatching: after a NO-GO the whole span is watched on request; a firing
// trigger marks its trace.
func TestKeepWatching(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) {
		s.OnRules = func(s *promcanarytest.Server, n int) {
			if n == 3 {
				s.Rule("DeployDrift").State = "firing"
			}
		}
	})
	res, _, err := canary(t, fake, rules, func(o *promcanary.Options) { o.KeepWatching = true })
	wantVerdict(t, res, err, promcanary.NoGo, "DeployDrift firing")
	if res.StoppedEarly || res.Ticks < 5 {
		t.Errorf("stopped early %t after %d ticks", res.StoppedEarly, res.Ticks)
	}
	for _, tr := range res.Triggers {
		if tr.Alert == "DeployDrift" && (!tr.EverFired || tr.MaxValue != 1) {
			t.Errorf("trace %+v", tr)
		}
	}
}

// TestBetweenTicksIsNoGo: a state no tick saw, in the server's ALERTS over the span.
func TestBetweenTicksIsNoGo(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) { s.Swept["QueueNonRecovery"] = "pending" })
	res, _, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.NoGo, "QueueNonRecovery pending between two ticks")
}

func TestServerDiesIsInconclusive(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) {
		s.OnRules = func(s *promcanarytest.Server, n int) {
			if n == 4 {
				s.Kill()
			}
		}
	})
	res, _, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.Inconclusive, "the server did not answer (GET /api/v1/rules", "not every trigger was judged")
	if res.ExitCode() != 3 {
		t.Errorf("exit code %d", res.ExitCode())
	}
	run, err := evidence.Load(res.EvidencePath)
	if err != nil {
		t.Fatal(err)
	}
	if run.Canary.Pass || !strings.HasPrefix(run.Canary.Detail, "INCONCLUSIVE (not GO). not judged: the server did not answer") {
		t.Errorf("window pass %t, detail %q", run.Canary.Pass, run.Canary.Detail)
	}
	if run.Verdict.Decision == evidence.DecisionGo {
		t.Errorf("an INCONCLUSIVE canary's run verdict is GO")
	}
}

func TestSeriesAbsentIsInconclusive(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) { delete(s.Present, "kvFailures") })
	res, _, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.Inconclusive, "series kvFailures absent: SecretKVRegression cannot see it", "ticks in all")
}

func TestRuleHealthErrIsInconclusive(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) {
		r := s.Rule("ReadinessRegression")
		r.Health, r.Error = "err", "query timed out"
	})
	res, _, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.Inconclusive, "alert ReadinessRegression: its evaluation failed (health err: query timed out)")
}

func TestRulesChangedDuringWatchIsInconclusive(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) {
		s.OnRules = func(s *promcanarytest.Server, n int) {
			if n == 3 {
				s.Remove("WorkerConfigRoutingRegression")
			}
		}
	})
	res, _, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.Inconclusive, "alert WorkerConfigRoutingRegression no longer loaded")
}

func TestDownTargetIsNoted(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) { s.Down["pocketbrain"], s.Down["unrelated"] = 2, 1 })
	res, _, err := canary(t, fake, rules, nil)
	wantVerdict(t, res, err, promcanary.Go, "job pocketbrain, which serves series the triggers read: targets down (up == 0): 2")
	if strings.Contains(strings.Join(res.Notes, " "), "unrelated") {
		t.Errorf("notes name a job that serves no trigger's series: %q", res.Notes)
	}
}

func TestInterruptIsInconclusive(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	dir := t.TempDir()
	began := time.Now()
	res, err := promcanary.Run(ctx, promcanary.Options{URL: fake.URL, Span: time.Hour, Interval: interval, Rules: rules, OutDir: dir})
	wantVerdict(t, res, err, promcanary.Inconclusive, "interrupted after ", "ms of the 1h0m0s span")
	if time.Since(began) > 5*time.Second || !res.Interrupted {
		t.Errorf("interrupted %t after %s", res.Interrupted, time.Since(began))
	}
	run, err := evidence.Load(res.EvidencePath)
	if err != nil {
		t.Fatal(err)
	}
	if !run.Interrupted || run.Canary == nil {
		t.Errorf("evidence: interrupted %t, canary %v", run.Interrupted, run.Canary)
	}
}

// TestCredentialsNeverShown: basic auth reaches the server, and no message, progress
// line or written file holds the user or the password.
func TestCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	const user, pass = "canary-user", "s3cr3t-passw0rd"
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	fake.Do(func(s *promcanarytest.Server) { s.User, s.Pass = user, pass; delete(s.Present, "kv_unavailable") })
	u, _ := url.Parse(fake.URL)
	u.User = url.UserPassword(user, pass)
	res, progress, err := canary(t, fake, rules, func(o *promcanary.Options) { o.URL = u.String() })
	wantVerdict(t, res, err, promcanary.Inconclusive, "on "+fake.URL)
	texts := []string{progress, res.Line(), strings.Join(res.Inconclusive, "\n")}
	for _, p := range []string{res.EvidencePath, res.MarkdownPath, res.HTMLPath} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	// A bad setup's message too.
	fake.Do(func(s *promcanarytest.Server) { s.Remove("DeployDrift") })
	_, _, err = canary(t, fake, rules, func(o *promcanary.Options) { o.URL = u.String() })
	wantSetupError(t, err, "prometheus "+fake.URL+": alert DeployDrift: not loaded")
	texts = append(texts, err.Error())
	// And a wrong password: the server refuses, the message names the URL only.
	u.User = url.UserPassword(user, "wrong-"+pass)
	_, _, err = canary(t, fake, rules, func(o *promcanary.Options) { o.URL = u.String() })
	wantSetupError(t, err, "prometheus "+fake.URL+": cannot read the server's rules")
	texts = append(texts, err.Error())
	for i, s := range texts {
		if strings.Contains(s, pass) || strings.Contains(s, user+":") || strings.Contains(s, user+"@") {
			t.Errorf("text %d shows the credentials:\n%s", i, s)
		}
	}
}

// TestScaledRules: --for-scale points the canary at a server holding the scaled copy
// (scaled for: and windows); a server holding the rules as written does not match.
func TestScaledRules(t *testing.T) {
	t.Parallel()
	scaled := loadRules(t, 1.0/30)
	fake := newFake(t, scaled)
	res, _, err := canary(t, fake, scaled, func(o *promcanary.Options) { o.ForScale = 1.0 / 30 })
	wantVerdict(t, res, err, promcanary.Go)
	run, err := evidence.Load(res.EvidencePath)
	if err != nil {
		t.Fatal(err)
	}
	if run.Profile != evidence.ProfileFast || !strings.Contains(run.TimeScale.Note, "not production timing") {
		t.Errorf("profile %s, note %q", run.Profile, run.TimeScale.Note)
	}

	asWritten := newFake(t, loadRules(t, 1))
	_, _, err = canary(t, asWritten, scaled, func(o *promcanary.Options) { o.ForScale = 1.0 / 30 })
	wantSetupError(t, err, `alert QueueNonRecovery: expr differs: server "sum(increase(sync_queue_block_events[15m])) >= 5`,
		`program "sum(increase(sync_queue_block_events[30s])) >= 5`,
		"alert WorkerConfigRoutingRegression: for differs: server 5m0s, program 10s",
		"load the scaled copy of "+alertsFile)
}

func TestEvalInterval(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	fake := newFake(t, rules)
	conn, err := promcanary.Connect(fake.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		config string
		group  time.Duration
		want   time.Duration
		source string
	}{
		{"30s", 15 * time.Second, 15 * time.Second, `rule group "pocketbrain-rollback-triggers"`},
		{"10s", 15 * time.Second, 10 * time.Second, "evaluation_interval"},
		{"", 0, promcanary.DefaultInterval, "default 15s"},
		{"bogus", time.Minute, promcanary.DefaultInterval, "default 15s"},
	} {
		fake.Do(func(s *promcanarytest.Server) { s.EvalInterval, s.GroupInterval = c.config, c.group })
		iv, src := promcanary.EvalInterval(ctx, conn.API, rules)
		if iv != c.want || !strings.Contains(src, c.source) {
			t.Errorf("config %q, group %s: %s (%s), want %s (%s)", c.config, c.group, iv, src, c.want, c.source)
		}
	}
}

func TestParseForScale(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"1": 1, "1/30": 1.0 / 30, "0.5": 0.5} {
		if got, err := promcanary.ParseForScale(in); err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-1", "1.5", "2/1", "1/0", "x", "NaN", ""} {
		if _, err := promcanary.ParseForScale(in); err == nil {
			t.Errorf("%q accepted", in)
		} else if in != "x" && in != "" && in != "1/0" && !strings.Contains(err.Error(), "want a factor in (0, 1]") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	rules := loadRules(t, 1)
	for name, o := range map[string]promcanary.Options{
		"no span":     {URL: "http://127.0.0.1:1", Rules: rules},
		"bad scale":   {URL: "http://127.0.0.1:1", Span: time.Second, Rules: rules, ForScale: 2},
		"no rules":    {URL: "http://127.0.0.1:1", Span: time.Second},
		"bad url":     {URL: "prometheus:9090", Span: time.Second, Rules: rules},
		"unreachable": {URL: "http://127.0.0.1:1", Span: time.Second, Rules: rules},
	} {
		_, err := promcanary.Run(context.Background(), o)
		var se *promcanary.SetupError
		if !errors.As(err, &se) {
			t.Errorf("%s: want a *SetupError, got %v", name, err)
		}
	}
}
