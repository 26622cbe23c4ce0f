// Package leaks runs the PocketBrain suite as a subprocess in the ways a run ends —
// passing, failing, panicking, interrupted — and proves that each leaves no container,
// network or volume with the harness label behind, and an evidence.json that says how
// the run ended; and under `ginkgo -p`, that each process owns its environment and the
// shards merge into one report.
//
// The suite is compiled once (`go test -c`) and the binary run directly, so that a
// signal reaches the process that owns the stack (`go test` would put itself between).
// Leftovers are counted by the subprocess's PID label, so other runs on the same
// engine (other engineers, ginkgo -p) neither disturb the count nor get touched.
//
// That isolation is also why the single-subprocess tests run side by side (t.Parallel;
// go test runs at most -parallel of them at once, GOMAXPROCS by default: two on the
// reference machine): each subprocess has its own run id, network, ports and PB_OUT.
// A subprocess sweeps dead runs' objects when it starts, so each subprocess's leftovers
// are counted when it exits, before it is reaped: until then its PID reads as alive and
// no sweep beside it takes its objects for a dead run's.
// Two tests stay sequential, and go test runs them before the others: TestSuiteBadInput
// times its failure ("within seconds"), and TestParallelProcessesOwnTheirEnvironments
// starts two stacks itself. Which parallel test takes a free slot first is up to the
// scheduler (go test releases them together).
//
//	go test ./suites/leaks -v            (about three and a half minutes; skipped with -short or without Docker)
//	PB_LEAKS_ROW=FM8-redis-down          the fast row to use (default FM8-redis-down)
package leaks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/profile"
	"github.com/pocketbrain/chaos/harness/subproc"
)

var (
	suiteBin string
	suiteDir string // the suite's package dir: its working directory
	buildErr error
	row      = "FM8-redis-down"
)

func TestMain(m *testing.M) {
	// Ctrl-C on `make test` reaches this binary and its suite subprocesses together: this
	// one must not die first (its subprocess would die of SIGPIPE mid-teardown), it
	// forwards the signal to each subprocess's own process group, once, and waits.
	subproc.Forward()
	if v := os.Getenv("PB_LEAKS_ROW"); v != "" {
		row = v
	}
	tmp, err := os.MkdirTemp("", "pb-leaks")
	if err != nil {
		panic(err)
	}
	suiteDir, _ = filepath.Abs(filepath.Join("..", "pocketbrain"))
	suiteBin = filepath.Join(tmp, "pocketbrain.test")
	code := func() int {
		defer os.RemoveAll(tmp)
		if !testingShort() {
			build := exec.Command("go", "test", "-c", "-o", suiteBin, ".")
			build.Dir = suiteDir
			out, err := build.CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go test -c ./suites/pocketbrain: %v\n%s", err, out)
			}
		}
		if subproc.WasInterrupted() {
			fmt.Fprintln(os.Stderr, "leaks: interrupted before the tests began")
			return 1
		}
		sweepDeadRuns()
		code := m.Run()
		if subproc.WasInterrupted() && code == 0 {
			code = 1
		}
		return code
	}()
	os.Exit(code)
}

// sweepDeadRuns removes what runs whose process is gone left (as the suite does at its
// start) and says so, so a leak of an earlier run is neither counted here nor kept.
func sweepDeadRuns() {
	if testingShort() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		return // the tests skip without an engine
	}
	defer d.Close()
	rep, err := d.Sweep(ctx, env.SweepOrphans, "")
	fmt.Fprintf(os.Stderr, "leaks: swept leftovers of dead runs: %d containers, %d networks, %d volumes\n", rep.Containers, rep.Networks, rep.Volumes)
	if err != nil {
		fmt.Fprintf(os.Stderr, "leaks: sweep: %v\n", err)
	}
}

func testingShort() bool {
	for _, a := range os.Args {
		if a == "-test.short" || a == "-test.short=true" {
			return true
		}
	}
	return false
}

func docker(t *testing.T) *env.Docker {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the suite on Docker: not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return d
}

