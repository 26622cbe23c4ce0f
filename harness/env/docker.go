package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Labels that mark everything the harness creates, so a sweep can find it again.
const (
	LabelHarness = "pocketbrain.chaos"     // always "1"
	LabelRun     = "pocketbrain.chaos.run" // the environment's id
	LabelPID     = "pocketbrain.chaos.pid" // the process that owns it (a pid in LabelPIDNS)
	LabelHost    = "pocketbrain.chaos.host"
	// The owner's identity, so a sweep can verify that it is dead (see Identity).
	LabelBoot  = "pocketbrain.chaos.boot"  // /proc/sys/kernel/random/boot_id
	LabelPIDNS = "pocketbrain.chaos.pidns" // readlink /proc/self/ns/pid
	LabelStart = "pocketbrain.chaos.start" // field 22 of /proc/self/stat
)

// Docker is the small part of the engine API the harness uses besides testcontainers-go:
// image checks, process faults, volumes and the label sweep.
type Docker struct {
	cli      *client.Client
	timeout  Timeouts
	sweepLog io.Writer // nil: os.Stderr
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

// RevisionLabel is the image label `make images` stamps with the revision it built a
// service's binary at (the same value as -X main.revision).
const RevisionLabel = "pocketbrain.chaos.revision"

// ImageLabel returns one label of a local image ("" when the image has no such label).
func (d *Docker) ImageLabel(ctx context.Context, ref, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout.DockerCall)
	defer cancel()
	res, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", err
	}
	if res.Config == nil {
		return "", nil
	}
	return res.Config.Labels[key], nil
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

// SweepMode says which labelled objects a sweep removes. A sweep given a run id removes
// all of that environment's objects whatever the mode, whoever owns them
// (Environment.Close removes its own run's leftovers that way).
type SweepMode int

const (
	// SweepOrphans removes what belongs to owners verified dead: same host, same boot
	// id and same pid namespace as this process, and the owner's pid gone (or reused by
	// a process started at another time). Everything else is kept, so concurrent runs
	// (ginkgo -p, CI jobs in containers that share the host's hostname but have pid
	// namespaces of their own) never remove each other's stacks.
	SweepOrphans SweepMode = iota
	// SweepAll removes everything with the harness label, of every host, live or not.
	SweepAll
	// SweepHost removes everything whose owner host label is this host, live or not.
	SweepHost
)

// Object is one engine object with the harness label.
type Object struct {
	Kind   string // "container", "volume" or "network"
	ID     string // the engine's id (a volume's is its name)
	Name   string
	Run    string // its labels: run id, owner host and owner pid
	Host   string
	PID    string
	Labels map[string]string
	Reason string // why the sweep removes or keeps it
	Alive  bool   // kept because its owner is verified alive
}

// SweepPlan is what a sweep would remove and what it would keep (with the reason).
type SweepPlan struct {
	Remove, Keep []Object
}

// SweepReport says what a sweep removed, and what an orphan sweep kept and why.
type SweepReport struct {
	Containers, Networks, Volumes int
	Removed                       []Object
	Kept                          []Object
}

// KeptSummary is one line per run (and reason) of what the sweep kept, e.g. "kept 3
// objects of run pb1a2b3c4d (host ci, pid 5000): owner in another pid namespace
// (pid:[4026532890], this process in pid:[4026531836]), cannot verify it is dead".
func (r SweepReport) KeptSummary() []string { return summarize(r.Kept) }

