package program

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/signals"
)

// oldRetriesBounded is FM7's check before issue 12 §6: all attempts over all requests,
// pre-fault successes and the open breaker's rejections (no attempt) included.
const oldRetriesBounded = `sum(increase(pocketbrain_worker_metrics_provider_attempts[30s])) <= 3 * sum(increase(pocketbrain_worker_metrics_provider_requests[30s]))`

// workerSeries scrapes a synthetic worker every second for 60s: 1 request/s succeeds
// before the fault (t<30s); during it, 1 request/s fails after its retries making
// attemptsPerFailure attempts, and 2 requests/s are rejected by the open breaker.
func workerSeries(t *testing.T, attemptsPerFailure int) (*signals.Engine, time.Time) {
	t.Helper()
	st := signals.NewStore()
	t0 := time.Unix(1_700_000_000, 0)
	var req, att, exReq, exAtt float64
	for i := 0; i <= 60; i++ {
		if i > 0 && i <= 30 {
			req, att = req+1, att+1
		} else if i > 30 {
			req += 3
			att += float64(attemptsPerFailure)
			exReq++
			exAtt += float64(attemptsPerFailure)
		}
		at := t0.Add(time.Duration(i) * time.Second)
		for name, v := range map[string]float64{
			"pocketbrain_worker_metrics_provider_requests":           req,
			"pocketbrain_worker_metrics_provider_attempts":           att,
			"pocketbrain_worker_metrics_provider_exhausted_requests": exReq,
			"pocketbrain_worker_metrics_provider_exhausted_attempts": exAtt,
		} {
			require.NoError(t, st.Append(labels.FromStrings("__name__", name, "job", "worker"), at, v))
		}
	}
	return signals.NewEngine(st), t0.Add(60 * time.Second)
}

// retriesBoundedExprs are the FM7 rows' exact retry checks, as the matrix has them.
func retriesBoundedExprs(t *testing.T) []string {
	t.Helper()
	p, err := Load(programDir)
	require.NoError(t, err)
	var out []string
	rows := 0
	for _, r := range p.Matrix.Rows {
		if !strings.HasPrefix(r.ID, "FM7-provider-") {
			continue
		}
		rows++
		found := 0
		for _, e := range append(append([]string{}, r.Surface...), r.Recover...) {
			if strings.Contains(e, "provider_exhausted") {
				out = append(out, e)
				found++
			}
			require.NotEqual(t, oldRetriesBounded, e, "%s still has the old ratio", r.ID)
		}
		require.Equal(t, 3, found, "%s: exhausted > 0 in the fault, attempts == 3 × exhausted in surface and recover", r.ID)
	}
	require.Equal(t, 4, rows)
	return out
}

func holds(t *testing.T, e *signals.Engine, expr string, at time.Time) bool {
	t.Helper()
	_, present, err := e.Value(context.Background(), expr, at)
	require.NoError(t, err, expr)
	return present
}

func TestFM7RetriesBoundedIsExact(t *testing.T) {
	exprs := retriesBoundedExprs(t)

	good, at := workerSeries(t, 3) // 1 + PROVIDER_MAX_RETRIES
	for _, x := range exprs {
		require.True(t, holds(t, good, x, at), "a worker making exactly 3 attempts per failing request: %s", x)
	}
	require.True(t, holds(t, good, oldRetriesBounded, at))

	for _, n := range []int{4, 5, 2} { // one or two extra retries, or one too few
		bad, at := workerSeries(t, n)
		require.True(t, holds(t, bad, oldRetriesBounded, at), "the old ratio passes %d attempts per failing request", n)
		failed := false
		for _, x := range exprs {
			if strings.Contains(x, "==") && !holds(t, bad, x, at) {
				failed = true
			}
		}
		require.True(t, failed, "the new check must fail %d attempts per failing request", n)
	}
}