// owned lists what still carries the harness label and the subprocess's PID label.
func owned(ctx context.Context, d *env.Docker, pid int) (rep env.SweepReport, runs map[string]bool, err error) {
	f := client.Filters{}.Add("label", env.LabelHarness+"=1").Add("label", env.LabelPID+"="+strconv.Itoa(pid))
	// A pid is a number in one pid namespace: a run of another namespace (another CI job
	// on this host) may have the same one.
	if ns := env.Self().PIDNS; ns != "" {
		f = f.Add("label", env.LabelPIDNS+"="+ns)
	}
	runs = map[string]bool{}
	cli := d.Client()
	ctrs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return rep, runs, err
	}
	for _, c := range ctrs.Items {
		runs[c.Labels[env.LabelRun]] = true
	}
	vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return rep, runs, err
	}
	for _, v := range vols.Items {
		runs[v.Labels[env.LabelRun]] = true
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return rep, runs, err
	}
	for _, n := range nets.Items {
		runs[n.Labels[env.LabelRun]] = true
	}
	return env.SweepReport{Containers: len(ctrs.Items), Volumes: len(vols.Items), Networks: len(nets.Items)}, runs, nil
}

// unseeded starts a subprocess on an empty store: what these tests assert (nothing left,
// the evidence says how the run ended) does not depend on the store's size, and the fast
// profile's 100 k captures would cost every subprocess its seeding. TestPassingRun keeps
// the seed (withSeed), so one run here still ends cleanly after seeding.
const unseeded = profile.EnvSeed + "=0"

// withSeed gives the subprocess the profile's own seed (an empty value is the default).
const withSeed = profile.EnvSeed + "="

// run is one subprocess of the suite.
type run struct {
	cmd   *exec.Cmd
	out   string // PB_OUT
	mu    sync.Mutex
	log   strings.Builder
	lines chan string
	done  chan struct{}
	err   error
	began time.Time
	ended time.Duration
	// left is what carried the subprocess's PID label once it had exited, counted before
	// it was reaped (leftErr: why it could not be counted).
	left    env.SweepReport
	leftRun map[string]bool
	leftErr error
}

func start(t *testing.T, extraEnv []string, args ...string) *run {
	t.Helper()
	if subproc.WasInterrupted() {
		t.Fatal("interrupted (SIGINT/SIGTERM): no further suite run is started")
	}
	r := &run{out: t.TempDir(), lines: make(chan string, 4096), done: make(chan struct{}), began: time.Now()}
	r.cmd = exec.Command(suiteBin, append([]string{"-test.timeout", "10m", "-ginkgo.no-color"}, args...)...)
	r.cmd.Dir = suiteDir
	// PB_LISTEN from the caller's shell (a fixed scrape target) would be one port for two
	// subprocesses side by side: each gets a free one, unless a test asks otherwise.
	r.cmd.Env = append(os.Environ(), "TESTCONTAINERS_RYUK_DISABLED=true", "PB_OUT="+r.out, unseeded, "PB_LISTEN=127.0.0.1:0")
	r.cmd.Env = append(r.cmd.Env, extraEnv...) // later entries win: a test may ask for the seed
	r.launch(t, nil)
	return r
}

// launch starts r.cmd with its output collected, counts its leftovers when it exits
// (afterReap, when set, runs once it is reaped: a test's stand-in for a sweep beside
// it), and stops it and sweeps its objects when the test ends.
func (r *run) launch(t *testing.T, afterReap func()) {
	t.Helper()
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	subproc.Prepare(r.cmd)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	untrack := subproc.Track(r.cmd)
	t.Logf("suite subprocess pid %d started: %s", r.cmd.Process.Pid, strings.Join(r.cmd.Args[1:], " "))
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.log.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		r.countLeftovers()
		r.err = r.cmd.Wait()
		if afterReap != nil {
			afterReap()
		}
		untrack()
		r.ended = time.Since(r.began)
		_ = pw.Close()
		close(r.done)
	}()
	// Whatever happens to the test: the subprocess is stopped and its objects swept.
	t.Cleanup(func() { r.stop(t) })
}

// countLeftovers waits for the subprocess to exit without reaping it and then counts what
// it left. Until the reap its PID still reads as alive, so the start-of-suite sweep of a
// subprocess beside it (which removes what dead runs left) cannot remove a leak of this
// one before it is counted.
func (r *run) countLeftovers() {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, r.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			r.leftErr = fmt.Errorf("waitid(pid %d): %w", r.cmd.Process.Pid, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		r.leftErr = err
		return
	}
	defer d.Close()
	r.left, r.leftRun, r.leftErr = owned(ctx, d, r.cmd.Process.Pid)
}

