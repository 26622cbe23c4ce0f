package env

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"

	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// Psql runs statements with psql inside the Postgres container, as the database's own
// superuser over its local socket (no password, no published port), one -c per
// statement, stopping at the first error. It returns psql's unaligned, tuples-only output.
// The harness reads and seeds the store this way, never through the service under test.
func (e *Environment) Psql(ctx context.Context, sql ...string) (string, error) {
	pg, err := e.Container(Postgres)
	if err != nil {
		return "", err
	}
	cmd := []string{"/usr/lib/postgresql/15/bin/psql", "-U", "pocketbrain", "-d", "pocketbrain", "-v", "ON_ERROR_STOP=1", "-qAt"}
	for _, q := range sql {
		cmd = append(cmd, "-c", q)
	}
	code, out, err := pg.Exec(ctx, cmd, tcexec.WithUser("postgres"))
	if err != nil {
		return "", err
	}
	// stdout alone is the result: a notice or warning on stderr must not corrupt it.
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, out); err != nil {
		return "", fmt.Errorf("psql output: %w", err)
	}
	if code != 0 {
		return "", fmt.Errorf("psql exited %d: %s", code, e.Redact(strings.TrimSpace(stderr.String()+" "+stdout.String())))
	}
	return strings.TrimSpace(stdout.String()), nil
}
