package history

// The journal: the client fleet's history written where a crash of the fleet cannot
// erase it (a folder the harness keeps on its own disk, bind-mounted into the clients
// container). One file per process start, JSON lines, one record per line:
//
//	{"rec":"invoke","client":"c01","op":"capture","captureId":"c01-7","mutationId":"c01-m17","value":"…","invoke":"…"}
//	{"rec":"complete","client":"c01","op":"capture","captureId":"c01-7","mutationId":"c01-m17","value":"…","invoke":"…","complete":"…","outcome":"ok"}
//
// The invoke record is written and synced before the client performs the op; the complete
// record when the user is told the outcome. Both carry the whole op (the complete record
// is the op as GET /history serves it), so either alone says what was attempted; invoke
// (RFC 3339, nanoseconds) and mutationId together key an op ("replayed":true on both
// records of an op re-recorded at start-up). Reading merges the two: an invoke without
// a complete is an info op (the process ended while the op ran, so it may or may not
// have been saved); a complete without an invoke (the invoke's write failed) is the op
// as completed.
//
// Each record is one write() of a whole line. A process killed inside that write leaves a
// last line without its newline: readers ignore it (a torn invoke means the op never
// started; a torn complete leaves the op's invoke, hence info). Any other line that does
// not parse is an error naming the file and the line.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Journal record kinds (the "rec" field).
const (
	RecInvoke   = "invoke"
	RecComplete = "complete"
)

// JournalPattern matches the journal files of a folder (filepath.Glob).
const JournalPattern = "*.jsonl"

// JournalFileMode is the mode of a journal file. Not 0600: the clients container runs
// as root, so the file belongs to root on the harness's host, and the harness (another
// user) must still read it. The folder the harness keeps it in is 0700, which keeps
// everyone else out.
const JournalFileMode os.FileMode = 0o644

// NoCompletion is the error of an op whose invoke record has no complete record.
const NoCompletion = "no completion recorded (the client process ended first)"

// JournalRecord is one line of a journal file.
type JournalRecord struct {
	Rec        string     `json:"rec"`
	Client     string     `json:"client"`
	Op         string     `json:"op"`
	CaptureID  string     `json:"captureId"`
	MutationID string     `json:"mutationId"`
	Value      string     `json:"value"`
	Invoke     time.Time  `json:"invoke"`
	Complete   *time.Time `json:"complete,omitempty"`
	Outcome    Outcome    `json:"outcome,omitempty"`
	Error      string     `json:"error,omitempty"`
	Replayed   bool       `json:"replayed,omitempty"`
}

func (r JournalRecord) op() Op {
	op := Op{Client: r.Client, Op: r.Op, CaptureID: r.CaptureID, MutationID: r.MutationID, Value: r.Value,
		Invoke: r.Invoke, Outcome: r.Outcome, Error: r.Error, Replayed: r.Replayed}
	if r.Complete != nil {
		op.Complete = *r.Complete
	}
	return op
}

// JournalName is the file name of a journal opened at t by process pid:
// journal-<UTC time, ns>-<pid>.jsonl, so names sort in start order.
func JournalName(t time.Time, pid int) string {
	return fmt.Sprintf("journal-%s-%d.jsonl", t.UTC().Format("20060102T150405.000000000Z"), pid)
}

// Journal appends records to one journal file; safe for concurrent use. Writes are
// ordered by a mutex; syncs are shared (group commit): a writer whose line an fsync
// already covered returns without one of its own.
type Journal struct {
	path string
	f    *os.File

	mu      sync.Mutex // orders writes; guards written, closed, broken
	written uint64     // lines written
	closed  bool
	broken  error // a write that left part of a line: nothing may follow it

	syncMu sync.Mutex // one fsync at a time; guards synced
	synced uint64     // lines known to be on disk
}

