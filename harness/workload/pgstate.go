package workload

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pocketbrain/chaos/harness/checker"
)

// clientID is what the fleet names its clients; anything else never reaches the SQL.
var clientID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// stateSQL reads the final state in one statement (so one snapshot), as one JSON document in checker.FinalState's shape: the fleet's captures and applied mutations, and
// a count of everyone else's captures (the seeded store). %s is the SQL array of ids.
const stateSQL = `SELECT json_build_object(
  'captures', coalesce((SELECT json_agg(json_build_object('captureId', capture_id, 'clientId', client_id, 'value', value) ORDER BY capture_id)
                        FROM captures WHERE client_id = ANY(%[1]s)), '[]'::json),
  'applied', coalesce((SELECT json_agg(json_build_object('mutationId', mutation_id, 'captureId', capture_id, 'value', value) ORDER BY applied_at, mutation_id)
                       FROM applied_mutations WHERE client_id = ANY(%[1]s)), '[]'::json),
  'otherCaptures', (SELECT count(*) FROM captures WHERE NOT (client_id = ANY(%[1]s))))`

// finalStateFromPostgres reads the final state straight from Postgres (psql in its
// container), not through the server under test: a server that lied about what it
// stored, or lost it on the way to the database, cannot hide it from the checker. The
// clients are those the history names (every op is one of theirs) and those the fleet
// runs now.
func (w *Workload) finalStateFromPostgres(ctx context.Context, clients []string) (*checker.FinalState, error) {
	ids := slices.Compact(slices.Sorted(slices.Values(clients)))
	if len(ids) == 0 {
		return nil, fmt.Errorf("final state: no client to read (the history is empty and the fleet lists none)")
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		if !clientID.MatchString(id) {
			return nil, fmt.Errorf("final state: client id %q is not one the fleet makes (letters, digits, _ . -)", id)
		}
		quoted[i] = "'" + id + "'"
	}
	array := "ARRAY[" + strings.Join(quoted, ",") + "]::text[]"
	out, err := w.Env.Psql(ctx, fmt.Sprintf(stateSQL, array))
	if err != nil {
		return nil, fmt.Errorf("final state from Postgres: %w", err)
	}
	return checker.DecodeState(strings.NewReader(out))
}
