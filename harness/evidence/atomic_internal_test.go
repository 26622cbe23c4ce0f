package evidence

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failAfter passes n bytes through, then fails like a full disk.
type failAfter struct {
	w io.Writer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, errors.New("no space left on device (injected)")
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestAtomicWriteFailureKeepsPreviousFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	require.NoError(t, WriteFileAtomic(path, []byte(`{"v":1}`)))

	err := writeAtomic(path, []byte(`{"v":2, "long":"`+strings.Repeat("x", 4096)+`"}`),
		func(w io.Writer) io.Writer { return &failAfter{w: w, n: 10} })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no space left")
	assert.Contains(t, err.Error(), path)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, `{"v":1}`, string(b), "previous evidence intact")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp file left: %v", entries)
}

func TestAtomicWriteRenameFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the file should go: rename must fail.
	target := filepath.Join(dir, FileName)
	require.NoError(t, os.MkdirAll(filepath.Join(target, "x"), 0o755))
	err := WriteFileAtomic(target, []byte(`{}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rename")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp file left: %v", entries)
}

func TestAtomicWriteMissingDirNamesFix(t *testing.T) {
	err := WriteFileAtomic(filepath.Join(t.TempDir(), "nope", FileName), []byte(`{}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "writable")
}

func TestRecorderWriteFailureKeepsLastGoodFile(t *testing.T) {
	dir := t.TempDir()
	rec, err := NewRecorder(dir, Meta{RunID: "r", Profile: ProfileFast})
	require.NoError(t, err)
	_, err = rec.BeginRow(RowSpec{ID: "a"})
	require.NoError(t, err)
	good, err := os.ReadFile(rec.Path())
	require.NoError(t, err)

	// Point the recorder at a path where the rename fails, then back.
	orig := rec.path
	rec.path = filepath.Join(dir, "blocked")
	require.NoError(t, os.MkdirAll(filepath.Join(rec.path, "x"), 0o755))
	_, err = rec.BeginRow(RowSpec{ID: "b"})
	require.Error(t, err)
	rec.path = orig
	after, err := os.ReadFile(orig)
	require.NoError(t, err)
	assert.Equal(t, good, after)

	// The next successful write carries the change made during the failure.
	_, err = rec.BeginRow(RowSpec{ID: "c"})
	require.NoError(t, err)
	run, err := Load(orig)
	require.NoError(t, err)
	assert.Len(t, run.Rows, 3)
}

// Output is the run's own: files 0600, new directories 0700 (issue 17 §4.1).
func TestWriteFileAtomicIsOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	// A file that exists world-readable is replaced by an owner-only one.
	require.NoError(t, os.WriteFile(path, []byte(`{}`), 0o644))
	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, WriteFileAtomic(path, []byte(`{"v":1}`)))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "final file mode after the rename")
	require.NoError(t, WriteFileAtomic(filepath.Join(dir, "new.json"), []byte(`{}`)))
	fi, err = os.Stat(filepath.Join(dir, "new.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a new file")
}

func TestRecorderCreatesOwnerOnlyDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "run")
	_, err := NewRecorder(dir, Meta{RunID: "r1", Profile: ProfileFast})
	require.NoError(t, err)
	for _, d := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}
