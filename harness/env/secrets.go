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
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the OS has no entropy: nothing sane to do
	}
	return hex.EncodeToString(b)
}

// NewSecrets makes a fresh set.
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
	}
}

// Values lists every secret value, for redaction.
func (s Secrets) Values() []string {
	return []string{s.PostgresPassword, s.RedisPassword, s.KVPassword, s.StreamTicketSecret,
		s.KeyEncryptionSecret, s.KeyEncryptionSecretAlt, s.ClerkSecretKey, s.ClerkPublishableKey}
}
