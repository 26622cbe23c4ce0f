package env

import (
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Nothing may assume the engine is on localhost: a remote DOCKER_HOST is reached at its
// own address (or at TESTCONTAINERS_HOST_OVERRIDE), and only a local engine publishes on
// loopback.
func TestEngineLocality(t *testing.T) {
	cases := []struct {
		name, daemon, override string
		local                  bool
		host                   string
	}{
		{"default socket", "unix:///var/run/docker.sock", "", true, "127.0.0.1"},
		{"loopback tcp", "tcp://127.0.0.1:2375", "", true, "127.0.0.1"},
		{"localhost tcp", "tcp://localhost:2375", "", true, "127.0.0.1"},
		{"ipv6 loopback", "tcp://[::1]:2375", "", true, "127.0.0.1"},
		{"remote engine", "tcp://10.20.30.40:2376", "", false, "10.20.30.40"},
		{"remote by name", "tcp://ci-docker.internal:2376", "", false, "ci-docker.internal"},
		{"remote behind an override", "tcp://10.20.30.40:2376", "docker-gw.internal", false, "docker-gw.internal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", c.override)
			cli, err := client.New(client.WithHost(c.daemon))
			require.NoError(t, err)
			defer cli.Close()
			local, host := engineLocality(&Docker{cli: cli})
			assert.Equal(t, c.local, local, "local")
			assert.Equal(t, c.host, host, "host")
		})
	}
}
