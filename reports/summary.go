package reports

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// SummaryTable is the run at a glance, for the console at the end of a run: one line
// per row (row, status, detect, fire, recover, data loss, and with the Prometheus server
// on, whether it agreed), then a line each for the baseline captures, the release gate,
// the control, the canary and the Prometheus server when the evidence has them; first,
// when the plan lists items the evidence lacks, a "not run" line naming them. Plain text, columns aligned, "—" for what was not reached or not checked.
// It holds ids, statuses and numbers only, never failure text (the report has that).
func SummaryTable(run *evidence.Run) string {
	if run == nil {
		return ""
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(run.Rows) == 0 {
		fmt.Fprintln(tw, "rows\tnone recorded")
	} else {
		serverOn := run.PrometheusServer != nil && run.PrometheusServer.Enabled
		head := "row\tstatus\tdetect\tfire\trecover\tdata loss"
		if serverOn {
			head += "\tserver"
		}
		fmt.Fprintln(tw, head)
		for _, r := range run.Rows {
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.ID, r.Status,
				summaryDur(r.Times.Detect), summaryDur(r.Times.Fire), summaryDur(r.Times.Recover), summaryDataLoss(r.DataLoss))
			if serverOn {
				line += "\t" + agreementOf(run.PrometheusServer, r.Server, r.Status == evidence.StatusPassed).State
			}
			fmt.Fprintln(tw, line)
		}
	}
	_ = tw.Flush()

	var extra [][2]string
	if nr := evidence.NotRun(run); len(nr) > 0 {
		labels := make([]string, len(nr))
		for i, it := range nr {
			labels[i] = it.Label()
		}
		extra = append(extra, [2]string{"not run", fmt.Sprintf("%d of %d planned items: %s", len(nr), len(run.Plan), listSome(labels, 8))})
	}
	if len(run.Baseline) > 0 {
		extra = append(extra, [2]string{"baseline", summaryBaseline(run.Baseline)})
	}
	if len(run.Gate) > 0 {
		extra = append(extra, [2]string{"gate", summaryGate(run.Gate)})
	}
	if run.Control != nil {
		extra = append(extra, [2]string{"control", summaryWindow(run.Control)})
	}
	if run.Canary != nil {
		extra = append(extra, [2]string{"canary", summaryWindow(run.Canary)})
	}
	if run.PrometheusServer != nil {
		extra = append(extra, [2]string{"prometheus", summaryServer(run)})
	}
	if len(extra) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, e := range extra {
			fmt.Fprintf(tw, "%s\t%s\n", e[0], e[1])
		}
		_ = tw.Flush()
	}
	return b.String()
}

func summaryDur(d *evidence.Duration) string {
	if d == nil {
		return "—"
	}
	return fmtDuration(d.Duration)
}

func summaryDataLoss(d *evidence.DataLoss) string {
	if d == nil {
		return "—"
	}
	var n []string
	for _, c := range []struct {
		what string
		n    int
	}{{"lost", d.Lost}, {"duplicated", d.Duplicated}, {"unexpected", d.Unexpected}, {"rejected but applied", d.RejectedButApplied}} {
		if c.n > 0 {
			n = append(n, fmt.Sprintf("%s %d", c.what, c.n))
		}
	}
	if len(n) == 0 {
		return d.Verdict
	}
	return d.Verdict + " (" + strings.Join(n, ", ") + ")"
}

func summaryBaseline(cs []evidence.BaselineCheck) string {
	pass := 0
	var bad []string
	for _, c := range cs {
		if c.Pass {
			pass++
		} else {
			bad = append(bad, c.Endpoint+" "+c.Field)
		}
	}
	s := fmt.Sprintf("%d/%d pass", pass, len(cs))
	if len(bad) > 0 {
		s += " — differs: " + listSome(bad, 3)
	}
	return s
}

func summaryGate(steps []evidence.GateStep) string {
	counts := map[string]int{}
	var bad []string
	for _, g := range steps {
		counts[g.Result]++
		if g.Result != evidence.GatePass && g.Result != evidence.GateNA {
			bad = append(bad, fmt.Sprintf("step %d %s (%s)", g.Step, g.Name, g.Result))
		}
	}
	var parts []string
	for _, r := range []string{evidence.GatePass, evidence.GateFail, evidence.GateSkipped, evidence.GateNA} {
		if counts[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
		}
	}
	s := fmt.Sprintf("%d steps: %s", len(steps), strings.Join(parts, ", "))
	if len(bad) > 0 {
		s += " — " + listSome(bad, 3)
	}
	return s
}

func summaryWindow(w *evidence.Window) string {
	s := "fail"
	if w.Pass {
		s = "pass"
	}
	s += " — planned " + fmtDuration(w.Planned.Duration)
	if !w.Started.IsZero() && !w.Ended.IsZero() {
		s += ", ran " + fmtDuration(w.Ended.Sub(w.Started))
	} else {
		s += ", did not end"
	}
	var fired []string
	for _, t := range w.Triggers {
		if t.EverFired {
			fired = append(fired, t.Alert)
		}
	}
	if len(fired) == 0 {
		s += fmt.Sprintf(", %d triggers, none fired", len(w.Triggers))
	} else {
		s += fmt.Sprintf(", %d of %d triggers fired: %s", len(fired), len(w.Triggers), listSome(fired, 3))
	}
	return s
}

// summaryServer is the Prometheus server in a line: off and why, or on and what disagreed.
func summaryServer(run *evidence.Run) string {
	ps := run.PrometheusServer
	if !ps.Enabled {
		reason := strings.TrimSpace(ps.Reason)
		if reason == "" {
			reason = "no reason recorded"
		}
		return "off (" + firstLine(reason) + ")"
	}
	s := "on"
	if ps.Version != "" {
		s += " " + ps.Version
	}
	agree, compared := 0, 0
	var bad []string
	count := func(what string, passed bool, a *evidence.ServerAgreement) {
		switch {
		case a != nil && a.Agree:
			agree++
			compared++
		case a != nil:
			compared++
			bad = append(bad, what+" disagrees")
		case passed:
			bad = append(bad, what+" not compared")
		}
	}
	for _, r := range run.Rows {
		count(r.ID, r.Status == evidence.StatusPassed, r.Server)
	}
	for _, w := range []struct {
		name string
		w    *evidence.Window
	}{{"control", run.Control}, {"canary", run.Canary}} {
		if w.w != nil {
			count(w.name, w.w.Pass, w.w.Server)
		}
	}
	s += fmt.Sprintf(" — %d compared, %d agree", compared, agree)
	if len(bad) > 0 {
		s += " — " + listSome(bad, 3)
	}
	return s
}

// firstLine is the first line of s, "…" marking that more followed.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// listSome joins the first n items and says how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
