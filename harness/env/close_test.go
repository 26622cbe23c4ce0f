package env

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	tc "github.com/testcontainers/testcontainers-go"
)

// A container of the run that is no role's (a one-off whose removal is still under way)
// holds one of the run's volumes when Close comes: Close must remove it first, and leave
// nothing of the run behind (CI once failed with "volume is in use").
func TestCloseRemovesAVolumeAOneOffStillHolds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers on Docker: not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := Start(ctx, WithRoles(Toxiproxy))
	require.NoError(t, err)
	runID := e.cfg.RunID
	closed := false
	defer func() {
		if !closed {
			_ = e.Close(context.WithoutCancel(ctx))
		}
	}()
	vname := runID + "-held"
	_, err = e.docker.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vname, Driver: "local", Labels: ownerLabels(runID)})
	require.NoError(t, err)
	e.volumes = append(e.volumes, vname)
	_, err = tc.Run(ctx, e.cfg.Images[Postgres],
		tc.WithCmd("sleep", "300"),
		tc.WithLabels(ownerLabels(runID)),
		tc.WithConfigModifier(func(c *container.Config) { c.User = "root" }),
		tc.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: vname, Target: "/held"}}
			hc.NetworkMode = "none"
		}))
	require.NoError(t, err)

	require.NoError(t, e.Close(ctx), "Close removes the one-off before the volume it holds")
	closed = true
	d, err := NewDocker(ctx, DefaultTimeouts())
	require.NoError(t, err)
	defer d.Close()
	left, err := d.labelled(ctx, runID)
	require.NoError(t, err)
	require.Empty(t, left, "nothing of run %s is left", runID)
}