// OpenJournal creates a new journal file in dir, which must exist (it is the harness's
// folder, mounted in: a missing one means the mount is missing, and a journal written
// into the container's own file system would die with it). The file is new for every
// call (O_EXCL), so a process never appends after a torn line of another.
func OpenJournal(dir string) (*Journal, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("journal folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("journal folder %s is not a folder", dir)
	}
	var last error
	for range 10 {
		path := filepath.Join(dir, JournalName(time.Now(), os.Getpid()))
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_EXCL|os.O_WRONLY, JournalFileMode)
		if errors.Is(err, os.ErrExist) {
			last = err
			time.Sleep(time.Microsecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create journal file: %w", err)
		}
		// The umask may have narrowed the mode; the harness must be able to read it.
		if err := f.Chmod(JournalFileMode); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("chmod journal file: %w", err)
		}
		syncFolder(dir)
		return &Journal{path: path, f: f}, nil
	}
	return nil, fmt.Errorf("create journal file: %w", last)
}

// syncFolder makes a new file's name durable; best effort (some file systems refuse an
// fsync of a folder, and a process crash, unlike a host crash, does not need it).
func syncFolder(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Path is the journal file's path.
func (j *Journal) Path() string { return j.path }

// Invoke records that op is about to be performed; when it returns nil the record is on
// disk. The outcome fields of op are not written.
func (j *Journal) Invoke(op Op) error {
	return j.append(JournalRecord{Rec: RecInvoke, Client: op.Client, Op: op.Op, CaptureID: op.CaptureID,
		MutationID: op.MutationID, Value: op.Value, Invoke: op.Invoke, Replayed: op.Replayed})
}

// Complete records op's outcome (the whole op, as the user is told it); when it returns
// nil the record is on disk.
func (j *Journal) Complete(op Op) error {
	if op.Outcome == "" {
		return fmt.Errorf("journal: complete record of %s without an outcome", op.MutationID)
	}
	c := op.Complete
	return j.append(JournalRecord{Rec: RecComplete, Client: op.Client, Op: op.Op, CaptureID: op.CaptureID,
		MutationID: op.MutationID, Value: op.Value, Invoke: op.Invoke, Complete: &c, Outcome: op.Outcome,
		Error: op.Error, Replayed: op.Replayed})
}

func (j *Journal) append(rec JournalRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("journal: encode %s record of %s: %w", rec.Rec, rec.MutationID, err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return fmt.Errorf("journal: %s record of %s: %w", rec.Rec, rec.MutationID, os.ErrClosed)
	}
	if j.broken != nil {
		j.mu.Unlock()
		return fmt.Errorf("journal: %s record of %s not written: an earlier write left part of a line (%w)", rec.Rec, rec.MutationID, j.broken)
	}
	n, err := j.f.Write(line) // one write(2) of the whole line (O_APPEND)
	if err != nil && n > 0 {
		// Part of a line is in the file. Anything appended after it would make it a
		// malformed line in the middle; left last, it reads as a torn write.
		j.broken = err
	}
	j.written++
	mine := j.written
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("journal: write %s record of %s: %w", rec.Rec, rec.MutationID, err)
	}
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced >= mine {
		return nil // another writer's fsync, started after this line was written, covered it
	}
	j.mu.Lock()
	upTo := j.written
	j.mu.Unlock()
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: sync %s record of %s: %w", rec.Rec, rec.MutationID, err)
	}
	j.synced = upTo
	return nil
}

// Close syncs and closes the file; later records fail. Safe to call twice.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	return errors.Join(j.f.Sync(), j.f.Close())
}

// ReadJournal reads one journal stream and merges its records into ops, in the order of
// their invoke (or, lacking one, complete) records. A last line without its newline is a
// torn write and ignored; any other line that does not parse is an error.
func ReadJournal(r io.Reader) ([]Op, error) {
	var m merger
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			break // a partial last line (or none): a torn write
		}
		if err != nil {
			return m.ops(), fmt.Errorf("journal line %d: %w", n, err)
		}
		if err := m.add(line); err != nil {
			return m.ops(), fmt.Errorf("journal line %d: %w", n, err)
		}
	}
	return m.ops(), nil
}

// ReadJournalDir reads every journal file (JournalPattern) of dir, in name order (start
// order). Errors name the file and the line; the ops of the files that read cleanly are
// returned with them.
func ReadJournalDir(dir string) ([]Op, error) {
	return NewJournalReader(dir).Read()
}

