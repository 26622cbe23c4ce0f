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
// stdin: it leaves a network and a volume and exits. Right after the reap, the worst
// moment, an orphan sweep runs as a subprocess beside it would, and removes them: the
// count must still have seen them. Counted after the reap, the leak would read as none.
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
	var afterSweep env.SweepReport
	var sweepErr error
	r.launch(t, func() {
		if _, sweepErr = d.Sweep(ctx, env.SweepOrphans, ""); sweepErr == nil {
			afterSweep, sweepErr = d.Leftovers(ctx, runID)
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
	t.Logf("pid %d exited; counted: %d networks, %d volumes; left after the reap and an orphan sweep: %d networks, %d volumes",
		r.cmd.Process.Pid, r.left.Networks, r.left.Volumes, afterSweep.Networks, afterSweep.Volumes)
	if afterSweep.Networks+afterSweep.Volumes != 0 {
		t.Fatalf("the orphan sweep after the reap left %d networks, %d volumes of a dead owner: this test then shows nothing", afterSweep.Networks, afterSweep.Volumes)
	}
	if r.left.Networks != 1 || r.left.Volumes != 1 {
		t.Errorf("the count saw %d networks, %d volumes; want the helper's 1 and 1, which a sweep beside it removed right after the reap", r.left.Networks, r.left.Volumes)
	}
}
