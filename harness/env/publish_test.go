package env

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPublishAddr(t *testing.T) {
	cases := []struct {
		name, engineHost, override string
		local                      bool
		publish, reach             string
		wantErr                    bool
	}{
		{"local engine", "127.0.0.1", "", true, "127.0.0.1", "127.0.0.1", false},
		{"remote engine, no override", "10.20.30.40", "", false, "0.0.0.0", "10.20.30.40", false},
		{"remote engine, its own address", "docker.ci", "10.20.30.40", false, "10.20.30.40", "10.20.30.40", false},
		{"local engine told all interfaces", "127.0.0.1", "0.0.0.0", true, "0.0.0.0", "127.0.0.1", false},
		{"not an address", "127.0.0.1", "localhost", true, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pub, reach, err := publishAddr(c.local, c.engineHost, c.override)
			if c.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), EnvPublishIP, "the error names the variable to fix")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.publish, pub.String())
			assert.Equal(t, c.reach, reach)
		})
	}
}

// An image whose EXPOSE lists a port the harness never asked for (PB_IMAGE_REDIS=redis:7
// exposes 6379) is still published on the publish address only, never on every
// interface: testcontainers-go would otherwise publish the image's EXPOSE on 0.0.0.0.
func TestImageExposedPortsArePublishedOnLoopbackOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := NewDocker(ctx, DefaultTimeouts())
	if err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	defer d.Close()
	base := defaultImages[Redis]
	if _, err := d.ImageID(ctx, base); err != nil {
		t.Skipf("%s is not built (make images): %v", base, err)
	}
	// A derived image that EXPOSEs 6379, built offline from the local one.
	const exposing = "pocketbrain-local/test-redis-expose:1"
	build := exec.CommandContext(ctx, "docker", "build", "-q", "-t", exposing, "--label", LabelHarness+"=1", "-")
	build.Env = append(build.Environ(), "DOCKER_BUILDKIT=0")
	build.Stdin = strings.NewReader("FROM " + base + "\nEXPOSE 6379\n")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "docker build: %s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", exposing).Run() })
	ports, err := d.ImageExposedPorts(ctx, exposing)
	require.NoError(t, err)
	require.Equal(t, []string{"6379/tcp"}, ports)

	t.Setenv(EnvPublishIP, "")
	e, err := Start(ctx, WithRoles(Redis), WithImages(Images{Redis: exposing}))
	require.NoError(t, err)
	defer func() { assert.NoError(t, e.Close(context.WithoutCancel(ctx))) }()
	c, err := e.Container(Redis)
	require.NoError(t, err)
	info, err := c.Inspect(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, info.HostConfig.PortBindings, "the image's EXPOSE is published (on loopback)")
	for port, bindings := range info.HostConfig.PortBindings {
		for _, b := range bindings {
			assert.Equal(t, netip.MustParseAddr("127.0.0.1"), b.HostIP, "%s is published on %v: want 127.0.0.1 only", port, b.HostIP)
		}
	}
	assert.False(t, info.HostConfig.PublishAllPorts)
	for port, bindings := range info.NetworkSettings.Ports {
		for _, b := range bindings {
			assert.True(t, b.HostIP.IsLoopback(), "%s answers on %v", port, b.HostIP)
		}
	}
}