// stop ends a subprocess still running as Ctrl-C would (SIGINT, so that it tears its
// stack down), kills it if it has not ended within three minutes, and then removes
// whatever it left (by its PID label).
func (r *run) stop(t *testing.T) {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
		return
	case <-time.After(3 * time.Minute):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	sweepPID(r.cmd.Process.Pid)
}

// sweepPID removes every object labelled with pid's runs.
func sweepPID(pid int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		return
	}
	defer d.Close()
	_, runs, _ := owned(ctx, d, pid)
	for id := range runs {
		if id != "" {
			_, _ = d.Sweep(ctx, env.SweepAll, id)
		}
	}
}

func (r *run) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

func (r *run) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(within):
		_ = r.cmd.Process.Signal(syscall.SIGQUIT)
		<-r.done
		t.Fatalf("suite did not end within %s; output:\n%s", within, tail(r.output(), 80))
	}
	return r.cmd.ProcessState.ExitCode()
}

// waitFor waits until a line matching re was printed.
func (r *run) waitFor(t *testing.T, re *regexp.Regexp, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l := <-r.lines:
			if re.MatchString(l) {
				return
			}
		case <-r.done:
			t.Fatalf("suite ended before printing %q; output:\n%s", re, tail(r.output(), 80))
		case <-deadline:
			t.Fatalf("no line matching %q within %s; output:\n%s", re, within, tail(r.output(), 80))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// evidence is the part of evidence.json the leak tests judge.
type evidence struct {
	Complete        bool   `json:"complete"`
	Interrupted     bool   `json:"interrupted"`
	InterruptReason string `json:"interrupt_reason"`
	Verdict         struct {
		Decision string `json:"decision"`
	} `json:"verdict"`
	Rows []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Failure string `json:"failure"`
	} `json:"rows"`
}

func readEvidence(t *testing.T, dir string) evidence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "evidence.json"))
	if err != nil {
		t.Fatalf("no evidence.json: %v", err)
	}
	var ev evidence
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("evidence.json is not valid JSON: %v", err)
	}
	for _, f := range []string{"report.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("no %s next to evidence.json: %v", f, err)
		}
	}
	return ev
}

func (ev evidence) row(id string) (status, failure string) {
	for _, r := range ev.Rows {
		if r.ID == id {
			return r.Status, r.Failure
		}
	}
	return "", ""
}

// noLeftovers asserts that the ended subprocess left nothing (counted when it exited,
// before it was reaped); if it did, that is reported and removed (scoped by its run id),
// so one failure does not pile up.
func (r *run) noLeftovers(t *testing.T, d *env.Docker) {
	t.Helper()
	select {
	case <-r.done:
	default:
		t.Fatalf("noLeftovers before the subprocess ended")
	}
	pid := r.cmd.Process.Pid
	if r.leftErr != nil {
		t.Fatalf("list leftovers of pid %d: %v", pid, r.leftErr)
	}
	t.Logf("leftovers of pid %d at its exit: %d containers, %d networks, %d volumes", pid, r.left.Containers, r.left.Networks, r.left.Volumes)
	if r.left.Containers+r.left.Networks+r.left.Volumes == 0 {
		return
	}
	t.Errorf("LEAK: pid %d left %d containers, %d networks, %d volumes (runs %v)", pid, r.left.Containers, r.left.Networks, r.left.Volumes, r.leftRun)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for id := range r.leftRun {
		if id != "" {
			_, _ = d.Sweep(ctx, env.SweepAll, id)
		}
	}
}

var stackUp = regexp.MustCompile(`\[suite\] stack up in`)

// TestPassingRun: one fast row passes; nothing is left; the evidence is complete.
func TestPassingRun(t *testing.T) {
	t.Parallel() // beside another suite subprocess: see the package comment
	d := docker(t)
	r := start(t, []string{withSeed}, "-ginkgo.label-filter=row:"+row)
	code := r.wait(t, 5*time.Minute)
	t.Logf("exit %d after %s", code, r.ended.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("suite exit %d, want 0; output:\n%s", code, tail(r.output(), 60))
	}
	r.noLeftovers(t, d)
	ev := readEvidence(t, r.out)
	if st, _ := ev.row(row); st != "passed" || !ev.Complete || ev.Interrupted {
		t.Errorf("evidence: row %s %q, complete=%v interrupted=%v; want passed, complete", row, st, ev.Complete, ev.Interrupted)
	}
}

