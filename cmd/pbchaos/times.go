package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// cmdTimes prints the measured times of every row of an evidence file and, given the
// run's wall time, the harness's overhead ratio:
//
//	inherent(row) = (mitigation applied − fault injected) + time to recover
//	              = the span from injection to recovery: what the stack itself needs to
//	                detect, fire (plus the row's own hold/quiet span) and recover; the
//	                harness cannot make it shorter without changing the mechanism settings.
//	overhead      = wall time / Σ inherent(row)
//
// A run that also holds the no-fault control or the canary needs their planned spans by
// its own settings (PB_CONTROL_SPAN, PB_CANARY_SPAN): they count as inherent windows too.
//
// Everything outside the fault windows (process start, program check, image check, boot,
// catalogue, steady-state waits, data-loss check, teardown, report) is harness overhead.
// The lower bound Σ(max(detect, fire) + recover) is printed too.
//
// Each row's own overhead is split where the evidence marks it, so that a speed-up can
// be aimed: before injection (the steady-state check, the fault's set-up), after recovery
// up to the end of the span the Prometheus server is compared over (the data-loss check),
// and from that span's end to the row's end (the wait for the server to evaluate past
// it). Given the wall time of a serial run, what lies outside the rows, control and
// canary (boot, seed, the suite's other specs such as baseline and gate, the
// restorations after failed specs, teardown, report) is printed too; the specs of a
// merged `ginkgo -p` run overlap, so there it is not.
func cmdTimes(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("times", flag.ContinueOnError)
	wall := fs.Duration("wall", 0, "wall time of the run, for the overhead ratio (e.g. 95s)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"times needs one EVIDENCE.json"}
	}
	run, err := evidence.Load(pos[0])
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	ms := func(d *evidence.Duration) string {
		if d == nil {
			return "-"
		}
		return fmt.Sprintf("%.1fs", d.Duration.Seconds())
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tstatus\tdetect\tfire\trecover\tinjection→recovered\tbefore injection\tafter recovery\tserver wait\tspec total")
	var sumInherent, sumLower, sumSpec time.Duration
	var split splitTotals
	// A row without a server comparison in a run that had the server did not reach it
	// (it failed or was interrupted first): its tail is not "after recovery".
	serverRan := run.PrometheusServer != nil && run.PrometheusServer.Enabled
	for _, r := range run.Rows {
		inherent := time.Duration(0)
		if !r.Fault.InjectedAt.IsZero() && !r.Mitigation.AppliedAt.IsZero() && r.Times.Recover != nil {
			inherent = r.Mitigation.AppliedAt.Sub(r.Fault.InjectedAt) + r.Times.Recover.Duration
		}
		rs := splitRow(r, serverRan)
		split.add(rs)
		lower := time.Duration(0)
		if r.Times.Detect != nil {
			lower = r.Times.Detect.Duration
		}
		if r.Times.Fire != nil && r.Times.Fire.Duration > lower {
			lower = r.Times.Fire.Duration
		}
		if r.Times.Recover != nil {
			lower += r.Times.Recover.Duration
		}
		spec := time.Duration(0)
		if !r.Started.IsZero() && !r.Ended.IsZero() {
			spec = r.Ended.Sub(r.Started)
		}
		sumInherent += inherent
		sumLower += lower
		sumSpec += spec
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1fs\t%s\t%s\t%s\t%.1fs\n", r.ID, r.Status, ms(r.Times.Detect), ms(r.Times.Fire), ms(r.Times.Recover), inherent.Seconds(),
			secs(rs.before), secs(rs.after), secs(rs.server), spec.Seconds())
	}
	windows := len(run.Rows)
	for _, w := range []struct {
		name string
		win  *evidence.Window
	}{{"control (no fault)", run.Control}, {"canary", run.Canary}} {
		if w.win == nil || w.win.Started.IsZero() {
			continue
		}
		status := "failed"
		if w.win.Pass {
			status = "passed"
		}
		span := time.Duration(0)
		if !w.win.Ended.IsZero() {
			span = w.win.Ended.Sub(w.win.Started)
		}
		windows++
		sumInherent += w.win.Planned.Duration
		sumLower += w.win.Planned.Duration
		sumSpec += span
		fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%.1fs (planned)\t-\t-\t-\t%.1fs\n", w.name, status, w.win.Planned.Seconds(), span.Seconds())
	}
	fmt.Fprintf(tw, "Σ (%d windows)\t\t\t\t\t%.1fs\t%s\t%s\t%s\t%.1fs\n", windows, sumInherent.Seconds(),
		split.before.String(), split.after.String(), split.server.String(), sumSpec.Seconds())
	_ = tw.Flush()
	fmt.Fprintf(stdout, "lower bound Σ(max(detect,fire)+recover) = %.1fs\n", sumLower.Seconds())
	if *wall > 0 && sumInherent > 0 {
		fmt.Fprintf(stdout, "wall %.1fs; overhead ratio wall/Σ(injection→recovered) = %.2f (wall/lower bound = %.2f; wall/Σ spec = %.2f)\n",
			wall.Seconds(), wall.Seconds()/sumInherent.Seconds(), wall.Seconds()/sumLower.Seconds(), wall.Seconds()/sumSpec.Seconds())
		switch {
		case len(run.Shards) > 1 || sumSpec > *wall:
			fmt.Fprintf(stdout, "outside the rows, control and canary: not computed (%d shards: their specs overlap in time)\n", max(len(run.Shards), 1))
		default:
			var restored time.Duration
			for _, r := range run.Restorations {
				restored += r.Took.Duration
			}
			fmt.Fprintf(stdout, "outside the rows, control and canary (boot, seed, other specs, restorations %.1fs, teardown, report): %.1fs\n", restored.Seconds(), (*wall - sumSpec).Seconds())
		}
	}
	return nil
}