func summarize(objs []Object) []string {
	type key struct{ run, host, pid, reason string }
	var order []key
	n := map[key]int{}
	for _, o := range objs {
		k := key{o.Run, o.Host, o.PID, o.Reason}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	lines := make([]string, 0, len(order))
	for _, k := range order {
		noun := "objects"
		if n[k] == 1 {
			noun = "object"
		}
		lines = append(lines, fmt.Sprintf("kept %d %s of run %s (host %s, pid %s): %s", n[k], noun, orDash(k.run), orDash(k.host), orDash(k.pid), k.reason))
	}
	return lines
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SetSweepLog sets where Sweep says what an orphan sweep kept and why (default
// os.Stderr; io.Discard for silence).
func (d *Docker) SetSweepLog(w io.Writer) { d.sweepLog = w }

// Sweep removes containers, then volumes, then networks that carry the harness label
// and match mode (see SweepMode; a non-empty runID: all of that environment's objects).
// An orphan sweep says, on the sweep log, what it kept and why. Errors are joined; a
// partly failed sweep still removes what it can.
func (d *Docker) Sweep(ctx context.Context, mode SweepMode, runID string) (SweepReport, error) {
	cctx, cancel := context.WithTimeout(ctx, d.timeout.Teardown)
	defer cancel()
	plan, err := d.PlanSweep(cctx, mode, runID)
	rep, rerr := d.RemoveObjects(cctx, plan.Remove)
	rep.Kept = plan.Keep
	if mode == SweepOrphans && runID == "" {
		w := d.sweepLog
		if w == nil {
			w = os.Stderr
		}
		for _, l := range rep.KeptSummary() {
			fmt.Fprintln(w, "sweep:", l)
		}
	}
	return rep, errors.Join(err, rerr)
}

// PlanSweep lists what Sweep(ctx, mode, runID) would remove and keep, removing nothing.
// A listing that fails leaves its kind out of the plan and is returned as an error.
func (d *Docker) PlanSweep(ctx context.Context, mode SweepMode, runID string) (SweepPlan, error) {
	var plan SweepPlan
	objs, err := d.labelled(ctx, runID)
	me := self()
	probe := func(pid int) procState { return probePID("/proc", pid) }
	for _, o := range objs {
		switch {
		case runID != "":
			o.Reason = "of environment " + runID
		case mode == SweepAll:
			o.Reason = "everything with the harness label"
		case mode == SweepHost && o.Host == me.Host:
			o.Reason = "everything of host " + me.Host
		case mode == SweepHost:
			o.Reason = fmt.Sprintf("owner on another host (%s), not this host's", orDash(o.Host))
			plan.Keep = append(plan.Keep, o)
			continue
		default:
			v := judge(o.Labels, me, probe)
			o.Reason, o.Alive = v.Reason, v.Alive
			if !v.Orphan {
				plan.Keep = append(plan.Keep, o)
				continue
			}
		}
		plan.Remove = append(plan.Remove, o)
	}
	return plan, err
}

// labelled lists containers, volumes and networks with the harness label (and runID's).
func (d *Docker) labelled(ctx context.Context, runID string) ([]Object, error) {
	filters := client.Filters{}.Add("label", LabelHarness+"=1")
	if runID != "" {
		filters = filters.Add("label", LabelRun+"="+runID)
	}
	var objs []Object
	var errs []error
	add := func(kind, id, name string, labels map[string]string) {
		objs = append(objs, Object{Kind: kind, ID: id, Name: name, Labels: labels,
			Run: labels[LabelRun], Host: labels[LabelHost], PID: labels[LabelPID]})
	}
	ctrs, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	} else {
		for _, c := range ctrs.Items {
			name := short(c.ID)
			if len(c.Names) > 0 {
				name = strings.TrimPrefix(c.Names[0], "/")
			}
			add("container", c.ID, name, c.Labels)
		}
	}
	vols, err := d.cli.VolumeList(ctx, client.VolumeListOptions{Filters: filters})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes: %w", err))
	} else {
		for _, v := range vols.Items {
			add("volume", v.Name, v.Name, v.Labels)
		}
	}
	nets, err := d.cli.NetworkList(ctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	} else {
		for _, n := range nets.Items {
			add("network", n.ID, n.Name, n.Labels)
		}
	}
	return objs, errors.Join(errs...)
}

// RemoveObjects removes objs: containers (with their anonymous volumes) first, then
// volumes, then networks. One already gone counts as removed.
func (d *Docker) RemoveObjects(ctx context.Context, objs []Object) (SweepReport, error) {
	var rep SweepReport
	var errs []error
	for _, kind := range []string{"container", "volume", "network"} {
		for _, o := range objs {
			if o.Kind != kind {
				continue
			}
			var err error
			switch kind {
			case "container":
				_, err = d.cli.ContainerRemove(ctx, o.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			case "volume":
				_, err = d.cli.VolumeRemove(ctx, o.ID, client.VolumeRemoveOptions{Force: true})
			case "network":
				_, err = d.cli.NetworkRemove(ctx, o.ID, client.NetworkRemoveOptions{})
			}
			if err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove %s %s: %w", kind, o.Name, err))
				continue
			}
			switch kind {
			case "container":
				rep.Containers++
			case "volume":
				rep.Volumes++
			case "network":
				rep.Networks++
			}
			rep.Removed = append(rep.Removed, o)
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

// RemoveRunContainers removes every container labelled with runID (force, with its
// anonymous volumes); one already gone counts as removed.
func (d *Docker) RemoveRunContainers(ctx context.Context, runID string) error {
	cctx, cancel := context.WithTimeout(ctx, d.timeout.Teardown)
	defer cancel()
	objs, err := d.labelled(cctx, runID)
	var ctrs []Object
	for _, o := range objs {
		if o.Kind == "container" {
			ctrs = append(ctrs, o)
		}
	}
	_, rerr := d.RemoveObjects(cctx, ctrs)
	return errors.Join(err, rerr)
}

// volumeInUseRetry bounds how long removeVolume waits for the engine to let go of a
// volume whose last container has just been removed.
const volumeInUseRetry = 10 * time.Second

// removeVolume removes a volume, waiting (volumeInUseRetry) while the engine still
// counts a container that is being removed as its user. One already gone is removed.
func (d *Docker) removeVolume(ctx context.Context, name string) error {
	deadline := time.Now().Add(volumeInUseRetry)
	for {
		_, err := d.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
		if err == nil || isNotFound(err) {
			return nil
		}
		if !strings.Contains(err.Error(), "in use") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
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

// Local reports whether the engine runs on this host (a unix socket or loopback): only
// then does a container on the host network reach the harness's loopback endpoint.
func (d *Docker) Local() bool {
	local, _ := engineLocality(d)
	return local
}
