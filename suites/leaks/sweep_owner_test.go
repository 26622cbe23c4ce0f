package leaks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/subproc"
)

// ownerHelperEnv makes this test binary, re-executed, the "first run" of
// TestSweepKeepsLiveRunInOtherPIDNamespace: it creates a network and a volume labelled
// by the harness for the run id in the variable, says so, and waits until it is killed
// (or its stdin closes). It happens in init, before TestMain: the helper builds nothing
// and sweeps nothing.
const ownerHelperEnv = "PB_LEAKS_OWNER_HELPER_RUN"

func init() {
	if run := os.Getenv(ownerHelperEnv); run != "" {
		os.Exit(ownerHelper(run))
	}
}

func ownerHelper(run string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		fmt.Println("owner-helper:", err)
		return 1
	}
	defer d.Close()
	labels := env.OwnerLabels(run)
	if _, err := d.Client().NetworkCreate(ctx, run+"-net", client.NetworkCreateOptions{Labels: labels}); err != nil {
		fmt.Println("owner-helper: create network:", err)
		return 1
	}
	if _, err := d.Client().VolumeCreate(ctx, client.VolumeCreateOptions{Name: run + "-vol", Labels: labels}); err != nil {
		fmt.Println("owner-helper: create volume:", err)
		return 1
	}
	fmt.Printf("owner-helper ready: pid=%d pidns=%s run=%s\n", os.Getpid(), labels[env.LabelPIDNS], run)
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	select { // the test kills it; a test that died closes its stdin
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	return 0
}

var helperReady = regexp.MustCompile(`^owner-helper ready: pid=([0-9]+) pidns=(\S*) run=(\S+)$`)

