package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Meta is what a run knows before its first spec.
type Meta struct {
	RunID      string
	Profile    string // ProfileFast or ProfileRelease
	TimeScale  TimeScale
	Provenance Provenance
	Started    time.Time // zero: the recorder's clock at NewRecorder
}

// Option configures a Recorder.
type Option func(*recorderOptions)

type recorderOptions struct {
	red      *Redactor
	now      func() time.Time
	fileName string
}

// WithRedactor hides the given secrets in every byte the recorder writes.
func WithRedactor(r *Redactor) Option { return func(o *recorderOptions) { o.red = r } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(o *recorderOptions) { o.now = now } }

// WithFileName writes to name instead of evidence.json: under `ginkgo -p`
// give each process its own file (e.g. "evidence-p3.json") and Merge them.
func WithFileName(name string) Option { return func(o *recorderOptions) { o.fileName = name } }

// ErrFinished is returned by mutations after Finish.
var ErrFinished = errors.New("evidence recorder already finished: record everything before calling Finish")

// Recorder builds a Run incrementally and safe for concurrent use. Every
// mutation rewrites the whole evidence file atomically, so whatever stops
// the process, the file on disk is complete, valid JSON; until Finish it says
// complete=false and its verdict is INCOMPLETE.
type Recorder struct {
	mu       sync.Mutex
	path     string
	red      *Redactor
	now      func() time.Time
	run      Run
	rowIndex map[string]int
	finished bool
}

