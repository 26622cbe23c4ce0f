package session

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/profile"
	"github.com/pocketbrain/chaos/harness/program"
)

const programDir = "../../program"

// options are valid Options for a session in dir, on the repository's program.
func options(t *testing.T, dir string) Options {
	t.Helper()
	prog, err := program.Load(programDir)
	require.NoError(t, err)
	return Options{
		Profile:    profile.Profile{Name: evidence.ProfileFast, ForScale: 1.0 / 30, OutDir: dir, Revision: "dev", Clients: 1},
		Program:    prog,
		ProgramDir: programDir,
		RunID:      "20260101T000000Z-test",
		Secrets:    env.NewSecrets(),
		Prefix:     "test",
		CheckName:  func() string { return "row" },
	}
}

func TestOptionsRejected(t *testing.T) {
	cases := map[string]struct {
		edit func(*Options)
		want string
	}{
		"no program":       {func(o *Options) { o.Program = nil }, "Program is nil"},
		"no output folder": {func(o *Options) { o.Profile.OutDir = "" }, "Profile.OutDir is empty"},
		"unknown profile":  {func(o *Options) { o.Profile.Name = "turbo" }, `Profile.Name "turbo"`},
		"no run id":        {func(o *Options) { o.RunID = "" }, "RunID is empty"},
		"no secrets":       {func(o *Options) { o.Secrets = env.Secrets{} }, "Secrets are empty"},
		"no prefix":        {func(o *Options) { o.Prefix = "" }, "Prefix is empty"},
		"no check name":    {func(o *Options) { o.CheckName = nil }, "CheckName is nil"},
		"files, no folder": {func(o *Options) { o.ProgramDir = ""; o.Files = []string{"baseline.yaml"} }, "ProgramDir is empty"},
		"evidence path":    {func(o *Options) { o.EvidenceFile = "../evidence.json" }, `EvidenceFile "../evidence.json"`},
		"log path":         {func(o *Options) { o.LogFile = "sub/tc.log" }, `LogFile "sub/tc.log"`},
		"log dot-dot":      {func(o *Options) { o.LogFile = ".." }, `LogFile ".."`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			o := options(t, dir)
			if o.Profile.OutDir != "" {
				o.Profile.OutDir = dir
			}
			tc.edit(&o)
			s, err := Open(o)
			require.Error(t, err)
			assert.Nil(t, s, "nothing to close")
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "session: "), err.Error())
			_, serr := os.Stat(dir)
			assert.True(t, os.IsNotExist(serr), "bad options write nothing: %v", serr)
		})
	}
	// Every problem at once.
	_, err := Open(Options{})
	require.Error(t, err)
	for _, w := range []string{"Program", "OutDir", "Profile.Name", "RunID", "Secrets", "Prefix", "CheckName"} {
		assert.Contains(t, err.Error(), w)
	}
}

func TestOpenRecordsTheRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	o := options(t, dir)
	o.Files = []string{"baseline.yaml", "release-gate.yaml"}
	o.EvidenceFile = "evidence-p3.json"
	o.LogFile = "testcontainers-p3.log"
	o.Provenance = evidence.Provenance{HarnessRevision: "abc123", LabelFilter: "row:X"}
	var progress bytes.Buffer
	o.Progress = &progress
	s, err := Open(o)
	require.NoError(t, err)
	require.NotNil(t, s)
	assert.Equal(t, filepath.Join(dir, "evidence-p3.json"), s.Recorder.Path())
	assert.Same(t, s.Redactor, s.Recorder.Redactor())
	assert.NotNil(t, s.Guard)
	assert.Nil(t, s.Stack)

	run, err := evidence.Load(s.Recorder.Path())
	require.NoError(t, err)
	assert.Equal(t, o.RunID, run.RunID)
	assert.Equal(t, evidence.ProfileFast, run.Profile)
	assert.Equal(t, "abc123", run.Provenance.HarnessRevision)
	assert.Equal(t, "row:X", run.Provenance.LabelFilter)
	assert.NotEmpty(t, run.Provenance.GoVersion)
	var files []string
	for _, f := range run.Provenance.Files {
		files = append(files, f.Path)
		assert.Len(t, f.SHA256, 64, f.Path)
	}
	for name := range o.Program.Hashes {
		assert.Contains(t, files, "program/"+name)
	}
	assert.Contains(t, files, "program/baseline.yaml")
	assert.Contains(t, files, "program/release-gate.yaml")

	// Progress and testcontainers' lines go through the run's redactor; the log is 0600.
	secret := o.Secrets.ControlToken
	_, err = s.Progress.Write([]byte("token " + secret + "\n"))
	require.NoError(t, err)
	assert.Equal(t, "token [REDACTED]\n", progress.String())
	tclog.Printf("container env CONTROL_TOKEN=%s", secret)
	assert.Equal(t, filepath.Join(dir, "testcontainers-p3.log"), s.LogPath())
	fi, err := os.Stat(s.LogPath())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	var order []string
	require.NoError(t, s.Close(context.Background(), func() { order = append(order, "whileUp") }))
	assert.Equal(t, []string{"whileUp"}, order, "whileUp runs without a stack too")
	require.NoError(t, s.Close(context.Background(), func() { t.Error("a second Close runs nothing") }))
	b, err := os.ReadFile(s.LogPath())
	require.NoError(t, err)
	assert.Contains(t, string(b), "CONTROL_TOKEN=[REDACTED]")
	assert.NotContains(t, string(b), secret)
}

