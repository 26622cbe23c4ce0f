package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckReleaseFiles: `check` validates baseline.yaml and release-gate.yaml too, and
// refuses a broken one with a message naming the file, the field and the fix.
func TestCheckReleaseFiles(t *testing.T) {
	noDocker := []string{"DOCKER_HOST=unix:///nonexistent.sock"}
	r := pbchaos(t, noDocker, "check", "-program", filepath.Join("..", "..", "program"))
	if r.code != 0 {
		t.Fatalf("good program: exit %d:\n%s", r.code, r.out)
	}
	for _, w := range []string{"baseline.yaml: 3 endpoints, ", "release-gate.yaml: 6 steps (0 n/a here), 9 unsafe settings"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("good program: output lacks %q:\n%s", w, r.out)
		}
	}

	cases := []struct {
		name, file string
		edit       func(string) string // nil: the file is removed
		want       []string
	}{
		{"baseline format", "baseline.yaml", replaceFirst(`format: json`, "format: xml"),
			[]string{"baseline.yaml", "endpoints[0] (GET /ready)", `format "xml"`, "use json or prometheus"}},
		{"baseline role", "baseline.yaml", replaceFirst(`role: worker`, "role: redis"),
			[]string{"baseline.yaml", "endpoints[2] (GET /api/v1/metrics)", `role "redis"`, "use server or worker"}},
		{"baseline unknown field", "baseline.yaml", replaceFirst(`(?m)^    expect:`, "    expects:"),
			[]string{"baseline.yaml", "expects", "fix the YAML"}},
		{"baseline empty value", "baseline.yaml", replaceFirst(`value: "true"`, `value: ""`),
			[]string{"baseline.yaml", "expect[0]", "field and value are both required"}},
		{"baseline missing", "baseline.yaml", nil, []string{"baseline.yaml", "restore it from git"}},
		{"gate step order", "release-gate.yaml", replaceFirst(`step: 2`, "step: 3"),
			[]string{"release-gate.yaml", "steps[1]: step 3 out of order", "number the steps 1, 2, 3"}},
		{"gate image", "release-gate.yaml", replaceFirst(`images: \[server, worker\]`, "images: [server, redis]"),
			[]string{"release-gate.yaml", `config_check.images: "redis"`}},
		{"gate unsafe start", "release-gate.yaml", replaceFirst(`start: \[worker\]`, "start: [clients]"),
			[]string{"release-gate.yaml", `config_check.unsafe[0]: start "clients" has no production_start entry`, "use server or worker"}},
		{"gate unknown field", "release-gate.yaml", replaceFirst(`(?m)^  ok_output:`, "  ok:"),
			[]string{"release-gate.yaml", "field ok not found", "fix the YAML"}},
		{"gate missing", "release-gate.yaml", nil, []string{"release-gate.yaml", "restore it from git"}},
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
			r := pbchaos(t, noDocker, "check", "-program", dir)
			t.Logf("exit %d in %s:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.out)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if strings.Contains(r.out, "OK:") {
				t.Errorf("a broken %s passed", tc.file)
			}
			want := append([]string{"program " + dir + " is invalid", filepath.Join(dir, tc.file)}, tc.want...)
			for _, w := range want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

// TestCheckRefusesLabelTyposAndBadHold (issue 12 §3): `check` refuses, without Docker, a
// matrix row whose label matcher matches no exposed value, with the suggestion, and a
// hold: that does not parse, naming the row and the fix.
func TestCheckRefusesLabelTyposAndBadHold(t *testing.T) {
	noDocker := []string{"DOCKER_HOST=unix:///nonexistent.sock"}
	cases := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"probe typo", replaceFirst(`      - min\(probe_success\{probe="server_ready"\}\) == 0`, `      - min(probe_success{probe="server_raedy"}) == 0`),
			[]string{"(row FM8-redis-down)", `matcher probe="server_raedy" matches no value a target exposes`, "server_ready, worker_ready", `did you mean probe="server_ready"?`}},
		{"code typo", replaceFirst(`code="503"`, `code="5O3"`),
			[]string{`matcher code="5O3" matches no value a target exposes`, "an HTTP status (200, 503, …) or error (no answer)"}},
		{"bad hold", replaceFirst(`hold: 10s`, "hold: 10"),
			[]string{"(row FM1-primary-volume-full)", `hold does not parse: duration "10": time: missing unit`, "e.g. hold: 10s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyProgram(t, "matrix.yaml", tc.edit)
			r := pbchaos(t, noDocker, "check", "-program", dir)
			t.Logf("exit %d in %s:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.out)
			if r.code != 1 || strings.Contains(r.out, "OK:") {
				t.Errorf("exit %d, want 1 and no OK", r.code)
			}
			for _, w := range append([]string{"program " + dir + " is invalid", filepath.Join(dir, "matrix.yaml")}, tc.want...) {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}