// TestFailingRun: the row's detection can never hold (a program copy), with a short
// detect timeout: the spec fails, the guard heals, nothing is left, and the evidence
// records the failure in a complete run.
func TestFailingRun(t *testing.T) {
	t.Parallel() // beside another suite subprocess: see the package comment
	d := docker(t)
	prog := impossibleProgram(t)
	r := start(t, []string{"PB_PROGRAM=" + prog, "PB_DETECT_TIMEOUT=5s"}, "-ginkgo.label-filter=row:"+row)
	code := r.wait(t, 5*time.Minute)
	t.Logf("exit %d after %s", code, r.ended.Round(time.Millisecond))
	if code == 0 {
		t.Errorf("suite passed with an impossible detection; output:\n%s", tail(r.output(), 60))
	}
	r.noLeftovers(t, d)
	ev := readEvidence(t, r.out)
	st, failure := ev.row(row)
	t.Logf("evidence: row %s %s (%s), complete=%v, verdict %s", row, st, failure, ev.Complete, ev.Verdict.Decision)
	if st != "failed" || !strings.Contains(failure, "detection") || ev.Verdict.Decision == "GO" {
		t.Errorf("evidence: row %s %q %q, verdict %s; want failed at detection, not GO", row, st, failure, ev.Verdict.Decision)
	}
	if !strings.Contains(r.output(), "guard healed") && !strings.Contains(r.output(), "network/down") {
		t.Logf("note: no guard line in the output (the fault may have been healed before)")
	}
}

// impossibleProgram copies ../../program with the row's first detect expression
// replaced by one that is valid, names an exposed series, and can never hold.
func impossibleProgram(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "program")
	dst := filepath.Join(t.TempDir(), "program")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dst, "matrix.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	at := strings.Index(s, "id: "+row)
	if at < 0 {
		t.Fatalf("row %s not in %s", row, src)
	}
	re := regexp.MustCompile(`(?m)(detect:\s*\n\s*- )(.+)`)
	loc := re.FindStringSubmatchIndex(s[at:])
	if loc == nil {
		t.Fatalf("no detect list in row %s", row)
	}
	expr := s[at+loc[4] : at+loc[5]]
	series := regexp.MustCompile(`[a-z_][a-z0-9_]*`).FindString(strings.TrimPrefix(strings.TrimPrefix(expr, "max("), "min("))
	impossible := fmt.Sprintf("count(%s) < 0", series)
	s = s[:at+loc[4]] + impossible + s[at+loc[5]:]
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("row %s: detect %q replaced by %q", row, expr, impossible)
	return dst
}

// TestPanicInSpec: a spec panics while its row's fault is active (PB_SELFTEST=panic,
// suites/pocketbrain/selftest_test.go): Ginkgo fails the spec, the guard heals,
// teardown runs; nothing is left and the evidence says the row did not pass.
func TestPanicInSpec(t *testing.T) {
	t.Parallel() // beside another suite subprocess: see the package comment
	d := docker(t)
	r := start(t, []string{"PB_SELFTEST=panic", "PB_SELFTEST_ROW=" + row}, "-ginkgo.label-filter=selftest")
	code := r.wait(t, 5*time.Minute)
	t.Logf("exit %d after %s", code, r.ended.Round(time.Millisecond))
	if code == 0 {
		t.Errorf("suite passed although a spec panicked")
	}
	if !strings.Contains(r.output(), "selftest: a panic in the middle of a faulted row") {
		t.Errorf("the panic is not in the output:\n%s", tail(r.output(), 60))
	}
	r.noLeftovers(t, d)
	ev := readEvidence(t, r.out)
	st, failure := ev.row("selftest-panic-" + row)
	t.Logf("evidence: row %s (%s), complete=%v interrupted=%v, verdict %s", st, failure, ev.Complete, ev.Interrupted, ev.Verdict.Decision)
	if !strings.Contains(failure, "selftest: a panic") {
		t.Errorf("the row's failure does not carry the panic: %q", failure)
	}
	if st == "passed" || st == "" || ev.Verdict.Decision == "GO" {
		t.Errorf("evidence: panicking row %q, verdict %s; want it not passed and no GO", st, ev.Verdict.Decision)
	}
}