// NewRecorder creates dir if needed, removes temp files a killed run left
// there, and writes the first evidence file.
func NewRecorder(dir string, meta Meta, opts ...Option) (*Recorder, error) {
	o := recorderOptions{now: time.Now, fileName: FileName}
	for _, opt := range opts {
		opt(&o)
	}
	if meta.RunID == "" {
		return nil, errors.New("evidence: Meta.RunID is empty: give every run an id (e.g. a timestamp plus the short revision)")
	}
	if meta.Profile != ProfileFast && meta.Profile != ProfileRelease {
		return nil, fmt.Errorf("evidence: Meta.Profile %q: want %q or %q", meta.Profile, ProfileFast, ProfileRelease)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("evidence: create output directory: %w (choose a writable -out directory)", err)
	}
	r := &Recorder{
		path:     filepath.Join(dir, o.fileName),
		red:      o.red,
		now:      o.now,
		rowIndex: map[string]int{},
	}
	started := meta.Started
	if started.IsZero() {
		started = o.now()
	}
	prov := meta.Provenance
	prov.Images = slices.Clone(prov.Images)
	prov.Files = slices.Clone(prov.Files)
	r.run = Run{
		Schema:     SchemaVersion,
		RunID:      meta.RunID,
		Profile:    meta.Profile,
		TimeScale:  meta.TimeScale,
		Started:    normTime(started),
		Provenance: prov,
		Rows:       []Row{},
	}
	removeStaleTemps(r.path)
	if err := r.persistLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

// Path is the evidence file the recorder keeps up to date.
func (r *Recorder) Path() string { return r.path }

// Redactor is the redactor the recorder applies (hand it to reports).
func (r *Recorder) Redactor() *Redactor { return r.red }

// Snapshot returns a redacted deep copy of the run: what the file holds.
func (r *Recorder) Snapshot() (*Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run.Verdict = ComputeVerdict(&r.run)
	return Redact(&r.run, r.red)
}

// persistLocked recomputes the verdict and rewrites the file. r.mu held.
func (r *Recorder) persistLocked() error {
	r.run.Verdict = ComputeVerdict(&r.run)
	b, err := Marshal(&r.run, r.red)
	if err != nil {
		return err
	}
	return WriteFileAtomic(r.path, b)
}

// mutate applies fn under the lock and persists. A failed write keeps the
// change in memory; the next successful write carries it.
func (r *Recorder) mutate(fn func(run *Run) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	if err := fn(&r.run); err != nil {
		return err
	}
	return r.persistLocked()
}

// Update is the escape hatch for fields without a setter. fn must not keep
// run, and must not reorder or remove rows.
func (r *Recorder) Update(fn func(run *Run)) error {
	return r.mutate(func(run *Run) error { fn(run); return nil })
}

// SetProvenance replaces the provenance (e.g. once Docker answered).
func (r *Recorder) SetProvenance(p Provenance) error {
	return r.mutate(func(run *Run) error {
		p.Images = slices.Clone(p.Images)
		p.Files = slices.Clone(p.Files)
		run.Provenance = p
		return nil
	})
}

// SetPlan records (or replaces) the run's plan: every matrix row, validation spec, the
// baseline, every release-gate step, the control and the canary the run means to run.
// Call it at the start, before the first spec: ComputeVerdict reads an item the evidence
// lacks as not run (INCOMPLETE), and a run without a plan is never GO. Under `ginkgo -p`
// every process records the same, whole plan; Merge then compares the union with the
// shards' rows. An item with an empty id, an unknown kind or listed twice is refused.
func (r *Recorder) SetPlan(items []PlannedItem) error {
	seen := map[PlannedItem]bool{}
	var bad []string
	for i, it := range items {
		key := PlannedItem{Kind: it.Kind, ID: it.ID}
		switch {
		case !knownPlanKind(it.Kind):
			bad = append(bad, fmt.Sprintf("item %d (%s): kind %q: want row, validation, baseline, gate, control or canary", i+1, it.ID, it.Kind))
		case it.ID == "":
			bad = append(bad, fmt.Sprintf("item %d (%s): empty id: use the row id, VAL-n, the gate step number, or the kind itself for baseline, control and canary", i+1, it.Kind))
		case it.Kind == PlanGate && !isStepNumber(it.ID):
			bad = append(bad, fmt.Sprintf("item %d: gate step id %q: want the step's number, as GateStep.Step", i+1, it.ID))
		case seen[key]:
			bad = append(bad, fmt.Sprintf("item %d: %s is planned twice", i+1, it.Label()))
		}
		seen[key] = true
	}
	if len(bad) > 0 {
		return fmt.Errorf("evidence: SetPlan: %s", strings.Join(bad, "; "))
	}
	return r.mutate(func(run *Run) error {
		run.Plan = slices.Clone(items)
		return nil
	})
}

func isStepNumber(id string) bool {
	n, err := strconv.Atoi(id)
	return err == nil && n > 0 && strconv.Itoa(n) == id
}

func knownPlanKind(k string) bool {
	switch k {
	case PlanRow, PlanValidation, PlanBaseline, PlanGate, PlanControl, PlanCanary:
		return true
	}
	return false
}

// AddImage records a container image (same role and ref: replaced).
func (r *Recorder) AddImage(img Image) error {
	return r.mutate(func(run *Run) error {
		for i, have := range run.Provenance.Images {
			if have.Role == img.Role && have.Ref == img.Ref {
				run.Provenance.Images[i] = img
				return nil
			}
		}
		run.Provenance.Images = append(run.Provenance.Images, img)
		return nil
	})
}

// AddFile records a file hash (same path: replaced).
func (r *Recorder) AddFile(fh FileHash) error {
	return r.mutate(func(run *Run) error {
		for i, have := range run.Provenance.Files {
			if have.Path == fh.Path {
				run.Provenance.Files[i] = fh
				return nil
			}
		}
		run.Provenance.Files = append(run.Provenance.Files, fh)
		return nil
	})
}

// HashFile returns the SHA-256 of the file at path, recorded under name
// (use a repository-relative name so shards from other machines agree).
func HashFile(name, path string) (FileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileHash{}, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return FileHash{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return FileHash{Path: name, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// AddBaseline appends baseline checks.
func (r *Recorder) AddBaseline(checks ...BaselineCheck) error {
	return r.mutate(func(run *Run) error {
		run.Baseline = append(run.Baseline, checks...)
		return nil
	})
}

// SetGateStep records a release-gate step, replacing one with the same
// number; steps stay in order.
func (r *Recorder) SetGateStep(g GateStep) error {
	return r.mutate(func(run *Run) error {
		i := slices.IndexFunc(run.Gate, func(x GateStep) bool { return x.Step == g.Step })
		if i >= 0 {
			run.Gate[i] = g
		} else {
			run.Gate = append(run.Gate, g)
		}
		slices.SortStableFunc(run.Gate, func(a, b GateStep) int { return a.Step - b.Step })
		return nil
	})
}

// SetControl records the no-fault control window.
func (r *Recorder) SetControl(w Window) error {
	return r.mutate(func(run *Run) error { run.Control = normWindow(w); return nil })
}

// SetCanary records the canary window.
func (r *Recorder) SetCanary(w Window) error {
	return r.mutate(func(run *Run) error { run.Canary = normWindow(w); return nil })
}

// SetPrometheusServer records the Prometheus server beside the embedded engine (or why
// there was none).
func (r *Recorder) SetPrometheusServer(p PrometheusServer) error {
	return r.mutate(func(run *Run) error { run.PrometheusServer = &p; return nil })
}

func normWindow(w Window) *Window {
	w.Started, w.Ended = normTime(w.Started), normTime(w.Ended)
	if w.Server != nil {
		w.Server = normAgreement(*w.Server)
	}
	if w.ProductionServer != nil {
		w.ProductionServer = normAgreement(*w.ProductionServer)
	}
	w.Triggers = slices.Clone(w.Triggers)
	for i := range w.Triggers {
		w.Triggers[i].Points = normPoints(w.Triggers[i].Points)
	}
	return &w
}

func normPoints(ps []Point) []Point {
	out := slices.Clone(ps)
	for i := range out {
		out[i].T = normTime(out[i].T)
	}
	return out
}

// AddProblem records a run-level failure not tied to a row (BeforeSuite
// failed, a guard could not heal a fault...). Any problem makes the run NO-GO.
func (r *Recorder) AddProblem(msg string) error {
	return r.mutate(func(run *Run) error {
		run.Problems = append(run.Problems, msg)
		return nil
	})
}

// AddRestoration records the steady-state check after a failed spec.
func (r *Recorder) AddRestoration(rs Restoration) error {
	return r.mutate(func(run *Run) error {
		run.Restorations = append(run.Restorations, rs)
		return nil
	})
}

// Interrupt marks the run as stopped early: rows still running become
// "interrupted". The run stays incomplete; later mutations (cleanup
// recording a heal) are still accepted.
func (r *Recorder) Interrupt(reason string) error {
	return r.mutate(func(run *Run) error {
		run.Interrupted = true
		run.InterruptReason = reason
		run.Ended = normTime(r.now())
		for i := range run.Rows {
			if run.Rows[i].Status == StatusRunning {
				run.Rows[i].Status = StatusInterrupted
				run.Rows[i].Failure = strings.TrimSpace("interrupted: " + reason)
				run.Rows[i].Ended = run.Ended
			}
		}
		return nil
	})
}

// InterruptOnPanic is deferred at the top of a goroutine that records: it
// marks the run interrupted with the panic value, then panics on.
func (r *Recorder) InterruptOnPanic() {
	if p := recover(); p != nil {
		_ = r.Interrupt(fmt.Sprintf("panic: %v", p))
		panic(p)
	}
}

// InterruptOnSignal marks the run interrupted when one of sigs arrives. It
// does not exit: the test runner still handles the signal. Call stop to
// unregister.
func (r *Recorder) InterruptOnSignal(sigs ...os.Signal) (stop func()) {
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			_ = r.Interrupt("signal " + s.String())
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
}

// Finish marks the run complete (unless it was interrupted), computes the
// verdict and writes the file a last time. Later mutations fail with
// ErrFinished.
func (r *Recorder) Finish() (Verdict, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return r.run.Verdict, ErrFinished
	}
	r.finished = true
	r.run.Complete = !r.run.Interrupted
	if r.run.Ended.IsZero() {
		r.run.Ended = normTime(r.now())
	}
	for i := range r.run.Rows {
		if r.run.Rows[i].Status == StatusRunning {
			// A row nobody ended cannot count as passed.
			r.run.Rows[i].Status = StatusFailed
			r.run.Rows[i].Failure = "row was begun but never ended (missing End/Pass/Fail call in the suite)"
		}
	}
	err := r.persistLocked()
	return r.run.Verdict, err
}

// RowSpec identifies a row of the matrix.
type RowSpec struct {
	ID       string
	Name     string
	Labels   []string
	Runbook  string
	Triggers []string // alert names the row must fire
}

// BeginRow starts (or, for a Ginkgo retry, restarts) a row; the row is
// "running" until End. Rows keep the order in which they were first begun.
func (r *Recorder) BeginRow(spec RowSpec) (*RowRecorder, error) {
	if spec.ID == "" {
		return nil, errors.New("evidence: BeginRow with empty ID: use the matrix row id")
	}
	err := r.mutate(func(run *Run) error {
		row := Row{
			ID:       spec.ID,
			Name:     spec.Name,
			Labels:   slices.Clone(spec.Labels),
			Runbook:  spec.Runbook,
			Triggers: slices.Clone(spec.Triggers),
			Status:   StatusRunning,
			Attempts: 1,
			Started:  normTime(r.now()),
		}
		if i, ok := r.rowIndex[spec.ID]; ok {
			row.Attempts = run.Rows[i].Attempts + 1
			run.Rows[i] = row
			return nil
		}
		r.rowIndex[spec.ID] = len(run.Rows)
		run.Rows = append(run.Rows, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &RowRecorder{rec: r, id: spec.ID}, nil
}

// Row returns the recorder of a row already begun, or nil.
func (r *Recorder) Row(id string) *RowRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.rowIndex[id]; !ok {
		return nil
	}
	return &RowRecorder{rec: r, id: id}
}

// RowRecorder records one row. Its methods are safe for concurrent use and
// each persists the evidence file.
type RowRecorder struct {
	rec *Recorder
	id  string
}

// ID is the row id.
func (rr *RowRecorder) ID() string { return rr.id }

func (rr *RowRecorder) mutate(fn func(row *Row) error) error {
	return rr.rec.mutate(func(run *Run) error {
		return fn(&run.Rows[rr.rec.rowIndex[rr.id]])
	})
}

// SetFault records what is injected where.
func (rr *RowRecorder) SetFault(kind, target string, params map[string]string) error {
	return rr.mutate(func(row *Row) error {
		row.Fault.Kind, row.Fault.Target, row.Fault.Params = kind, target, maps.Clone(params)
		return nil
	})
}

// Injected records the moment the fault took effect; Detect and Fire count
// from here.
func (rr *RowRecorder) Injected(at time.Time) error {
	return rr.mutate(func(row *Row) error { row.Fault.InjectedAt = normTime(at); return nil })
}

// Healed records the moment the fault was removed.
func (rr *RowRecorder) Healed(at time.Time) error {
	return rr.mutate(func(row *Row) error { row.Fault.HealedAt = normTime(at); return nil })
}

// AddProof records an observation that the fault acted (byte counters,
// container state...).
func (rr *RowRecorder) AddProof(what, value string) error {
	return rr.mutate(func(row *Row) error {
		row.Fault.Proof = append(row.Fault.Proof, Proof{What: what, Value: value})
		return nil
	})
}

// Detected records when the detection signal first fired (later calls are
// ignored: the first detection counts).
func (rr *RowRecorder) Detected(at time.Time) error {
	return rr.sinceInjection("Detected", at, func(t *Times) **Duration { return &t.Detect })
}

// Fired records when the rollback trigger first evaluated true.
func (rr *RowRecorder) Fired(at time.Time) error {
	return rr.sinceInjection("Fired", at, func(t *Times) **Duration { return &t.Fire })
}

func (rr *RowRecorder) sinceInjection(what string, at time.Time, field func(*Times) **Duration) error {
	return rr.mutate(func(row *Row) error {
		if row.Fault.InjectedAt.IsZero() {
			return fmt.Errorf("evidence: row %s: %s before Injected: call Injected(at) when the fault takes effect", row.ID, what)
		}
		if p := field(&row.Times); *p == nil {
			*p = MillisPtr(at.Sub(row.Fault.InjectedAt))
		}
		return nil
	})
}

// Mitigated records the first mitigation and when it was applied; Recover
// counts from here.
func (rr *RowRecorder) Mitigated(action string, at time.Time) error {
	return rr.mutate(func(row *Row) error {
		row.Mitigation = Mitigation{Action: action, AppliedAt: normTime(at)}
		return nil
	})
}

// Recovered records when signal, trigger and readiness were all back.
func (rr *RowRecorder) Recovered(at time.Time) error {
	return rr.mutate(func(row *Row) error {
		if row.Mitigation.AppliedAt.IsZero() {
			return fmt.Errorf("evidence: row %s: Recovered before Mitigated: call Mitigated(action, at) when the mitigation is applied", row.ID)
		}
		if row.Times.Recover == nil {
			row.Times.Recover = MillisPtr(at.Sub(row.Mitigation.AppliedAt))
		}
		return nil
	})
}

// SetTimes overwrites the measured times (when measured elsewhere).
func (rr *RowRecorder) SetTimes(t Times) error {
	return rr.mutate(func(row *Row) error { row.Times = t; return nil })
}

// AddEvaluation records one evaluated expression.
func (rr *RowRecorder) AddEvaluation(e Evaluation) error {
	return rr.mutate(func(row *Row) error {
		e.At = normTime(e.At)
		row.Evaluations = append(row.Evaluations, e)
		return nil
	})
}

// SetServer records how the Prometheus server's alerts over the row compare with the
// embedded engine's.
func (rr *RowRecorder) SetServer(a ServerAgreement) error {
	return rr.mutate(func(row *Row) error { row.Server = normAgreement(a); return nil })
}

func normAgreement(a ServerAgreement) *ServerAgreement {
	a.From, a.To = normTime(a.From), normTime(a.To)
	a.Alerts = slices.Clone(a.Alerts)
	for i := range a.Alerts {
		a.Alerts[i].EmbeddedAt, a.Alerts[i].ServerAt = normTime(a.Alerts[i].EmbeddedAt), normTime(a.Alerts[i].ServerAt)
	}
	return &a
}

// SetDataLoss records the checker's verdict.
func (rr *RowRecorder) SetDataLoss(d DataLoss) error {
	return rr.mutate(func(row *Row) error { row.DataLoss = &d; return nil })
}

// AddSeries adds a series to the row's timeline (same name: replaced).
func (rr *RowRecorder) AddSeries(s Series) error {
	return rr.mutate(func(row *Row) error {
		if row.Timeline == nil {
			row.Timeline = &Timeline{Series: []Series{}}
		}
		s.Points = normPoints(s.Points)
		if i := slices.IndexFunc(row.Timeline.Series, func(x Series) bool { return x.Name == s.Name }); i >= 0 {
			row.Timeline.Series[i] = s
		} else {
			row.Timeline.Series = append(row.Timeline.Series, s)
		}
		return nil
	})
}

// AddWindow adds a shaded span (fault window...) to the row's timeline.
func (rr *RowRecorder) AddWindow(s Span) error {
	return rr.mutate(func(row *Row) error {
		if row.Timeline == nil {
			row.Timeline = &Timeline{Series: []Series{}}
		}
		s.From, s.To = normTime(s.From), normTime(s.To)
		row.Timeline.Windows = append(row.Timeline.Windows, s)
		return nil
	})
}

// End closes the row with a final status. failure explains anything but
// passed (Ginkgo: CurrentSpecReport().FailureMessage()).
func (rr *RowRecorder) End(status Status, failure string) error {
	switch status {
	case StatusPassed, StatusFailed, StatusSkipped, StatusInterrupted:
	default:
		return fmt.Errorf("evidence: row %s: End(%q): want passed, failed, skipped or interrupted", rr.id, status)
	}
	return rr.mutate(func(row *Row) error {
		row.Status, row.Failure = status, failure
		row.Ended = normTime(rr.rec.now())
		return nil
	})
}

// Pass ends the row as passed.
func (rr *RowRecorder) Pass() error { return rr.End(StatusPassed, "") }

// Fail ends the row as failed.
func (rr *RowRecorder) Fail(failure string) error { return rr.End(StatusFailed, failure) }

// Skip ends the row as skipped (a skipped row makes the run NO-GO).
func (rr *RowRecorder) Skip(why string) error { return rr.End(StatusSkipped, why) }
