package vps

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Keys is one run's SSH key material, generated afresh (never on disk in the
// repository, never printed).
type Keys struct {
	Client     ssh.Signer    // the harness's identity (ed25519)
	HostPublic ssh.PublicKey // the host key the client pins (ed25519)
	// AuthorizedKey is the client's public key as one authorized_keys line
	// (ssh.MarshalAuthorizedKey).
	AuthorizedKey []byte
	// HostPrivateKey is the host's private key in OpenSSH PEM format, for
	// sshd's HostKey file (mode 0600).
	HostPrivateKey []byte

	clientPrivateKey []byte // OpenSSH PEM of the client key, kept only for Secrets()
}

// minSecretLen is the shortest base64 line Secrets reports: shorter
// fragments (a PEM body's last line may be a few characters) would match
// innocent text and are not enough to rebuild a key.
const minSecretLen = 16

// NewKeys generates a fresh ed25519 client identity and host key, so no run
// ever trusts or presents a key another run (or a leaked log) has seen.
func NewKeys() (*Keys, error) {
	client, host := make([]byte, ed25519.SeedSize), make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(client); err != nil {
		return nil, fmt.Errorf("generate ed25519 seed: %w", err)
	}
	if _, err := rand.Read(host); err != nil {
		return nil, fmt.Errorf("generate ed25519 seed: %w", err)
	}
	return KeysFromSeeds(client, host)
}

// WithOtherClient returns a copy whose client identity is a different,
// freshly generated key (for the "wrong key" test): same host key.
func (k *Keys) WithOtherClient() (*Keys, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate ed25519 seed: %w", err)
	}
	client, clientPEM, err := fromSeed(seed, "pocketbrain chaos harness other client")
	if err != nil {
		return nil, err
	}
	c := *k
	c.Client = client
	c.AuthorizedKey = ssh.MarshalAuthorizedKey(client.PublicKey())
	c.HostPrivateKey = append([]byte(nil), k.HostPrivateKey...)
	c.clientPrivateKey = clientPEM
	return &c, nil
}

// Secrets lists every string that must never reach a log or a report: each
// base64 line of both private keys' PEM bodies (at least 16 characters each)
// and each body unwrapped, so a redactor catches a key even when it was
// re-wrapped, indented or printed one line at a time. Each is one line: the
// PEM's BEGIN and END lines are no secret, and a multi-line value would not
// survive a line-based channel.
func (k *Keys) Secrets() []string {
	var out []string
	for _, p := range [][]byte{k.clientPrivateKey, k.HostPrivateKey} {
		if len(p) == 0 {
			continue
		}
		text := string(p)
		var body strings.Builder
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "-----") {
				continue
			}
			body.WriteString(line)
			if len(line) >= minSecretLen {
				out = append(out, line)
			}
		}
		// The body unwrapped: how a key looks once a log joins its lines.
		out = append(out, body.String())
	}
	return out
}

// String names the keys by fingerprint only: Keys values end up in %v of
// larger structs, and must never print key material. The value receiver
// makes both Keys and *Keys safe.
func (k Keys) String() string {
	return fmt.Sprintf("vps.Keys{client %s, host %s}", describe(publicOf(k.Client)), describe(k.HostPublic))
}

// GoString is String, so %#v is as safe as %v.
func (k Keys) GoString() string { return k.String() }

func publicOf(s ssh.Signer) ssh.PublicKey {
	if s == nil {
		return nil
	}
	return s.PublicKey()
}

// describe is "ed25519 SHA256:...", the public, loggable name of a key.
func describe(pub ssh.PublicKey) string {
	if pub == nil {
		return "none"
	}
	return strings.TrimPrefix(pub.Type(), "ssh-") + " " + ssh.FingerprintSHA256(pub)
}
