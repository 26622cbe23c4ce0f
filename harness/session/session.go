// Package session sets a run up and tears it down, in one place, for the Ginkgo suite
// and for `pbchaos hold`: the run's redactor, testcontainers' log file, the evidence
// recorder with its metadata and program hashes, the stack with its provenance (Docker
// version, images), the catalogue check, the scenario runner, the workload and the
// seeded store. What is Ginkgo's (processes, DeferCleanup, Expect) or the command line's
// (signals, stdin, what it prints around the run) stays with the caller.
//
//	sess, err := session.Open(opts) // no Docker; writes the first evidence file
//	if sess == nil {
//		return err
//	}
//	defer sess.Close(teardownCtx, nil) // heal, remove the stack, close the log
//	if err != nil {
//		return err
//	}
//	if err := sess.Boot(ctx); err != nil { // stack, provenance, catalogue, runner, workload, seed
//		return err
//	}
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/profile"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/stack"
	"github.com/pocketbrain/chaos/harness/workload"
)

// Options describe one run's session.
type Options struct {
	// Profile gives the output folder (OutDir, where evidence, logs and histories go),
	// the profile's name and time scale, the release revision, the fleet's size and the
	// number of captures seeded before the first row.
	Profile profile.Profile
	// Program is the loaded and checked program (program.Load, stack.Check); its files'
	// hashes go into the evidence.
	Program *program.Program
	// ProgramDir is the program's folder; Files are more files of it the run depends on
	// (e.g. baseline.yaml), hashed into the evidence as program/<name> as well.
	ProgramDir string
	Files      []string
	// EvidenceFile is the evidence file's name in OutDir ("": evidence.json).
	EvidenceFile string
	// RunID names the run in the evidence.
	RunID string
	// Secrets are the run's generated secrets (env.NewSecrets): the stack is given them,
	// and the redactor hides them and the host's secret-looking variables.
	Secrets env.Secrets
	// LogFile is the file in OutDir that testcontainers' own lines go to, through the
	// redactor ("": they are discarded).
	LogFile string
	// Progress receives the run's progress lines, through the redactor (nil: discarded).
	Progress io.Writer
	// Prefix tags the session's own progress lines: "suite" gives "[suite] stack up in …".
	Prefix string
	// Provenance is what the caller knows of the run's provenance (the harness revision,
	// a label filter); the Go version and the host are filled in when empty, the Docker
	// version and the images by Boot.
	Provenance evidence.Provenance
	// WorkloadDir receives the workload's history files ("": OutDir).
	WorkloadDir string
	// CheckName names the history files of the data-loss check the runner makes after a
	// row (the suite: the spec's; hold: the row id).
	CheckName func() string
}

// validate rejects options that cannot make a run, before anything is written.
func (o Options) validate() error {
	var bad []string
	if o.Program == nil {
		bad = append(bad, "Program is nil: load and check the program first (program.Load, stack.Check)")
	}
	if o.Profile.OutDir == "" {
		bad = append(bad, "Profile.OutDir is empty: give the run an output folder")
	}
	if o.Profile.Name != evidence.ProfileFast && o.Profile.Name != evidence.ProfileRelease {
		bad = append(bad, fmt.Sprintf("Profile.Name %q: want %q or %q (profile.FromEnv)", o.Profile.Name, evidence.ProfileFast, evidence.ProfileRelease))
	}
	if o.RunID == "" {
		bad = append(bad, "RunID is empty: give every run an id (e.g. a timestamp plus the short revision)")
	}
	if slices.Equal(o.Secrets.Values(), env.Secrets{}.Values()) {
		bad = append(bad, "Secrets are empty: generate the run's with env.NewSecrets()")
	}
	if o.Prefix == "" {
		bad = append(bad, `Prefix is empty: it tags the session's progress lines (e.g. "suite")`)
	}
	if o.CheckName == nil {
		bad = append(bad, "CheckName is nil: the data-loss check after a row names its history files with it")
	}
	if len(o.Files) > 0 && o.ProgramDir == "" {
		bad = append(bad, fmt.Sprintf("ProgramDir is empty, but Files names files in it (%s)", strings.Join(o.Files, ", ")))
	}
	for _, f := range []struct{ field, name string }{{"EvidenceFile", o.EvidenceFile}, {"LogFile", o.LogFile}} {
		if f.name != "" && (f.name != filepath.Base(f.name) || f.name == "." || f.name == "..") {
			bad = append(bad, fmt.Sprintf("%s %q: want a file name in Profile.OutDir, not a path", f.field, f.name))
		}
	}
	if len(bad) > 0 {
		return errors.New("session: " + strings.Join(bad, "; "))
	}
	return nil
}

