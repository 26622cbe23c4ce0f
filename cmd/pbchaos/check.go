package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/baseline"
	"github.com/pocketbrain/chaos/harness/gate"
	"github.com/pocketbrain/chaos/harness/profile"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
	"github.com/pocketbrain/chaos/harness/stack"
)

// loadProgram loads and validates the program as the suites do, at production timing
// (the rule files as promtool sees them) and at the profile's scale, and returns the
// program at that scale (the matrix's windows scaled as the rules' are).
func loadProgram(dir string, forScale float64) (*program.Program, *signals.Rules, error) {
	prog, err := program.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if _, err := stack.Check(prog, nil, 1); err != nil {
		return nil, nil, err
	}
	rules, err := stack.Check(prog, nil, forScale)
	if err != nil {
		return nil, nil, err
	}
	if prog, err = prog.AtScale(forScale); err != nil {
		return nil, nil, err
	}
	return prog, rules, nil
}

func cmdCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	dir := fs.String("program", defaultProgramDir(), "program directory (matrix.yaml, targets.yaml, rules/, baseline.yaml, release-gate.yaml)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("check takes no arguments, got %q", pos)}
	}
	prof, err := profile.FromEnv()
	if err != nil {
		return err
	}
	began := time.Now()
	// Every file is checked, so that one run names every problem.
	prog, rules, perr := loadProgram(*dir, prof.ForScale)
	base, berr := baseline.Load(*dir)
	g, gerr := gate.Load(*dir)
	if err := errors.Join(perr, berr, gerr); err != nil {
		return fmt.Errorf("program %s is invalid:\n%s", *dir, indent(err.Error()))
	}
	var alerts []string
	nrec := 0
	for _, r := range rules.Rules() {
		if r.Kind == signals.AlertingRule {
			alerts = append(alerts, r.Name)
		} else {
			nrec++
		}
	}
	sort.Strings(alerts)
	var ids []string
	for _, r := range prog.Matrix.Rows {
		ids = append(ids, r.ID)
	}
	values := 0
	for _, e := range base.Endpoints {
		values += len(e.Expect)
	}
	na := 0
	for _, s := range g.Steps {
		if s.NA != "" {
			na++
		}
	}
	fmt.Fprintf(stdout, "OK: program %s: %d rows (%s), %d targets, %d recording rules, %d alerts (%s); %s: %d endpoints, %d values; %s: %d steps (%d n/a here), %d unsafe settings; checked in %s, no Docker needed\n",
		*dir, len(ids), strings.Join(ids, ", "), len(prog.Targets), nrec, len(alerts), strings.Join(alerts, ", "),
		baseline.File, len(base.Endpoints), values, gate.File, len(g.Steps), na, len(g.ConfigCheck.Unsafe),
		time.Since(began).Round(time.Millisecond))
	return nil
}
