package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
)

// copyRules copies the real program into a temp dir with alerts.yml edited.
func copyRules(t *testing.T, from, to string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{program.MatrixFile, program.TargetsFile, program.RecordingFile, program.AlertsFile} {
		b, err := os.ReadFile(filepath.Join("..", "..", "program", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == program.AlertsFile && from != "" {
			if !strings.Contains(string(b), from) {
				t.Fatalf("test fixture drifted from %s: %q not found", f, from)
			}
			b = []byte(strings.Replace(string(b), from, to, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadBoth(t *testing.T, dir string) (*program.Program, *signals.Rules) {
	t.Helper()
	prog, err := program.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := signals.LoadRuleFiles(prog.RulePaths())
	if err != nil {
		t.Fatal(err)
	}
	return prog, rules
}

// Issue 12 §3: a rule-file matcher that matches no exposed value (probe="server_raedy")
// is refused before any container starts, naming file:line, the known values and the fix.
func TestCheckMatchersRefusesRuleLabelTypo(t *testing.T) {
	prog, rules := loadBoth(t, copyRules(t, `probe_success{probe=~"server_ready|worker_ready"}`, `probe_success{probe=~"server_raedy|worker_ready"}`))
	err := CheckMatchers(prog, rules)
	if err == nil {
		t.Fatal("a rule selecting probe=\"server_raedy\" passed")
	}
	t.Log(err)
	for _, w := range []string{
		program.AlertsFile + ":", `alerting rule "ReadinessRegression"`,
		`matcher probe=~"server_raedy|worker_ready" has alternatives that match no value a target exposes ("server_raedy")`,
		"server_ready, worker_ready",
		`did you mean probe=~"server_ready|worker_ready"?`,
		program.TargetsFile,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q", w)
		}
	}

	prog, rules = loadBoth(t, copyRules(t, `probe_success{probe=~"server_ready|worker_ready"}`, `probe_success{probe="server_raedy"}`))
	if err := CheckMatchers(prog, rules); err == nil || !strings.Contains(err.Error(), `did you mean probe="server_ready"?`) {
		t.Errorf("equality typo: %v", err)
	}
}

// The rule files as shipped pass, and the whole load-time check does too (no Docker).
func TestCheckMatchersRealProgram(t *testing.T) {
	prog, rules := loadBoth(t, filepath.Join("..", "..", "program"))
	if err := CheckMatchers(prog, rules); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(prog, nil, 1.0/30); err != nil {
		t.Fatal(err)
	}
}
