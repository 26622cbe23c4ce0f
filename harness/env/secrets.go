package env

import (
	"crypto/rand"
	"encoding/hex"
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
	}
}

// Values lists every secret value, for redaction.
func (s Secrets) Values() []string {
	return []string{s.PostgresPassword, s.RedisPassword, s.KVPassword, s.StreamTicketSecret,
		s.KeyEncryptionSecret, s.KeyEncryptionSecretAlt, s.ClerkSecretKey, s.ClerkPublishableKey, s.ControlToken}
}
