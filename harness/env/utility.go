package env

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	tc "github.com/testcontainers/testcontainers-go"
)

// RunUtility runs a short-lived command in the Debian data image with the given docker
// volumes mounted (name → path), waits for it to exit, and returns its exit code and
// output. Storage faults use it: the services run FROM scratch and have no shell.
func (e *Environment) RunUtility(ctx context.Context, cmd []string, volumes map[string]string) (Exited, error) {
	out, err := e.runToExit(ctx, e.utilityImage(), e.utilityOptions(cmd, volumes)...)
	if err != nil {
		return Exited{}, fmt.Errorf("utility %v: %w", cmd, err)
	}
	return out, nil
}

// Utility is a utility container left running (StartUtility) until Stop.
type Utility struct {
	e   *Environment
	ctr *tc.DockerContainer
}

// StartUtility starts cmd as RunUtility does but leaves it running, for a fault that must
// keep acting while it is in place (a disk that stays full while the app frees space).
// It carries the run's labels, so Close removes it if Stop never runs.
func (e *Environment) StartUtility(ctx context.Context, cmd []string, volumes map[string]string) (*Utility, error) {
	ctr, err := tc.Run(ctx, e.utilityImage(), e.utilityOptions(cmd, volumes)...)
	u := &Utility{e: e, ctr: ctr}
	if err != nil {
		if ctr != nil {
			_ = u.Stop(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("utility %v: start: %w", cmd, err)
	}
	return u, nil
}

// Stop removes the utility container (one already gone is removed).
func (u *Utility) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, u.e.cfg.Timeouts.Teardown)
	defer cancel()
	if err := u.ctr.Terminate(ctx, tc.StopTimeout(time.Second)); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove the utility container: %w", err)
	}
	return nil
}

// utilityImage is the Debian tree with coreutils: the services run FROM scratch.
func (e *Environment) utilityImage() string { return e.cfg.Images[Postgres] }

func (e *Environment) utilityOptions(cmd []string, volumes map[string]string) []tc.ContainerCustomizer {
	var mounts []mount.Mount
	for name, path := range volumes {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: name, Target: path})
	}
	return []tc.ContainerCustomizer{
		tc.WithCmd(cmd...),
		tc.WithLabels(ownerLabels(e.cfg.RunID)),
		tc.WithLabels(map[string]string{"pocketbrain.chaos.role": "utility"}),
		tc.WithConfigModifier(func(c *container.Config) { c.User = "root" }),
		tc.WithHostConfigModifier(func(hc *container.HostConfig) { hc.Mounts = mounts; hc.NetworkMode = "none" }),
	}
}

// runToExit starts a short-lived container, waits for it to exit, and removes it
// whatever happened (removal registered before the error check).
func (e *Environment) runToExit(ctx context.Context, image string, opts ...tc.ContainerCustomizer) (Exited, error) {
	ctr, err := tc.Run(ctx, image, opts...)
	if ctr != nil {
		defer func() {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeouts.Teardown)
			defer cancel()
			_ = ctr.Terminate(tctx)
		}()
	}
	if err != nil {
		return Exited{}, fmt.Errorf("start: %w", err)
	}
	return e.awaitExit(ctx, ctr)
}

// awaitExit waits (at most ContainerStart) for a container to exit and returns its exit
// code and log, redacted of the environment's secrets.
func (e *Environment) awaitExit(ctx context.Context, ctr *tc.DockerContainer) (Exited, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.ContainerStart)
	defer cancel()
	for {
		st, err := ctr.State(ctx)
		if err != nil {
			return Exited{}, err
		}
		if !st.Running {
			rc, lerr := ctr.Logs(ctx)
			var out []byte
			if lerr == nil {
				out, _ = io.ReadAll(io.LimitReader(rc, 1<<20))
				rc.Close()
			}
			return Exited{Code: st.ExitCode, Log: e.Redact(string(out))}, nil
		}
		select {
		case <-ctx.Done():
			return Exited{}, fmt.Errorf("still running after %s: %w", e.cfg.Timeouts.ContainerStart, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
