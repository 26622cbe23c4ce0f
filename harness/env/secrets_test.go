package env

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The VPS host's SSH keys are secrets of the run like any other: derived from the run's
// seeds (every process the same keys), and every encoding of the private keys is in
// Values, so the redactor removes a key however it was quoted.
func TestSecretsCoverTheSSHKeys(t *testing.T) {
	s := NewSecrets()
	keys, err := s.VPSKeys()
	require.NoError(t, err)
	again, err := Secrets{VPSClientSeed: s.VPSClientSeed, VPSHostSeed: s.VPSHostSeed}.VPSKeys()
	require.NoError(t, err)
	assert.Equal(t, keys.AuthorizedKey, again.AuthorizedKey, "the same seeds give the same client key")
	assert.Equal(t, keys.HostPublic.Marshal(), again.HostPublic.Marshal(), "the same seeds give the same host key")

	values := s.Values()
	for _, v := range append([]string{s.VPSClientSeed, s.VPSHostSeed}, keys.Secrets()...) {
		assert.True(t, slices.Contains(values, v), "Values lacks a form of the SSH key material")
	}
	e := &Environment{Secrets: s}
	red := e.Redact("host key file:\n" + string(keys.HostPrivateKey))
	assert.NotContains(t, red, strings.Split(string(keys.HostPrivateKey), "\n")[1], "a PEM line survived the redactor")

	_, err = Secrets{}.VPSKeys()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no valid SSH seeds")
}
