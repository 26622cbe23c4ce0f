package promcanary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
	"github.com/pocketbrain/chaos/reports"
)

// Options configure Run.
type Options struct {
	// URL is the Prometheus server, e.g. http://user:pass@prometheus:9090.
	URL string
	// Span is how long to watch (the gate's 30m in production).
	Span time.Duration
	// Interval is the tick (0: EvalInterval, from the server).
	Interval time.Duration
	// Rules are the program's rules as the server must hold them (LoadRules).
	Rules []signals.RuleInfo
	// ForScale is the factor Rules were loaded at (0: 1), for the evidence.
	ForScale float64
	// RuleFiles are hashed into the evidence's provenance (optional).
	RuleFiles []string
	// OutDir receives evidence.json, report.md and report.html ("": nothing written).
	OutDir string
	// RunID names the evidence ("": <UTC time>-canary).
	RunID string
	// Provenance is what the caller knows (harness revision…); Go version and host are
	// filled in when empty.
	Provenance evidence.Provenance
	// KeepWatching watches the whole span after a NO-GO.
	KeepWatching bool
	// CallTimeout bounds each API call (0: DefaultCallTimeout).
	CallTimeout time.Duration
	// RoundTripper is the HTTP transport (nil: client_golang's default).
	RoundTripper http.RoundTripper
	// Progress gets the canary's lines as it goes (nil: none).
	Progress io.Writer
}

