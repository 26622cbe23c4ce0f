// Package pocketbrain is the Ginkgo suite that proves the PocketBrain reliability
// program on the reference stack: one environment per Ginkgo process, every row of the
// matrix as a spec, the baseline captures, the no-fault control and the canary, and an
// evidence report at the end.
//
//	go tool ginkgo --label-filter='row:FM8-redis-down' ./suites/pocketbrain
package pocketbrain

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/profile"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/session"
	"github.com/pocketbrain/chaos/harness/stack"
	"github.com/pocketbrain/chaos/reports"
)

// Everything one Ginkgo process shares across its specs.
var (
	prof profile.Profile
	prog *program.Program
	st   *stack.Stack
	// sess is this process's session (stack, recorder, guard).
	sess   *session.Session
	rec    *evidence.Recorder
	guard  = &faults.Guard{}
	runner *scenario.Runner
	// red hides the run's generated secrets (shared by every process) and the host's
	// secret-looking variables in everything the run writes: evidence, reports, JUnit,
	// history files, Ginkgo failure messages, progress lines and testcontainers' logs.
	red *evidence.Redactor
)

// runStart is what process 1 hands every process: one run id, so their evidence merges
// into one run, and one set of secrets, so that one redactor knows every value any
// process's stack was given.
type runStart struct {
	RunID   string      `json:"runId"`
	Secrets env.Secrets `json:"secrets"`
}

// failRedacted is Ginkgo's Fail with the run's secrets hidden: a Gomega message quotes
// the values it compared, and a DSN, a URL or a token may be one of them. What Fail
// receives reaches the console, the JUnit file and the evidence.
func failRedacted(message string, callerSkip ...int) {
	skip := 1
	if len(callerSkip) > 0 {
		skip += callerSkip[0]
	}
	Fail(red.String(message), skip)
}

func programDir() string {
	if d := os.Getenv("PB_PROGRAM"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "program")
}

