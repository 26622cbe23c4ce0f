package env

import (
	"fmt"
	"os"
	"time"
)

// Timeouts names every wait the harness makes, in one place (the Kubernetes e2e
// framework's habit), so that a slow machine is tuned here and nowhere else.
type Timeouts struct {
	// ContainerStart bounds one container's start, including its wait strategy.
	ContainerStart time.Duration
	// Boot bounds the whole environment coming up.
	Boot time.Duration
	// Teardown bounds the removal of one environment.
	Teardown time.Duration
	// ToxiproxyCall bounds one call to the Toxiproxy API.
	ToxiproxyCall time.Duration
	// DockerCall bounds one call to the Docker engine (pause, stop, inspect).
	DockerCall time.Duration
	// SteadyState bounds the wait for the stack to report ready before a spec.
	SteadyState time.Duration
	// Detect, Fire and Recover bound the phases of a failure-mode row.
	Detect, Fire, Recover time.Duration
	// Restore bounds each wait for the stack's steady state after a failed spec: once
	// to see whether it returns by itself, once after each restoring step
	// (stack.Restore).
	Restore time.Duration
	// HTTPCall bounds one request of the harness to a service (a probe, a stats read, a
	// fault switch): Environment.Do's default.
	HTTPCall time.Duration
	// FleetCall bounds one request to the whole client fleet (pause, resume, history,
	// state): it may wait for every client's operation in flight.
	FleetCall time.Duration
	// FinalSync bounds the drain of every client queue at the end of a row, and the
	// server's read of every capture after it.
	FinalSync time.Duration
	// FaultProof bounds the wait for a fault's effect to show in its target after an
	// inject, and to be gone after a heal (faults.WaitActed, faults.WaitHealed).
	FaultProof time.Duration
}

// DefaultTimeouts suit a 2-core machine with the fast profile.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		ContainerStart: 60 * time.Second,
		Boot:           3 * time.Minute,
		Teardown:       60 * time.Second,
		ToxiproxyCall:  5 * time.Second,
		DockerCall:     30 * time.Second,
		// A fleet restarted by a row resyncs the whole store before the next row: on the
		// release profile's 1 000 000 captures that took about 100 s on 2 cores.
		SteadyState: 150 * time.Second,
		Detect:      60 * time.Second,
		Fire:        90 * time.Second,
		Recover:     90 * time.Second,
		Restore:     60 * time.Second,
		HTTPCall:    10 * time.Second,
		FleetCall:   30 * time.Second,
		FinalSync:   60 * time.Second,
		FaultProof:  20 * time.Second,
	}.withOverrides()
}

// TimeoutEnv names the variables that override a phase timeout (a Go duration, > 0),
// e.g. PB_DETECT_TIMEOUT=10s for a quick failing run in a leak test.
var TimeoutEnv = map[string]func(*Timeouts) *time.Duration{
	"PB_STEADY_TIMEOUT":  func(t *Timeouts) *time.Duration { return &t.SteadyState },
	"PB_DETECT_TIMEOUT":  func(t *Timeouts) *time.Duration { return &t.Detect },
	"PB_FIRE_TIMEOUT":    func(t *Timeouts) *time.Duration { return &t.Fire },
	"PB_RECOVER_TIMEOUT": func(t *Timeouts) *time.Duration { return &t.Recover },
	"PB_RESTORE_TIMEOUT": func(t *Timeouts) *time.Duration { return &t.Restore },
	"PB_PROOF_TIMEOUT":   func(t *Timeouts) *time.Duration { return &t.FaultProof },
}

// withOverrides applies the valid PB_*_TIMEOUT variables; CheckTimeoutEnv reports the
// malformed ones (profile.FromEnv calls it, so a typo fails the run at once).
func (t Timeouts) withOverrides() Timeouts {
	for name, field := range TimeoutEnv {
		if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
			*field(&t) = d
		}
	}
	return t
}

// CheckTimeoutEnv returns an error naming the first malformed PB_*_TIMEOUT variable.
func CheckTimeoutEnv() error {
	for name := range TimeoutEnv {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: not a positive duration; write e.g. 30s or 2m", name, v)
		}
	}
	return nil
}
