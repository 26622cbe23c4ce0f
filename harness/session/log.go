package session

import (
	"os"
	"path/filepath"
	"sync"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
)

// NewRedactor is a run's redactor: it hides the run's generated secrets and the values
// of the host's secret-looking variables (evidence.SecretsFromEnv) in everything the run
// writes or prints.
func NewRedactor(secrets env.Secrets) *evidence.Redactor {
	return evidence.NewRedactor(append(secrets.Values(), evidence.SecretsFromEnv(os.Environ())...)...)
}

// Log is the file testcontainers' own lines go to (create, start, stop and terminate of
// every container, the engine banner, a failed wait's container log), through a
// redactor, so that the console keeps the harness's own lines. The file is 0600 in a
// 0700 folder and appended to. testcontainers has one logger per process, so a process
// has one Log open at a time.
type Log struct {
	path string
	f    *os.File
	red  *evidence.Redactor
}

var (
	logMu sync.Mutex
	// current is the process's open Log, the one testcontainers' logger writes to.
	current *Log
)

// OpenLog makes the file at path this process's testcontainers log, its lines going
// through r, before any engine call. Opening the path of the log that is already open
// returns that log, its lines now going through r: the suite's process 1 opens its file
// before the orphan sweep, and its session continues it.
func OpenLog(path string, r *evidence.Redactor) (*Log, error) {
	logMu.Lock()
	defer logMu.Unlock()
	path = filepath.Clean(path)
	if current == nil || current.path != path {
		if err := os.MkdirAll(filepath.Dir(path), evidence.DirMode); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, evidence.FileMode)
		if err != nil {
			return nil, err
		}
		// A file an earlier run left in the same output folder keeps its old mode.
		if err := f.Chmod(evidence.FileMode); err != nil {
			_ = f.Close()
			return nil, err
		}
		current = &Log{path: path, f: f}
	}
	current.red = r
	tclog.SetDefault(env.RedactingLogger(current.f, r.String))
	return current, nil
}

// Path is the log file's path.
func (l *Log) Path() string { return l.path }

// Close closes the file. Whatever testcontainers still says after it (rare, after a
// teardown) goes to stderr, through the same redactor. Closing twice does nothing.
func (l *Log) Close() error {
	logMu.Lock()
	defer logMu.Unlock()
	if l.f == nil {
		return nil
	}
	if current == l {
		tclog.SetDefault(env.RedactingLogger(os.Stderr, l.red.String))
		current = nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
