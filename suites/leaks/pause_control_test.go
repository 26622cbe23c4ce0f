package leaks

import (
	"strings"
	"testing"
	"time"
)

// TestPausedControlFails: the client fleet is paused during the no-fault control
// (PB_SELFTEST=pause-control, suites/pocketbrain/selftest_test.go). Every target stays
// up and every trigger quiet, but quiet because nothing happens is not quiet (issue 12
// §3): the control must fail, naming the missing traffic, and leave nothing behind.
func TestPausedControlFails(t *testing.T) {
	t.Parallel() // beside another suite subprocess: see the package comment
	d := docker(t)
	r := start(t, []string{"PB_SELFTEST=pause-control"}, "-ginkgo.label-filter=selftest")
	code := r.wait(t, 6*time.Minute)
	t.Logf("exit %d after %s", code, r.ended.Round(time.Millisecond))
	if code == 0 {
		t.Errorf("suite passed although the control ran with the fleet paused")
	}
	r.noLeftovers(t, d)
	ev := readEvidence(t, r.out)
	st, failure := ev.row("selftest-pause-control")
	t.Logf("evidence: row %s (%s), verdict %s", st, failure, ev.Verdict.Decision)
	if st != "failed" {
		t.Errorf("the control with the fleet paused is %q, want failed: %s", st, failure)
	}
	if !strings.Contains(failure, "no traffic") || !strings.Contains(failure, "pocketbrain_sync_push_mutations_total") {
		t.Errorf("the control's failure does not name the missing traffic: %q", failure)
	}
	if ev.Verdict.Decision == "GO" {
		t.Errorf("verdict GO with a failed control")
	}
}