// JournalFiles lists the journal files of dir, sorted by name.
func JournalFiles(dir string) ([]string, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("journal folder: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, JournalPattern))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// JournalReader reads a journal folder again and again, each time only what was appended
// since (a journal grows for the whole run, and every check reads it). Safe for
// concurrent use.
type JournalReader struct {
	dir   string
	mu    sync.Mutex
	files map[string]*journalFile
}

type journalFile struct {
	offset int64 // just past the last whole line read
	line   int   // lines read
	m      merger
}

// NewJournalReader reads dir's journal files.
func NewJournalReader(dir string) *JournalReader {
	return &JournalReader{dir: dir, files: map[string]*journalFile{}}
}

// Dir is the folder read.
func (jr *JournalReader) Dir() string { return jr.dir }

// Read returns every op of every journal file of the folder so far. A line without its
// newline at the end of a file is not read (a torn write, or one still under way: it is
// read once whole).
func (jr *JournalReader) Read() ([]Op, error) {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	files, err := JournalFiles(jr.dir)
	if err != nil {
		return nil, err
	}
	var ops []Op
	var errs []error
	for _, path := range files {
		jf := jr.files[path]
		if jf == nil {
			jf = &journalFile{}
			jr.files[path] = jf
		}
		if err := jf.readMore(path); err != nil {
			errs = append(errs, err)
		}
		ops = append(ops, jf.m.ops()...)
	}
	return ops, errors.Join(errs...)
}

func (jf *journalFile) readMore(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.Seek(jf.offset, io.SeekStart); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("journal %s line %d: %w", path, jf.line+1, err)
		}
		if err := jf.m.add(line); err != nil {
			return fmt.Errorf("journal %s line %d: %w", path, jf.line+1, err)
		}
		jf.line++
		jf.offset += int64(len(line))
	}
}

// merger joins the records of one file into ops.
type merger struct {
	list     []Op
	complete []bool
	index    map[string]int // opKey → position in list
}

func opKey(mutationID string, invoke time.Time) string {
	return mutationID + "|" + invoke.UTC().Format(time.RFC3339Nano)
}

// OpKey identifies an op of a history (mutation id and invoke time): a mutation
// re-recorded at start-up has the same id and another invoke time.
func OpKey(op Op) string { return opKey(op.MutationID, op.Invoke) }

func (m *merger) add(line []byte) error {
	line = bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	var rec JournalRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		return fmt.Errorf("not a journal record: %w", err)
	}
	if rec.MutationID == "" || rec.Invoke.IsZero() {
		return fmt.Errorf("%s record without mutationId or invoke time", rec.Rec)
	}
	if m.index == nil {
		m.index = map[string]int{}
	}
	k := opKey(rec.MutationID, rec.Invoke)
	i, seen := m.index[k]
	switch rec.Rec {
	case RecInvoke:
		if seen {
			return fmt.Errorf("second invoke record of %s (invoked %s)", rec.MutationID, rec.Invoke.Format(time.RFC3339Nano))
		}
		rec.Complete, rec.Outcome, rec.Error = nil, "", ""
		m.index[k] = len(m.list)
		m.list = append(m.list, rec.op())
		m.complete = append(m.complete, false)
	case RecComplete:
		switch rec.Outcome {
		case OK, Fail, Info:
		default:
			return fmt.Errorf("complete record of %s with outcome %q (want ok, fail or info)", rec.MutationID, rec.Outcome)
		}
		if rec.Complete == nil {
			return fmt.Errorf("complete record of %s without a complete time", rec.MutationID)
		}
		if !seen {
			m.index[k] = len(m.list)
			m.list = append(m.list, rec.op())
			m.complete = append(m.complete, true)
			return nil
		}
		if m.complete[i] {
			return fmt.Errorf("second complete record of %s (invoked %s)", rec.MutationID, rec.Invoke.Format(time.RFC3339Nano))
		}
		m.list[i], m.complete[i] = rec.op(), true
	default:
		return fmt.Errorf("record kind %q (want %q or %q)", rec.Rec, RecInvoke, RecComplete)
	}
	return nil
}

// ops returns a copy, with every op lacking a complete record as info.
func (m *merger) ops() []Op {
	out := make([]Op, len(m.list))
	copy(out, m.list)
	for i := range out {
		if !m.complete[i] {
			out[i].Outcome, out[i].Error = Info, NoCompletion
		}
	}
	return out
}
