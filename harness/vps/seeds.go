package vps

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// KeysFromSeeds makes the run's keys from two ed25519 seeds (32 bytes each): the run
// keeps its secrets as values every process of it shares, and each process derives the
// same keys from them.
func KeysFromSeeds(clientSeed, hostSeed []byte) (*Keys, error) {
	if len(clientSeed) != ed25519.SeedSize || len(hostSeed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ed25519 seeds must be %d bytes each (got %d and %d)", ed25519.SeedSize, len(clientSeed), len(hostSeed))
	}
	client, clientPEM, err := fromSeed(clientSeed, "pocketbrain chaos harness client")
	if err != nil {
		return nil, err
	}
	host, hostPEM, err := fromSeed(hostSeed, "pocketbrain chaos vps host")
	if err != nil {
		return nil, err
	}
	return &Keys{
		Client:           client,
		HostPublic:       host.PublicKey(),
		AuthorizedKey:    ssh.MarshalAuthorizedKey(client.PublicKey()),
		HostPrivateKey:   hostPEM,
		clientPrivateKey: clientPEM,
	}, nil
}

func fromSeed(seed []byte, comment string) (ssh.Signer, []byte, error) {
	priv := ed25519.NewKeyFromSeed(seed)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("ed25519 signer: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal ed25519 private key: %w", err)
	}
	return signer, pem.EncodeToMemory(block), nil
}
