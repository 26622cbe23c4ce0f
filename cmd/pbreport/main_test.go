package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
)

func pb(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, env, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRenderFromJSONAlone(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, evidence.FileName)
	require.NoError(t, evidence.Write(path, evidencetest.SampleRun(), nil))

	code, out, errs := pb(t, nil, "render", path)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "GO  3 rows")
	for _, f := range []string{"report.md", "report.html"} {
		assert.FileExists(t, filepath.Join(src, f))
	}

	dst := filepath.Join(t.TempDir(), "out")
	code, _, errs = pb(t, nil, "render", path, "-out", dst)
	require.Equal(t, 0, code, errs)
	for _, f := range []string{"report.md", "report.html", evidence.FileName} {
		assert.FileExists(t, filepath.Join(dst, f))
	}
}

func TestRenderRedactsEnvSecrets(t *testing.T) {
	src := t.TempDir()
	run := evidencetest.SampleRun()
	run.Rows[0].Failure = "password is hunter2-secret-value"
	run.Rows[0].Status = evidence.StatusFailed
	path := filepath.Join(src, evidence.FileName)
	require.NoError(t, evidence.Write(path, run, nil))
	dst := t.TempDir()
	code, _, errs := pb(t, []string{"DB_PASSWORD=hunter2-secret-value"}, "render", "-out", dst, path)
	require.Equal(t, 0, code, errs)
	for _, f := range []string{"report.md", "report.html", evidence.FileName} {
		b, err := os.ReadFile(filepath.Join(dst, f))
		require.NoError(t, err)
		assert.NotContains(t, string(b), "hunter2-secret-value", f)
	}
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	a, b := evidencetest.SampleRun(), evidencetest.SampleRun()
	a.RunID, b.RunID = "a", "b"
	a.Rows, b.Rows = a.Rows[:1], a.Rows[1:]
	b.Control, b.Canary, b.Gate, b.Baseline = nil, nil, nil, nil
	pa, pbp := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	require.NoError(t, evidence.Write(pa, a, nil))
	require.NoError(t, evidence.Write(pbp, b, nil))

	out := filepath.Join(dir, "merged")
	code, stdout, errs := pb(t, nil, "merge", "-out", out, pa, pbp)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, stdout, "GO  3 rows")
	m, err := evidence.Load(filepath.Join(out, evidence.FileName))
	require.NoError(t, err)
	assert.Len(t, m.Rows, 3)
	assert.FileExists(t, filepath.Join(out, "report.html"))

	// Conflict: the same row with a different result in both shards.
	c := evidencetest.SampleRun()
	c.RunID = "c"
	c.Rows = c.Rows[:1]
	c.Rows[0].Status = evidence.StatusFailed
	c.Control, c.Canary, c.Gate, c.Baseline = nil, nil, nil, nil
	pc := filepath.Join(dir, "c.json")
	require.NoError(t, evidence.Write(pc, c, nil))
	code, _, errs = pb(t, nil, "merge", "-out", filepath.Join(dir, "m2"), pa, pc)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, `row "vps-path" is in both`)
	assert.NoDirExists(t, filepath.Join(dir, "m2"))
}

func TestUsageErrors(t *testing.T) {
	cases := map[string][]string{
		"no command given":              nil,
		`unknown command "draw"`:        {"draw"},
		"exactly one evidence file":     {"render"},
		"merge needs -out DIR":          {"merge", "a.json", "b.json"},
		"at least two evidence files":   {"merge", "-out", "x", "a.json"},
		"flag provided but not defined": {"render", "-o", "x", "a.json"},
	}
	for want, args := range cases {
		code, _, errs := pb(t, nil, args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Contains(t, errs, want)
		assert.Contains(t, errs, "usage:")
	}
}

func TestBadInputFails(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := pb(t, nil, "render", filepath.Join(dir, "missing.json"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "missing.json")

	old := filepath.Join(dir, "old.json")
	require.NoError(t, os.WriteFile(old, []byte(`{"schema":"pocketbrain.chaos/evidence/v0"}`), 0o644))
	code, _, errs = pb(t, nil, "render", old)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "old.json")
	assert.Contains(t, errs, "schema")
}

// render -out creates an owner-only directory with owner-only files (issue 17 §4.1).
func TestRenderOutIsOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), evidence.FileName)
	require.NoError(t, evidence.Write(path, evidencetest.SampleRun(), nil))
	dst := filepath.Join(t.TempDir(), "new", "out")
	code, _, errs := pb(t, nil, "render", "-out", dst, path)
	require.Equal(t, 0, code, errs)
	for _, d := range []string{dst, filepath.Dir(dst)} {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
	for _, f := range []string{"report.md", "report.html", evidence.FileName} {
		fi, err := os.Stat(filepath.Join(dst, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
}
