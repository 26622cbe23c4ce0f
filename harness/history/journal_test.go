package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

func sample(n int, outcome Outcome) Op {
	return Op{Client: "c01", Op: KindCapture, CaptureID: fmt.Sprintf("c01-%d", n), MutationID: fmt.Sprintf("c01-m%d", n),
		Value: fmt.Sprintf("c01-%d capture %x", n, n), Invoke: t0.Add(time.Duration(n) * time.Second),
		Complete: t0.Add(time.Duration(n)*time.Second + time.Millisecond), Outcome: outcome}
}

func openT(t *testing.T, dir string) *Journal {
	t.Helper()
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sameOps(t *testing.T, got, want []Op) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d ops, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Invoke.Equal(w.Invoke) || !g.Complete.Equal(w.Complete) {
			t.Errorf("op %d: times %v/%v, want %v/%v", i, g.Invoke, g.Complete, w.Invoke, w.Complete)
		}
		g.Invoke, g.Complete, w.Invoke, w.Complete = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("op %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// Invoke and complete records merge into the op GET /history would serve; an invoke
// without a complete (the process died while the op ran) is info.
func TestJournalRoundTripAndMissingCompletion(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir)
	a, b, c := sample(1, OK), sample(2, Fail), sample(3, OK)
	b.Error = "sync queue blocked"
	r := sample(4, OK)
	r.Replayed = true
	for _, op := range []Op{a, b, c} {
		must(t, j.Invoke(op))
	}
	must(t, j.Complete(b)) // out of order on purpose
	must(t, j.Complete(a))
	must(t, j.Invoke(r))
	must(t, j.Complete(r))
	// c never completes.
	ops, err := ReadJournalDir(dir)
	must(t, err)
	lost := c
	lost.Outcome, lost.Error, lost.Complete = Info, NoCompletion, time.Time{}
	sameOps(t, ops, []Op{a, b, lost, r})

	// The file: one JSON line per record, each naming its kind.
	data, err := os.ReadFile(j.Path())
	must(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("want 7 lines, got %d:\n%s", len(lines), data)
	}
	var first map[string]any
	must(t, json.Unmarshal([]byte(lines[0]), &first))
	if first["rec"] != RecInvoke || first["outcome"] != nil || first["complete"] != nil {
		t.Errorf("an invoke record carries no outcome: %s", lines[0])
	}
	if !strings.Contains(lines[3], `"rec":"complete"`) || !strings.Contains(lines[3], `"outcome":"fail"`) {
		t.Errorf("complete record: %s", lines[3])
	}
}

// A process killed inside the write of its last record leaves a line without its
// newline: it is ignored, in every file. A malformed line anywhere else is an error that
// names the file and the line.
func TestJournalTornLastLineIgnoredMalformedLineRefused(t *testing.T) {
	dir := t.TempDir()
	good := func(recs ...string) string { return strings.Join(recs, "\n") + "\n" }
	inv := func(op Op) string {
		b, _ := json.Marshal(JournalRecord{Rec: RecInvoke, Client: op.Client, Op: op.Op, CaptureID: op.CaptureID, MutationID: op.MutationID, Value: op.Value, Invoke: op.Invoke})
		return string(b)
	}
	cmp := func(op Op) string {
		c := op.Complete
		b, _ := json.Marshal(JournalRecord{Rec: RecComplete, Client: op.Client, Op: op.Op, CaptureID: op.CaptureID, MutationID: op.MutationID, Value: op.Value, Invoke: op.Invoke, Complete: &c, Outcome: op.Outcome})
		return string(b)
	}
	a, b := sample(1, OK), sample(2, OK)
	// File 1: a completed, b invoked, then the process died writing b's complete.
	torn := cmp(b)
	must(t, os.WriteFile(filepath.Join(dir, JournalName(t0, 1)), []byte(good(inv(a), cmp(a), inv(b))+torn[:len(torn)/2]), 0o644))
	// File 2 (the next start): torn right at the start of an invoke.
	c := sample(3, OK)
	must(t, os.WriteFile(filepath.Join(dir, JournalName(t0.Add(time.Hour), 1)), []byte(good(inv(c), cmp(c))+`{"re`), 0o644))
	// Not a journal file: not read.
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("garbage\n"), 0o644))

	ops, err := ReadJournalDir(dir)
	must(t, err)
	bInfo := b
	bInfo.Outcome, bInfo.Error, bInfo.Complete = Info, NoCompletion, time.Time{}
	sameOps(t, ops, []Op{a, bInfo, c})

	// The same from a stream.
	f1, _ := os.ReadFile(filepath.Join(dir, JournalName(t0, 1)))
	ops, err = ReadJournal(bytes.NewReader(f1))
	must(t, err)
	sameOps(t, ops, []Op{a, bInfo})

	// A malformed line that is not last: an error naming the file and the line.
	bad := filepath.Join(dir, JournalName(t0.Add(2*time.Hour), 1))
	must(t, os.WriteFile(bad, []byte(good(inv(a), `{"rec":"invoke","mutationId":`, cmp(a))), 0o644))
	ops, err = ReadJournalDir(dir)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want an error naming %s line 2, got %v", bad, err)
	}
	if len(ops) < 3 {
		t.Errorf("the ops of the good files come with the error: %d", len(ops))
	}
	// A whole last line that does not parse is not a torn write either.
	must(t, os.WriteFile(bad, []byte(good(inv(a), `not json`)), 0o644))
	if _, err := ReadJournalDir(dir); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a malformed whole last line: want an error naming line 2, got %v", err)
	}
	if _, err := ReadJournal(strings.NewReader(good(`{"rec":"done","mutationId":"x","invoke":"2025-01-01T00:00:00Z"}`))); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("an unknown record kind: want an error naming line 1, got %v", err)
	}
	if _, err := ReadJournal(strings.NewReader(good(inv(a), inv(a)))); err == nil || !strings.Contains(err.Error(), "second invoke") {
		t.Fatalf("a doubled invoke: want an error, got %v", err)
	}
}

