package faults

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/pocketbrain/chaos/harness/env"
)

// process faults act on a container: stop (SIGTERM, then start), kill (SIGKILL, then
// start), pause (cgroup freeze, then unpause), restart (a restart is its own heal).
type process struct {
	spec Spec
	role env.Role
}

func init() {
	kinds["process"] = func(s Spec) (Fault, error) {
		if err := oneOf("process", s.Action, "stop", "kill", "pause", "restart"); err != nil {
			return nil, err
		}
		r, err := needRole(s, env.Postgres, env.Redis, env.KV, env.Server, env.Worker, env.Provider, env.Clients)
		if err != nil {
			return nil, err
		}
		return &process{spec: s, role: r}, nil
	}
}

func (p *process) Spec() Spec { return p.spec }

// Changes: a stopped container gets a new ephemeral host port when it starts again.
func (p *process) Changes() []env.Role { return []env.Role{p.role} }

func (p *process) id(e *env.Environment) (string, error) {
	c, err := e.Container(p.role)
	if err != nil {
		return "", err
	}
	return c.GetContainerID(), nil
}

func (p *process) Inject(ctx context.Context, e *env.Environment) error {
	id, err := p.id(e)
	if err != nil {
		return err
	}
	cli := e.Docker().Client()
	switch p.spec.Action {
	case "stop":
		timeout := 2
		_, err = cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout})
	case "kill":
		_, err = cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "SIGKILL"})
	case "pause":
		_, err = cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	case "restart":
		timeout := 2
		_, err = cli.ContainerRestart(ctx, id, client.ContainerRestartOptions{Timeout: &timeout})
	}
	if err != nil {
		return fmt.Errorf("process fault %s on %s: %w", p.spec.Action, p.role, err)
	}
	return nil
}

func (p *process) Heal(ctx context.Context, e *env.Environment) error {
	id, err := p.id(e)
	if err != nil {
		return err
	}
	cli := e.Docker().Client()
	st, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("heal %s: inspect: %w", p.role, err)
	}
	switch {
	case st.Container.State.Paused:
		_, err = cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	case !st.Container.State.Running:
		_, err = cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
	}
	if err != nil {
		return fmt.Errorf("heal %s: %w", p.role, err)
	}
	return nil
}

func (p *process) Proof(ctx context.Context, e *env.Environment) []Proof {
	id, err := p.id(e)
	if err != nil {
		return []Proof{{What: "container " + string(p.role), Value: err.Error()}}
	}
	st, err := e.Docker().Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return []Proof{{What: "container " + string(p.role), Value: "inspect failed: " + err.Error()}}
	}
	s := st.Container.State
	return []Proof{{What: "container " + string(p.role) + " state", Value: fmt.Sprintf("%s (running=%v paused=%v exit=%d restarts=%d)", s.Status, s.Running, s.Paused, s.ExitCode, st.Container.RestartCount)}}
}
