package env

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/pocketbrain/chaos/harness/vps"
)

// Secrets are generated afresh for every environment, so no fixed secret lives in the
// repository. Values() feeds the evidence redactor.
type Secrets struct {
	PostgresPassword, RedisPassword, KVPassword string
	StreamTicketSecret                          string
	KeyEncryptionSecret, KeyEncryptionSecretAlt string // Alt: the next key, for rotation rows
	ClerkSecretKey, ClerkPublishableKey         string
	// ControlToken guards every endpoint that steers the run (Toxiproxy's admin API, the
	// provider's fault switch, the clients' pause and history, the server's state read):
	// see fixtures/control. The harness sends it as basic auth in every URL it builds.
	ControlToken string
	// VPSClientSeed and VPSHostSeed are the ed25519 seeds (hex) of the harness's SSH
	// identity and of the VPS host's host key (VPSKeys).
	VPSClientSeed, VPSHostSeed string
}

// vpsKeys caches VPSKeys per seed pair: the redactor asks for them on every call, and
// an OpenSSH private key's encoding differs each time it is made.
var vpsKeys sync.Map // client seed + host seed → *vps.Keys

// VPSKeys derives the run's SSH keys of the VPS host from the seeds.
func (s Secrets) VPSKeys() (*vps.Keys, error) {
	if k, ok := vpsKeys.Load(s.VPSClientSeed + s.VPSHostSeed); ok {
		return k.(*vps.Keys), nil
	}
	client, err1 := hex.DecodeString(s.VPSClientSeed)
	host, err2 := hex.DecodeString(s.VPSHostSeed)
	if err := errors.Join(err1, err2); err != nil || s.VPSClientSeed == "" || s.VPSHostSeed == "" {
		return nil, fmt.Errorf("VPS host keys: the run's secrets hold no valid SSH seeds (a secrets set from an older harness?): %v", err)
	}
	k, err := vps.KeysFromSeeds(client, host)
	if err != nil {
		return nil, err
	}
	actual, _ := vpsKeys.LoadOrStore(s.VPSClientSeed+s.VPSHostSeed, k)
	return actual.(*vps.Keys), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the OS has no entropy: nothing sane to do
	}
	return hex.EncodeToString(b)
}

// NewSecrets makes a fresh set: one per run, shared by every Ginkgo process, so that the
// one redactor of the run's outputs knows every value any process's stack used.
func NewSecrets() Secrets {
	return Secrets{
		PostgresPassword:       randomHex(16),
		RedisPassword:          randomHex(16),
		KVPassword:             randomHex(16),
		StreamTicketSecret:     randomHex(24),
		KeyEncryptionSecret:    randomHex(24),
		KeyEncryptionSecretAlt: randomHex(24),
		ClerkSecretKey:         "sk_test_" + randomHex(20),
		ClerkPublishableKey:    "pk_test_" + randomHex(12),
		ControlToken:           randomHex(32),
		VPSClientSeed:          randomHex(32),
		VPSHostSeed:            randomHex(32),
	}
}

// Values lists every secret value, for redaction.
func (s Secrets) Values() []string {
	out := []string{s.PostgresPassword, s.RedisPassword, s.KVPassword, s.StreamTicketSecret,
		s.KeyEncryptionSecret, s.KeyEncryptionSecretAlt, s.ClerkSecretKey, s.ClerkPublishableKey, s.ControlToken,
		s.VPSClientSeed, s.VPSHostSeed}
	// The private keys' own encodings (PEM lines) too, wherever they might be quoted.
	if keys, err := s.VPSKeys(); err == nil {
		out = append(out, keys.Secrets()...)
	}
	return out
}
