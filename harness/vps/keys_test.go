package vps

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestNewKeysAreEd25519(t *testing.T) {
	k, err := NewKeys()
	require.NoError(t, err)
	require.Equal(t, ssh.KeyAlgoED25519, k.Client.PublicKey().Type())
	require.Equal(t, ssh.KeyAlgoED25519, k.HostPublic.Type())

	authorized, _, _, _, err := ssh.ParseAuthorizedKey(k.AuthorizedKey)
	require.NoError(t, err)
	require.Equal(t, k.Client.PublicKey().Marshal(), authorized.Marshal())

	host, err := ssh.ParsePrivateKey(k.HostPrivateKey)
	require.NoError(t, err)
	require.Equal(t, k.HostPublic.Marshal(), host.PublicKey().Marshal())

	secrets := k.Secrets()
	for _, pem := range [][]byte{k.HostPrivateKey, k.clientPrivateKey} {
		// Every body line of either key is a secret; the BEGIN and END lines are not.
		lines := strings.Split(strings.TrimSpace(string(pem)), "\n")
		for _, l := range lines[1 : len(lines)-1] {
			if len(l) >= minSecretLen {
				require.Contains(t, secrets, l)
			}
		}
		require.NotContains(t, secrets, lines[0])
	}
	for _, s := range secrets {
		require.GreaterOrEqual(t, len(s), minSecretLen)
		require.NotContains(t, s, "\n", "one line each")
	}
}

func TestKeysNeverPrintSecrets(t *testing.T) {
	k, err := NewKeys()
	require.NoError(t, err)
	h := Host{Addr: "127.0.0.1:22", User: "deploy", Keys: k}
	outs := []string{
		k.String(), k.GoString(),
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k),
		fmt.Sprintf("%v %+v %#v", *k, *k, *k),
		fmt.Sprintf("%v %+v %#v", h, h, h),
	}
	want := fmt.Sprintf("vps.Keys{client ed25519 %s, host ed25519 %s}",
		ssh.FingerprintSHA256(k.Client.PublicKey()), ssh.FingerprintSHA256(k.HostPublic))
	require.Equal(t, want, k.String())
	for _, out := range outs {
		require.NotContains(t, out, "PRIVATE KEY")
		for _, s := range k.Secrets() {
			require.False(t, strings.Contains(out, s), "output leaks a secret")
		}
	}
}

func TestWithOtherClient(t *testing.T) {
	k, err := NewKeys()
	require.NoError(t, err)
	o, err := k.WithOtherClient()
	require.NoError(t, err)
	require.NotEqual(t, ssh.FingerprintSHA256(k.Client.PublicKey()), ssh.FingerprintSHA256(o.Client.PublicKey()))
	require.NotEqual(t, k.AuthorizedKey, o.AuthorizedKey)
	require.Equal(t, k.HostPublic.Marshal(), o.HostPublic.Marshal())
	require.Equal(t, k.HostPrivateKey, o.HostPrivateKey)
	require.NotEqual(t, k.clientPrivateKey, o.clientPrivateKey)
}
