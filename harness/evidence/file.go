package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// FileName is the evidence file inside a run's output directory.
const FileName = "evidence.json"

// Clone returns a deep copy of run (through its JSON form, so the copy is
// exactly what a reader of the file would see).
func Clone(run *Run) (*Run, error) {
	b, err := json.Marshal(run)
	if err != nil {
		return nil, fmt.Errorf("copy evidence: %w", err)
	}
	var out Run
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("copy evidence: %w", err)
	}
	return &out, nil
}

// Redact returns a deep copy of run with every secret r knows replaced.
func Redact(run *Run, r *Redactor) (*Run, error) {
	c, err := Clone(run)
	if err != nil {
		return nil, err
	}
	r.redactValue(reflect.ValueOf(c).Elem())
	return c, nil
}

// Marshal encodes run as indented JSON with secrets redacted.
func Marshal(run *Run, r *Redactor) ([]byte, error) {
	c, err := Redact(run, r)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode evidence: %w", err)
	}
	b = append(b, '\n')
	// Strings are already clean; this pass catches a secret that only
	// appears in its escaped form, and is kept only if the JSON stays valid.
	if red := r.Bytes(b); json.Valid(red) {
		b = red
	}
	return b, nil
}

// WriteFileAtomic replaces path with data so that a reader (or a crash)
// sees either the old file or the new one, never a part: it writes a temp
// file in the same directory, fsyncs it, renames it over path and fsyncs
// the directory. On error the temp file is removed and path is untouched.
// The file is 0600 (FileMode): evidence, reports and histories are the
// run's own output and may hold details of the stack; only its owner reads them.
func WriteFileAtomic(path string, data []byte) error {
	return writeAtomic(path, data, nil)
}

// FileMode and DirMode are the permissions of every output file and of every
// output directory the harness creates (an existing directory keeps its mode).
const (
	FileMode os.FileMode = 0o600
	DirMode  os.FileMode = 0o700
)

// tempPrefix marks our temp files so a later run can sweep leftovers.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// writeAtomic takes a wrap hook so tests can fail the write half-way.
func writeAtomic(path string, data []byte, wrap func(io.Writer) io.Writer) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("write %s: create temp file in %s: %w (is the directory writable?)", path, dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	var w io.Writer = f
	if wrap != nil {
		w = wrap(f)
	}
	if _, err = w.Write(data); err != nil {
		return fmt.Errorf("write %s: %w (is the disk full?)", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	// CreateTemp already gives 0600; set it anyway so the mode does not
	// depend on that detail, and the rename keeps it.
	if err = f.Chmod(FileMode); err != nil {
		return fmt.Errorf("write %s: chmod: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: rename temp file into place: %w", path, err)
	}
	// The rename is durable only once the directory entry is on disk.
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		_ = d.Close()
		if serr != nil && !errors.Is(serr, os.ErrInvalid) {
			return fmt.Errorf("write %s: fsync directory: %w", path, serr)
		}
	}
	return nil
}

// removeStaleTemps deletes temp files a killed writer left behind.
func removeStaleTemps(path string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPrefix(path)+"*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// Write encodes run (redacted by r) and atomically replaces path.
func Write(path string, run *Run, r *Redactor) error {
	b, err := Marshal(run, r)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b)
}

// Load reads an evidence file and checks its schema version and content.
func Load(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load evidence: %w (pass the evidence.json a run wrote)", err)
	}
	return Decode(path, b)
}

// Decode is Load for bytes already read; name is used in errors.
func Decode(name string, b []byte) (*Run, error) {
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w (the file is damaged or not an evidence file; re-run the harness to produce one)", name, err)
	}
	if head.Schema == nil {
		return nil, fmt.Errorf("%s: no \"schema\" field: not a PocketBrain evidence file (want schema %q)", name, SchemaVersion)
	}
	if *head.Schema != SchemaVersion {
		return nil, fmt.Errorf("%s: schema %q, this build reads %q: render it with pbreport from the harness revision that wrote it (see provenance.harness_revision), or re-run the harness", name, *head.Schema, SchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	// Unknown fields within v1 mean a typo or a newer writer: refuse rather
	// than drop evidence silently.
	dec.DisallowUnknownFields()
	var run Run
	if err := dec.Decode(&run); err != nil {
		return nil, fmt.Errorf("%s: does not match schema %s: %w (fix the field named, or render with the pbreport that wrote it)", name, SchemaVersion, err)
	}
	if err := Validate(&run); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &run, nil
}

// Validate checks the invariants a reader relies on. It accepts incomplete
// runs: a crashed run's evidence must still load.
func Validate(run *Run) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if run.Schema != SchemaVersion {
		bad("schema %q, want %q", run.Schema, SchemaVersion)
	}
	if run.RunID == "" {
		bad("run_id is empty: every run needs an id")
	}
	if run.Profile != ProfileFast && run.Profile != ProfileRelease {
		bad("profile %q: want %q or %q", run.Profile, ProfileFast, ProfileRelease)
	}
	switch run.Verdict.Decision {
	case DecisionGo, DecisionNoGo, DecisionIncomplete:
	default:
		bad("verdict.decision %q: want GO, NO-GO or INCOMPLETE", run.Verdict.Decision)
	}
	seen := map[string]bool{}
	for i, row := range run.Rows {
		if row.ID == "" {
			bad("rows[%d]: empty id", i)
		}
		if seen[row.ID] {
			bad("row %q appears twice: row ids must be unique", row.ID)
		}
		seen[row.ID] = true
		switch row.Status {
		case StatusRunning, StatusPassed, StatusFailed, StatusSkipped, StatusInterrupted:
		default:
			bad("row %q: status %q: want one of running, passed, failed, skipped, interrupted", row.ID, row.Status)
		}
		for _, e := range row.Evaluations {
			if !slices.Contains([]string{PhaseSteady, PhaseFault, PhaseRecovered, PhaseControl}, e.Phase) {
				bad("row %q: evaluation %q: phase %q: want steady, fault, recovered or control", row.ID, e.Expr, e.Phase)
			}
		}
		if dl := row.DataLoss; dl != nil && !slices.Contains([]string{DataLossValid, DataLossInvalid, DataLossUnknown}, dl.Verdict) {
			bad("row %q: data_loss.verdict %q: want valid, invalid or unknown", row.ID, dl.Verdict)
		}
		if tl := row.Timeline; tl != nil {
			for _, s := range tl.Series {
				if s.Kind != KindSignal && s.Kind != KindTrigger {
					bad("row %q: series %q: kind %q: want signal or trigger", row.ID, s.Name, s.Kind)
				}
			}
		}
	}
	for _, g := range run.Gate {
		if !slices.Contains([]string{GatePass, GateFail, GateSkipped, GateNA}, g.Result) {
			bad("gate step %d: result %q: want pass, fail, skipped or n/a", g.Step, g.Result)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("invalid evidence: %s", strings.Join(msgs, "; "))
}