// TestSweepKeepsLiveRunInOtherPIDNamespace: two runs on one host, the first in a pid
// namespace of its own (a CI job in a container sharing the host's hostname), where its
// pid N is a number no process has in the second run's namespace. The start-of-suite
// orphan sweep of the second run must keep the first run's objects: it cannot verify
// that their owner is dead. Then the first run is killed and removed by its run id.
func TestSweepKeepsLiveRunInOtherPIDNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("uses Docker: not with -short")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux) to start a process in another pid namespace")
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		"sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid --fork --mount-proc is not permitted here (needs root or CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
	defer d.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	n := freePID(t)
	run := fmt.Sprintf("pbowner%d%d", os.Getpid(), time.Now().UnixNano()%1e6)
	// pid 1 of the new namespace is sh; it sets the namespace's last pid to N-1 and forks
	// the helper, which so becomes pid N there (the "; exit" keeps sh from exec'ing it).
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		"sh", "-c", `echo "$1" > /proc/sys/kernel/ns_last_pid && "$0" -test.run='^$'; exit $?`, self, strconv.Itoa(n-1))
	cmd.Env = append(os.Environ(), ownerHelperEnv+"="+run)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	subproc.Prepare(cmd) // its own process group: Ctrl-C is forwarded to it once
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	untrack := subproc.Track(cmd)
	exited := make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = cmd.Wait()
		untrack()
		close(exited)
	}()
	kill := func() {
		select {
		case <-exited: // reaped: its process group id may be another's now
			return
		default: // not reaped yet: the group id is still its own
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = stdin.Close()
		<-exited
	}
	t.Cleanup(func() {
		kill()
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_, _ = d.Sweep(cctx, env.SweepAll, run)
	})

	// The first run is up: its objects exist, owned by pid N of another namespace.
	var helperPID int
	var helperNS string
	deadline := time.After(time.Minute)
	for helperPID == 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the helper ended before it was ready")
			}
			t.Logf("helper: %s", l)
			if m := helperReady.FindStringSubmatch(l); m != nil {
				helperPID, _ = strconv.Atoi(m[1])
				helperNS = m[2]
			}
		case <-deadline:
			t.Fatalf("the helper was not ready within a minute")
		}
	}
	me := env.Self()
	if me.Err != nil {
		t.Fatalf("this process cannot read its own identity: %v", me.Err)
	}
	if helperPID != n {
		t.Fatalf("the helper is pid %d in its namespace, want %d (ns_last_pid was set to %d)", helperPID, n, n-1)
	}
	if helperNS == "" || helperNS == me.PIDNS {
		t.Fatalf("the helper's pid namespace %q is not another one than this process's %q", helperNS, me.PIDNS)
	}
	if err := syscall.Kill(n, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d was taken in this namespace meanwhile (kill: %v): the test would not tell the old sweep from the new; run it again", n, err)
	}
	counts := func() env.SweepReport {
		t.Helper()
		rep, err := d.Leftovers(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := counts(); rep.Networks != 1 || rep.Volumes != 1 {
		t.Fatalf("the helper's objects: %d networks, %d volumes; want 1 and 1", rep.Networks, rep.Volumes)
	}
	t.Logf("run %s: network and volume owned by pid %d in %s; pid %d does not exist in this process's %s", run, n, helperNS, n, me.PIDNS)

	// The second run starts: its start-of-suite orphan sweep (the one TestMain and the
	// PocketBrain suite run) must leave the first run alone.
	sweepDeadRuns()
	if rep := counts(); rep.Networks != 1 || rep.Volumes != 1 {
		t.Fatalf("the start-of-suite orphan sweep removed a live run of another pid namespace: %d networks, %d volumes of %s left; want 1 and 1", rep.Networks, rep.Volumes, run)
	}
	// The same sweep says what it kept and why.
	var log bytes.Buffer
	d.SetSweepLog(&log)
	rep, err := d.Sweep(ctx, env.SweepOrphans, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("orphan sweep: removed %d containers, %d networks, %d volumes; log:\n%s", rep.Containers, rep.Networks, rep.Volumes, log.String())
	want := fmt.Sprintf("sweep: kept 2 objects of run %s (host %s, pid %d): owner in another pid namespace (%s", run, me.Host, n, helperNS)
	if !strings.Contains(log.String(), want) || !strings.Contains(log.String(), "cannot verify it is dead") {
		t.Errorf("the sweep log does not say it kept the run and why; want a line with %q", want)
	}
	if rep := counts(); rep.Networks != 1 || rep.Volumes != 1 {
		t.Fatalf("the orphan sweep removed a live run of another pid namespace: %d networks, %d volumes of %s left", rep.Networks, rep.Volumes, run)
	}

	// The first run dies. Its owner cannot be verified dead from here either: kept.
	kill()
	if _, err := d.Sweep(ctx, env.SweepOrphans, ""); err != nil {
		t.Fatal(err)
	}
	if rep := counts(); rep.Networks != 1 || rep.Volumes != 1 {
		t.Errorf("after the helper died: %d networks, %d volumes left; an owner in another pid namespace cannot be verified dead, want them kept", rep.Networks, rep.Volumes)
	}
	// Removed by its run id, whoever owned it.
	rep, err = d.Sweep(ctx, env.SweepAll, run)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Networks != 1 || rep.Volumes != 1 {
		t.Errorf("sweep of run %s removed %d networks, %d volumes; want 1 and 1", run, rep.Networks, rep.Volumes)
	}
	if rep := counts(); rep.Containers+rep.Networks+rep.Volumes != 0 {
		t.Errorf("LEAK: %d containers, %d networks, %d volumes of run %s left after its sweep", rep.Containers, rep.Networks, rep.Volumes, run)
	}
}

// freePID is a pid no process has in this pid namespace and none is about to get: just
// below the last one handed out (the kernel hands pids out upwards, so it is not reached
// again before the numbers wrap), or, if that is too low, near the top.
func freePID(t *testing.T) int {
	t.Helper()
	read := func(p string) int {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Skipf("cannot read %s: %v", p, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	last, max := read("/proc/sys/kernel/ns_last_pid"), read("/proc/sys/kernel/pid_max")
	free := func(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
	for pid := last - 200; pid > 300; pid-- {
		if free(pid) {
			return pid
		}
	}
	for pid := max - 1; pid > last+1000; pid-- {
		if free(pid) {
			return pid
		}
	}
	t.Skip("no free pid found")
	return 0
}
