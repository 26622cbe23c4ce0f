package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/profile"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/session"
	"github.com/pocketbrain/chaos/harness/stack"
	"github.com/pocketbrain/chaos/reports"
)

func cmdHold(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	dir := fs.String("program", defaultProgramDir(), "program directory")
	timeout := fs.Duration("timeout", 30*time.Minute, "longest hold; then the mitigation runs by itself")
	verbose := fs.Bool("v", false, "keep testcontainers' own log lines, in testcontainers.log of the output directory")
	out := fs.String("out", "", "where evidence.json and the report go (default $PB_OUT, else out/hold-<time>)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"hold needs exactly one ROW-ID (see `pbchaos check` for the ids)"}
	}
	if *timeout <= 0 {
		return usageError{"-timeout must be positive"}
	}
	rowID := pos[0]
	prof, err := profile.FromEnv()
	if err != nil {
		return err
	}
	switch {
	case *out != "":
		prof.OutDir = *out
	case os.Getenv(profile.EnvOut) == "":
		prof.OutDir = filepath.Join("out", "hold-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	if prof.OutDir, err = filepath.Abs(prof.OutDir); err != nil {
		return err
	}

	// Preflight, in seconds and before anything is written: a bad input never
	// overwrites an earlier report in the output directory.
	prog, _, err := loadProgram(*dir, prof.ForScale)
	if err != nil {
		return fmt.Errorf("program %s is invalid:\n%s", *dir, indent(err.Error()))
	}
	var row program.Row
	var ids []string
	for _, r := range prog.Matrix.Rows {
		ids = append(ids, r.ID)
		if r.ID == rowID {
			row = r
		}
	}
	if row.ID == "" {
		return fmt.Errorf("%w: %q; rows of %s: %s", scenario.ErrNoRow, rowID, filepath.Join(*dir, program.MatrixFile), strings.Join(ids, ", "))
	}
	if err := stack.Preflight(ctx, nil); err != nil {
		return err
	}

	// From here on, Ctrl-C (or SIGTERM) cancels the row; teardown still runs. A second
	// Ctrl-C abandons the teardown (then `pbchaos sweep` removes what is left).
	sigCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	interrupted := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs) // a second Ctrl-C kills at once
			fmt.Fprintf(stderr, "\n[hold] %s: healing, writing the evidence and tearing down (interrupt again to abandon; then `pbchaos sweep`)\n", s)
			close(interrupted)
			interrupt()
		case <-sigCtx.Done():
			signal.Stop(sigs)
		}
	}()
	wasInterrupted := func() bool {
		select {
		case <-interrupted:
			return true
		default:
			return false
		}
	}
	// The run's secrets exist before anything is written, so that one redactor hides
	// them (and the host's secret-looking variables) in everything hold prints or writes.
	opts := session.Options{
		Profile:    prof,
		Program:    prog,
		ProgramDir: *dir,
		RunID:      time.Now().UTC().Format("20060102T150405Z") + "-hold-" + rowID,
		Secrets:    env.NewSecrets(),
		Progress:   stdout,
		Prefix:     "hold",
		Provenance: evidence.Provenance{
			LabelFilter:     "row:" + rowID + " (pbchaos hold)",
			HarnessRevision: revision(*dir),
		},
		CheckName: func() string { return row.ID },
	}
	if *verbose {
		// A file, not the console: the console keeps the hold's own lines.
		opts.LogFile = "testcontainers.log"
	}
	sess, err := session.Open(opts)
	if sess == nil {
		return err
	}
	rec, progress := sess.Recorder, sess.Progress
	// Teardown, whatever happens below: heal, record, write the report, remove the stack.
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), holdTeardownTimeout)
		defer cancel()
		up := sess.Stack != nil
		cerr := sess.Close(tctx, func() {
			if wasInterrupted() {
				_ = rec.Interrupt("signal: interrupted by the engineer")
			}
			_, _ = rec.Finish()
			if run, lerr := evidence.Load(rec.Path()); lerr == nil {
				if werr := reports.WriteAll(run, prof.OutDir, reports.WithRedactor(rec.Redactor())); werr != nil {
					err = errors.Join(err, werr)
				}
				fmt.Fprintf(progress, "[hold] evidence %s, report %s (run verdict %s: one row alone is not a release decision)\n", rec.Path(), filepath.Join(prof.OutDir, "report.html"), run.Verdict.Decision)
			}
		})
		err = errors.Join(err, cerr)
		var downErr *session.DownError
		if up && !errors.As(cerr, &downErr) {
			fmt.Fprintln(progress, "[hold] stack removed")
		}
		if wasInterrupted() && !errors.Is(err, errInterrupted) {
			err = errors.Join(errInterrupted, err)
		}
	}()
	if err != nil {
		return err
	}
	if *verbose {
		fmt.Fprintf(stderr, "[hold] testcontainers' own log lines go to %s\n", sess.LogPath())
	}
	fmt.Fprintf(progress, "[hold] row %s: %s — booting the stack (evidence: %s)\n", row.ID, row.Name, rec.Path())
	// The same stack and the same production-sized store as the suite's rows run on.
	if err := sess.Boot(sigCtx); err != nil {
		return err
	}
	st, runner := sess.Stack, sess.Runner
	runner.Hold = func(ctx context.Context, row program.Row) error {
		return holdHere(ctx, st, row, *timeout, stdin, progress)
	}
	rr, err := rec.BeginRow(evidence.RowSpec{ID: row.ID, Name: row.Mode + " — " + row.Name, Labels: row.GinkgoLabels(), Runbook: row.Runbook, Triggers: row.Triggers})
	if err != nil {
		return err
	}
	runErr := runner.Run(sigCtx, row, rr)
	if runErr == nil {
		// Fault hygiene, as the suite's AfterEach: nothing paused or stopped, Toxiproxy clean.
		if bad, uerr := st.Env.Unhealthy(sigCtx); uerr != nil || len(bad) > 0 {
			runErr = errors.Join(uerr, fmt.Errorf("containers not running after the row: %s", strings.Join(bad, "; ")))
		}
	}
	switch {
	case wasInterrupted():
		_ = rr.End(evidence.StatusInterrupted, "interrupted by the engineer: "+st.Env.Redact(fmt.Sprint(runErr)))
		return errInterrupted
	case runErr != nil:
		_ = rr.Fail(st.Env.Redact(runErr.Error()))
		return fmt.Errorf("row %s failed: %s", row.ID, st.Env.Redact(runErr.Error()))
	}
	_ = rr.Pass()
	fmt.Fprintf(progress, "[hold] row %s passed: detected, fired, mitigated and recovered\n", row.ID)
	return nil
}

