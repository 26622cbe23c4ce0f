package workload

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/checker"
	"github.com/pocketbrain/chaos/harness/evidence"
)

// The stored histories are the run's own output: the history/ directory is
// 0700 and every file in it 0600 (issue 17 §4.1).
func TestStoreIsOwnerOnly(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	w := &Workload{OutDir: out, Redactor: evidence.NewRedactor()}
	require.NoError(t, w.store("FM8-redis-down", nil, &checker.FinalState{}, checker.Result{}))
	for _, d := range []string{out, filepath.Join(out, "history")} {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
	entries, err := os.ReadDir(filepath.Join(out, "history"))
	require.NoError(t, err)
	require.Len(t, entries, 3)
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), e.Name())
	}
}
