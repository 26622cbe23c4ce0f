package signals

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeWorker serves the worker's JSON with a settable missingClerkConfig.
func fakeWorker(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var missing atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"reliability":{"authConfig":{"missingClerkConfig":%d,"partialClerkConfig":0}}}`, missing.Load())
	}))
	t.Cleanup(srv.Close)
	return srv, &missing
}

const workerTrigger = `groups:
  - name: g
    rules:
      - record: invalidClerkConfig
        expr: pocketbrain_worker_reliability_auth_config_missing_clerk_config + pocketbrain_worker_reliability_auth_config_partial_clerk_config
      - alert: WorkerConfigRegression
        expr: increase(invalidClerkConfig[15m]) > 0
        for: 1m
`

func newMonitor(t *testing.T, url string, opts ...MonitorOption) *Monitor {
	s := NewStore()
	c := NewCollector(s)
	require.NoError(t, c.SetTarget(Target{Name: "worker", Kind: KindJSON, URL: url, Prefix: "pocketbrain_worker"}))
	r, err := ParseRuleFiles([]RuleFile{{Name: "triggers.yml", Content: []byte(workerTrigger)}}, WithForScale(1.0/60))
	require.NoError(t, err)
	return NewMonitor(c, NewEngine(s), r, opts...)
}

func TestMonitorTickScrapesThenEvaluatesAtOneTimestamp(t *testing.T) {
	srv, missing := fakeWorker(t)
	var hooked atomic.Int32
	m := newMonitor(t, srv.URL, WithTickHook(func(TickResult) { hooked.Add(1) }))
	ctx := context.Background()

	res, err := m.TickAt(ctx, at(0))
	require.NoError(t, err)
	require.Len(t, res.Scrapes, 1)
	assert.True(t, res.Scrapes[0].Up)
	require.NoError(t, m.Rules().ValidateAgainst(m.Engine().Store().MetricNames()))

	missing.Store(1)
	_, err = m.TickAt(ctx, at(1))
	require.NoError(t, err)
	// The recording rule saw this tick's scrape: same timestamp.
	pts := m.Engine().Store().Series(lbl("invalidClerkConfig", "job", "worker", "instance", "worker"), at(1), at(1))
	require.Len(t, pts, 1)
	assert.Equal(t, 1.0, pts[0].V)
	assert.Equal(t, AlertPending, m.Rules().State("WorkerConfigRegression"), "active from 1 s")

	_, err = m.TickAt(ctx, at(2))
	require.NoError(t, err)
	assert.True(t, m.Rules().Firing("WorkerConfigRegression"), "for: 1m scaled by 1/60 is 1 s")
	assert.Equal(t, int32(3), hooked.Load())
	last, err := m.LastTick()
	require.NoError(t, err)
	assert.Equal(t, at(2), last.T)
}

func TestMonitorStartWaitForStop(t *testing.T) {
	srv, missing := fakeWorker(t)
	m := newMonitor(t, srv.URL, WithInterval(50*time.Millisecond))
	ctx := context.Background()
	require.NoError(t, m.Start(ctx))
	require.ErrorContains(t, m.Start(ctx), "already started")
	defer m.Stop()

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := m.WaitFor(wctx, "worker scraped", m.ExprTrue(`up{job="worker"} == 1`))
	require.NoError(t, err)

	missing.Store(3)
	took, err := m.WaitFor(wctx, "WorkerConfigRegression firing", m.AlertFiring("WorkerConfigRegression"))
	require.NoError(t, err)
	assert.Greater(t, took, time.Duration(0))
	st, _ := m.Rules().Alert("WorkerConfigRegression")
	assert.Equal(t, AlertFiring, st.State)

	m.Stop()
	m.Stop() // idempotent
	last, _ := m.LastTick()
	time.Sleep(120 * time.Millisecond)
	after, _ := m.LastTick()
	assert.Equal(t, last.T, after.T, "no tick after Stop")
}

func TestWaitForTimeoutSaysWhatAndLastValue(t *testing.T) {
	srv, _ := fakeWorker(t)
	m := newMonitor(t, srv.URL, WithInterval(20*time.Millisecond))
	ctx := context.Background()
	_, err := m.TickAt(ctx, time.Now())
	require.NoError(t, err)

	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = m.WaitFor(wctx, "clerk config counter at 5", m.ValueCond(`invalidClerkConfig`, func(v float64, ok bool) bool { return ok && v >= 5 }))
	require.Error(t, err)
	t.Log(err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "waiting for clerk config counter at 5")
	assert.Contains(t, err.Error(), "last seen: invalidClerkConfig = 0")

	wctx2, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	_, err = m.WaitFor(wctx2, "alert", m.AlertFiring("WorkerConfigRegression"))
	require.ErrorContains(t, err, "last seen: alert WorkerConfigRegression inactive")

	// Bad PromQL or an unknown alert end the wait at once instead of timing out.
	start := time.Now()
	_, err = m.WaitFor(ctx, "typo", m.ExprTrue(`up{`))
	require.ErrorContains(t, err, "fix the PromQL")
	_, err = m.WaitFor(ctx, "typo", m.AlertFiring("NoSuchAlert"))
	require.ErrorContains(t, err, "no alerting rule named")
	assert.Less(t, time.Since(start), time.Second)

	// A custom condition reports through Observe.
	wctx3, cancel3 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel3()
	_, err = m.WaitFor(wctx3, "custom", func(ctx context.Context) (bool, error) {
		Observe(ctx, "queue depth %d", 17)
		return false, nil
	})
	require.ErrorContains(t, err, "last seen: queue depth 17")
}
