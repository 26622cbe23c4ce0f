package leaks

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/subproc"
)

// TestParallelProcessesOwnTheirEnvironments runs a fast row and the canary with
// `ginkgo -p --procs=2`: each process boots its own environment (own network, run id and
// containers), the processes' evidence shards merge into one evidence.json (the gate runs
// on one process only, yet the shards agree on the program files), and nothing is left.
func TestParallelProcessesOwnTheirEnvironments(t *testing.T) {
	d := docker(t)
	ginkgo, err := exec.Command("go", "tool", "-n", "ginkgo").Output()
	if err != nil {
		t.Fatalf("go tool -n ginkgo: %v (the ginkgo CLI is a tool of go.mod)", err)
	}
	out := t.TempDir()
	program, _ := filepath.Abs(filepath.Join(suiteDir, "..", "..", "program"))
	// The CLI runs a precompiled suite from the binary's directory: the program by path.
	cmd := exec.Command(strings.TrimSpace(string(ginkgo)), "-p", "--procs=2", "--no-color",
		"--label-filter=row:"+row+" || canary", "--timeout=10m", suiteBin)
	cmd.Env = append(os.Environ(), "TESTCONTAINERS_RYUK_DISABLED=true", "PB_OUT="+out, "PB_PROGRAM="+program, "PB_QUIET=1", unseeded)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if subproc.WasInterrupted() {
		t.Fatal("interrupted (SIGINT/SIGTERM): no further suite run is started")
	}
	// The CLI and its workers in a group of their own: Ctrl-C reaches them once, forwarded.
	subproc.Prepare(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	untrack := subproc.Track(cmd)
	envs := map[string]string{} // run id (environment) → worker pid, filled while it runs
	done := make(chan error, 1)
	go func() { err := cmd.Wait(); untrack(); done <- err }()
	ended := false
	t.Cleanup(func() { // the CLI is stopped whatever the test does: as Ctrl-C would, then killed
		if !ended {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(3 * time.Minute):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			for _, pid := range envs {
				n, _ := strconv.Atoi(pid)
				sweepPID(n)
			}
		}
	})

	// While it runs: which harness networks belong to the CLI's worker processes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var runErr error
wait:
	for {
		select {
		case runErr = <-done:
			ended = true
			break wait
		case <-ctx.Done():
			t.Fatalf("ginkgo -p did not end within 10m; output:\n%s", tail(buf.String(), 80))
		case <-tick.C:
			lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
			nets, err := d.Client().NetworkList(lctx, client.NetworkListOptions{Filters: client.Filters{}.Add("label", env.LabelHarness+"=1")})
			lcancel()
			if err != nil {
				continue
			}
			for _, n := range nets.Items {
				pid, _ := strconv.Atoi(n.Labels[env.LabelPID])
				if pid > 0 && parentOf(pid) == cmd.Process.Pid {
					envs[n.Labels[env.LabelRun]] = strconv.Itoa(pid)
				}
			}
		}
	}
	if runErr != nil {
		t.Errorf("ginkgo -p --procs=2: %v; output:\n%s", runErr, tail(buf.String(), 80))
	}
	pids := map[string]bool{}
	for _, pid := range envs {
		pids[pid] = true
	}
	t.Logf("environments seen: %v", envs)
	if len(envs) != 2 || len(pids) != 2 {
		t.Errorf("want 2 environments owned by 2 worker processes, saw %v", envs)
	}
	for id := range envs {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
		rep, err := d.Sweep(rctx, env.SweepAll, id) // removes (and counts) anything left
		rcancel()
		if err != nil {
			t.Errorf("sweep %s: %v", id, err)
		} else if rep.Containers+rep.Networks+rep.Volumes > 0 {
			t.Errorf("LEAK: environment %s left %d containers, %d networks, %d volumes", id, rep.Containers, rep.Networks, rep.Volumes)
		}
	}

	b, err := os.ReadFile(filepath.Join(out, "evidence.json"))
	if err != nil {
		t.Fatalf("no merged evidence.json: %v", err)
	}
	var ev struct {
		Shards []struct {
			Rows []string `json:"rows"`
		} `json:"shards"`
		Rows []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"rows"`
		Canary *struct {
			Pass bool `json:"pass"`
		} `json:"canary"`
		Provenance struct {
			Files []struct {
				Path string `json:"path"`
			} `json:"files"`
		} `json:"provenance"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("evidence.json: %v", err)
	}
	if len(ev.Shards) != 2 {
		t.Errorf("merged evidence lists %d shards, want one per process (2)", len(ev.Shards))
	}
	if len(ev.Rows) != 1 || ev.Rows[0].ID != row || ev.Rows[0].Status != "passed" {
		t.Errorf("merged rows %+v, want %s passed", ev.Rows, row)
	}
	if ev.Canary == nil || !ev.Canary.Pass {
		t.Errorf("merged canary %+v, want a passed canary window", ev.Canary)
	}
	files := map[string]bool{}
	for _, f := range ev.Provenance.Files {
		files[f.Path] = true
	}
	for _, f := range []string{"program/matrix.yaml", "program/release-gate.yaml", "program/baseline.yaml"} {
		if !files[f] {
			t.Errorf("merged provenance lacks %s (has %v)", f, files)
		}
	}
}

// parentOf returns the parent pid of pid (0 if it is gone): the ginkgo CLI's workers are
// its children.
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
