package gate

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/moby/moby/api/types/container"
	tc "github.com/testcontainers/testcontainers-go"

	"github.com/pocketbrain/chaos/harness/env"
)

// OneOff is a short-lived container of a service image run beside the stack: labelled
// as the environment's (env.OwnerLabels, so a sweep removes it after a crash), with no
// network, always removed.
type OneOff struct {
	Image      string
	Entrypoint []string
	Env        env.Settings // "" values are left out
	// Until ends the wait early while the container still runs (e.g. "it is listening").
	Until func(log string) bool
	// Within bounds the wait for it to exit (default Timeouts.ContainerStart); a
	// container still running then is returned with Exited false.
	Within time.Duration
}

// OneOffResult is how a one-off ended.
type OneOffResult struct {
	Exited  bool
	Code    int
	Log     string // redacted
	Elapsed time.Duration
}

// OneOffRunner runs a one-off container; RunOneOff on an environment is the real one,
// a test passes its own.
type OneOffRunner func(ctx context.Context, o OneOff) (OneOffResult, error)

// oneOffPoll is the pause between two looks at a one-off's state and log: the config
// check exits within a second, a production start logs "listening" within a few.
const oneOffPoll = 150 * time.Millisecond

// oneOffLogMax caps the log read from a one-off.
const oneOffLogMax = 1 << 20

// Runner is RunOneOff on e.
func Runner(e *env.Environment) OneOffRunner {
	return func(ctx context.Context, o OneOff) (OneOffResult, error) { return RunOneOff(ctx, e, o) }
}

// RunOneOff starts o beside e's stack, waits until it exits, o.Until holds or o.Within
// passes, and removes it (bounded by Timeouts.Teardown) whatever happened.
func RunOneOff(ctx context.Context, e *env.Environment, o OneOff) (OneOffResult, error) {
	vars := map[string]string{}
	for k, v := range o.Env {
		if v != "" {
			vars[k] = v
		}
	}
	labels := env.OwnerLabels(e.RunID())
	maps.Copy(labels, map[string]string{"pocketbrain.chaos.role": "oneoff"})
	opts := []tc.ContainerCustomizer{
		tc.WithEnv(vars),
		tc.WithLabels(labels),
		tc.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "none" }),
	}
	if len(o.Entrypoint) > 0 {
		opts = append(opts, tc.WithEntrypoint(o.Entrypoint...))
	}
	timeouts := e.Config().Timeouts
	began := time.Now()
	ctr, err := tc.Run(ctx, o.Image, opts...)
	if ctr != nil {
		defer func() {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeouts.Teardown)
			defer cancel()
			_ = ctr.Terminate(tctx)
		}()
	}
	if err != nil {
		return OneOffResult{}, fmt.Errorf("start one-off %s: %w", o.Image, err)
	}
	within := o.Within
	if within == 0 {
		within = timeouts.ContainerStart
	}
	logs := func() string {
		rc, err := ctr.Logs(ctx)
		if err != nil {
			return ""
		}
		defer rc.Close()
		b, _ := io.ReadAll(io.LimitReader(rc, oneOffLogMax))
		return e.Redact(string(b))
	}
	for {
		s, err := ctr.State(ctx)
		if err != nil {
			return OneOffResult{}, fmt.Errorf("state of one-off %s: %w", o.Image, err)
		}
		if !s.Running {
			return OneOffResult{Exited: true, Code: s.ExitCode, Log: logs(), Elapsed: time.Since(began)}, nil
		}
		if o.Until != nil {
			if l := logs(); o.Until(l) {
				return OneOffResult{Log: l, Elapsed: time.Since(began)}, nil
			}
		}
		if time.Since(began) > within {
			return OneOffResult{Log: logs(), Elapsed: time.Since(began)}, nil
		}
		select {
		case <-ctx.Done():
			return OneOffResult{}, ctx.Err()
		case <-time.After(oneOffPoll):
		}
	}
}