// TestInterruptMidSpec: SIGINT once the stack is up and the row's fault is injected:
// Ginkgo runs the cleanup; nothing is left; the evidence is marked interrupted.
func TestInterruptMidSpec(t *testing.T) {
	t.Parallel() // beside another suite subprocess: see the package comment
	d := docker(t)
	// A detection that never holds keeps the spec (and its fault) in place long enough.
	prog := impossibleProgram(t)
	r := start(t, []string{"PB_PROGRAM=" + prog, "PB_DETECT_TIMEOUT=2m"}, "-ginkgo.label-filter=row:"+row)
	r.waitFor(t, stackUp, 3*time.Minute)
	r.waitFor(t, regexp.MustCompile(`\[`+regexp.QuoteMeta(row)+`\] detect +awaiting`), 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	rep, _, err := owned(ctx, d, r.cmd.Process.Pid)
	cancel()
	if err != nil || rep.Containers == 0 {
		t.Fatalf("expected the subprocess's containers while it runs: %+v %v", rep, err)
	}
	t.Logf("stack of pid %d up (%d containers, %d networks, %d volumes); fault injected; sending SIGINT", r.cmd.Process.Pid, rep.Containers, rep.Networks, rep.Volumes)
	interruptedAt := time.Now()
	if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code := r.wait(t, 3*time.Minute)
	t.Logf("exit %d, %s after SIGINT", code, time.Since(interruptedAt).Round(time.Millisecond))
	if code == 0 {
		t.Errorf("an interrupted suite exited 0")
	}
	r.noLeftovers(t, d)
	ev := readEvidence(t, r.out)
	st, failure := ev.row(row)
	t.Logf("evidence: complete=%v interrupted=%v (%s); row %s (%s); verdict %s", ev.Complete, ev.Interrupted, ev.InterruptReason, st, failure, ev.Verdict.Decision)
	if ev.Complete || !ev.Interrupted || ev.Verdict.Decision == "GO" {
		t.Errorf("evidence: complete=%v interrupted=%v verdict %s; want interrupted, incomplete", ev.Complete, ev.Interrupted, ev.Verdict.Decision)
	}
	if st != "interrupted" {
		t.Errorf("the row in flight is %q, want interrupted", st)
	}
}

// TestSuiteBadInput: the suite itself, given a missing image, no engine or a taken
// harness port, fails in seconds with the fix named and leaves an earlier report in
// PB_OUT as it was (stack.Preflight runs before anything is written).
func TestSuiteBadInput(t *testing.T) {
	docker(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"missing image", []string{"PB_IMAGE_SERVER=does-not/exist:1"}, "make images"},
		{"no engine", []string{"DOCKER_HOST=unix:///nonexistent.sock"}, "DOCKER_HOST"},
		{"port taken", []string{"PB_LISTEN=" + ln.Addr().String()}, "PB_LISTEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			earlier := []byte(`{"earlier":true}`)
			for _, f := range []string{"evidence.json", "report.md"} {
				if err := os.WriteFile(filepath.Join(out, f), earlier, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// The last PB_OUT wins (os/exec keeps the last value of a duplicate).
			r := start(t, append(tc.env, "PB_OUT="+out), "-ginkgo.label-filter=row:"+row)
			r.out = out
			code := r.wait(t, time.Minute)
			if code == 0 || r.ended > 20*time.Second || !strings.Contains(r.output(), tc.want) {
				t.Errorf("exit %d after %s, want non-zero within seconds naming %q:\n%s", code, r.ended, tc.want, tail(r.output(), 30))
			}
			ents, _ := os.ReadDir(r.out)
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(r.out, e.Name()))
				if e.Name() != "evidence.json" && e.Name() != "report.md" || string(b) != string(earlier) {
					t.Errorf("PB_OUT changed: %s", e.Name())
				}
			}
			t.Logf("exit %d after %s; earlier report untouched", code, r.ended.Round(time.Millisecond))
		})
	}
}
