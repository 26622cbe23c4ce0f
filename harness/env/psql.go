package env

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	code, out, err := pg.Exec(ctx, cmd, tcexec.Multiplexed(), tcexec.WithUser("postgres"))
	if err != nil {
		return "", err
	}
	b, _ := io.ReadAll(out)
	if code != 0 {
		return "", fmt.Errorf("psql exited %d: %s", code, e.Redact(strings.TrimSpace(string(b))))
	}
	return strings.TrimSpace(string(b)), nil
}
