package leaks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// restoration is the part of an evidence.json restoration the test judges.
type restoration struct {
	Spec        string   `json:"spec"`
	Rows        []string `json:"rows"`
	Restored    bool     `json:"restored"`
	Reason      string   `json:"reason"`
	Actions     []string `json:"actions"`
	SteadyAfter bool     `json:"steady_after"`
}

func readRestorations(t *testing.T, dir string) []restoration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "evidence.json"))
	if err != nil {
		t.Fatalf("no evidence.json: %v", err)
	}
	var ev struct {
		Restorations []restoration `json:"restorations"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("evidence.json is not valid JSON: %v", err)
	}
	return ev.Restorations
}

// TestFailedRowRestored: a spec breaks the stack behind the guard's back — the server
// replaced with a wrong database password, the KV container stopped, a commit on the VPS
// host's deploy checkout — and fails
// (PB_SELFTEST=break, suites/pocketbrain/selftest_test.go). The AfterEach must restore
// the stack (stack.Restore) so that the row run next passes; the evidence records the
// restoration, and nothing is left behind.
func TestFailedRowRestored(t *testing.T) {
	t.Parallel() // beside another suite subprocess: see the package comment
	d := docker(t)
	r := start(t, []string{"PB_SELFTEST=break", "PB_SELFTEST_ROW=" + row}, "-ginkgo.label-filter=selftest")
	code := r.wait(t, 9*time.Minute)
	t.Logf("exit %d after %s", code, r.ended.Round(time.Millisecond))
	if code == 0 {
		t.Errorf("suite passed although the breaking spec fails")
	}
	for _, l := range strings.Split(r.output(), "\n") {
		// Ginkgo repeats a failed spec's output indented: the first copy is enough.
		if strings.HasPrefix(l, "[restore]") {
			t.Log(l)
		}
	}
	r.noLeftovers(t, d)
	ev := readEvidence(t, r.out)
	if st, failure := ev.row("selftest-break"); st != "failed" {
		t.Errorf("the breaking spec's row is %q (%s), want failed", st, failure)
	}
	if st, failure := ev.row(row); st != "passed" {
		t.Errorf("row %s after the broken one is %q, want passed: %s", row, st, failure)
	}
	rs := readRestorations(t, r.out)
	if len(rs) != 1 {
		t.Fatalf("want one restoration (after the breaking spec), got %+v", rs)
	}
	got := rs[0]
	t.Logf("restoration: rows %v restored=%v steady_after=%v reason %q", got.Rows, got.Restored, got.SteadyAfter, got.Reason)
	acts := strings.Join(got.Actions, "; ")
	if !got.Restored || !got.SteadyAfter || !strings.Contains(acts, "server replaced") || !strings.Contains(acts, "kv started") ||
		!strings.Contains(acts, "vpshost replaced") || len(got.Rows) != 1 || got.Rows[0] != "selftest-break" {
		t.Errorf("restoration: want the server replaced, kv started and the VPS host replaced (its checkout had drifted), steady after, for row selftest-break; got %+v", got)
	}
}
