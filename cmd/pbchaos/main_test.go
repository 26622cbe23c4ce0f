package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pbchaos-test")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "pbchaos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// copyProgram copies ../../program into a temp dir and applies edit to one file.
func copyProgram(t *testing.T, file string, edit func(string) string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "program")
	src := filepath.Join("..", "..", "program")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == file && edit != nil {
			s := edit(string(b))
			if s == string(b) {
				t.Fatalf("edit of %s changed nothing: the test no longer matches the program", file)
			}
			b = []byte(s)
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func replaceFirst(re, with string) func(string) string {
	return func(s string) string {
		r := regexp.MustCompile(re)
		loc := r.FindStringIndex(s)
		if loc == nil {
			return s
		}
		return s[:loc[0]] + r.ReplaceAllString(s[loc[0]:loc[1]], with) + s[loc[1]:]
	}
}

type result struct {
	code    int
	out     string
	elapsed time.Duration
}

func pbchaos(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TESTCONTAINERS_RYUK_DISABLED=true")
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdin = strings.NewReader("") // a hold would continue at once
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	began := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run pbchaos: %v", err)
	}
	return result{code: code, out: buf.String(), elapsed: time.Since(began)}
}

// earlierReport writes an earlier run's files into a fresh output dir and returns a
// function that fails the test if any of them changed or a new file appeared.
func earlierReport(t *testing.T) (dir string, unchanged func()) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"evidence.json": `{"schema":"pocketbrain-chaos-evidence/v1","run_id":"earlier","note":"must survive"}`,
		"report.md":     "# earlier report\n",
		"report.html":   "<html>earlier</html>\n",
	}
	old := time.Now().Add(-time.Hour)
	for n, c := range files {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(p, old, old)
	}
	return dir, func() {
		t.Helper()
		ents, _ := os.ReadDir(dir)
		if len(ents) != len(files) {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("output dir changed: now holds %v", names)
		}
		for n, c := range files {
			p := filepath.Join(dir, n)
			b, err := os.ReadFile(p)
			if err != nil || string(b) != c {
				t.Errorf("earlier %s was overwritten (err %v)", n, err)
			}
			if st, err := os.Stat(p); err == nil && st.ModTime().After(old.Add(time.Minute)) {
				t.Errorf("earlier %s was rewritten (mtime %s)", n, st.ModTime())
			}
		}
	}
}

// TestBadProgram: each bad program input fails `check` and `hold` in seconds, with an
// error that names the problem and the fix, without Docker and without touching an
// earlier report.
func TestBadProgram(t *testing.T) {
	cases := []struct {
		name, file string
		edit       func(string) string
		want       []string // all must appear in the output
	}{
		{"malformed matrix", "matrix.yaml", func(s string) string { return s + "\n  - id: [broken\n" },
			[]string{"matrix.yaml", "fix the YAML"}},
		{"unknown field", "matrix.yaml", replaceFirst(`(?m)^    detect:`, "    detects:"),
			[]string{"matrix.yaml", "detects", "fix the YAML"}},
		{"unknown fault kind", "matrix.yaml", replaceFirst(`kind: network`, "kind: lightning"),
			[]string{`unknown fault kind "lightning"`, "use one of", "network"}},
		{"unknown edge", "matrix.yaml", replaceFirst(`edge: redis`, "edge: nosuchedge"),
			[]string{`unknown edge "nosuchedge"`, "use one of", "redis"}},
		{"unknown service", "matrix.yaml", replaceFirst(`\{kind: network, action: down, edge: redis\}`, "{kind: process, action: stop, target: nosuchservice}"),
			[]string{`unknown target "nosuchservice"`, "use one of", "server"}},
		{"unknown action", "matrix.yaml", replaceFirst(`action: down`, "action: explode"),
			[]string{`unknown action "explode"`, "use one of"}},
		{"invalid PromQL", "matrix.yaml", replaceFirst(`max\(pocketbrain_redis_ready_degraded\) == 1`, "max(pocketbrain_redis_ready_degraded == 1"),
			[]string{"invalid PromQL", "matrix.yaml", "(row "}},
		{"detect names an unexposed series", "matrix.yaml", replaceFirst(`max\(pocketbrain_redis_ready_degraded\) == 1`, "max(pocketbrain_no_such_series) == 1"),
			[]string{"pocketbrain_no_such_series", "no target exposes", "targets.yaml"}},
		{"rule names an unexposed series", "rules/alerts.yml", replaceFirst(`sum\(capture_persistence_fallback_failures\)`, "sum(capture_persistence_no_such_series)"),
			[]string{"capture_persistence_no_such_series", "no target exposes", "fix the rule"}},
		{"invalid PromQL in a rule", "rules/alerts.yml", replaceFirst(`sum\(capture_persistence_fallback_failures\) > 0`, "sum(capture_persistence_fallback_failures > 0"),
			[]string{"alerts.yml"}},
		{"unknown trigger", "matrix.yaml", replaceFirst(`triggers: \[ReadinessRegression\]`, "triggers: [NoSuchAlert]"),
			[]string{`"NoSuchAlert"`, "use one of", "ReadinessRegression"}},
		{"missing rule file", "rules/recording.yml", nil, []string{"recording.yml", "must hold"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dir string
			if tc.edit == nil {
				dir = copyProgram(t, "", nil)
				if err := os.Remove(filepath.Join(dir, tc.file)); err != nil {
					t.Fatal(err)
				}
			} else {
				dir = copyProgram(t, tc.file, tc.edit)
			}
			// No Docker may be needed: point at an engine that does not exist.
			noDocker := []string{"DOCKER_HOST=unix:///nonexistent.sock"}
			for _, args := range [][]string{
				{"check", "-program", dir},
				{"hold", "FM8-redis-down", "-program", dir, "-timeout", "1m"},
			} {
				out, unchanged := earlierReport(t)
				if args[0] == "hold" {
					args = append(args, "-out", out)
				}
				r := pbchaos(t, append(noDocker, "PB_OUT="+out), args...)
				t.Logf("%s → exit %d in %s:\n%s", args[0], r.code, r.elapsed.Round(time.Millisecond), r.out)
				if r.code != 1 {
					t.Errorf("%s: exit %d, want 1; output:\n%s", args[0], r.code, r.out)
				}
				if r.elapsed > 15*time.Second {
					t.Errorf("%s: took %s, want seconds", args[0], r.elapsed)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.out, w) {
						t.Errorf("%s: output lacks %q:\n%s", args[0], w, r.out)
					}
				}
				if strings.Contains(r.out, "no Docker engine") {
					t.Errorf("%s: reached Docker before rejecting the program:\n%s", args[0], r.out)
				}
				unchanged()
			}
		})
	}
}

