package env

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// Running reports whether a role's container is running now (Docker's own state: a
// killed or stopped container is not, a paused one is).
func (e *Environment) Running(ctx context.Context, r Role) (bool, error) {
	c, err := e.Container(r)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.DockerCall)
	defer cancel()
	st, err := e.docker.Client().ContainerInspect(ctx, c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", r, err)
	}
	return st.Container.State.Running, nil
}
