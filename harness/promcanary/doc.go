// Package promcanary is release-gate step 6 on production: a canary watched through a
// real Prometheus server's HTTP API (client_golang's api and api/prometheus/v1), with
// the project's own rollback triggers as the judge. `pbchaos canary` is its command line;
// a Go test calls it directly:
//
//	rules, err := promcanary.LoadRules([]string{"program/rules/alerts.yml"}, 1)
//	res, err := promcanary.Run(ctx, promcanary.Options{
//		URL:      "http://user:pass@prometheus:9090", // credentials are never printed
//		Span:     30 * time.Minute,
//		Interval: 0, // the server's evaluation interval
//		Rules:    rules,
//		ForScale: 1,
//		OutDir:   "out/canary-…", // evidence.json, report.md, report.html
//	})
//	// err: a *SetupError (exit 2: no verdict) or a failed write of the evidence.
//	// res.Verdict: Go, NoGo or Inconclusive; res.Line() is the command's last line.
//
// Run does, in order:
//
//  1. CheckRules: every rule of the program (the six alerting rules of
//     program/rules/alerts.yml, and any recording rule given) must be loaded by the
//     server under its name, with the same expression (both parsed by the PromQL parser
//     and compared as printed: whitespace and formatting do not count; with a for-scale
//     below 1 the scaled windows, RuleInfo.EffectiveExpr) and the same `for:`
//     (EffectiveFor). Any difference is a *SetupError naming each and the fix: a server
//     that evaluates other rules cannot judge the release.
//  2. Watch: for the span, at every evaluation interval (--interval; else the shortest of
//     the server's evaluation_interval and the triggers' rule-group intervals; else
//     15s), it reads every trigger's state and health (GET /api/v1/rules), checks that
//     every series the triggers read has samples (one instant query, by metric name and
//     job), and notes down targets of the jobs that serve them (up == 0). At the end it
//     reads the server's ALERTS series over the whole span, so that a trigger that was
//     pending only between two ticks still counts.
//  3. The verdict, this package's own (evidence.ComputeVerdict judges a whole harness
//     run: rows, baseline, gate): NO-GO when any trigger was pending or firing; else
//     INCONCLUSIVE when the server did not answer at a tick, a trigger's rule failed or
//     was never evaluated, a series a trigger reads was absent, the rules changed under
//     the watch, or the watch was interrupted; else GO. INCONCLUSIVE is never GO.
//  4. The evidence, as the harness writes it (an evidence.Recorder, then
//     reports.WriteMarkdown and reports.WriteHTML; 0700 directory, 0600 files): the
//     canary window (Run.Canary) with one TriggerTrace per trigger, whose points are its
//     state at every tick (0 inactive, 0.5 pending, 1 firing), Pass only for GO, and the
//     verdict and its reasons in Detail. The evidence's plan is the canary alone, so the
//     report's run verdict is the canary's: GO, or NO-GO for a NO-GO or an INCONCLUSIVE
//     window (its detail says which).
//
// Package promcanarytest is a fake of the server's API for tests without Docker.
//
// A URL may carry basic auth (http://user:password@host:9090): Connect moves it into a
// RoundTripper, so no request URL, error or message ever holds it, and the password is
// redacted from everything written besides.
package promcanary
