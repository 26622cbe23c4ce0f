package env

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/moby/moby/client"
)

// Unhealthy inspects the container of every role and lists those that are not simply
// running: paused, stopped, exited, restarting or gone. After a spec's guard has healed
// everything, the list must be empty; a non-empty one means a process fault outlived its
// spec (or a service died on its own) and the next spec would start on a broken stack.
func (e *Environment) Unhealthy(ctx context.Context) ([]string, error) {
	e.mu.Lock()
	ctrs := maps.Clone(e.containers)
	e.mu.Unlock()
	var bad []string
	for _, r := range slices.Sorted(maps.Keys(ctrs)) {
		c := ctrs[r]
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.DockerCall)
		res, err := e.docker.cli.ContainerInspect(cctx, c.GetContainerID(), client.ContainerInspectOptions{})
		cancel()
		if err != nil {
			if isNotFound(err) {
				bad = append(bad, fmt.Sprintf("%s: container %s is gone", r, short(c.GetContainerID())))
				continue
			}
			return bad, fmt.Errorf("inspect %s: %w", r, err)
		}
		s := res.Container.State
		switch {
		case s == nil:
			bad = append(bad, fmt.Sprintf("%s: no state", r))
		case s.Paused:
			bad = append(bad, fmt.Sprintf("%s: paused", r))
		case s.Restarting:
			bad = append(bad, fmt.Sprintf("%s: restarting", r))
		case !s.Running:
			bad = append(bad, fmt.Sprintf("%s: %s (exit code %d)", r, s.Status, s.ExitCode))
		}
	}
	return bad, nil
}
