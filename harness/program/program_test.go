package program

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/env"
)

// programDir is the real program shipped with the harness.
const programDir = "../../program"

func TestRealProgramLoads(t *testing.T) {
	p, err := Load(programDir)
	require.NoError(t, err)
	require.NotEmpty(t, p.Matrix.Rows)
	require.Len(t, p.Hashes, 4)
	for _, r := range p.Matrix.Rows {
		require.Contains(t, r.GinkgoLabels(), "row:"+r.ID)
	}
}

// copyProgram copies the real program into a temp dir and rewrites the matrix.
func copyProgram(t *testing.T, edit func(matrix string) string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rules"), 0o755))
	for _, f := range []string{MatrixFile, TargetsFile, RecordingFile, AlertsFile} {
		b, err := os.ReadFile(filepath.Join(programDir, f))
		require.NoError(t, err)
		if f == MatrixFile {
			b = []byte(edit(string(b)))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	return dir
}

func TestBadMatrixInputs(t *testing.T) {
	cases := []struct {
		name, from, to string
		want           []string // every fragment must be in the error
	}{
		{"malformed yaml", "rows:", "rows: [", []string{"matrix.yaml", "line"}},
		{"unknown field", "    runbook:", "    runbok:", []string{"matrix.yaml", "runbok"}},
		{"unknown fault kind", "kind: network", "kind: meteor", []string{"unknown fault kind \"meteor\"", "use one of"}},
		{"unknown edge", "edge: redis}", "edge: redys}", []string{"unknown edge \"redys\"", "use one of"}},
		{"unknown action", "action: down", "action: melt", []string{"unknown action \"melt\""}},
		{"invalid promql", "max(pocketbrain_redis_ready_degraded) == 1", "max(pocketbrain_redis_ready_degraded == 1", []string{"invalid PromQL", "matrix.yaml:"}},
		{"bad mitigation", "action: heal", "action: pray", []string{"mitigation action \"pray\""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyProgram(t, func(m string) string {
				require.Contains(t, m, c.from, "test fixture drifted from matrix.yaml")
				return strings.Replace(m, c.from, c.to, 1)
			})
			_, err := Load(dir)
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestValidateNamesMissingSeriesAndTriggers(t *testing.T) {
	dir := copyProgram(t, func(m string) string {
		m = strings.Replace(m, "max(pocketbrain_redis_ready_degraded) == 1", "max(pocketbrain_redis_ready_degradd) == 1", 1)
		return strings.Replace(m, "triggers: [ReadinessRegression]", "triggers: [ReadinessRegresion]", 1)
	})
	p, err := Load(dir)
	require.NoError(t, err)
	err = p.Validate(nil, map[string]bool{}, map[string]bool{"ReadinessRegression": true})
	require.Error(t, err)
	require.Contains(t, err.Error(), `series "pocketbrain_redis_ready_degradd", which no target exposes`)
	require.Contains(t, err.Error(), `trigger "ReadinessRegresion" is not an alert`)
}

func TestSeriesIn(t *testing.T) {
	got, err := SeriesIn(`sum(increase(a[5m])) > 0 and on() b{x="1"} unless {__name__="c"}`)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, got)
}

func TestQuietTriggersAreChecked(t *testing.T) {
	dir := copyProgram(t, func(m string) string {
		return strings.Replace(m, "triggers: [ReadinessRegression]", "triggers: [ReadinessRegression]\n    quiet: [ReadinessRegression, DeployDrif]", 1)
	})
	_, err := Load(dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), `"ReadinessRegression" is listed both in triggers (must fire) and quiet`)

	dir = copyProgram(t, func(m string) string {
		return strings.Replace(m, "triggers: [ReadinessRegression]", "triggers: [ReadinessRegression]\n    quiet: [DeployDrif]", 1)
	})
	p, err := Load(dir)
	require.NoError(t, err)
	err = p.Validate(nil, map[string]bool{}, map[string]bool{"ReadinessRegression": true, "DeployDrift": true})
	require.Error(t, err)
	require.Contains(t, err.Error(), `trigger "DeployDrif" is not an alert`)
}

// copyProgramTargets copies the real program into a temp dir and rewrites targets.yaml.
func copyProgramTargets(t *testing.T, edit func(targets string) string) string {
	t.Helper()
	dir := copyProgram(t, func(m string) string { return m })
	path := filepath.Join(dir, TargetsFile)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(edit(string(b))), 0o644))
	return dir
}

// A target path is appended to the service's base URL: without a leading "/" the scrape
// URL is wrong, so Load refuses it naming the target and the fix (issue 17 §4.4).
func TestTargetPathMustBeginWithSlash(t *testing.T) {
	dir := copyProgramTargets(t, func(s string) string {
		require.Contains(t, s, "path: /api/v1/metrics", "test fixture drifted from targets.yaml")
		return strings.Replace(s, "path: /api/v1/metrics", "path: api/v1/metrics", 1)
	})
	_, err := Load(dir)
	require.Error(t, err)
	for _, w := range []string{TargetsFile, `target "worker"`, `path "api/v1/metrics" must begin with "/"`, "write path: /api/v1/metrics"} {
		require.Contains(t, err.Error(), w)
	}

	dir = copyProgramTargets(t, func(s string) string {
		return strings.Replace(s, "    path: /ready\n", "", 1)
	})
	_, err = Load(dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), `target "server_ready" has no path`)
}

// Every image a row deploys must be in the local engine before any container starts;
// the error names the image, its rows and the fix (issue 17 §4.5).
func TestDeployImagesMustExistLocally(t *testing.T) {
	p, err := Load(programDir)
	require.NoError(t, err)
	refs := map[string]bool{}
	for _, d := range p.DeployImages() {
		refs[d.Ref] = true
		require.NotEmpty(t, d.Rows, d.Ref)
	}
	require.True(t, refs["pocketbrain-local/server:previous"], "the rollback row deploys server:previous: %v", refs)

	local := map[string]bool{"pocketbrain-local/server:dev": true, "pocketbrain-local/clients:dev": true,
		"pocketbrain-local/server:bad-release": true, "pocketbrain-local/server:drift": true,
		"pocketbrain-local/clients:bad-release": true, "pocketbrain-local/clients:previous": true}
	lookup := func(_ context.Context, ref string) (string, error) {
		if local[ref] {
			return "sha256:" + ref, nil
		}
		return "", errors.New("No such image: " + ref)
	}
	err = p.CheckDeployImages(context.Background(), lookup, nil)
	require.Error(t, err)
	for _, w := range []string{MatrixFile, "RG-readiness-bad-release", `"pocketbrain-local/server:previous"`, "make images"} {
		require.Contains(t, err.Error(), w)
	}
	// Only the roles that run are checked.
	require.NoError(t, p.CheckDeployImages(context.Background(), lookup, []env.Role{env.Clients}))
	local["pocketbrain-local/server:previous"] = true
	require.NoError(t, p.CheckDeployImages(context.Background(), lookup, nil))
}