// Run checks the server's rules against the program's, watches the triggers for the
// span and writes the evidence and the report. The error is a *SetupError when the
// canary could not start (no verdict), or a failure to write the evidence after the
// watch (then a GO result is downgraded to INCONCLUSIVE: a canary without evidence does
// not pass the gate).
func Run(ctx context.Context, o Options) (Result, error) {
	if o.ForScale == 0 {
		o.ForScale = 1
	}
	if err := CheckForScale(o.ForScale); err != nil {
		return Result{}, setupErr("", "%v", err)
	}
	if o.Span <= 0 {
		return Result{}, setupErr("", "span %s: want a positive duration, e.g. 30m", o.Span)
	}
	if o.Interval < 0 {
		return Result{}, setupErr("", "interval %s: want a positive duration, or 0 for the server's evaluation interval", o.Interval)
	}
	if len(alertsOf(o.Rules)) == 0 {
		return Result{}, setupErr("", "no alerting rule to watch: load the program's rules (LoadRules of program/rules/alerts.yml)")
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	conn, err := Connect(o.URL, o.RoundTripper)
	if err != nil {
		return Result{}, setupErr("", "%v", err)
	}
	progress := conn.Redactor.Writer(orDiscard(o.Progress))
	defer progress.Close()
	say := func(format string, a ...any) { fmt.Fprintf(progress, "[canary] "+format+"\n", a...) }

	// 1. The server must evaluate the program's rules, or its quiet proves nothing.
	cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
	err = CheckRules(cctx, conn.API, o.Rules)
	cancel()
	if err != nil {
		var se *SetupError
		if errors.As(err, &se) {
			se.Server = conn.URL
			for i := range se.Problems {
				se.Problems[i] = conn.Redactor.String(se.Problems[i])
			}
		}
		return Result{}, err
	}
	nAlerts := len(alertsOf(o.Rules))
	recs := ""
	if n := len(o.Rules) - nAlerts; n > 0 {
		recs = fmt.Sprintf(" and %d recording rules", n)
	}
	say("%s: the %d alerting rules%s of %s are loaded as the program has them (for-scale %g)",
		conn.URL, nAlerts, recs, strings.Join(ruleFiles(o.Rules), ", "), o.ForScale)

	iv, source := o.Interval, "--interval"
	if iv == 0 {
		cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
		iv, source = EvalInterval(cctx, conn.API, o.Rules)
		cancel()
	}
	version := ""
	bctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
	if bi, err := conn.API.Buildinfo(bctx); err == nil {
		version = bi.Version
	}
	cancel()

	// 2. The recorder before the watch: an output directory that cannot be written
	// fails now, not after 30 minutes; and a killed watch leaves evidence that says so.
	var rec *evidence.Recorder
	if o.OutDir != "" {
		if rec, err = newRecorder(o, conn); err != nil {
			return Result{}, setupErr(conn.URL, "%v", err)
		}
	}

	say("watching %d triggers for %s, every %s (%s)", nAlerts, o.Span, iv, source)
	res, err := Watch(ctx, conn.API, WatchOptions{
		Span: o.Span, Interval: iv, IntervalSource: source, Rules: o.Rules, Server: conn.URL,
		CallTimeout: o.CallTimeout, KeepWatching: o.KeepWatching, Progress: progress, Redactor: conn.Redactor,
	})
	if err != nil {
		return Result{}, setupErr(conn.URL, "%v", err)
	}
	res.ServerVersion = version
	if rec == nil {
		return res, nil
	}

	// 3. The evidence and the report.
	if err := writeEvidence(rec, res, o.OutDir); err != nil {
		if res.Verdict == Go {
			res.Inconclusive = append(res.Inconclusive, "the evidence was not written: "+err.Error())
			res.Verdict, res.Summary = judge(res, len(res.Triggers))
		}
		return res, err
	}
	res.EvidencePath = rec.Path()
	res.MarkdownPath = filepath.Join(o.OutDir, reports.MarkdownFile)
	res.HTMLPath = filepath.Join(o.OutDir, reports.HTMLFile)
	return res, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func ruleFiles(rules []signals.RuleInfo) []string {
	var out []string
	for _, r := range rules {
		if len(out) == 0 || out[len(out)-1] != r.File {
			out = append(out, r.File)
		}
	}
	return out
}

func newRecorder(o Options, conn Conn) (*evidence.Recorder, error) {
	runID := o.RunID
	if runID == "" {
		runID = time.Now().UTC().Format("20060102T150405Z") + "-canary"
	}
	prov := o.Provenance
	if prov.GoVersion == "" {
		prov.GoVersion = runtime.Version()
	}
	if prov.Host == "" {
		prov.Host, _ = os.Hostname()
	}
	if prov.LabelFilter == "" {
		prov.LabelFilter = "canary only (pbchaos canary on " + conn.URL + ")"
	}
	profile, note := evidence.ProfileRelease, "production timing: the rule files as written (for: and range windows unscaled)"
	if o.ForScale != 1 {
		profile = evidence.ProfileFast
		note = fmt.Sprintf("the rules scaled by %g (for: and range windows), as the server under test loaded them: not production timing", o.ForScale)
	}
	rec, err := evidence.NewRecorder(o.OutDir, evidence.Meta{
		RunID:      runID,
		Profile:    profile,
		TimeScale:  evidence.TimeScale{ForScale: o.ForScale, Note: note},
		Provenance: prov,
	}, evidence.WithRedactor(conn.Redactor))
	if err != nil {
		return nil, err
	}
	// The plan is the canary alone, so the report's verdict is the canary's: GO only
	// when the window passed (an INCONCLUSIVE window did not).
	if err := rec.SetPlan([]evidence.PlannedItem{{Kind: evidence.PlanCanary, ID: "canary", Name: "canary on " + conn.URL}}); err != nil {
		return nil, err
	}
	for _, p := range o.RuleFiles {
		h, err := evidence.HashFile(DisplayPath(p), p)
		if err != nil {
			return nil, err
		}
		if err := rec.AddFile(h); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// DisplayPath is p relative to the working directory when it lies below it (so that two
// checkouts record, and messages show, the same name: program/rules/alerts.yml), else p.
func DisplayPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.ToSlash(p)
}

func writeEvidence(rec *evidence.Recorder, res Result, dir string) error {
	if err := rec.SetCanary(res.Window()); err != nil {
		return err
	}
	if res.Interrupted {
		if err := rec.Interrupt(res.Inconclusive[0]); err != nil {
			return err
		}
	}
	if _, err := rec.Finish(); err != nil {
		return err
	}
	run, err := evidence.Load(rec.Path())
	if err != nil {
		return err
	}
	red := reports.WithRedactor(rec.Redactor())
	return errors.Join(
		reports.WriteMarkdown(run, filepath.Join(dir, reports.MarkdownFile), red),
		reports.WriteHTML(run, filepath.Join(dir, reports.HTMLFile), red))
}