// Session is one run: what Open made, and what Boot started, as far as it got.
type Session struct {
	// Redactor hides the run's secrets and the host's secret-looking variables.
	Redactor *evidence.Redactor
	// Recorder writes the run's evidence, through Redactor.
	Recorder *evidence.Recorder
	// Progress is Options.Progress through Redactor.
	Progress io.Writer
	// Guard holds the faults applied; Close heals what is still active.
	Guard *faults.Guard

	// Stack is the running stack (nil until Boot has brought it up).
	Stack *stack.Stack
	// Runner runs rows on Stack, under Guard, judging Workload after each.
	Runner *scenario.Runner
	// Workload follows the client fleet (nil without one).
	Workload *workload.Workload
	// Seeded is what was seeded before the first row (zero: nothing).
	Seeded stack.SeedResult

	opts     Options
	progress io.WriteCloser
	log      *Log
	booted   bool
	closed   bool
}

// Open makes what a run needs before any container: the redactor, testcontainers' log
// file (or none: its lines are discarded), and the recorder, with the run's metadata and
// the hashes of the program's files. It talks to no Docker engine.
//
// Open returns nil when it has nothing to close: bad options, a log file or an evidence
// file that cannot be written. Once the evidence file exists it returns the session even
// with an error (a program file that cannot be hashed): Close it.
func Open(o Options) (*Session, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Session{Redactor: NewRedactor(o.Secrets), Guard: &faults.Guard{}, opts: o}
	if o.LogFile != "" {
		l, err := OpenLog(filepath.Join(o.Profile.OutDir, o.LogFile), s.Redactor)
		if err != nil {
			return nil, err
		}
		s.log = l
	} else {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	prov := o.Provenance
	if prov.GoVersion == "" {
		prov.GoVersion = runtime.Version()
	}
	if prov.Host == "" {
		prov.Host, _ = os.Hostname()
	}
	recOpts := []evidence.Option{evidence.WithRedactor(s.Redactor)}
	if o.EvidenceFile != "" {
		recOpts = append(recOpts, evidence.WithFileName(o.EvidenceFile))
	}
	rec, err := evidence.NewRecorder(o.Profile.OutDir, evidence.Meta{
		RunID:      o.RunID,
		Profile:    o.Profile.Name,
		TimeScale:  evidence.TimeScale{ForScale: o.Profile.ForScale, Note: o.Profile.ScaleNote()},
		Provenance: prov,
	}, recOpts...)
	if err != nil {
		if s.log != nil {
			_ = s.log.Close()
		}
		return nil, err
	}
	s.Recorder = rec
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	s.progress = s.Redactor.Writer(progress)
	s.Progress = s.progress
	return s, s.hashFiles()
}

// hashFiles records every program file the run reads: under `ginkgo -p` every process
// hashes all of them, whichever specs it runs, since shards merge only when their files
// agree.
func (s *Session) hashFiles() error {
	for _, path := range slices.Sorted(maps.Keys(s.opts.Program.Hashes)) {
		if err := s.Recorder.AddFile(evidence.FileHash{Path: "program/" + path, SHA256: s.opts.Program.Hashes[path]}); err != nil {
			return err
		}
	}
	for _, f := range s.opts.Files {
		h, err := evidence.HashFile("program/"+f, filepath.Join(s.opts.ProgramDir, f))
		if err != nil {
			return err
		}
		if err := s.Recorder.AddFile(h); err != nil {
			return err
		}
	}
	return nil
}

// LogPath is the testcontainers log file ("" when its lines are discarded).
func (s *Session) LogPath() string {
	if s.log == nil {
		return ""
	}
	return s.log.Path()
}

// say prints one of the session's own progress lines.
func (s *Session) say(format string, args ...any) {
	fmt.Fprintf(s.Progress, "["+s.opts.Prefix+"] "+format+"\n", args...)
}

// problem records why a step failed in the evidence.
func (s *Session) problem(step string, err error) {
	_ = s.Recorder.AddProblem(step + ": " + err.Error())
}

// Boot starts the run, in this order: the stack (the profile's scale, revision and
// fleet, the run's secrets), the provenance (Docker version, images), the check that
// every catalogued series is exposed (within Timeouts.SteadyState), the scenario runner,
// the workload (kept across client restarts, judged after every row), the seeded store
// (Profile.SeedCaptures, within stack.SeedWait) and the Prometheus server's first scrape
// (it comes while the rest boots). A step that fails is a problem
// in the evidence, and Boot returns its error as is; the session holds what did start,
// and Close removes it.
func (s *Session) Boot(ctx context.Context) error {
	if s.booted {
		return errors.New("session: Boot called twice")
	}
	s.booted = true
	o := s.opts
	began := time.Now()
	st, err := stack.Up(ctx, o.Program, stack.Options{
		ForScale:         o.Profile.ForScale,
		IntendedRevision: o.Profile.Revision,
		Log:              s.Progress,
		// The fleet journals every op under the workload's folder (one per Ginkgo
		// process), where a killed clients container cannot erase it (a local engine only).
		EnvOptions: []env.Option{env.WithClients(o.Profile.Clients), env.WithRevision(o.Profile.Revision), env.WithSecrets(o.Secrets),
			env.WithJournalDir(filepath.Join(s.workloadDir(), "journal"))},
	})
	if err != nil {
		s.problem("stack did not come up", err)
		return err
	}
	s.Stack = st
	s.say("stack up in %s; harness endpoint %s/metrics", time.Since(began).Round(time.Millisecond), st.HarnessURL)
	if err := s.Recorder.Update(func(run *evidence.Run) { run.Provenance.DockerVersion = st.Env.Docker().ServerVersion(ctx) }); err != nil {
		return err
	}
	for _, role := range slices.Sorted(maps.Keys(st.Env.ImageIDs)) {
		if err := s.Recorder.AddImage(evidence.Image{Role: string(role), Ref: st.Env.CurrentImage(role), ID: st.Env.ImageIDs[role]}); err != nil {
			return err
		}
	}
	ps := evidence.PrometheusServer{Enabled: false, Reason: st.ServerOff}
	if st.Server != nil {
		ps = st.Server.Evidence()
		s.say("Prometheus server %s up in %s, rules loaded (%s)", ps.Version, st.Server.Booted.Round(time.Millisecond), ps.Rules)
	}
	if err := s.Recorder.SetPrometheusServer(ps); err != nil {
		return err
	}
	vctx, cancel := context.WithTimeout(ctx, st.Env.Config().Timeouts.SteadyState)
	err = st.VerifyCatalogue(vctx)
	cancel()
	if err != nil {
		s.problem("catalogue", err)
		return err
	}
	s.Runner = &scenario.Runner{Stack: st, Guard: s.Guard, Progress: s.Progress}
	s.wireWorkload()
	if err := s.seed(ctx); err != nil {
		return err
	}
	return s.awaitServer(ctx)
}

// awaitServer waits for the Prometheus server's first scrape of the harness: the stack
// came up without it (promserver.Start says why), and the seed ran meanwhile. The
// server's boot in the evidence is then from its start to that scrape.
func (s *Session) awaitServer(ctx context.Context) error {
	srv := s.Stack.Server
	if srv == nil {
		return nil
	}
	began := time.Now()
	if err := srv.AwaitScraping(ctx); err != nil {
		s.problem("Prometheus server", err)
		return err
	}
	s.say("Prometheus server first scraped the harness %s after its start (waited %s for it here)",
		srv.Scraping.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	return s.Recorder.Update(func(run *evidence.Run) {
		if run.PrometheusServer != nil {
			run.PrometheusServer.BootSeconds = srv.Scraping.Seconds()
		}
	})
}

// wireWorkload follows the client fleet: its history is kept across client restarts,
// and the checker judges it after every row.
func (s *Session) wireWorkload() {
	st := s.Stack
	if !st.Env.Has(env.Clients) {
		return
	}
	wl := workload.New(st.Env, s.workloadDir())
	if wl.JournalDir != "" {
		s.say("client journal: %s", wl.JournalDir)
	} else {
		s.say("no client journal (a remote engine): the history is read from the fleet's /history")
	}
	wl.Redactor = s.Redactor
	st.Env.BeforeReplace = func(ctx context.Context, r env.Role) error {
		if r == env.Clients {
			return wl.Keep(ctx)
		}
		return nil
	}
	s.Runner.DataLoss = func(ctx context.Context) (*evidence.DataLoss, error) {
		return wl.Check(ctx, s.opts.CheckName())
	}
	s.Workload = wl
}

// workloadDir receives the workload's history files and the client journal.
func (s *Session) workloadDir() string {
	if s.opts.WorkloadDir != "" {
		return s.opts.WorkloadDir
	}
	return s.opts.Profile.OutDir
}

// seed fills the store before the first row (Profile.SeedCaptures), so every row runs on
// a store of production size, and records it in the evidence. Every data-loss check
// then counts the seeded captures again.
func (s *Session) seed(ctx context.Context) error {
	n := s.opts.Profile.SeedCaptures
	if n <= 0 || s.Workload == nil {
		return nil
	}
	s.say("seeding %d captures (%s)", n, profile.EnvSeed)
	res, err := stack.Seed(ctx, s.Stack.Env, n, stack.SeedWait(n))
	if err != nil {
		s.problem("seed", err)
		return err
	}
	s.Seeded = res
	s.say("seeded %d captures over %d client ids in %s (log pruned %d times, horizon %d); fleet resynced in %s",
		res.Captures, res.Owners, res.Took.Round(time.Millisecond), res.Prunes, res.Horizon, res.ResyncTook.Round(time.Millisecond))
	s.Workload.Seeded = int64(res.Captures)
	return s.Recorder.Update(func(run *evidence.Run) {
		run.Dataset = &evidence.Dataset{SeededCaptures: res.Captures, Owners: res.Owners, Prunes: res.Prunes, Horizon: res.Horizon,
			SeedSeconds: res.Took.Seconds(), ResyncSeconds: res.ResyncTook.Seconds()}
	})
}

// RecordServerMemory records the Prometheus server's peak resident memory over the run
// (its cost, for the evidence). Call it before the recorder finishes; Close does.
func (s *Session) RecordServerMemory(ctx context.Context) {
	if s == nil || s.Stack == nil || s.Stack.Server == nil {
		return
	}
	mem, err := s.Stack.Server.PeakMemory(ctx)
	if err != nil {
		s.say("Prometheus server peak memory not read: %v", err)
		return
	}
	if err := s.Recorder.Update(func(run *evidence.Run) {
		if run.PrometheusServer != nil {
			run.PrometheusServer.MemoryBytes = mem
		}
	}); err == nil {
		s.say("Prometheus server peak memory %.1f MiB", float64(mem)/(1<<20))
	}
}

// DownError is a stack that could not be removed: what is left goes with `pbchaos sweep`.
type DownError struct{ Err error }

func (e *DownError) Error() string {
	return fmt.Sprintf("teardown: %v; run `pbchaos sweep` to remove what is left", e.Err)
}

func (e *DownError) Unwrap() error { return e.Err }

// Close tears the session down, whatever failed before, in this order: the guard heals
// every fault still active (a heal that fails is a problem in the evidence); whileUp,
// when set, runs while the stack still runs (hold finishes the evidence and writes the
// report there, so a failed heal is in it); the stack is removed (a failure is a
// *DownError); the progress writer is flushed; and testcontainers' log is closed last,
// so it holds the teardown's own lines. Close returns every error joined; a second Close
// does nothing.
func (s *Session) Close(ctx context.Context, whileUp func()) error {
	if s == nil || s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.Stack != nil {
		healed, err := s.Guard.HealAll(ctx, s.Stack.Env)
		if err != nil {
			_ = s.Recorder.AddProblem("guard could not heal: " + err.Error())
			errs = append(errs, err)
		} else if len(healed) > 0 {
			s.say("guard healed: %s", strings.Join(healed, "; "))
		}
	}
	s.RecordServerMemory(ctx)
	if whileUp != nil {
		whileUp()
	}
	if s.Stack != nil {
		if err := s.Stack.Down(ctx); err != nil {
			errs = append(errs, &DownError{Err: err})
		}
	}
	if s.progress != nil {
		errs = append(errs, s.progress.Close())
	}
	if s.log != nil {
		errs = append(errs, s.log.Close())
	}
	return errors.Join(errs...)
}
