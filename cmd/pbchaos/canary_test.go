package main

import (
	"bytes"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/promcanary"
	"github.com/pocketbrain/chaos/harness/promcanary/promcanarytest"
)

// fakePrometheus serves the program's rules as a production Prometheus holding them.
func fakePrometheus(t *testing.T) *promcanarytest.Server {
	t.Helper()
	rules, err := promcanary.LoadRules([]string{filepath.Join("..", "..", "program", "rules", "alerts.yml")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	fake := promcanarytest.New(rules)
	t.Cleanup(fake.Close)
	return fake
}

func canaryArgs(url, out string, extra ...string) []string {
	return append([]string{"canary", "--prometheus", url, "--span", "300ms", "--interval", "50ms",
		"-program", filepath.Join("..", "..", "program"), "--out", out}, extra...)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestCanaryVerdicts: the exit code and the last line of each verdict, and the
// evidence and report written 0600 in a 0700 directory.
func TestCanaryVerdicts(t *testing.T) {
	t.Run("GO", func(t *testing.T) {
		fake := fakePrometheus(t)
		out := filepath.Join(t.TempDir(), "canary")
		r := pbchaos(t, nil, canaryArgs(fake.URL, out)...)
		if want := "canary verdict: GO (6 triggers quiet for 300ms at " + fake.URL + ")"; r.code != 0 || lastLine(r.out) != want {
			t.Fatalf("exit %d, want 0 and last line %q:\n%s", r.code, want, r.out)
		}
		for _, n := range []string{evidence.FileName, "report.md", "report.html"} {
			st, err := os.Stat(filepath.Join(out, n))
			if err != nil || st.Mode().Perm() != evidence.FileMode {
				t.Errorf("%s: %v (err %v)", n, st, err)
			}
		}
		if st, err := os.Stat(out); err != nil || st.Mode().Perm() != evidence.DirMode {
			t.Errorf("%s: %v (err %v)", out, st, err)
		}
		run, err := evidence.Load(filepath.Join(out, evidence.FileName))
		if err != nil {
			t.Fatal(err)
		}
		if run.Canary == nil || !run.Canary.Pass || len(run.Provenance.Files) != 1 || !strings.HasSuffix(run.Provenance.Files[0].Path, "program/rules/alerts.yml") {
			t.Errorf("canary %+v, files %+v", run.Canary, run.Provenance.Files)
		}
	})
	t.Run("NO-GO", func(t *testing.T) {
		fake := fakePrometheus(t)
		fake.Do(func(s *promcanarytest.Server) {
			s.OnRules = func(s *promcanarytest.Server, n int) {
				if n == 3 {
					s.Rule("QueueNonRecovery").State = "pending"
				}
			}
		})
		r := pbchaos(t, nil, canaryArgs(fake.URL, filepath.Join(t.TempDir(), "canary"))...)
		if r.code != 1 || !strings.HasPrefix(lastLine(r.out), "canary verdict: NO-GO (QueueNonRecovery pending") {
			t.Fatalf("exit %d, want 1 naming the alert last:\n%s", r.code, r.out)
		}
	})
	t.Run("INCONCLUSIVE", func(t *testing.T) {
		fake := fakePrometheus(t)
		fake.Do(func(s *promcanarytest.Server) { delete(s.Present, "invalidClerkConfig") })
		r := pbchaos(t, nil, canaryArgs(fake.URL, filepath.Join(t.TempDir(), "canary"))...)
		if r.code != 3 || !strings.HasPrefix(lastLine(r.out), "canary verdict: INCONCLUSIVE (series invalidClerkConfig absent") {
			t.Fatalf("exit %d, want 3 naming the series last:\n%s", r.code, r.out)
		}
	})
}

// TestCanarySetup: a server without the program's rules is exit 2 with the difference and
// the fix, no verdict and nothing written; the URL's credentials are never printed.
func TestCanarySetup(t *testing.T) {
	fake := fakePrometheus(t)
	fake.Do(func(s *promcanarytest.Server) {
		s.User, s.Pass = "release", "hunter2-canary"
		s.Remove("ReadinessRegression")
	})
	u, _ := url.Parse(fake.URL)
	u.User = url.UserPassword("release", "hunter2-canary")
	out := filepath.Join(t.TempDir(), "canary")
	r := pbchaos(t, nil, canaryArgs(u.String(), out)...)
	want := "pbchaos: prometheus " + fake.URL + ": alert ReadinessRegression: not loaded; load "
	if r.code != 2 || !strings.Contains(r.out, want) || !strings.Contains(r.out, "program/rules/alerts.yml into this Prometheus (rule_files:) and reload it") {
		t.Fatalf("exit %d, want 2 with %q:\n%s", r.code, want, r.out)
	}
	if strings.Contains(r.out, "canary verdict") || strings.Contains(r.out, "hunter2") || strings.Contains(r.out, "release@") {
		t.Errorf("a verdict or the credentials printed:\n%s", r.out)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a bad setup wrote %s", out)
	}

	// The same with the right rules: the credentials pass, and still never show.
	fake.Do(func(s *promcanarytest.Server) { s.Rules = fakePrometheus(t).Rules })
	r = pbchaos(t, nil, canaryArgs(u.String(), out)...)
	if r.code != 0 || strings.Contains(r.out, "hunter2") || strings.Contains(r.out, "release@") {
		t.Fatalf("exit %d, want 0 without the credentials:\n%s", r.code, r.out)
	}
	for _, n := range []string{evidence.FileName, "report.md", "report.html"} {
		if b, err := os.ReadFile(filepath.Join(out, n)); err != nil || strings.Contains(string(b), "hunter2") {
			t.Errorf("%s holds the password (err %v)", n, err)
		}
	}
}

func TestCanaryUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"canary"}, "canary needs --prometheus URL"},
		{[]string{"canary", "--prometheus", "http://127.0.0.1:1", "--span", "0s"}, `--span "0s": want a positive Go duration`},
		{[]string{"canary", "--prometheus", "http://127.0.0.1:1", "--span", "soon"}, `--span "soon"`},
		{[]string{"canary", "--prometheus", "http://127.0.0.1:1", "--for-scale", "0"}, "--for-scale 0: want a factor in (0, 1]"},
		{[]string{"canary", "--prometheus", "http://127.0.0.1:1", "--for-scale", "1.5"}, "--for-scale 1.5: want a factor in (0, 1]"},
	} {
		r := pbchaos(t, nil, c.args...)
		if r.code != 2 || !strings.Contains(r.out, c.want) || !strings.Contains(r.out, "usage:") {
			t.Errorf("%v: exit %d, want 2 with %q and the usage:\n%s", c.args, r.code, c.want, r.out)
		}
	}
	// A rule file that does not load, and a server that does not answer: setup, exit 2.
	for _, args := range [][]string{{"--rules", "nonexistent.yml"}, {"--rules", "../../program/rules/alerts.yml", "nonexistent.yml"}, {"--rules", "../../program/rules/alerts.yml,nonexistent.yml"}} {
		r := pbchaos(t, nil, append([]string{"canary", "--prometheus", "http://127.0.0.1:1"}, args...)...)
		if r.code != 2 || !strings.Contains(r.out, "pbchaos: rule files:") || !strings.Contains(r.out, "nonexistent.yml") || strings.Contains(r.out, "usage:") {
			t.Errorf("%v: exit %d, want 2 naming the file:\n%s", args, r.code, r.out)
		}
	}
	r := pbchaos(t, nil, "canary", "--prometheus", "http://127.0.0.1:1", "-program", filepath.Join("..", "..", "program"), "--out", t.TempDir())
	if r.code != 2 || !strings.Contains(r.out, "prometheus http://127.0.0.1:1: cannot read the server's rules") {
		t.Errorf("unreachable server: exit %d:\n%s", r.code, r.out)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestCanaryCtrlC: an interrupt ends the watch at once, INCONCLUSIVE (exit 3), with the
// evidence written.
func TestCanaryCtrlC(t *testing.T) {
	fake := fakePrometheus(t)
	out := filepath.Join(t.TempDir(), "canary")
	args := canaryArgs(fake.URL, out)
	args[4] = "1h" // --span
	cmd := exec.Command(bin, args...)
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(buf.String(), "watching 6 triggers"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the watch did not start:\n%s", buf.String())
		}
	}
	time.Sleep(150 * time.Millisecond)
	began := time.Now()
	_ = cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 3 || !strings.HasPrefix(lastLine(buf.String()), "canary verdict: INCONCLUSIVE (interrupted after ") || time.Since(began) > 10*time.Second {
		t.Fatalf("exit %d after %s, want 3 and the interruption last:\n%s", code, time.Since(began), buf.String())
	}
	run, err := evidence.Load(filepath.Join(out, evidence.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !run.Interrupted || run.Canary == nil || run.Canary.Pass {
		t.Errorf("evidence: interrupted %t, canary %+v", run.Interrupted, run.Canary)
	}
}
