// Package profile reads a run's settings from the environment, in one place: the
// suites run under `go test`/`ginkgo`, where environment variables are the way in.
package profile

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/promcanary"
)

// Profile is how fast and how long a run goes.
type Profile struct {
	// Name is "fast" (CI, engineers) or "release" (the release manager's run: a longer
	// control and a 30-minute canary). Neither runs the rows at production timing: a row
	// proves a mechanism, and there every row would hold its fault for the whole [15m]
	// window. The fast profile runs them at 1/60 ([15m] → 15s, for: 5m → 5s, the shortest
	// window still ≥ 5 scrapes at 1 s and every for: ≥ 2 evaluations); the release run
	// keeps 1/30, the scale its verdicts have been earned at. The canary is also
	// evaluated at production timing.
	Name string
	// ForScale multiplies every `for:` and range window of the rollback triggers and every
	// range window of the matrix (PB_TIME_SCALE overrides it: "1/60", "0.05").
	ForScale float64
	// ControlSpan is the no-fault control run; CanarySpan the release canary.
	ControlSpan, CanarySpan time.Duration
	// OutDir receives evidence.json, the reports and JUnit.
	OutDir string
	// Revision, when set (PB_REVISION), is the release revision under test: the server
	// is told to report it and the deploy-drift trigger compares with it. Empty (the
	// default): the revision stamped into the server image at build time.
	Revision string
	// Clients is the size of the simulated fleet.
	Clients int
	// SeedCaptures is how many captures the store holds before the first row, written
	// as months of history (see stack.Seed): fast 100 000, so a resync crosses a hundred
	// pages on every CI run; release 1 000 000, a production-sized store.
	SeedCaptures int
}

// Env variables, documented in the README.
const (
	EnvProfile   = "PB_PROFILE"
	EnvOut       = "PB_OUT"
	EnvControl   = "PB_CONTROL_SPAN"
	EnvCanary    = "PB_CANARY_SPAN"
	EnvRevision  = "PB_REVISION"
	EnvClients   = "PB_CLIENTS"
	EnvSeed      = "PB_SEED_CAPTURES"
	EnvTimeScale = "PB_TIME_SCALE"
)

// maxSeed bounds PB_SEED_CAPTURES: each client holds every capture in its view.
const maxSeed = 10_000_000

// FromEnv reads the profile; errors name the variable and the fix.
func FromEnv() (Profile, error) {
	p := Profile{Name: "fast", ForScale: 1.0 / 60, ControlSpan: 20 * time.Second, CanarySpan: 20 * time.Second, Clients: 10, SeedCaptures: 100_000}
	switch v := strings.TrimSpace(os.Getenv(EnvProfile)); v {
	case "", "fast":
	case "release":
		p = Profile{Name: "release", ForScale: 1.0 / 30, ControlSpan: 2 * time.Minute, CanarySpan: 30 * time.Minute, Clients: 10, SeedCaptures: 1_000_000}
	default:
		return p, fmt.Errorf("%s=%q: unknown profile; use fast or release", EnvProfile, v)
	}
	for name, dst := range map[string]*time.Duration{EnvControl: &p.ControlSpan, EnvCanary: &p.CanarySpan} {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return p, fmt.Errorf("%s=%q: not a duration; write e.g. 30s or 30m", name, v)
			}
			*dst = d
		}
	}
	if err := env.CheckTimeoutEnv(); err != nil {
		return p, err
	}
	if v := os.Getenv(EnvClients); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return p, fmt.Errorf("%s=%q: give a whole number of clients from 1 to 200", EnvClients, v)
		}
		p.Clients = n
	}
	if v := os.Getenv(EnvSeed); v != "" {
		n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
		if err != nil || n < 0 || n > maxSeed {
			return p, fmt.Errorf("%s=%q: give a whole number of captures from 0 (no seed) to %d", EnvSeed, v, maxSeed)
		}
		p.SeedCaptures = n
	}
	if v := strings.TrimSpace(os.Getenv(EnvTimeScale)); v != "" {
		f, err := promcanary.ParseForScale(v)
		if err != nil {
			return p, fmt.Errorf("%s=%q: %w", EnvTimeScale, v, err)
		}
		p.ForScale = f
	}
	if v := os.Getenv(EnvRevision); v != "" {
		p.Revision = v
	}
	p.OutDir = os.Getenv(EnvOut)
	if p.OutDir == "" {
		p.OutDir = filepath.Join("out", time.Now().UTC().Format("20060102T150405Z"))
	}
	abs, err := filepath.Abs(p.OutDir)
	if err != nil {
		return p, fmt.Errorf("%s=%q: %w", EnvOut, p.OutDir, err)
	}
	p.OutDir = abs
	return p, nil
}

// ScaleNote says in words what the profile did to the production windows, naming the
// profile it describes (a release run is not a fast one).
func (p Profile) ScaleNote() string {
	if p.ForScale == 1 {
		return "production timing: every for: and range window as written in the rule files"
	}
	return fmt.Sprintf("%s profile: every for: and range window of the rule files, and every range window of the matrix, multiplied by %s (e.g. [15m] → %s, for: 5m → %s)",
		p.Name, scaleText(p.ForScale), time.Duration(float64(15*time.Minute)*p.ForScale), time.Duration(float64(5*time.Minute)*p.ForScale))
}

// scaleText writes a scale that is one over a whole number as that fraction (1/30, not
// 0.03333), any other to four significant digits.
func scaleText(f float64) string {
	if f > 0 && f < 1 {
		n := 1 / f
		if r := math.Round(n); r >= 2 && math.Abs(n-r) < 1e-6*r {
			return fmt.Sprintf("1/%d", int(r))
		}
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}
