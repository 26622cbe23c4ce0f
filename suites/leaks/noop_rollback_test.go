package leaks

import (
	"strings"
	"testing"
	"time"
)

// TestNoopRollbackFails: the bad-release row runs with a mitigation that changes nothing
// (PB_SELFTEST=noop-rollback, suites/pocketbrain/selftest_test.go).
// The harness heals nothing before a rollback (issue 12 §4), so the row must fail at
// recovery; when it healed first, this row passed, and so would any rollback that does
// nothing.
func TestNoopRollbackFails(t *testing.T) {
	t.Parallel() // beside another suite subprocess: see the package comment
	d := docker(t)
	r := start(t, []string{"PB_SELFTEST=noop-rollback", "PB_RECOVER_TIMEOUT=20s"}, "-ginkgo.label-filter=selftest")
	code := r.wait(t, 8*time.Minute)
	t.Logf("exit %d after %s", code, r.ended.Round(time.Millisecond))
	if code == 0 {
		t.Errorf("suite passed although the mitigation changed nothing")
	}
	r.noLeftovers(t, d)
	ev := readEvidence(t, r.out)
	st, failure := ev.row("selftest-noop-rollback-RG-readiness-bad-release")
	t.Logf("evidence: row %s (%s), verdict %s", st, failure, ev.Verdict.Decision)
	if st != "failed" {
		t.Errorf("the row with a no-op rollback is %q, want failed: %s", st, failure)
	}
	if !strings.Contains(failure, "recovery") {
		t.Errorf("the row did not fail at recovery: %q", failure)
	}
	if ev.Verdict.Decision == "GO" {
		t.Errorf("verdict GO with a failed row")
	}
}
