package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Labels that mark everything the harness creates, so a sweep can find it again.
const (
	LabelHarness = "pocketbrain.chaos"     // always "1"
	LabelRun     = "pocketbrain.chaos.run" // the environment's id
	LabelPID     = "pocketbrain.chaos.pid" // the process that owns it
	LabelHost    = "pocketbrain.chaos.host"
)

// Docker is the small part of the engine API the harness uses besides testcontainers-go:
// image checks, process faults, volumes and the label sweep.
type Docker struct {
	cli     *client.Client
	timeout Timeouts
}

// NewDocker connects to the engine named by DOCKER_HOST (or the default socket) and
// checks that it answers, so "no engine" is one clear error at the start.
func NewDocker(ctx context.Context, t Timeouts) (*Docker, error) {
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w; check DOCKER_HOST", err)
	}
	pctx, cancel := context.WithTimeout(ctx, t.DockerCall)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{}); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("no Docker engine answers at %s: %w; start dockerd (see README, \"Set-up\") or set DOCKER_HOST", cli.DaemonHost(), err)
	}
	return &Docker{cli: cli, timeout: t}, nil
}

// Close releases the client.
func (d *Docker) Close() error { return d.cli.Close() }

// Client exposes the engine client to the fault kinds.
func (d *Docker) Client() *client.Client { return d.cli }

// ImageID returns the local image id of ref.
func (d *Docker) ImageID(ctx context.Context, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout.DockerCall)
	defer cancel()
	res, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// ServerVersion is the engine's version, for provenance.
func (d *Docker) ServerVersion(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, d.timeout.DockerCall)
	defer cancel()
	v, err := d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "unknown"
	}
	return v.Version
}

func ownerLabels(runID string) map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		LabelHarness: "1",
		LabelRun:     runID,
		LabelPID:     strconv.Itoa(os.Getpid()),
		LabelHost:    host,
	}
}

// SweepMode says which labelled objects a sweep removes.
type SweepMode int

const (
	// SweepOrphans removes what belongs to processes on this host that are gone, so
	// concurrent runs (ginkgo -p, two CI jobs) never remove each other's stacks.
	SweepOrphans SweepMode = iota
	// SweepAll removes everything with the harness label.
	SweepAll
	// SweepRun removes one environment's objects (see SweepReport.Run).
)

// SweepReport says what a sweep removed.
type SweepReport struct {
	Containers, Networks, Volumes int
}

// Sweep removes containers, then volumes, then networks that carry the harness label
// and match mode. Errors are joined; a partly failed sweep still removes what it can.
func (d *Docker) Sweep(ctx context.Context, mode SweepMode, runID string) (SweepReport, error) {
	var rep SweepReport
	var errs []error
	filters := client.Filters{}.Add("label", LabelHarness+"=1")
	if runID != "" {
		filters = filters.Add("label", LabelRun+"="+runID)
	}
	host, _ := os.Hostname()
	keep := func(labels map[string]string) bool {
		if runID != "" || mode == SweepAll {
			return false
		}
		if labels[LabelHost] != host {
			return true // another host's run: not ours to judge
		}
		pid, err := strconv.Atoi(labels[LabelPID])
		return err == nil && processAlive(pid)
	}

	cctx, cancel := context.WithTimeout(ctx, d.timeout.Teardown)
	defer cancel()
	ctrs, err := d.cli.ContainerList(cctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return rep, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs.Items {
		if keep(c.Labels) {
			continue
		}
		if _, err := d.cli.ContainerRemove(cctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", short(c.ID), err))
			continue
		}
		rep.Containers++
	}
	vols, err := d.cli.VolumeList(cctx, client.VolumeListOptions{Filters: filters})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes: %w", err))
	} else {
		for _, v := range vols.Items {
			if keep(v.Labels) {
				continue
			}
			if _, err := d.cli.VolumeRemove(cctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
				continue
			}
			rep.Volumes++
		}
	}
	nets, err := d.cli.NetworkList(cctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	} else {
		for _, n := range nets.Items {
			if keep(n.Labels) {
				continue
			}
			if _, err := d.cli.NetworkRemove(cctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
				continue
			}
			rep.Networks++
		}
	}
	return rep, errors.Join(errs...)
}

// Leftovers counts what still carries the harness label (for tests and the leak check).
func (d *Docker) Leftovers(ctx context.Context, runID string) (SweepReport, error) {
	var rep SweepReport
	filters := client.Filters{}.Add("label", LabelHarness+"=1")
	if runID != "" {
		filters = filters.Add("label", LabelRun+"="+runID)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout.DockerCall)
	defer cancel()
	ctrs, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return rep, err
	}
	vols, err := d.cli.VolumeList(ctx, client.VolumeListOptions{Filters: filters})
	if err != nil {
		return rep, err
	}
	nets, err := d.cli.NetworkList(ctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		return rep, err
	}
	return SweepReport{Containers: len(ctrs.Items), Volumes: len(vols.Items), Networks: len(nets.Items)}, nil
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, os.ErrNotExist) || cerrdefs.IsNotFound(err))
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
