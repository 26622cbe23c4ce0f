package leaks

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

// TestLeakIsCountedBeforeASweepBesideIt: the parallel tests count a subprocess's
// leftovers before it is reaped, because a subprocess starting beside it sweeps the
// objects of dead runs. Here the subprocess is the owner helper with nothing on its
// stdin: it leaves a network and a volume and exits. While it is unreaped, an orphan
// sweep keeps them (its PID still reads as alive) and the count sees them; once it is
// reaped, the same sweep removes them, so a count taken after the reap and such a
// sweep would find nothing, and the leak would pass.
func TestLeakIsCountedBeforeASweepBesideIt(t *testing.T) {
	d := docker(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runID := fmt.Sprintf("pbreap%d%d", os.Getpid(), time.Now().UnixNano()%1e6)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_, _ = d.Sweep(cctx, env.SweepAll, runID)
	})

	r := &run{lines: make(chan string, 64), done: make(chan struct{}), began: time.Now()}
	r.cmd = exec.Command(self, "-test.run=^$")
	r.cmd.Env = append(os.Environ(), ownerHelperEnv+"="+runID)
	var whileUnreaped env.SweepReport
	var sweepErr error
	r.launch(t, func() {
		if _, sweepErr = d.Sweep(ctx, env.SweepOrphans, ""); sweepErr == nil {
			whileUnreaped, sweepErr = d.Leftovers(ctx, runID)
		}
	})
	select {
	case <-r.done:
	case <-ctx.Done():
		t.Fatalf("the owner helper did not end: %s", tail(r.output(), 20))
	}
	if r.err != nil || r.leftErr != nil || sweepErr != nil {
		t.Fatalf("helper exit %v, count %v, sweep %v; output:\n%s", r.err, r.leftErr, sweepErr, tail(r.output(), 20))
	}
	t.Logf("pid %d exited; counted before the reap: %d networks, %d volumes; after an orphan sweep while unreaped: %d networks, %d volumes",
		r.cmd.Process.Pid, r.left.Networks, r.left.Volumes, whileUnreaped.Networks, whileUnreaped.Volumes)
	if r.left.Networks != 1 || r.left.Volumes != 1 {
		t.Errorf("the count before the reap saw %d networks, %d volumes; want the helper's 1 and 1", r.left.Networks, r.left.Volumes)
	}
	if whileUnreaped.Networks != 1 || whileUnreaped.Volumes != 1 {
		t.Errorf("an orphan sweep removed the objects of an exited but unreaped process: %d networks, %d volumes left, want 1 and 1", whileUnreaped.Networks, whileUnreaped.Volumes)
	}

	// Reaped: the owner is dead, and the sweep a subprocess beside it runs at its start
	// removes what it left. Counted only now, the leak would read as none.
	if _, err := d.Sweep(ctx, env.SweepOrphans, ""); err != nil {
		t.Fatal(err)
	}
	after, err := d.Leftovers(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the reap and an orphan sweep: %d networks, %d volumes", after.Networks, after.Volumes)
	if after.Networks+after.Volumes != 0 {
		t.Errorf("after the reap the orphan sweep left %d networks, %d volumes of a dead owner; the test shows nothing if a count after the reap would still see them", after.Networks, after.Volumes)
	}
}