func TestCheckGoodProgram(t *testing.T) {
	r := pbchaos(t, []string{"DOCKER_HOST=unix:///nonexistent.sock"}, "check", "-program", filepath.Join("..", "..", "program"))
	if r.code != 0 || !strings.HasPrefix(r.out, "OK:") {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"hold"}, {"hold", "a", "b"}, {"check", "-nope"}, {"sweep", "extra"}} {
		r := pbchaos(t, nil, args...)
		if r.code != 2 || !strings.Contains(r.out, "usage:") {
			t.Errorf("%v: exit %d, want 2 with usage:\n%s", args, r.code, r.out)
		}
	}
	r := pbchaos(t, nil, "hold", "NO-SUCH-ROW", "-program", filepath.Join("..", "..", "program"), "-out", t.TempDir())
	if r.code != 1 || !strings.Contains(r.out, `"NO-SUCH-ROW"`) || !strings.Contains(r.out, "FM8-redis-down") {
		t.Errorf("unknown row: exit %d:\n%s", r.code, r.out)
	}
}

// TestBadEnvironment: a missing image, no Docker engine and a taken port each fail
// `hold` in seconds with the fix named, before any container starts, and leave an
// earlier report alone.
func TestBadEnvironment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	needsDocker := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := env.NewDocker(ctx, env.DefaultTimeouts())
		if err != nil {
			t.Skipf("needs a Docker engine: %v", err)
		}
		_ = d.Close()
	}
	cases := []struct {
		name   string
		env    []string
		docker bool
		want   []string
	}{
		{"missing image", []string{"PB_IMAGE_SERVER=does-not/exist:1"}, true,
			[]string{"images not found", "server=does-not/exist:1", "make images", "PB_IMAGE_"}},
		{"no Docker engine", []string{"DOCKER_HOST=unix:///nonexistent.sock"}, false,
			[]string{"no Docker engine answers", "/nonexistent.sock", "DOCKER_HOST"}},
		{"harness port taken", []string{"PB_LISTEN=" + taken}, false,
			[]string{"harness endpoint", taken, "PB_LISTEN", "free"}},
		{"bad timeout variable", []string{"PB_DETECT_TIMEOUT=soon"}, false,
			[]string{"PB_DETECT_TIMEOUT", "positive duration"}},
		{"bad profile", []string{"PB_PROFILE=turbo"}, false,
			[]string{"PB_PROFILE", "fast or release"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.docker {
				needsDocker(t)
			}
			out, unchanged := earlierReport(t)
			r := pbchaos(t, append(tc.env, "PB_OUT="+out), "hold", "FM8-redis-down", "-program", filepath.Join("..", "..", "program"), "-out", out, "-timeout", "1m")
			t.Logf("exit %d in %s:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.out)
			if r.code != 1 {
				t.Errorf("exit %d, want 1; output:\n%s", r.code, r.out)
			}
			if r.elapsed > 20*time.Second {
				t.Errorf("took %s, want seconds", r.elapsed)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
			if strings.Contains(r.out, "booting the stack") {
				t.Errorf("started booting before the preflight failed:\n%s", r.out)
			}
			unchanged()
		})
	}
}
