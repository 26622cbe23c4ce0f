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
	fmt.Fprintln(tw, "row\tstatus\tdetect\tfire\trecover\tinjection→recovered\tspec total")
	var sumInherent, sumLower, sumSpec time.Duration
	for _, r := range run.Rows {
		inherent := time.Duration(0)
		if !r.Fault.InjectedAt.IsZero() && !r.Mitigation.AppliedAt.IsZero() && r.Times.Recover != nil {
			inherent = r.Mitigation.AppliedAt.Sub(r.Fault.InjectedAt) + r.Times.Recover.Duration
		}
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1fs\t%.1fs\n", r.ID, r.Status, ms(r.Times.Detect), ms(r.Times.Fire), ms(r.Times.Recover), inherent.Seconds(), spec.Seconds())
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
		fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%.1fs (planned)\t%.1fs\n", w.name, status, w.win.Planned.Seconds(), span.Seconds())
	}
	fmt.Fprintf(tw, "Σ (%d windows)\t\t\t\t\t%.1fs\t%.1fs\n", windows, sumInherent.Seconds(), sumSpec.Seconds())
	_ = tw.Flush()
	fmt.Fprintf(stdout, "lower bound Σ(max(detect,fire)+recover) = %.1fs\n", sumLower.Seconds())
	if *wall > 0 && sumInherent > 0 {
		fmt.Fprintf(stdout, "wall %.1fs; overhead ratio wall/Σ(injection→recovered) = %.2f (wall/lower bound = %.2f; wall/Σ spec = %.2f)\n",
			wall.Seconds(), wall.Seconds()/sumInherent.Seconds(), wall.Seconds()/sumLower.Seconds(), wall.Seconds()/sumSpec.Seconds())
	}
	return nil
}
