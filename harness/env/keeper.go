package env

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	tc "github.com/testcontainers/testcontainers-go"
)

// VolumeKeeper is the role of a container that keeps the clients' data volumes mounted
// for the environment's lifetime. A tmpfs volume lives only while some container mounts
// it: without a holder, replacing the clients container (a redeploy, a rollback of the
// frontend artifact) would wipe both local stores, which a real device's storage never
// does, and every acknowledged capture still queued would be lost by the harness.
const VolumeKeeper Role = "volume-keeper"

// keepVolumes starts the keeper: the Debian data image, no network, both volumes
// mounted, a shell that sleeps and exits at once on SIGTERM. It is registered with the
// role's containers, so Close removes it (before the volumes) and Unhealthy reports it.
func (e *Environment) keepVolumes(ctx context.Context) error {
	var mounts []mount.Mount
	for _, v := range e.volumes {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v, Target: "/mnt/" + v})
	}
	ctr, err := tc.Run(ctx, e.cfg.Images[Postgres],
		tc.WithCmd("sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1 & wait $!; done"),
		tc.WithLabels(ownerLabels(e.cfg.RunID)),
		tc.WithLabels(map[string]string{"pocketbrain.chaos.role": string(VolumeKeeper)}),
		tc.WithConfigModifier(func(c *container.Config) { c.User = "root" }),
		tc.WithHostConfigModifier(func(hc *container.HostConfig) { hc.Mounts = mounts; hc.NetworkMode = "none" }),
	)
	if ctr != nil {
		e.mu.Lock()
		e.containers[VolumeKeeper] = ctr // registered before the error check, so Close removes it
		e.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("start the volume keeper: %w", err)
	}
	return nil
}
