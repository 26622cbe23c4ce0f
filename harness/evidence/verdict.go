package evidence

import (
	"fmt"
	"strconv"
	"strings"
)

// ComputeVerdict derives the release decision from the evidence alone.
//
// GO needs all of: the run complete; a plan recorded (Run.Plan) and every planned item
// in the evidence; at least one row, every row passed with a data-loss verdict of
// "valid"; no run-level problem; every baseline check passed; the control window and
// the canary recorded and passed; the gate recorded with every step "pass" or "n/a";
// nothing inconclusive (a check judged without the data to judge it).
//
// The decision is INCOMPLETE when the run did not complete, or when a planned item is
// absent from the evidence (a row never begun, a gate step never recorded, no baseline
// check, no control or canary window: a filtered run or a merge missing a shard); one
// reason names every such item, and the reasons list what is already known to fail too.
// Otherwise any reason makes it NO-GO. With no plan recorded (evidence from before the
// plan existed) nobody can tell whether everything planned ran: the reasons say so, a
// run that fails anyway stays NO-GO, and one that would have read GO is INCOMPLETE.
// Reasons name the rows, checks and steps behind them.
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
	notRun, unknownKinds := planGaps(run)
	if len(notRun) > 0 {
		labels := make([]string, len(notRun))
		for i, it := range notRun {
			labels[i] = it.Label()
		}
		add("planned but not run: %s", strings.Join(labels, ", "))
	}
	for _, it := range unknownKinds {
		add("planned %s: unknown kind %q, cannot tell whether it ran (render with the pbreport that wrote it)", it.Label(), it.Kind)
	}
	noPlan := len(run.Plan) == 0
	if noPlan {
		add("no plan recorded: cannot tell whether everything planned ran")
	}
	planned := map[string]bool{}
	for _, it := range run.Plan {
		planned[it.Kind] = true
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
	// With a plan, what is required is what it names (planGaps: a missing item is
	// INCOMPLETE), so a canary-only run (`pbchaos canary`, plan: the canary) can be GO;
	// without one, today's minimum: rows, baseline, both windows and the gate.
	if len(run.Rows) == 0 && noPlan {
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
		if row.Status == StatusPassed {
			for _, e := range row.Evaluations {
				if e.Pass && !e.Present && !wantsAbsence(e.Want) {
					add("row %s: inconclusive: %s (%s) passed with no sample, but wanted %q: no data is no proof", label, e.Expr, e.Phase, e.Want)
				}
			}
		}
	}
	if len(run.Baseline) == 0 && noPlan {
		add("no baseline captures recorded")
	}
	for _, b := range run.Baseline {
		if !b.Pass {
			add("baseline %s %s: observed %q, document lists %q", b.Endpoint, b.Field, b.Observed, b.Document)
		}
	}
	checkWindow := func(name string, w *Window) {
		if w == nil {
			if noPlan {
				add("%s window not recorded", name)
			}
			return
		}
		serverCheck(name+" window", w.Pass, w.Server)
		if w.Pass {
			if len(w.Triggers) == 0 {
				add("%s window: inconclusive: it passed with no rollback trigger watched (nothing evaluated proves nothing)", name)
			}
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
	if len(run.Gate) == 0 && noPlan {
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

	failures := len(reasons)
	if noPlan {
		failures-- // the "no plan recorded" reason itself
	}
	switch {
	case !run.Complete, len(notRun) > 0, len(unknownKinds) > 0:
		return Verdict{Decision: DecisionIncomplete, Reasons: reasons}
	case failures > 0:
		return Verdict{Decision: DecisionNoGo, Reasons: reasons}
	case noPlan:
		// Nothing fails, but nothing shows that everything planned ran: GO must be earned.
		return Verdict{Decision: DecisionIncomplete, Reasons: reasons}
	}
	return Verdict{Decision: DecisionGo}
}

// Label names the item as a reason does: "row FM3-clerk-partial", "validation VAL-2",
// "baseline", "gate step 4 (VPS deploy)", "control", "canary".
func (it PlannedItem) Label() string {
	switch it.Kind {
	case PlanBaseline, PlanControl, PlanCanary:
		return it.Kind
	case PlanGate:
		if it.Name != "" {
			return fmt.Sprintf("gate step %s (%s)", it.ID, it.Name)
		}
		return "gate step " + it.ID
	}
	return it.Kind + " " + it.ID
}

// NotRun lists the planned items the evidence does not show ran, in plan order (nil
// when every item ran, or when no plan was recorded). An item of a kind this build does
// not know is listed too: nothing shows it ran.
func NotRun(run *Run) []PlannedItem {
	notRun, unknown := planGaps(run)
	return append(notRun, unknown...)
}

// planGaps splits the planned items the evidence lacks into those of a known kind and
// those of a kind this build cannot check.
func planGaps(run *Run) (notRun, unknownKind []PlannedItem) {
	if len(run.Plan) == 0 {
		return nil, nil
	}
	rows := map[string]bool{}
	for _, r := range run.Rows {
		rows[r.ID] = true
	}
	gate := map[string]bool{}
	for _, g := range run.Gate {
		gate[strconv.Itoa(g.Step)] = true
	}
	for _, it := range run.Plan {
		var ran bool
		switch it.Kind {
		case PlanRow, PlanValidation:
			ran = rows[it.ID]
		case PlanBaseline:
			ran = len(run.Baseline) > 0
		case PlanGate:
			ran = gate[it.ID]
		case PlanControl:
			ran = run.Control != nil
		case PlanCanary:
			ran = run.Canary != nil
		default:
			unknownKind = append(unknownKind, it)
			continue
		}
		if !ran {
			notRun = append(notRun, it)
		}
	}
	return notRun, unknownKind
}

// wantsAbsence reports whether an evaluation's want is satisfied by no series at all
// ("does not hold", "absent"): for any other want, a pass with no sample judged nothing.
func wantsAbsence(want string) bool {
	w := strings.TrimSpace(want)
	return strings.HasPrefix(w, "does not hold") || strings.HasPrefix(w, "absent")
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
