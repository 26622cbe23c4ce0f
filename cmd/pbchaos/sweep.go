package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/pocketbrain/chaos/harness/env"
)

// cmdSweep removes labelled leftovers. It lists what it will remove before removing it,
// and says what it kept and why.
func cmdSweep(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	all := fs.Bool("all", false, "remove everything with the harness label of this host, also of live processes")
	anyHost := fs.Bool("any-host", false, "with --all: of every host the engine serves, not only this one")
	dryRun := fs.Bool("dry-run", false, "list what would be removed (and kept), remove nothing")
	runID := fs.String("run", "", "remove only the objects of this environment id, whoever owns them")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("sweep takes no arguments, got %q", pos)}
	}
	if *anyHost && !*all {
		return usageError{"--any-host goes with --all (an orphan sweep only judges owners it can verify: this host's)"}
	}
	if *all && *runID != "" {
		return usageError{"--all and -run exclude each other"}
	}
	host, _ := os.Hostname()
	mode := env.SweepOrphans
	what := "leftovers of processes verified gone"
	switch {
	case *runID != "":
		what = "environment " + *runID
	case *all && *anyHost:
		mode, what = env.SweepAll, "everything with the label "+env.LabelHarness+"=1, of every host"
	case *all:
		mode, what = env.SweepHost, "everything with the label "+env.LabelHarness+"=1 of host "+host
	}
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		return err
	}
	defer d.Close()
	plan, err := d.PlanSweep(ctx, mode, *runID)
	if err != nil {
		return fmt.Errorf("list labelled objects: %w", err)
	}
	verb := "will remove"
	if *dryRun {
		verb = "would remove"
	}
	fmt.Fprintf(stdout, "%s %s (%s)%s\n", verb, objects(len(plan.Remove)), what, colon(len(plan.Remove)))
	listObjects(stdout, plan.Remove)
	rep := env.SweepReport{Kept: plan.Keep}
	for _, l := range rep.KeptSummary() {
		fmt.Fprintln(stdout, l)
	}
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing removed")
		return nil
	}
	rep, err = d.RemoveObjects(ctx, plan.Remove)
	fmt.Fprintf(stdout, "swept %s: %d containers, %d volumes, %d networks\n", what, rep.Containers, rep.Volumes, rep.Networks)
	if err != nil {
		return fmt.Errorf("sweep incomplete: %w; run it again, or remove the objects listed with `docker ps -a --filter label=%s=1`", err, env.LabelHarness)
	}
	if mode == env.SweepOrphans && len(plan.Keep) > 0 {
		fmt.Fprintf(stdout, "kept %s in all; `--all` removes everything of this host, live or not (stop your runs first)\n", objects(len(plan.Keep)))
	}
	return nil
}

func objects(n int) string {
	if n == 1 {
		return "1 object"
	}
	return fmt.Sprintf("%d objects", n)
}

func colon(n int) string {
	if n == 0 {
		return ""
	}
	return ":"
}

// listObjects prints one line per object: kind, name, run id, owner host and pid, why.
func listObjects(w io.Writer, objs []env.Object) {
	if len(objs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tNAME\tRUN\tHOST\tPID\tWHY")
	for _, o := range objs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", o.Kind, o.Name, dash(o.Run), dash(o.Host), dash(o.PID), o.Reason)
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
