package gate

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

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
)

// programDir is the real program shipped with the harness.
const programDir = "../../program"

func realSpec(t *testing.T) *Spec {
	t.Helper()
	g, err := Load(programDir)
	require.NoError(t, err)
	return g
}

func TestRealReleaseGateLoads(t *testing.T) {
	g := realSpec(t)
	require.Len(t, g.Steps, Steps)
	for i, s := range g.Steps {
		assert.Equal(t, i+1, s.Step)
		assert.Equal(t, s, g.Step(i+1))
	}
	cc := g.ConfigCheck
	assert.Equal(t, []string{"server", "worker"}, cc.Images)
	require.Len(t, cc.CanonicalOrder, len(cc.CanonicalEnv))
	assert.Equal(t, "NODE_ENV", cc.CanonicalOrder[0], "the file's order, not sorted")
	assert.NotEmpty(t, cc.Unsafe)
	assert.Contains(t, g.ProductionStart, "server")
	assert.Contains(t, g.ProductionStart, "worker")
}

func TestLoadMissingFileNamesIt(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, File))
	assert.Contains(t, err.Error(), "restore it from git")
}

// Every problem names the file, the field and the fix.
func TestParseRefusesBadFiles(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(programDir, File))
	require.NoError(t, err)
	good := string(b)
	cases := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"malformed YAML", func(s string) string { return s + "steps: [broken\n" }, []string{"fix the YAML"}},
		{"unknown field", func(s string) string { return strings.Replace(s, "  binary:", "  binaries:", 1) }, []string{"binaries", "fix the YAML", "config_check[binary"}},
		{"version", func(s string) string { return strings.Replace(s, "version: 1", "version: 3", 1) }, []string{"version 3", "write version: 1"}},
		{"step order", func(s string) string { return strings.Replace(s, "  - step: 2\n", "  - step: 7\n", 1) }, []string{"steps[1]: step 7 out of order", "number the steps 1, 2, 3"}},
		{"na and how", func(s string) string {
			return strings.Replace(s, "    command: npm run vps:precheck:remote\n", "    command: npm run vps:precheck:remote\n    na: no remote VPS\n", 1)
		}, []string{"steps[1] (VPS precheck)", "exactly one of on_reference_stack", "or na"}},
		{"binary", func(s string) string { return strings.Replace(s, "binary: /pb-config-check", "binary: \"\"", 1) }, []string{"config_check: binary, images, ok_output and canonical_env are required"}},
		{"image", func(s string) string {
			return strings.Replace(s, "images: [server, worker]", "images: [server, redis]", 1)
		}, []string{`config_check.images: "redis"`, "server and worker images"}},
		{"unsafe names", func(s string) string {
			return strings.Replace(s, "names: ALLOW_INSECURE_DEV_AUTH, ", "", 1)
		}, []string{"config_check.unsafe[0]: set and names are required"}},
		{"unsafe start", func(s string) string {
			return strings.Replace(s, "start: [worker]}", "start: [clients]}", 1)
		}, []string{`config_check.unsafe[0]: start "clients" has no production_start entry`, "use server or worker"}},
		{"production start", func(s string) string {
			return strings.Replace(s, "  server: {NODE_ENV: production}\n", "  server: {NODE_ENV: production}\n  redis: {NODE_ENV: production}\n", 1)
		}, []string{"production_start.redis", "use server or worker"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.edit(good)
			require.NotEqual(t, good, bad, "the edit no longer matches the file")
			_, err := Parse("p/release-gate.yaml", []byte(bad))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "p/release-gate.yaml:"), "error names the file: %v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	// A checklist of five steps.
	cut := good[:strings.Index(good, "  - step: 6")] + good[strings.Index(good, "\nconfig_check:"):]
	_, err = Parse("p/release-gate.yaml", []byte(cut))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "steps: 5 steps: the document's checklist has 6")
}

func TestLabelAndCommandLineHideSecrets(t *testing.T) {
	u := UnsafeChange{Set: env.Settings{"KEY_ENCRYPTION_SECRET": "abcd", "CORS_ORIGIN": "*", "CLERK_SECRET_KEY": ""}}
	assert.Equal(t, "CLERK_SECRET_KEY unset CORS_ORIGIN=* KEY_ENCRYPTION_SECRET=<4 bytes>", u.Label())
	e := env.Settings{"NODE_ENV": "production", "STREAM_TICKET_SECRET": "bbbbbb", "A": "1"}
	assert.Equal(t, "NODE_ENV=production STREAM_TICKET_SECRET=<6 bytes> A=1 npm run config:check",
		CommandLine(e, []string{"NODE_ENV", "MISSING", "STREAM_TICKET_SECRET"}, "npm run config:check"))
}

