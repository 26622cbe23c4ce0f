package program

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestRuleFilesPassPromtool runs the Prometheus operators' own check on both rule files:
// the alias map and the rollback triggers must load in the Prometheus that runs them,
// not only in the harness's engine.
func TestRuleFilesPassPromtool(t *testing.T) {
	if os.Getenv("PB_SKIP_PROMTOOL") == "1" {
		t.Skip("PB_SKIP_PROMTOOL=1: promtool check rules skipped")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found on PATH: install it (Debian/Ubuntu: apt-get install prometheus; "+
			"or a Prometheus release tarball from https://prometheus.io/download/), or set PB_SKIP_PROMTOOL=1 to skip: %v", err)
	}
	for _, f := range []string{RecordingFile, AlertsFile} {
		path := filepath.Join(programDir, f)
		t.Run(f, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, promtool, "check", "rules", path).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool check rules %s failed: %v\n%s", path, err, out)
			}
			t.Logf("%s", out)
		})
	}
}
