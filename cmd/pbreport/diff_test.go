package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two real runs of the security specs (label filter "security", fast profile), as the
// redacting recorder wrote them: sec-old.json ran on the images before the control
// token (the control-token spec failed: a run problem, a restoration, NO-GO with that
// reason), sec-new.json on the current ones (the spec passed). Neither records rows;
// both are NO-GO for the parts a security-only run does not record.
const (
	secOld = "testdata/sec-old.json"
	secNew = "testdata/sec-new.json"
)

const tokenSpec = "Security of the stack refuses every control request without the run's token"

func TestDiffOfTwoRealRuns(t *testing.T) {
	code, out, errs := pb(t, nil, "diff", secOld, secNew)
	require.Equal(t, 0, code, errs)
	assert.Empty(t, errs)

	// Both runs, named.
	assert.Contains(t, out, "| File | `testdata/sec-old.json` | `testdata/sec-new.json` |")
	assert.Contains(t, out, "| Harness revision | `e8590e5b8a3e` | `6fc7d970181e` |")
	assert.Contains(t, out, "| Label filter | `security` | `security` |")
	// The verdict of each, and that it did not change; the reason that went away.
	assert.Contains(t, out, "| Verdict | **NO-GO** | **NO-GO** |")
	assert.Contains(t, out, "Unchanged: **NO-GO** in both runs.")
	assert.Contains(t, out, "Reasons only in the old run (gone):\n\n- run problem: security: refuses every control request without the run's token: toxiproxy GET /proxies with no token must be refused with 401\n")
	assert.NotContains(t, out, "Reasons only in the new run")
	// The spec that failed in the old run only.
	assert.Contains(t, out, "Specs that failed in the old run only (from its restorations, one after every failed spec):\n\n- "+tokenSpec+"\n")
	assert.NotContains(t, out, "failed in the new run only")
	// No rows in either: nothing flipped, no time or trigger to compare.
	assert.Contains(t, out, "| Rows | 0 | 0 |")
	assert.Contains(t, out, "No row, window or gate step changed status (0 rows in both runs).")
	assert.Contains(t, out, "Noise band: ±2.0 s or ±20 % of the old time, whichever is larger.")
	assert.Contains(t, out, "No row is in both runs: no time to compare.")
	assert.Contains(t, out, "No rollback trigger fired in one run and not in the other")
	// Same rules and matrix (listed in another order: compared by path); new images.
	assert.Contains(t, out, "Every file hash is the same in both runs (6 files, compared by path).")
	assert.Contains(t, out, "| toxiproxy | `pocketbrain-local/toxiproxy:2.12.0` `sha256:a21304cc4a63` | `pocketbrain-local/toxiproxy:2.12.0` `sha256:f1c2eaa9cb1e` |")
	assert.Contains(t, out, "| server | `pocketbrain-local/server:dev` `sha256:7311e2082c1d` | `pocketbrain-local/server:dev` `sha256:96ffb13613af` |")
	assert.NotContains(t, out, "| postgres |", "same image in both runs")

	// The other way round, the failure is the new run's.
	code, out, errs = pb(t, nil, "diff", secNew, secOld)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "Specs that failed in the new run only (from its restorations, one after every failed spec):\n\n- "+tokenSpec+"\n")
	assert.Contains(t, out, "Reasons only in the new run:\n\n- run problem: security:")

	// The band is a flag, and the output states it.
	code, out, errs = pb(t, nil, "diff", "-band", "500ms", "-rel", "10%", secOld, secNew)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "Noise band: ±500 ms or ±10 % of the old time, whichever is larger.")
	code, out, errs = pb(t, nil, "diff", secOld, secNew, "-rel", "0")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "Noise band: ±2.0 s.")
}

func TestDiffBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	cases := []struct {
		name string
		file string
		want []string
	}{
		{"missing file", filepath.Join(dir, "missing.json"), []string{"missing.json", "no such file"}},
		{"not JSON", write("notes.txt", "hello\n"), []string{"notes.txt", "not valid JSON"}},
		{"JSON, not evidence", write("other.json", `{"name":"x"}`), []string{"other.json", `no "schema" field`}},
		{"another schema version", write("v2.json", `{"schema":"pocketbrain.chaos/evidence/v2"}`), []string{"v2.json", `schema "pocketbrain.chaos/evidence/v2"`, "this build reads"}},
	}
	for _, c := range cases {
		for _, args := range [][]string{{"diff", c.file, secNew}, {"diff", secOld, c.file}} {
			code, out, errs := pb(t, nil, args...)
			assert.Equal(t, 2, code, "%s: %v", c.name, args)
			assert.Empty(t, out, c.name)
			for _, w := range c.want {
				assert.Contains(t, errs, w, c.name)
			}
			assert.NotContains(t, errs, "usage:", "%s: the command line was right", c.name)
		}
	}

	for want, args := range map[string][]string{
		"exactly two evidence files":   {"diff", secOld},
		"got 3":                        {"diff", secOld, secNew, secNew},
		`invalid value "x" for flag`:   {"diff", "-rel", "x", secOld, secNew},
		`invalid value "-5%" for flag`: {"diff", "-rel", "-5%", secOld, secNew},
		"cannot be negative":           {"diff", "-band", "-1s", secOld, secNew},
	} {
		code, _, errs := pb(t, nil, args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Contains(t, errs, want, "%v", args)
		assert.Contains(t, errs, "usage:", "%v", args)
	}
}

func TestDiffRedactsEnvSecrets(t *testing.T) {
	// The evidence is already redacted; a secret named in the environment is hidden too.
	code, out, errs := pb(t, []string{"PB_CONTROL_TOKEN=refuses every control request"}, "diff", secOld, secNew)
	require.Equal(t, 0, code, errs)
	assert.NotContains(t, out, "refuses every control request")
	assert.Contains(t, out, `\[REDACTED\]`, "escaped as Markdown text")
}