func TestProblemsNamedAndOneLine(t *testing.T) {
	out := "checking\nPROBLEM CORS_ORIGIN: must not be *\n  PROBLEM NODE_ENV: must be production\nPROBLEM without colon\n"
	assert.Equal(t, []string{"CORS_ORIGIN", "NODE_ENV"}, ProblemsNamed(out))
	assert.Equal(t, "a b c", OneLine(" a\n b\t c "))
	long := OneLine(strings.Repeat("x", 400))
	assert.Equal(t, oneLineMax+len("…"), len(long))
}

func TestRevisions(t *testing.T) {
	revs, err := Revisions([]byte("# TYPE pocketbrain_build_info gauge\npocketbrain_build_info{revision=\"abc\"} 1\npocketbrain_build_info{revision=\"old\"} 0\nother 1\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"abc"}, revs)
	_, err = Revisions([]byte("not { prometheus"))
	assert.Error(t, err)
}

// fakeGate answers like pb-config-check: OK for the canonical environment, a PROBLEM
// line for a variable that differs from it.
func fakeGate(g *Spec, calls *[]OneOff, misbehave func(o OneOff) (OneOffResult, bool)) OneOffRunner {
	return func(_ context.Context, o OneOff) (OneOffResult, error) {
		*calls = append(*calls, o)
		if misbehave != nil {
			if r, ok := misbehave(o); ok {
				return r, nil
			}
		}
		var probs []string
		for k, v := range g.ConfigCheck.CanonicalEnv {
			if o.Env[k] != v {
				probs = append(probs, "PROBLEM "+k+": unsafe")
			}
		}
		if len(probs) == 0 {
			return OneOffResult{Exited: true, Code: 0, Log: "OK\n"}, nil
		}
		return OneOffResult{Exited: true, Code: 1, Log: strings.Join(probs, "\n")}, nil
	}
}

func TestRunConfigCheck(t *testing.T) {
	g := realSpec(t)
	images := env.Images{env.Server: "img/server", env.Worker: "img/worker"}
	var calls []OneOff
	var log bytes.Buffer
	step, err := RunConfigCheck(context.Background(), g, images, fakeGate(g, &calls, nil), &log)
	require.NoError(t, err)
	assert.Equal(t, evidence.GatePass, step.Result, step.Detail)
	assert.Equal(t, 1, step.Step)
	assert.Equal(t, "config check", step.Name)
	assert.True(t, strings.HasPrefix(step.Command, "NODE_ENV=production KEY_ENCRYPTION_SECRET=<32 bytes>"), step.Command)
	assert.Contains(t, step.Command, "npm run config:check (here: /pb-config-check in the server and worker images)")
	assert.Contains(t, step.Detail, "9 of 9 unsafe settings refused, each naming its variable; ")
	require.Len(t, calls, 2+len(g.ConfigCheck.Unsafe))
	assert.Equal(t, "img/server", calls[0].Image)
	assert.Equal(t, "img/worker", calls[1].Image)
	assert.Equal(t, []string{"/pb-config-check"}, calls[2].Entrypoint)
	assert.Equal(t, 2+len(g.ConfigCheck.Unsafe), strings.Count(log.String(), "[gate] "))

	// An image that accepts an unsafe setting, and one that refuses the canonical env.
	calls = nil
	step, err = RunConfigCheck(context.Background(), g, images, fakeGate(g, &calls, func(o OneOff) (OneOffResult, bool) {
		if o.Env["CORS_ORIGIN"] == "*" {
			return OneOffResult{Exited: true, Code: 0, Log: "OK"}, true
		}
		if o.Image == "img/worker" {
			return OneOffResult{Exited: true, Code: 2, Log: "PROBLEM NODE_ENV:\n  broken"}, true
		}
		return OneOffResult{}, false
	}), &log)
	require.NoError(t, err)
	assert.Equal(t, evidence.GateFail, step.Result)
	assert.Contains(t, step.Detail, "canonical env refused by the worker image (exit 2): PROBLEM NODE_ENV: broken")
	assert.Contains(t, step.Detail, "CORS_ORIGIN=*: exit 0, names []; the gate must refuse it naming CORS_ORIGIN")
	assert.Contains(t, step.Detail, ". Passed: canonical env → \"OK\", exit 0 (server image)")

	// A container that cannot run is an error, not a refusal.
	boom := errors.New("no engine")
	_, err = RunConfigCheck(context.Background(), g, images, func(context.Context, OneOff) (OneOffResult, error) { return OneOffResult{}, boom }, &log)
	assert.ErrorIs(t, err, boom)
}

func TestStepRecord(t *testing.T) {
	g := realSpec(t)
	r := g.Step(2).Record(evidence.GateFail, "unreachable")
	assert.Equal(t, evidence.GateStep{Step: 2, Name: "VPS precheck", Command: "npm run vps:precheck:remote", Result: evidence.GateFail, Detail: "unreachable"}, r)
	for _, s := range g.Steps {
		assert.Empty(t, s.NA, "step %d (%s) runs on the reference stack: no step is n/a", s.Step, s.Name)
	}
}
