package scenario

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSignalStripsTheFinalComparison(t *testing.T) {
	require.Equal(t, "max(pocketbrain_redis_ready_degraded)", Signal("max(pocketbrain_redis_ready_degraded) == 1"))
	require.Equal(t, "sum(increase(x[30s]))", Signal("sum(increase(x[30s])) >= 5"))
	// "bool" comparisons and non-number right sides keep their meaning: left alone.
	require.Equal(t, "a == bool 1", Signal("a == bool 1"))
	require.Equal(t, "a > b", Signal("a > b"))
	require.Equal(t, "not promql (", Signal("not promql ("))
}
