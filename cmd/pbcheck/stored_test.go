package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/checker"
)

// testdata/VAL-3.*.json is an excerpt of a real run's stored files (client c01 in the
// cursor-reset validation spec: five captures with their edits, refused writes included),
// written by harness/workload exactly as a suite run stores them under
// $PB_OUT/p<N>/history/<spec>.{history,state,verdict}.json.

// Re-checking a stored run offline: pass the history and the final state a run stored.
func Example_storedRun() {
	code := run([]string{"-history", "testdata/VAL-3.history.json", "-state", "testdata/VAL-3.state.json"}, os.Stdout, os.Stderr)
	fmt.Println("exit", code)
	// Output:
	// verdict: valid
	// ops 14: acknowledged 8, failed 6, unknown 0 (applied 0, not applied 0); applied rows 8
	// lost 0, duplicated 0, unexpected 0, rejected-but-applied 0, stale 0
	// - all 8 acknowledged mutations applied exactly once with their values, final values current
	// exit 0
}

// The same stored history against a tampered final state: each anomaly makes pbcheck exit 1.
func TestStoredExcerptTampered(t *testing.T) {
	raw, err := os.ReadFile("testdata/VAL-3.state.json")
	require.NoError(t, err)
	var state checker.FinalState
	require.NoError(t, json.Unmarshal(raw, &state))
	require.NotEmpty(t, state.Applied)

	cases := map[string]struct {
		tamper func(s *checker.FinalState)
		want   string
	}{
		"an acknowledged mutation missing": {func(s *checker.FinalState) { s.Applied = s.Applied[1:] }, "lost 1,"},
		"a mutation applied twice":         {func(s *checker.FinalState) { s.Applied = append(s.Applied, s.Applied[0]) }, "duplicated 1,"},
		"a value changed on the server": {func(s *checker.FinalState) {
			s.Applied[0].Value = "tampered"
		}, "unexpected 1,"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := state
			s.Applied = append([]checker.Applied(nil), state.Applied...)
			tc.tamper(&s)
			b, err := json.Marshal(s)
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "state.json")
			require.NoError(t, os.WriteFile(path, b, 0o644))
			var out, errOut bytes.Buffer
			assert.Equal(t, 1, run([]string{"-history", "testdata/VAL-3.history.json", "-state", path}, &out, &errOut), errOut.String())
			assert.Contains(t, out.String(), "verdict: invalid")
			assert.Contains(t, out.String(), tc.want)
		})
	}
}

// TestStoredRun re-checks every history a suite run stored and compares pbcheck's verdict
// with the one the run recorded. It runs only when PB_OUT names a run's output directory:
//
//	PB_OUT=/tmp/val-out go test ./cmd/pbcheck -run TestStoredRun -v
func TestStoredRun(t *testing.T) {
	dir := os.Getenv("PB_OUT")
	if dir == "" {
		t.Skip("set PB_OUT to a suite run's output directory to re-check its stored histories")
	}
	histories, err := filepath.Glob(filepath.Join(dir, "p*", "history", "*.history.json"))
	require.NoError(t, err)
	if len(histories) == 0 {
		t.Skipf("no stored history under %s/p*/history", dir)
	}
	for _, h := range histories {
		base := strings.TrimSuffix(h, ".history.json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			var stored checker.Result
			raw, err := os.ReadFile(base + ".verdict.json")
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &stored))

			var out, errOut bytes.Buffer
			code := run([]string{"-history", h, "-state", base + ".state.json", "-json"}, &out, &errOut)
			require.NotEqual(t, 2, code, errOut.String())
			var again checker.Result
			require.NoError(t, json.Unmarshal(out.Bytes(), &again))
			assert.Equal(t, stored.Verdict, again.Verdict)
			assert.Equal(t, stored.Counts, again.Counts)
			t.Logf("%s: %s, %d ops, %d acknowledged, %d lost, %d duplicated, %d stale", filepath.Base(base),
				again.Verdict, again.Counts.Ops, again.Counts.Acknowledged, again.Counts.Lost, again.Counts.Duplicated, again.Counts.Stale)
		})
	}
}
