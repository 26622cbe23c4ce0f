package workload

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A client id that is not one the fleet makes never reaches the SQL.
func TestFinalStateRefusesForeignClientIDs(t *testing.T) {
	w := &Workload{}
	for _, id := range []string{"c01'); DROP TABLE captures; --", "", "c 01", "c01\n"} {
		_, err := w.finalStateFromPostgres(context.Background(), []string{"c02", id})
		require.Error(t, err, "%q", id)
		if id != "" {
			require.Contains(t, err.Error(), "is not one the fleet makes")
		}
	}
	_, err := w.finalStateFromPostgres(context.Background(), nil)
	require.ErrorContains(t, err, "no client to read")
}
