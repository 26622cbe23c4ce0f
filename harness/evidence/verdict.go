package evidence

import (
	"fmt"
	"strings"
)

// ComputeVerdict derives the release decision from the evidence alone.
//
// GO needs all of: the run complete; at least one row, every row passed with
// a data-loss verdict of "valid"; no run-level problem; every baseline check
// passed; the control window and the canary recorded and passed; the gate
// recorded with every step "pass" or "n/a". Otherwise NO-GO, or INCOMPLETE
// when the run did not complete (the reasons then list what is already
// known to fail too). Reasons name the rows, checks and steps behind them.
func ComputeVerdict(run *Run) Verdict {
	var reasons []string
	add := func(format string, a ...any) { reasons = append(reasons, fmt.Sprintf(format, a...)) }

	if !run.Complete {
		if run.Interrupted {
			why := run.InterruptReason
			if why == "" {
				why = "no reason recorded"
			}
			add("run interrupted (%s): evidence is partial", why)
		} else {
			add("run not complete: the harness stopped before finishing (crash or kill?) or is still running")
		}
	}
	for _, p := range run.Problems {
		add("run problem: %s", p)
	}
	// serverCheck: with the Prometheus server on, every passed row and window needs its
	// agreement, and a disagreement is a failure whatever the embedded engine said.
	serverOn := run.PrometheusServer != nil && run.PrometheusServer.Enabled
	serverCheck := func(what string, passed bool, a *ServerAgreement) {
		switch {
		case a != nil && !a.Agree:
			add("%s: the Prometheus server disagrees with the embedded engine: %s", what, firstLine(a.Detail))
		case a == nil && serverOn && passed:
			add("%s: no agreement with the Prometheus server recorded", what)
		}
	}
	if len(run.Rows) == 0 {
		add("no failure-mode rows recorded")
	}
	for _, row := range run.Rows {
		label := rowLabel(row)
		if row.Status != StatusPassed {
			msg := fmt.Sprintf("row %s: %s", label, row.Status)
			if row.Failure != "" {
				msg += ": " + firstLine(row.Failure)
			}
			reasons = append(reasons, msg)
		}
		serverCheck("row "+label, row.Status == StatusPassed, row.Server)
		switch {
		case row.DataLoss == nil:
			if row.Status == StatusPassed {
				add("row %s: no data-loss check recorded", label)
			}
		case row.DataLoss.Verdict != DataLossValid:
			add("row %s: data loss %s (lost %d, duplicated %d, unexpected %d, rejected-but-applied %d, unknown %d)",
				label, row.DataLoss.Verdict, row.DataLoss.Lost, row.DataLoss.Duplicated,
				row.DataLoss.Unexpected, row.DataLoss.RejectedButApplied, row.DataLoss.Unknown)
		}
	}
	if len(run.Baseline) == 0 {
		add("no baseline captures recorded")
	}
	for _, b := range run.Baseline {
		if !b.Pass {
			add("baseline %s %s: observed %q, document lists %q", b.Endpoint, b.Field, b.Observed, b.Document)
		}
	}
	checkWindow := func(name string, w *Window) {
		if w == nil {
			add("%s window not recorded", name)
			return
		}
		serverCheck(name+" window", w.Pass, w.Server)
		if w.Pass {
			return
		}
		var fired []string
		for _, t := range w.Triggers {
			if t.EverFired {
				fired = append(fired, t.Alert)
			}
		}
		msg := fmt.Sprintf("%s window failed", name)
		if len(fired) > 0 {
			msg += ": triggers fired: " + strings.Join(fired, ", ")
		}
		if w.Detail != "" {
			msg += " (" + firstLine(w.Detail) + ")"
		}
		reasons = append(reasons, msg)
	}
	checkWindow("control", run.Control)
	checkWindow("canary", run.Canary)
	if len(run.Gate) == 0 {
		add("release gate not recorded")
	}
	for _, g := range run.Gate {
		if g.Result != GatePass && g.Result != GateNA {
			msg := fmt.Sprintf("gate step %d (%s): %s", g.Step, g.Name, g.Result)
			if g.Detail != "" {
				msg += ": " + firstLine(g.Detail)
			}
			reasons = append(reasons, msg)
		}
	}

	switch {
	case !run.Complete:
		return Verdict{Decision: DecisionIncomplete, Reasons: reasons}
	case len(reasons) > 0:
		return Verdict{Decision: DecisionNoGo, Reasons: reasons}
	}
	return Verdict{Decision: DecisionGo}
}

func rowLabel(row Row) string {
	if row.Name == "" {
		return row.ID
	}
	return fmt.Sprintf("%s (%s)", row.ID, row.Name)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
