// Package secrets proves that no secret reaches any file or log of a run: it runs a short
// invocation of the PocketBrain suite as a subprocess, with known secret values in its
// environment, learns the secrets the stack generated for itself, and after the run has
// written everything (evidence, reports, JUnit, workload history) searches every file
// under the run's PB_OUT and the run's whole stdout and stderr for each of them.
//
// The suite is compiled once (`go test -c`) and the binary run directly. The stack's
// secrets come back over a Unix socket the suite's test-only hook writes to
// (PB_SECRETS_PROBE_SOCKET, see suites/pocketbrain/security_test.go): never through a file.
//
//	go test ./suites/secrets -v        (one to two minutes; skipped with -short or without Docker)
//	PB_SECRETS_FILTER='baseline'       the suite's label filter (default: baseline, security, gate
//	                                   and the key-rotation row FM4-rotation-with-prev)
package secrets

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/subproc"
)

// TestMain: Ctrl-C on `make test` reaches this binary and its suite subprocess together;
// this one must outlive the subprocess (whose next write to a dead parent's pipe would
// kill it by SIGPIPE mid-teardown): it forwards the signal to the subprocess's own
// process group, once, and waits for it.
func TestMain(m *testing.M) {
	subproc.Forward()
	code := m.Run()
	if subproc.WasInterrupted() && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// defaultFilter adds to the baseline, security and gate specs one matrix row that puts
// the stack's own secrets into a service's configuration (a key rotation): its fault
// parameters, timeline and workload history are written too, and searched.
const defaultFilter = "baseline || security || gate || row:FM4-rotation-with-prev"

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// forms are the ways a value can appear once written: as is, URL-escaped, base64.
func forms(v string) []string {
	out := []string{v, url.QueryEscape(v), base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))}
	sort.Strings(out)
	return out
}

// find reports which named secrets occur (in any form) in data.
func find(data []byte, secrets map[string]string) []string {
	var hits []string
	for name, v := range secrets {
		if len(v) < 6 {
			continue
		}
		for _, f := range forms(v) {
			if bytes.Contains(data, []byte(f)) {
				hits = append(hits, name)
				break
			}
		}
	}
	sort.Strings(hits)
	return hits
}

// scanDir searches every regular file under dir; it returns "path: names" per leak and
// how many files it read.
func scanDir(dir string, secrets map[string]string) (leaks []string, files int, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if hits := find(b, secrets); len(hits) > 0 {
			rel, _ := filepath.Rel(dir, p)
			leaks = append(leaks, rel+": "+strings.Join(hits, ", "))
		}
		return nil
	})
	return leaks, files, err
}

// The scan must be able to fail: a planted secret, in each form, is found.
func TestScanFindsPlantedSecret(t *testing.T) {
	secret := map[string]string{"PLANTED": random(16)}
	for _, f := range forms(secret["PLANTED"]) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "history"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "history", "x.json"), []byte(`{"v":"`+f+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		leaks, files, err := scanDir(dir, secret)
		if err != nil || files != 1 || len(leaks) != 1 {
			t.Fatalf("planted %q: leaks %v, files %d, err %v", f, leaks, files, err)
		}
	}
	if leaks, _, _ := scanDir(t.TempDir(), secret); len(leaks) != 0 {
		t.Fatalf("empty dir: %v", leaks)
	}
}

func TestNoSecretInAnyOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite on Docker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	d.Close()

	suiteDir, _ := filepath.Abs(filepath.Join("..", "pocketbrain"))
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "pocketbrain.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, ".")
	build.Dir = suiteDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./suites/pocketbrain: %v\n%s", err, out)
	}

	// The stack's generated secrets arrive here, one a line.
	sock := filepath.Join(tmp, "probe.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var stackSecrets []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				mu.Lock()
				stackSecrets = append(stackSecrets, sc.Text())
				mu.Unlock()
			}
			c.Close()
		}
	}()

	// Known secrets set by the caller, the way a CI job or an engineer's shell has them.
	known := map[string]string{
		"PB_TEST_SECRET":         random(16),
		"PB_TEST_API_TOKEN":      "tok_" + random(16),
		"PB_TEST_DB_PASSWORD":    random(12),
		"PB_TEST_SIGNING_KEY":    "sk_live_" + random(12),
		"PB_TEST_CLERK_SECRET":   "sk_test_" + random(12),
		"PB_TEST_AWS_SECRET_KEY": random(20),
	}
	filter := os.Getenv("PB_SECRETS_FILTER")
	if filter == "" {
		filter = defaultFilter
	}
	out := filepath.Join(tmp, "out")
	var stdout, stderr bytes.Buffer
	run := exec.CommandContext(ctx, bin, "-test.count=1", "-test.v", "-test.timeout=12m", "-ginkgo.v", "-ginkgo.label-filter="+filter)
	run.Dir = suiteDir
	// PB_SELFTEST=leak adds a spec that plants the run's generated secrets in an evidence
	// field, a progress line and a Gomega failure message, and fails: the one failure
	// this run may have.
	run.Env = append(os.Environ(), "PB_OUT="+out, "PB_PROFILE=fast", "PB_CANARY_SPAN=5s", "TESTCONTAINERS_RYUK_DISABLED=true", "PB_SECRETS_PROBE_SOCKET="+sock, "PB_SELFTEST=leak")
	for k, v := range known {
		run.Env = append(run.Env, k+"="+v)
	}
	run.Stdout, run.Stderr = &stdout, &stderr
	// At the 15-minute deadline: SIGINT (the suite tears its stack down), not SIGKILL.
	run.Cancel = func() error { return syscall.Kill(-run.Process.Pid, syscall.SIGINT) }
	run.WaitDelay = 3 * time.Minute
	subproc.Prepare(run)
	if subproc.WasInterrupted() {
		t.Fatal("interrupted (SIGINT/SIGTERM) before the suite run")
	}
	began := time.Now()
	runErr := run.Start()
	if runErr == nil {
		untrack := subproc.Track(run)
		t.Logf("suite subprocess pid %d started: %s", run.Process.Pid, strings.Join(run.Args[1:], " "))
		runErr = run.Wait()
		untrack()
	}
	t.Logf("suite (%q) ran in %s: %v", filter, time.Since(began).Round(time.Second), runErr)
	secrets := map[string]string{}
	for k, v := range known {
		secrets[k] = v
	}
	mu.Lock()
	for i, v := range stackSecrets {
		secrets[fmt.Sprintf("stack secret #%d", i+1)] = v
	}
	n := len(stackSecrets)
	mu.Unlock()
	// The run must fail with the planted failure and nothing else; its outputs are
	// scanned whatever happened. The tail shown is redacted, so a leak is reported, never
	// repeated.
	console := stdout.String() + stderr.String()
	switch {
	case runErr == nil:
		t.Errorf("the suite passed: the planted self-test failure did not happen, so the failure message path was not exercised")
	case !strings.Contains(console, "Summarizing 1 Failure") || !strings.Contains(console, "plants the run's generated secrets"):
		t.Errorf("the suite invocation failed (%v) other than by the one planted failure; its outputs are scanned anyway. Tail of its output:\n%s", runErr, redact(tail(stdout.String(), 40), secrets))
	}
	for _, where := range []string{"a progress line holding", "a Gomega failure quoting"} {
		if !strings.Contains(console, "selftest leak: "+where) {
			t.Errorf("the console never shows the planted %q: the scan below would prove nothing about it", where)
		}
	}
	// Values holds the VPS host's SSH seeds and private keys (PEM, one line each here).
	if want := len(env.NewSecrets().Values()); n < want {
		t.Errorf("received %d stack secrets over the probe socket, want %d (Secrets.Values): the scan would miss the stack's own", n, want)
	}

	for _, want := range []string{"evidence.json", "report.md", "report.html", "junit.xml"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("the run wrote no %s: %v", want, err)
		}
	}
	// The scan is only as good as what the run wrote: with the default filter the key
	// rotation row must be in the evidence.
	if filter == defaultFilter {
		var ev struct {
			Rows []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"rows"`
		}
		b, _ := os.ReadFile(filepath.Join(out, "evidence.json"))
		_ = json.Unmarshal(b, &ev)
		if len(ev.Rows) != 1 || ev.Rows[0].ID != "FM4-rotation-with-prev" {
			t.Errorf("evidence.json rows %+v: the key-rotation row did not run, so its outputs were not searched", ev.Rows)
		} else {
			t.Logf("row %s: %s", ev.Rows[0].ID, ev.Rows[0].Status)
		}
	}
	// The SSH keys of the VPS host are among the secrets searched only if the gate used
	// them: steps 2–5 must have run over SSH (issue 16), not been skipped or n/a.
	{
		var ev struct {
			Gate []struct {
				Step   int    `json:"step"`
				Result string `json:"result"`
				Detail string `json:"detail"`
			} `json:"gate"`
		}
		b, _ := os.ReadFile(filepath.Join(out, "evidence.json"))
		_ = json.Unmarshal(b, &ev)
		ran := 0
		for _, g := range ev.Gate {
			if g.Step >= 2 && g.Step <= 5 && g.Result == "pass" {
				ran++
			}
			if g.Step == 2 && !strings.Contains(g.Detail, "reachable, host key SHA256:") {
				t.Errorf("gate step 2 %q: the precheck did not log in over SSH, so the run's SSH keys were never used", g.Detail)
			}
		}
		if ran != 4 {
			t.Errorf("gate steps 2–5: %d passed over SSH, want 4 (%+v): the SSH key material was not exercised", ran, ev.Gate)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "evidence.json")); !bytes.Contains(b, []byte("an evidence field holding the run's secrets: [REDACTED]")) {
		t.Errorf("evidence.json does not hold the planted field, redacted: the scan would prove nothing about it")
	}
	leaks, files, err := scanDir(out, secrets)
	if err != nil {
		t.Fatalf("scan %s: %v", out, err)
	}
	_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(out, p)
			t.Logf("searched %s", rel)
		}
		return nil
	})
	for name, b := range map[string][]byte{"stdout": stdout.Bytes(), "stderr": stderr.Bytes()} {
		if hits := find(b, secrets); len(hits) > 0 {
			leaks = append(leaks, name+": "+strings.Join(hits, ", "))
		}
	}
	t.Logf("searched %d files under PB_OUT and %d bytes of output for %d secrets (%d set by the caller, %d generated by the stack), each as is, URL-escaped and base64",
		files, stdout.Len()+stderr.Len(), len(secrets), len(known), n)
	if len(leaks) > 0 {
		t.Errorf("secrets found in the run's outputs (names only):\n  %s", strings.Join(leaks, "\n  "))
	}
}

func redact(s string, secrets map[string]string) string {
	for _, v := range secrets {
		for _, f := range forms(v) {
			if len(f) >= 6 {
				s = strings.ReplaceAll(s, f, "[REDACTED]")
			}
		}
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
