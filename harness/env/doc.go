// Package env stands the PocketBrain stack up on a private Docker network through
// testcontainers-go, with every dependency edge behind its own Toxiproxy proxy, and
// tears it down again without leaving anything behind.
//
// The facts it relies on (aliases, ports, environment variables) are in
// docs/CONTRACTS.md; the defaults below mirror that page.
package env
