package env

import "time"

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
}

// DefaultTimeouts suit a 2-core machine with the fast profile.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		ContainerStart: 60 * time.Second,
		Boot:           3 * time.Minute,
		Teardown:       60 * time.Second,
		ToxiproxyCall:  5 * time.Second,
		DockerCall:     30 * time.Second,
		SteadyState:    60 * time.Second,
		Detect:         60 * time.Second,
		Fire:           90 * time.Second,
		Recover:        90 * time.Second,
	}
}
