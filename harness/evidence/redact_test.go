package evidence_test

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

// secretValues covers plain values and ones JSON and HTML escape.
func secretValues() []string {
	return []string{
		"sk_test_4f9a8b7c6d5e4f3a2b1c",
		`pw<with>&"quotes'and\slash`,
		"kek-0123456789abcdef0123456789abcdef",
	}
}

// SecretRun puts every secret where a careless suite might: failure text,
// proof values, expressions, fault params (keys and values), gate commands,
// problems, provenance.
func secretRun() *evidence.Run {
	s := secretValues()
	run := evidencetest.SampleRun()
	run.Rows[0].Failure = "connect postgres://pocketbrain:" + s[1] + "@toxiproxy:15432 failed"
	run.Rows[0].Fault.Proof = append(run.Rows[0].Fault.Proof, evidence.Proof{What: "env", Value: "CLERK_SECRET_KEY=" + s[0]})
	run.Rows[0].Fault.Params["KEY_ENCRYPTION_SECRET"] = s[2]
	run.Rows[0].Fault.Params[s[0]] = "as a key"
	run.Rows[1].Evaluations[0].Expr = `up{token="` + s[0] + `"}`
	run.Rows[1].Timeline.Series[0].Name = "series " + s[1]
	run.Gate[0].Command = "KEY_ENCRYPTION_SECRET=" + s[2] + " pb-config-check"
	run.Problems = []string{"redis auth " + s[1]}
	run.Provenance.Host = s[2]
	return run
}

func TestRedactionInEvidenceJSON(t *testing.T) {
	red := evidence.NewRedactor(secretValues()...)
	path := filepath.Join(t.TempDir(), evidence.FileName)
	run := secretRun()
	require.NoError(t, evidence.Write(path, run, red))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assertNoSecrets(t, path, b)
	assert.Contains(t, string(b), evidence.Redacted)
	loaded, err := evidence.Load(path)
	require.NoError(t, err, "redacted output is still a valid evidence file")
	assert.Contains(t, loaded.Rows[0].Fault.Params, "[REDACTED]")
	assert.Equal(t, secretValues()[2], run.Rows[0].Fault.Params["KEY_ENCRYPTION_SECRET"], "the caller's run is not modified")
}

func TestRecorderRedacts(t *testing.T) {
	s := secretValues()
	dir := t.TempDir()
	rec := newRecorder(t, dir, evidence.WithRedactor(evidence.NewRedactor(s...)))
	rr, err := rec.BeginRow(evidence.RowSpec{ID: "r", Name: s[0]})
	require.NoError(t, err)
	require.NoError(t, rr.SetFault("config", "worker", map[string]string{"CLERK_SECRET_KEY": s[0]}))
	require.NoError(t, rr.Fail("bad "+s[1]))
	b, err := os.ReadFile(rec.Path())
	require.NoError(t, err)
	assertNoSecrets(t, rec.Path(), b)
	snap, err := rec.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, "bad [REDACTED]", snap.Rows[0].Failure)
}

func TestRedactorShortValuesIgnoredAndEnv(t *testing.T) {
	red := evidence.NewRedactor("1", "true", "", "long-enough")
	assert.Equal(t, "1 true [REDACTED]", red.String("1 true long-enough"))
	var nilRed *evidence.Redactor
	assert.Equal(t, "x", nilRed.String("x"))

	got := evidence.SecretsFromEnv([]string{"PATH=/bin", "CLERK_SECRET_KEY=sk_1", "DB_PASSWORD=pw", "GH_TOKEN=t", "api_key=k", "HOME=/root", "NOEQ"})
	assert.Equal(t, []string{"sk_1", "pw", "t", "k"}, got)
}

func TestRedactorLongestFirst(t *testing.T) {
	red := evidence.NewRedactor("abcdef", "abcdefghij")
	assert.Equal(t, "[REDACTED] [REDACTED]", red.String("abcdefghij abcdef"))
}

func TestRedactingWriterSplitWrites(t *testing.T) {
	s := secretValues()[0]
	var out bytes.Buffer
	w := evidence.NewRedactor(s).Writer(&out)
	for _, part := range []string{"log: key=" + s[:5], s[5:] + " end\nnext ", "line " + s[:3]} {
		_, err := w.Write([]byte(part))
		require.NoError(t, err)
	}
	_, _ = w.Write([]byte(s[3:]))
	require.NoError(t, w.Close())
	assert.Equal(t, "log: key=[REDACTED] end\nnext line [REDACTED]", out.String())
}

func assertNoSecrets(t *testing.T, name string, b []byte) {
	t.Helper()
	for _, s := range secretValues() {
		red := evidence.NewRedactor(s)
		// Check the raw value and every escaped form the redactor knows.
		if !bytes.Equal(red.Bytes(b), b) {
			t.Errorf("%s still contains secret %q (or an escaped form of it)", name, s)
		}
		assert.NotContains(t, string(b), s, name)
	}
}