func TestPocketBrain(t *testing.T) {
	var err error
	if prof, err = profile.FromEnv(); err != nil {
		t.Fatal(err)
	}
	// Bad program input fails here, in seconds, before any container starts.
	if prog, err = program.Load(programDir()); err != nil {
		t.Fatal(err)
	}
	if _, err = stack.Check(prog, nil, prof.ForScale); err != nil {
		t.Fatal(err)
	}
	// The matrix's windows at the profile's scale, as the rule files' are.
	if prog, err = prog.AtScale(prof.ForScale); err != nil {
		t.Fatal(err)
	}
	// No engine, a missing image or a taken PB_LISTEN fails here too, before any file is
	// written: a run that cannot start never overwrites an earlier report in PB_OUT.
	if err = stack.Preflight(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	describeMatrix(prog)
	RegisterFailHandler(failRedacted)
	RunSpecs(t, "PocketBrain reliability program")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	// Process 1, once per run. The run's secrets come first: testcontainers' log goes to
	// a file through a redactor that knows them before the first engine call. The file
	// stays open for this process's session (session.OpenLog of the same path continues
	// it), which closes it after the stack's teardown.
	secrets := env.NewSecrets()
	tcLog, err := session.OpenLog(filepath.Join(prof.OutDir, tcLogName(GinkgoParallelProcess())), session.NewRedactor(secrets))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(tcLog.Close)
	tcFiles := tcLogName(1)
	if suite, _ := GinkgoConfiguration(); suite.ParallelTotal > 1 {
		tcFiles = fmt.Sprintf("testcontainers-p{1..%d}.log", suite.ParallelTotal)
	}
	fmt.Fprintf(os.Stderr, "[suite] testcontainers' own log lines go to %s\n", filepath.Join(prof.OutDir, tcFiles))
	// Remove what earlier runs whose process is gone left.
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	Expect(err).NotTo(HaveOccurred())
	defer d.Close()
	rep, err := d.Sweep(ctx, env.SweepOrphans, "")
	Expect(err).NotTo(HaveOccurred())
	// Always said, on the terminal too (GinkgoWriter alone shows only on failure).
	fmt.Fprintf(io.MultiWriter(GinkgoWriter, os.Stderr), "[suite] swept leftovers of dead runs: %d containers, %d networks, %d volumes\n", rep.Containers, rep.Networks, rep.Volumes)
	// One run id for every process, so their evidence merges into one run.
	rev := harnessRevision()
	if len(rev) > 12 {
		rev = rev[:12]
	}
	b, err := json.Marshal(runStart{RunID: time.Now().UTC().Format("20060102T150405Z") + "-" + rev, Secrets: secrets})
	Expect(err).NotTo(HaveOccurred())
	return b
}, func(ctx SpecContext, data []byte) {
	var start runStart
	Expect(json.Unmarshal(data, &start)).To(Succeed())
	// Failure messages are redacted from here on, even if the session cannot open.
	red = session.NewRedactor(start.Secrets)
	var progress io.Writer = GinkgoWriter
	// Ginkgo shows GinkgoWriter only for failures unless verbose: progress goes to the
	// terminal as well, so a long wait always says what it awaits.
	if _, rc := GinkgoConfiguration(); !rc.Verbose && !rc.VeryVerbose && os.Getenv("PB_QUIET") == "" {
		progress = newTee(GinkgoWriter, os.Stderr)
	}
	p := GinkgoParallelProcess()
	var err error
	sess, err = session.Open(session.Options{
		Profile:    prof,
		Program:    prog,
		ProgramDir: programDir(),
		// Every process hashes every program file the suite reads, whichever specs it
		// runs: under -p the gate may run on one process only, and shards merge only
		// when their files agree.
		Files:        []string{BaselineFile, ReleaseGateFile},
		EvidenceFile: fmt.Sprintf("evidence-p%d.json", p),
		RunID:        start.RunID,
		Secrets:      start.Secrets,
		// testcontainers' own lines (and a container's log when its wait strategy fails)
		// go to this process's file, through the run's redactor, before any container starts.
		LogFile:     tcLogName(p),
		Progress:    progress,
		Prefix:      "suite",
		Provenance:  evidence.Provenance{HarnessRevision: harnessRevision()},
		WorkloadDir: filepath.Join(prof.OutDir, "p"+strconv.Itoa(p)),
		CheckName:   checkName,
	})
	if sess != nil {
		red, rec, guard = sess.Redactor, sess.Recorder, sess.Guard
		DeferCleanup(rec.InterruptOnSignal(os.Interrupt, syscall.SIGTERM))
		// Teardown registered before the boot: a half-booted stack is removed too. After
		// the suite's last node it heals, removes the stack, flushes the progress lines
		// and closes the log (process 1's too), so the log holds the teardown's lines.
		DeferCleanup(func(ctx SpecContext) {
			Expect(sess.Close(ctx, nil)).To(Succeed())
		}, NodeTimeout(teardownTimeout))
	}
	Expect(err).NotTo(HaveOccurred())
	// The plan first, before the boot and any spec: whatever this invocation then runs
	// (a label filter, one process of -p, one shard), the verdict knows what it left out.
	plan, err := plannedItems(prog, programDir())
	Expect(err).NotTo(HaveOccurred())
	Expect(rec.SetPlan(plan)).To(Succeed())
	err = sess.Boot(ctx)
	st, runner, wl, seeded = sess.Stack, sess.Runner, sess.Workload, sess.Seeded
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(5*time.Minute))

// teardownTimeout bounds the removal of a process's stack after the suite.
const teardownTimeout = 2 * time.Minute

// tcLogName is the file in PB_OUT that process p's testcontainers lines go to.
func tcLogName(p int) string { return fmt.Sprintf("testcontainers-p%d.log", p) }

// Before every spec: Toxiproxy starts clean (every proxy enabled, no toxic), with a timeout.
var _ = BeforeEach(func(ctx SpecContext) {
	if st == nil {
		return
	}
	Expect(st.Env.Toxi().Reset(ctx)).To(Succeed())
}, NodeTimeout(30*time.Second))

// After every spec: heal whatever is still active, and prove Toxiproxy is clean.
var _ = AfterEach(func(ctx SpecContext) {
	// A row whose spec ended without ending the row (a panic, an interrupt, a timeout)
	// says so in the evidence, instead of "begun but never ended".
	// An interrupted spec's row is "interrupted", not failed by its canceled context.
	if rep := CurrentSpecReport(); rep.Failed() && rec != nil {
		why := rep.State.String() + ": " + rep.Failure.Message
		if rep.Failure.ForwardedPanic != "" {
			why += ": " + rep.Failure.ForwardedPanic
		}
		interrupted := rep.State.String() == "interrupted"
		_ = rec.Update(func(run *evidence.Run) {
			for i := range run.Rows {
				r := &run.Rows[i]
				switch {
				case r.Status == evidence.StatusRunning:
					r.Status, r.Ended, r.Failure = evidence.StatusFailed, time.Now().UTC(), why
				case interrupted && r.Status == evidence.StatusFailed && !r.Started.Before(rep.StartTime):
					r.Failure = why + " (" + r.Failure + ")"
				default:
					continue
				}
				if interrupted {
					r.Status = evidence.StatusInterrupted
				}
			}
		})
	}
	if st == nil {
		return
	}
	healed, healErr := guard.HealAll(ctx, st.Env)
	if len(healed) > 0 {
		fmt.Fprintf(GinkgoWriter, "guard healed: %s\n", strings.Join(healed, "; "))
		_ = st.RefreshTargets(ctx)
	}
	dirty, dirtyErr := st.Env.Toxi().Dirty(ctx)
	// No container of the stack may be left paused or stopped (a process fault that
	// outlived its spec): the next spec would start on a broken stack.
	unhealthy, unhealthyErr := st.Env.Unhealthy(ctx)
	// A failed spec, or one that left a mess, may leave the stack unsteady in ways no
	// guard knows about: restore it now, so that it never fails the next spec. The mess
	// still fails this spec below.
	if rep := CurrentSpecReport(); rep.Failed() || healErr != nil || len(dirty) > 0 || len(unhealthy) > 0 {
		restoreAfter(ctx, rep)
	}
	Expect(healErr).NotTo(HaveOccurred())
	Expect(dirtyErr).NotTo(HaveOccurred())
	Expect(dirty).To(BeEmpty(), "toxiproxy must be clean after every spec")
	Expect(unhealthyErr).NotTo(HaveOccurred())
	Expect(unhealthy).To(BeEmpty(), "every container of the stack must be running (not paused or stopped) after every spec")
}, NodeTimeout(afterEachTimeout()))

// afterEachTimeout bounds the AfterEach: healing and checks, plus a restoration's three
// steady-state waits and its container replacements.
func afterEachTimeout() time.Duration {
	t := env.DefaultTimeouts()
	return 2*time.Minute + 3*t.Restore + 5*t.ContainerStart
}

// restoreAfter brings the stack back to steady state after the spec of rep (see
// stack.Restore), records what it did and prints it. An interrupted run runs no
// further spec, so its stack is left to the teardown.
func restoreAfter(ctx context.Context, rep SpecReport) {
	if rep.State.Is(types.SpecStateInterrupted) {
		fmt.Fprintf(progressOut(), "[restore] the run is interrupted: no spec follows, the stack is not restored\n")
		return
	}
	res, err := st.Restore(ctx)
	rs := evidence.Restoration{Spec: rep.FullText(), At: time.Now().UTC(), Restored: res.Restored,
		Reason: st.Env.Redact(res.Reason), Actions: res.Actions, SteadyAfter: res.SteadyAfter, Took: evidence.Millis(res.Took)}
	if rec != nil {
		if run, serr := rec.Snapshot(); serr == nil {
			for _, r := range run.Rows {
				if !r.Started.Before(rep.StartTime) {
					rs.Rows = append(rs.Rows, r.ID)
				}
			}
		}
		_ = rec.AddRestoration(rs)
	}
	switch {
	case err != nil:
		msg := fmt.Sprintf("steady state did not return after %q, even after restoring (%s): %v", rep.LeafNodeText, strings.Join(res.Actions, "; "), err)
		if rec != nil {
			_ = rec.AddProblem(st.Env.Redact(msg))
		}
		fmt.Fprintf(progressOut(), "[restore] FAILED: %s\n", st.Env.Redact(msg))
		Fail(st.Env.Redact(msg))
	case res.Restored:
		fmt.Fprintf(progressOut(), "[restore] stack restored after %q in %s: %s\n", rep.LeafNodeText, res.Took.Round(time.Millisecond), strings.Join(res.Actions, "; "))
	default:
		fmt.Fprintf(progressOut(), "[restore] after %q: %s\n", rep.LeafNodeText, res.Reason)
	}
}

var _ = SynchronizedAfterSuite(func(ctx SpecContext) {
	if rec != nil {
		sess.RecordServerMemory(ctx)
		_, _ = rec.Finish()
	}
}, func() {})

// ReportAfterSuite runs once, on process 1, after every process has finished: it writes
// JUnit with Ginkgo's own reporter and merges the processes' evidence into one report.
var _ = ReportAfterSuite("evidence report", func(report Report) {
	if prof.OutDir == "" {
		return
	}
	fmt.Fprintf(os.Stderr, "[suite] writing the evidence report to %s\n", prof.OutDir)
	Expect(os.MkdirAll(prof.OutDir, 0o700)).To(Succeed())
	Expect(writeJUnit(report, filepath.Join(prof.OutDir, "junit.xml"))).To(Succeed())
	run, err := mergeProcessEvidence(prof.OutDir, report)
	Expect(err).NotTo(HaveOccurred())
	Expect(reports.WriteAll(run, prof.OutDir, reports.WithRedactor(outputRedactor()))).To(Succeed())
	fmt.Fprintf(os.Stderr, "\n%s", outputRedactor().String(reports.SummaryTable(run)))
	fmt.Fprintf(os.Stderr, "\n[suite] verdict %s — evidence report: %s\n", run.Verdict.Decision, filepath.Join(prof.OutDir, "report.html"))
	// The whole plan ran (no filter): anything but GO fails the suite, so `make test`,
	// `make run` and CI exit non-zero on a NO-GO even when every spec passed (a missing
	// agreement, a plan gap). A filtered run is INCOMPLETE by design: its specs judge it.
	if unfiltered(report.SuiteConfig) && run.Verdict.Decision != evidence.DecisionGo {
		Fail(outputRedactor().String(fmt.Sprintf("the run's verdict is %s, not GO:\n  %s", run.Verdict.Decision, strings.Join(run.Verdict.Reasons, "\n  "))))
	}
})

// unfiltered reports whether the suite ran every spec: no label filter, focus or skip.
func unfiltered(c types.SuiteConfig) bool {
	return c.LabelFilter == "" && len(c.FocusStrings) == 0 && len(c.SkipStrings) == 0 && len(c.FocusFiles) == 0 && len(c.SkipFiles) == 0
}

// outputRedactor is the run's redactor, or (when the suite stopped before process 1 got
// its secrets) the host's secret-looking variables alone.
func outputRedactor() *evidence.Redactor {
	if red != nil {
		return red
	}
	return evidence.NewRedactor(evidence.SecretsFromEnv(os.Environ())...)
}

// writeJUnit writes Ginkgo's own JUnit report through the run's redactor: it holds every
// spec's failure message and captured output, of every process.
func writeJUnit(report Report, path string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".junit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	raw := filepath.Join(tmp, "junit.xml")
	if err := reporters.GenerateJUnitReport(report, raw); err != nil {
		return err
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		return err
	}
	return evidence.WriteFileAtomic(path, outputRedactor().Bytes(b))
}

func mergeProcessEvidence(dir string, report Report) (*evidence.Run, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, "evidence-p*.json"))
	if len(paths) == 0 {
		return nil, fmt.Errorf("no evidence-p*.json in %s: no process recorded anything (did the suite start?)", dir)
	}
	var runs []*evidence.Run
	for _, p := range paths {
		r, err := evidence.Load(p)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	run := runs[0]
	if len(runs) > 1 {
		var err error
		if run, err = evidence.Merge(runs...); err != nil {
			return nil, err
		}
	}
	if report.SpecialSuiteFailureReasons != nil {
		for _, r := range report.SpecialSuiteFailureReasons {
			if strings.Contains(r, "Interrupted") {
				run.Interrupted, run.Complete = true, false
				run.InterruptReason = r
			}
		}
	}
	run.Provenance.LabelFilter = report.SuiteConfig.LabelFilter
	run.Verdict = evidence.ComputeVerdict(run)
	return run, nil
}

// harnessRevision is the checkout's HEAD (PB_HARNESS_REVISION overrides it, e.g. for a
// tarball without .git).
func harnessRevision() string {
	if v := os.Getenv("PB_HARNESS_REVISION"); v != "" {
		return v
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