// The suite's process 1 opens its log before the orphan sweep; its session continues the
// same file through the session's redactor, and closes it once.
func TestOpenContinuesTheProcessLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	o := options(t, dir)
	o.LogFile = "testcontainers-p1.log"
	path := filepath.Join(dir, o.LogFile)
	// An earlier run's file in the same folder, with a wider mode.
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(path, []byte("earlier run\n"), 0o644))
	require.NoError(t, os.Chmod(path, 0o644))

	early, err := OpenLog(path, NewRedactor(o.Secrets))
	require.NoError(t, err)
	tclog.Printf("sweep")
	s, err := Open(o)
	require.NoError(t, err)
	assert.Same(t, early, s.log, "the session continues the open log")
	tclog.Printf("boot %s", o.Secrets.PostgresPassword)
	require.NoError(t, s.Close(context.Background(), nil))
	require.NoError(t, early.Close(), "closing twice does nothing")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "earlier run\nsweep\nboot [REDACTED]\n", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// A new log once that one is closed.
	again, err := OpenLog(path, nil)
	require.NoError(t, err)
	assert.NotSame(t, early, again)
	require.NoError(t, again.Close())
}

// Without a log file testcontainers' lines are discarded.
func TestOpenWithoutLogDiscards(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	s, err := Open(options(t, dir))
	require.NoError(t, err)
	assert.Empty(t, s.LogPath())
	assert.Equal(t, tclog.NewNoopLogger(), tclog.Default())
	require.NoError(t, s.Close(context.Background(), nil))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasSuffix(e.Name(), ".log"), e.Name())
	}
}

// A program file that cannot be hashed fails Open after the evidence file exists: the
// session comes back with the error, to be closed.
func TestOpenHashFailureReturnsTheSession(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	o := options(t, dir)
	o.Files = []string{"no-such.yaml"}
	o.LogFile = "tc.log"
	s, err := Open(o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-such.yaml")
	require.NotNil(t, s)
	_, serr := os.Stat(s.Recorder.Path())
	require.NoError(t, serr)
	require.NoError(t, s.Close(context.Background(), nil))
}

// An evidence file that cannot be written fails Open with nothing left open.
func TestOpenRecorderFailureClosesTheLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	o := options(t, dir)
	o.LogFile = "tc.log"
	require.NoError(t, os.MkdirAll(dir, 0o700))
	// The evidence file's name is taken by a folder with something in it.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, evidence.FileName, "x"), 0o700))
	s, err := Open(o)
	require.Error(t, err)
	assert.Nil(t, s)
	logMu.Lock()
	open := current
	logMu.Unlock()
	assert.Nil(t, open, "the log is closed again")
}

func TestDownError(t *testing.T) {
	inner := errors.New("network in use")
	var err error = errors.Join(errors.New("heal"), &DownError{Err: inner})
	var de *DownError
	require.True(t, errors.As(err, &de))
	assert.ErrorIs(t, err, inner)
	assert.Equal(t, "teardown: network in use; run `pbchaos sweep` to remove what is left", de.Error())
}

func TestBootOnce(t *testing.T) {
	s := &Session{booted: true}
	assert.EqualError(t, s.Boot(context.Background()), "session: Boot called twice")
}