// holdHere keeps the stack in its faulted state until Enter, the timeout or an interrupt,
// after printing everything an engineer needs to look at it live.
func holdHere(ctx context.Context, st *stack.Stack, row program.Row, timeout time.Duration, stdin io.Reader, w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n================ HOLDING %s in its faulted state ================\n", row.ID)
	fmt.Fprintf(&b, "failure mode : %s — %s\n", row.Mode, row.Name)
	fmt.Fprintf(&b, "runbook      : %s\n", row.Runbook)
	var fs []string
	for _, f := range row.Faults {
		fs = append(fs, f.String())
	}
	fmt.Fprintf(&b, "faults       : %s\n", strings.Join(fs, "; "))
	fmt.Fprintf(&b, "detection    : %s\n", strings.Join(row.Detect, " and "))
	if len(row.Triggers) > 0 {
		fmt.Fprintf(&b, "triggers     : %s (firing)\n", strings.Join(row.Triggers, ", "))
	}
	fmt.Fprintf(&b, "mitigation   : %s: %s\n", row.Mitigation.Action, row.Mitigation.Note)
	fmt.Fprintf(&b, "harness      : %s/metrics   (everything collected, JSON signals flattened; scrape it from Prometheus/Grafana)\n", st.HarnessURL)
	for _, r := range []env.Role{env.Server, env.Worker, env.Clients, env.Provider, env.Toxiproxy} {
		if !st.Env.Has(r) {
			continue
		}
		u, err := st.Env.URL(ctx, r)
		if err != nil {
			fmt.Fprintf(&b, "%-13s: %v\n", r, err)
			continue
		}
		fmt.Fprintf(&b, "%-13s: %s%s\n", r, env.PlainURL(u), endpointHint(r))
	}
	fmt.Fprintf(&b, "environment  : %s (containers labelled %s=%s)\n", st.Env.RunID(), env.LabelRun, st.Env.RunID())
	fmt.Fprintf(&b, "control      : /proxies, /control, /state, /history and the server's /api/v2/sync/state need the run's token (basic auth user %s); whoever may use Docker reads it: docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' <container> | grep CONTROL_TOKEN\n", env.ControlUser)
	fmt.Fprintf(&b, "Press Enter to apply the mitigation and check recovery (at the latest in %s; Ctrl-C tears down).\n", timeout)
	fmt.Fprint(w, b.String())

	enter := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(stdin).ReadString('\n')
		enter <- err
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		fmt.Fprintf(w, "[hold] %s passed: mitigating\n", timeout)
	case err := <-enter:
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read stdin: %w", err)
		}
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(w, "[hold] stdin closed: mitigating")
		} else {
			fmt.Fprintln(w, "[hold] mitigating")
		}
	}
	return nil
}

func endpointHint(r env.Role) string {
	switch r {
	case env.Server:
		return "   (/ready, /metrics)"
	case env.Worker:
		return "   (/api/v1/metrics)"
	case env.Clients:
		return "   (/metrics, /state, /history)"
	case env.Provider:
		return "   (/control/stats)"
	case env.Toxiproxy:
		return "   (/proxies; toxics per proxy)"
	}
	return ""
}

// holdTeardownTimeout bounds the teardown: heal, the evidence and the report, the
// stack's removal.
const holdTeardownTimeout = 3 * time.Minute

// revision reads HEAD of the checkout holding the program directory, without git.
func revision(programDir string) string {
	if v := os.Getenv("PB_HARNESS_REVISION"); v != "" {
		return v
	}
	root := filepath.Dir(filepath.Clean(programDir))
	head, err := os.ReadFile(filepath.Join(root, ".git", "HEAD"))
	if err != nil {
		return "unknown"
	}
	ref := strings.TrimSpace(string(head))
	if !strings.HasPrefix(ref, "ref: ") {
		return ref
	}
	b, err := os.ReadFile(filepath.Join(root, ".git", strings.TrimPrefix(ref, "ref: ")))
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