// rowSplit is a row's overhead, cut at the moments its evidence records; nil where a
// moment is missing (a row that failed before recovering, or ran without the server).
type rowSplit struct {
	before, after, server *time.Duration
}

// splitRow cuts a row at injection, recovery (mitigation applied + time to recover) and
// the end of the span its server comparison covers; in a run without the server
// (serverRan false) the span ends with the row.
func splitRow(r evidence.Row, serverRan bool) rowSplit {
	var s rowSplit
	span := func(from, to time.Time) *time.Duration {
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return nil
		}
		d := to.Sub(from)
		return &d
	}
	s.before = span(r.Started, r.Fault.InjectedAt)
	var recovered time.Time
	if !r.Mitigation.AppliedAt.IsZero() && r.Times.Recover != nil {
		recovered = r.Mitigation.AppliedAt.Add(r.Times.Recover.Duration)
	}
	switch {
	case r.Server != nil:
		s.after = span(recovered, r.Server.To)
		s.server = span(r.Server.To, r.Ended)
	case !serverRan:
		s.after = span(recovered, r.Ended)
	}
	return s
}

// splitTotals sums each part over the rows that have it.
type splitTotals struct {
	before, after, server partSum
}

// partSum is one part's sum and how many rows had it.
type partSum struct {
	sum  time.Duration
	rows int
}

func (p *partSum) add(d *time.Duration) {
	if d != nil {
		p.sum += *d
		p.rows++
	}
}

// String is the sum in seconds, "-" when no row had the part.
func (p partSum) String() string {
	if p.rows == 0 {
		return "-"
	}
	return secs(&p.sum)
}

func (t *splitTotals) add(s rowSplit) {
	t.before.add(s.before)
	t.after.add(s.after)
	t.server.add(s.server)
}

// secs writes a duration in seconds, "-" when it is missing.
func secs(d *time.Duration) string {
	if d == nil {
		return "-"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