// A complete record whose invoke could not be written still says what was attempted.
func TestJournalCompleteWithoutInvoke(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir)
	a := sample(1, OK)
	must(t, j.Complete(a))
	ops, err := ReadJournalDir(dir)
	must(t, err)
	sameOps(t, ops, []Op{a})
}

// The reader reads each file once: a second Read takes only what was appended, and a
// line still being written (no newline yet) is read once whole.
func TestJournalReaderIsIncremental(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir)
	jr := NewJournalReader(dir)
	a, b := sample(1, OK), sample(2, OK)
	must(t, j.Invoke(a))
	ops, err := jr.Read()
	must(t, err)
	ai := a
	ai.Outcome, ai.Error, ai.Complete = Info, NoCompletion, time.Time{}
	sameOps(t, ops, []Op{ai})

	must(t, j.Complete(a))
	f, err := os.OpenFile(j.Path(), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	line, _ := json.Marshal(JournalRecord{Rec: RecInvoke, Client: b.Client, Op: b.Op, CaptureID: b.CaptureID, MutationID: b.MutationID, Value: b.Value, Invoke: b.Invoke})
	_, err = f.Write(line[:10])
	must(t, err)
	ops, err = jr.Read()
	must(t, err)
	sameOps(t, ops, []Op{a})
	_, err = f.Write(append(line[10:], '\n'))
	must(t, err)
	must(t, f.Close())
	ops, err = jr.Read()
	must(t, err)
	bi := b
	bi.Outcome, bi.Error, bi.Complete = Info, NoCompletion, time.Time{}
	sameOps(t, ops, []Op{a, bi})
	if jf := jr.files[j.Path()]; jf.line != 3 {
		t.Errorf("lines read: %d, want 3", jf.line)
	}
}

// Many writers: every line whole, every record there, synced before Invoke returns.
func TestJournalConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				op := sample(g*1000+i, OK)
				op.Client = fmt.Sprintf("c%02d", g)
				if err := j.Invoke(op); err != nil {
					t.Error(err)
				}
				if err := j.Complete(op); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ops, err := ReadJournalDir(dir)
	must(t, err)
	if len(ops) != 400 {
		t.Fatalf("%d ops, want 400", len(ops))
	}
	for _, op := range ops {
		if op.Outcome != OK {
			t.Fatalf("op %s: %s", op.MutationID, op.Outcome)
		}
	}
}

// Every open makes a new file (a restarted process never appends after a torn line of
// the previous one), readable by the harness; the folder must exist; a closed journal
// refuses records.
func TestOpenJournal(t *testing.T) {
	dir := t.TempDir()
	j1, j2 := openT(t, dir), openT(t, dir)
	if j1.Path() == j2.Path() {
		t.Fatal("two opens share a file")
	}
	name := filepath.Base(j1.Path())
	if !strings.HasPrefix(name, "journal-") || !strings.HasSuffix(name, fmt.Sprintf("-%d.jsonl", os.Getpid())) {
		t.Errorf("file name %s", name)
	}
	fi, err := os.Stat(j1.Path())
	must(t, err)
	if fi.Mode().Perm() != JournalFileMode {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), JournalFileMode)
	}
	files, err := JournalFiles(dir)
	must(t, err)
	if len(files) != 2 || files[0] > files[1] {
		t.Errorf("files %v", files)
	}
	if _, err := OpenJournal(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing folder is not created: a missing mount must not go unnoticed")
	}
	if _, err := ReadJournalDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("reading a missing folder is an error")
	}
	must(t, j1.Close())
	must(t, j1.Close())
	if err := j1.Invoke(sample(1, OK)); err == nil {
		t.Error("a closed journal took a record")
	}
	if err := j2.Complete(Op{MutationID: "c01-m1", Invoke: t0}); err == nil {
		t.Error("a complete record without an outcome")
	}
	if a, b := JournalName(t0, 7), JournalName(t0.Add(time.Nanosecond), 7); a >= b {
		t.Errorf("names do not sort in time order: %s, %s", a, b)
	}
}
