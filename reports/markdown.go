package reports

import (
	"fmt"
	"math"
	"strings"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// Evidence text (failure messages, details, notes, names) must never inject HTML or
// Markdown into the report. Three contexts, three treatments:
//   - running text and table cells (mdText, mdCell): Markdown syntax is backslash-escaped
//     and `&`, `<`, `>` become entities, so `a < b` or `<script>` show as written;
//   - code spans (mdCode, mdCodeCell): nothing is escaped (an entity would show
//     literally), the span's fence is longer than any backtick run in the text; in a
//     table cell `|` is written `\|`, which GFM turns back into `|` even in code;
//   - fenced blocks (the failure message): verbatim, only a closing fence is defused.

// mdCell makes text safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	if s == "" {
		return "—"
	}
	return mdText(s)
}

// mdCode wraps s in a code span long enough not to be closed by s itself, for running
// text (a list item, a paragraph).
func mdCode(s string) string { return codeSpan(s, false) }

// mdCodeCell is mdCode inside a table cell.
func mdCodeCell(s string) string { return codeSpan(s, true) }

func codeSpan(s string, cell bool) string {
	if s == "" {
		return "—"
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ")
	if cell {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// mdEscaper escapes Markdown syntax and HTML in running text, in one pass (so the `&`
// of an entity it writes is not escaped again).
var mdEscaper = strings.NewReplacer(`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"&", "&amp;", "<", "&lt;", ">", "&gt;", "#", `\#`, "|", `\|`)

// mdText escapes Markdown syntax and HTML in running text.
func mdText(s string) string { return mdEscaper.Replace(s) }

func markdown(v *view) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	run := v.Run

	p("# PocketBrain chaos evidence — %s\n\n", mdText(run.RunID))
	p("## Verdict: **%s**\n\n", v.Verdict.Decision)
	if v.StaleVerdict != "" {
		p("> The file's stored verdict was %s; this report recomputed it from the evidence.\n\n", v.StaleVerdict)
	}
	if note := scaleNote(run, mdText); note != "" {
		p("> %s\n\n", note)
	}
	if v.ServerOff {
		p("> Prometheus server: %s.\n\n", serverLine(run.PrometheusServer, mdCell))
	}
	if len(v.Verdict.Reasons) > 0 {
		p("Reasons:\n\n")
		for _, r := range v.Verdict.Reasons {
			p("- %s\n", mdText(r))
		}
		p("\n")
	}
	if len(v.BadRows) > 0 {
		p("Rows behind the verdict: ")
		for i, r := range v.BadRows {
			if i > 0 {
				p(", ")
			}
			p("[%s](#%s) (%s)", mdText(r.ID), r.Anchor, r.Status)
		}
		p("\n\n")
	}
	if len(v.BadGate) > 0 {
		p("Gate steps behind the verdict: ")
		for i, g := range v.BadGate {
			if i > 0 {
				p(", ")
			}
			p("%d %s (%s)", g.Step, mdText(g.Name), g.Result)
		}
		p("\n\n")
	}

	p("## Provenance\n\n| | |\n| --- | --- |\n")
	p("| Run | %s |\n", mdCell(run.RunID))
	p("| Profile | %s (for-scale ×%s) |\n", mdCell(run.Profile), fmtScale(run.TimeScale.ForScale))
	p("| Started / ended | %s / %s |\n", fmtTime(run.Started), fmtTime(run.Ended))
	p("| Complete | %t%s |\n", run.Complete, map[bool]string{true: " (interrupted: " + mdCell(run.InterruptReason) + ")"}[run.Interrupted])
	dirty := ""
	if run.Provenance.HarnessDirty {
		dirty = " (uncommitted changes)"
	}
	p("| Harness revision | %s%s |\n", mdCodeCell(run.Provenance.HarnessRevision), dirty)
	p("| Go / Docker | %s / %s |\n", mdCell(run.Provenance.GoVersion), mdCell(run.Provenance.DockerVersion))
	p("| Host | %s |\n", mdCell(run.Provenance.Host))
	p("| Label filter | %s |\n", mdLabelFilter(run.Provenance.LabelFilter))
	p("| Prometheus server | %s |\n", serverLine(run.PrometheusServer, mdCell))
	p("| Generated | %s |\n\n", v.Generated)
	if len(run.Provenance.Images) > 0 {
		p("| Image role | Reference | ID |\n| --- | --- | --- |\n")
		for _, img := range run.Provenance.Images {
			p("| %s | %s | %s |\n", mdCell(img.Role), mdCodeCell(img.Ref), mdCodeCell(img.ID))
		}
		p("\n")
	}
	if len(run.Provenance.Files) > 0 {
		p("| File | SHA-256 |\n| --- | --- |\n")
		for _, f := range run.Provenance.Files {
			p("| %s | %s |\n", mdCodeCell(f.Path), mdCodeCell(f.SHA256))
		}
		p("\n")
	}
	if len(run.Shards) > 0 {
		p("Merged from %d shards:\n\n| Shard run | Label filter | Host | Complete | Rows |\n| --- | --- | --- | --- | --- |\n", len(run.Shards))
		for _, s := range run.Shards {
			p("| %s | %s | %s | %t | %s |\n", mdCell(s.RunID), mdLabelFilter(s.LabelFilter), mdCell(s.Host), s.Complete, mdCell(strings.Join(s.Rows, ", ")))
		}
		p("\n")
	}
	if len(run.Problems) > 0 {
		p("Run-level problems:\n\n")
		for _, pr := range run.Problems {
			p("- %s\n", mdText(pr))
		}
		p("\n")
	}
	if d := run.Dataset; d != nil {
		p("Dataset: %d captures seeded before the first row over %d client ids (change log pruned %d times, horizon %d), in %s; the fleet resynced past it in %s. Every data-loss check counts them again.\n\n",
			d.SeededCaptures, d.Owners, d.Prunes, d.Horizon, fmtSecs(d.SeedSeconds), fmtSecs(d.ResyncSeconds))
	}
	if len(run.Restorations) > 0 {
		p("Stack checks after failed specs (a failed row must never fail the next):\n\n| After spec | Rows | Reason | Actions | Steady after | Took |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, r := range run.Restorations {
			actions := strings.Join(r.Actions, "; ")
			if actions == "" {
				actions = "none: steady state returned by itself"
			}
			p("| %s | %s | %s | %s | %s | %s |\n", mdCell(r.Spec), mdCell(strings.Join(r.Rows, ", ")), mdCell(r.Reason), mdCell(actions), resultMark(r.SteadyAfter), fmtDuration(r.Took.Duration))
		}
		p("\n")
	}

	p("## Baseline captures\n\n")
	if len(run.Baseline) == 0 {
		p("No baseline captures recorded.\n\n")
	} else {
		p("| Endpoint | Field | Document | Observed | Result |\n| --- | --- | --- | --- | --- |\n")
		for _, c := range run.Baseline {
			p("| %s | %s | %s | %s | %s |\n", mdCodeCell(c.Endpoint), mdCodeCell(c.Field), mdCodeCell(c.Document), mdCodeCell(c.Observed), resultMark(c.Pass))
		}
		p("\n")
	}

	p("## Release gate\n\n")
	if len(run.Gate) == 0 {
		p("Release gate not recorded.\n\n")
	} else {
		p("| Step | Name | Command | Result | Detail |\n| --- | --- | --- | --- | --- |\n")
		for _, g := range run.Gate {
			p("| %d | %s | %s | **%s** | %s |\n", g.Step, mdCell(g.Name), mdCodeCell(g.Command), g.Result, mdCell(g.Detail))
		}
		p("\n")
	}

	p("## Failure-mode rows\n\n")
	if len(v.Rows) == 0 {
		p("No rows recorded.\n\n")
	}
	for _, r := range v.Rows {
		p("<a id=\"%s\"></a>\n\n### %s — %s: **%s**\n\n", r.Anchor, mdText(r.ID), mdText(r.Name), r.Status)
		if r.Failure != "" {
			p("Failure:\n\n```text\n%s\n```\n\n", strings.ReplaceAll(r.Failure, "```", "'''"))
		}
		if len(r.Labels) > 0 {
			p("- Labels: %s\n", mdCode(strings.Join(r.Labels, ", ")))
		}
		if r.Attempts > 1 {
			p("- Attempts: %d\n", r.Attempts)
		}
		switch {
		case r.RunbookHref != "":
			p("- Runbook: [%s](<%s>)\n", mdText(r.Runbook), strings.NewReplacer(" ", "%20", "<", "%3C", ">", "%3E").Replace(r.RunbookHref))
		case r.Runbook != "":
			p("- Runbook: %s\n", mdCode(r.Runbook))
		}
		p("- Triggers that must fire: %s\n", mdCode(strings.Join(r.Triggers, ", ")))
		p("- Fault: %s on %s, injected %s, healed %s\n", mdCode(r.Fault.Kind), mdCode(r.Fault.Target), fmtTime(r.Fault.InjectedAt), fmtTime(r.Fault.HealedAt))
		for _, kv := range r.Params {
			p("  - %s = %s\n", mdCode(kv.K), mdCode(kv.V))
		}
		if len(r.Fault.Proof) == 0 {
			p("- Proof the fault acted: none recorded\n")
		}
		for _, pr := range r.Fault.Proof {
			p("- Proof: %s = %s\n", mdText(pr.What), mdCode(pr.Value))
		}
		p("- Mitigation: %s at %s\n\n", mdText(orDash(r.Mitigation.Action)), fmtTime(r.Mitigation.AppliedAt))
		p("| Time to detect | Time to fire | Time to recover |\n| --- | --- | --- |\n| %s | %s | %s |\n\n", r.Detect, r.Fire, r.Recover)
		p("Detect and fire count from injection; recover counts from the mitigation.\n\n")
		if len(r.Evaluations) > 0 {
			p("| Phase | Expression | Value | Present | Want | Result | At |\n| --- | --- | --- | --- | --- | --- | --- |\n")
			for _, e := range r.Evaluations {
				p("| %s | %s | %s | %t | %s | %s | %s |\n", e.Phase, mdCodeCell(e.Expr), fmtFloat(e.Value), e.Present, mdCodeCell(e.Want), resultMark(e.Pass), fmtTime(e.At))
			}
			p("\n")
		}
		if d := r.DataLoss; d != nil {
			p("Data loss: **%s** — ops %d, acknowledged %d, lost %d, duplicated %d, unexpected %d, rejected but applied %d, unknown %d", d.Verdict, d.Ops, d.Acknowledged, d.Lost, d.Duplicated, d.Unexpected, d.RejectedButApplied, d.Unknown)
			if d.Detail != "" {
				p(" (%s)", mdText(d.Detail))
			}
			p("\n\n")
		} else {
			p("Data loss: not checked\n\n")
		}
		mdServer(&b, r.Server)
		if r.Timeline != nil && len(r.Timeline.Series) > 0 {
			p("| Series | Kind | Points | Min | Max | Last |\n| --- | --- | --- | --- | --- | --- |\n")
			for _, s := range r.Timeline.Series {
				lo, hi, last := seriesStats(s.Points)
				p("| %s | %s | %d | %s | %s | %s |\n", mdCodeCell(s.Name), s.Kind, len(s.Points), lo, hi, last)
			}
			p("\nThe timeline chart is in report.html.\n\n")
		}
	}

	for _, w := range []*windowView{v.Control, v.Canary} {
		if w == nil {
			continue
		}
		p("## %s: **%s**\n\n", w.Title, map[bool]string{true: "pass", false: "fail"}[w.Pass])
		p("Planned %s, ran %s → %s.", fmtDuration(w.Planned.Duration), fmtTime(w.Started), fmtTime(w.Ended))
		if w.Detail != "" {
			p(" %s", mdText(w.Detail))
		}
		p("\n\n| Trigger | Max value | Ever fired |\n| --- | --- | --- |\n")
		for _, t := range w.Triggers {
			p("| %s | %s | %t |\n", mdCodeCell(t.Alert), fmtFloat(t.MaxValue), t.EverFired)
		}
		p("\n")
		mdServer(&b, w.Server)
		if w.Production.Compared {
			mdServer(&b, w.Production)
		}
	}
	if v.Control == nil {
		p("## Control (no fault)\n\nNot recorded.\n\n")
	}
	if v.Canary == nil {
		p("## Canary\n\nNot recorded.\n\n")
	}

	p("## Summary\n\n")
	if len(v.Rows) == 0 {
		p("No rows recorded.\n")
		return b.String()
	}
	p("| Row | Fault | Detect | Fire | Recover | Data loss | Server | Status |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range v.Rows {
		dl := "not checked"
		if r.DataLoss != nil {
			dl = r.DataLoss.Verdict
		}
		p("| [%s](#%s) | %s | %s | %s | %s | %s | %s | **%s** |\n", mdText(r.ID), r.Anchor, mdCell(r.FaultLabel), r.Detect, r.Fire, r.Recover, dl, r.Server.State, r.Status)
	}
	return b.String()
}

// mdServer writes a row's or window's agreement with the Prometheus server: the alerts
// either evaluator fired, and how many stayed quiet in both. Nothing when the server was off.
func mdServer(b *strings.Builder, a agreementView) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	switch {
	case a.Missing:
		p("Prometheus server: **not compared** (no agreement recorded)\n\n")
		return
	case !a.Compared:
		return
	}
	title := a.Title
	if title == "" {
		title = "Prometheus server"
	}
	p("%s: **%s** over %s → %s, tolerance %s", title, a.State, fmtTime(a.From), fmtTime(a.To), a.Tolerance)
	if a.Detail != "" {
		p(" (%s)", mdText(a.Detail))
	}
	p("\n\n")
	if len(a.Fired) > 0 {
		p("| Alert | Embedded fired at | Server fired at | Δ (server − embedded) | Agrees |\n| --- | --- | --- | --- | --- |\n")
		for _, al := range a.Fired {
			p("| %s | %s | %s | %s | %s |\n", mdCodeCell(al.Alert), al.Embedded, al.Server, al.Delta, agreeMark(al.Agree))
		}
		p("\n")
	}
	p("%s.\n\n", a.Quiet)
}

// mdLabelFilter is a label filter in a table cell: code, or "none" when every spec ran.
func mdLabelFilter(f string) string {
	if fmtLabelFilter(f) == "none" {
		return "none"
	}
	return mdCodeCell(f)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func seriesStats(ps []evidence.Point) (lo, hi, last string) {
	if len(ps) == 0 {
		return "—", "—", "—"
	}
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		v := float64(p.V)
		if !math.IsNaN(v) {
			mn, mx = math.Min(mn, v), math.Max(mx, v)
		}
	}
	return fmtNum(mn), fmtNum(mx), fmtFloat(ps[len(ps)-1].V)
}
