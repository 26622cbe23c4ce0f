package profile

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProfiles(t *testing.T) {
	t.Setenv(EnvProfile, "")
	t.Setenv(EnvOut, t.TempDir())
	p, err := FromEnv()
	require.NoError(t, err)
	require.Equal(t, "fast", p.Name)
	require.InDelta(t, 1.0/60, p.ForScale, 1e-9)
	require.Contains(t, p.ScaleNote(), "[15m] → 15s")
	require.True(t, strings.HasPrefix(p.ScaleNote(), "fast profile: "), p.ScaleNote())
	require.Contains(t, p.ScaleNote(), "multiplied by 1/60 ")

	t.Setenv(EnvProfile, "release")
	p, err = FromEnv()
	require.NoError(t, err)
	require.InDelta(t, 1.0/30, p.ForScale, 1e-9, "release rows keep 1/30; the canary adds production timing")
	require.Equal(t, 30*time.Minute, p.CanarySpan)
	require.Equal(t, 1_000_000, p.SeedCaptures, "release seeds a production-sized store")
	require.True(t, strings.HasPrefix(p.ScaleNote(), "release profile: "), "a release run's note names its own profile: %s", p.ScaleNote())
	require.NotContains(t, p.ScaleNote(), "fast")

	t.Setenv(EnvSeed, "250_000")
	p, err = FromEnv()
	require.NoError(t, err)
	require.Equal(t, 250_000, p.SeedCaptures)
}

func TestScaleOverride(t *testing.T) {
	t.Setenv(EnvOut, t.TempDir())
	t.Setenv(EnvTimeScale, "1/30")
	p, err := FromEnv()
	require.NoError(t, err)
	require.InDelta(t, 1.0/30, p.ForScale, 1e-12)
	require.Contains(t, p.ScaleNote(), "multiplied by 1/30 (e.g. [15m] → 30s, for: 5m → 10s)")
}

func TestBadSettingsNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{EnvProfile: "turbo", EnvCanary: "soon", EnvClients: "0", EnvSeed: "lots", EnvTimeScale: "2"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, val)
			_, err := FromEnv()
			require.ErrorContains(t, err, name)
		})
	}
}
