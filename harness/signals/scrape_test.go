package signals

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A realistic page: the server's gauges and counters, a client fleet's
// labelled counters, a histogram, and a page-level job label.
const serverPage = `# HELP pocketbrain_realtime_subscriber_ready Whether the Redis subscriber is ready.
# TYPE pocketbrain_realtime_subscriber_ready gauge
pocketbrain_realtime_subscriber_ready 1
# HELP pocketbrain_redis_ready_failures_total Redis readiness check failures.
# TYPE pocketbrain_redis_ready_failures_total counter
pocketbrain_redis_ready_failures_total 3
# HELP pocketbrain_build_info Build information.
# TYPE pocketbrain_build_info gauge
pocketbrain_build_info{revision="abc123"} 1
# HELP sync_queue_block_events Queue transitions into blocked state.
# TYPE sync_queue_block_events counter
sync_queue_block_events{client="c01"} 2
sync_queue_block_events{client="c02"} 0
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 4
http_request_duration_seconds_bucket{le="1"} 9
http_request_duration_seconds_bucket{le="+Inf"} 10
http_request_duration_seconds_sum 3.5
http_request_duration_seconds_count 10
# A metric exposed with its own job label.
pushed_thing{job="batch"} 5
`

func find(t *testing.T, got []Sample, want labels.Labels) float64 {
	t.Helper()
	for _, s := range got {
		if labels.Equal(s.Labels, want) {
			return s.Value
		}
	}
	t.Fatalf("series %s not found in %v", want, got)
	return 0
}

func TestParseTextAddsJobAndInstance(t *testing.T) {
	tg := Target{Name: "server", Kind: KindPrometheus, URL: "http://x/metrics"}.withDefaults()
	got, err := ParseText(strings.NewReader(serverPage), tg)
	require.NoError(t, err)
	id := []string{"job", "server", "instance", "server"}
	assert.Equal(t, 1.0, find(t, got, lbl("pocketbrain_realtime_subscriber_ready", id...)))
	assert.Equal(t, 3.0, find(t, got, lbl("pocketbrain_redis_ready_failures_total", id...)))
	assert.Equal(t, 1.0, find(t, got, lbl("pocketbrain_build_info", append(id, "revision", "abc123")...)))
	assert.Equal(t, 2.0, find(t, got, lbl("sync_queue_block_events", append(id, "client", "c01")...)))
	assert.Equal(t, 0.0, find(t, got, lbl("sync_queue_block_events", append(id, "client", "c02")...)))
	assert.Equal(t, 9.0, find(t, got, lbl("http_request_duration_seconds_bucket", append(id, "le", "1")...)))
	assert.Equal(t, 10.0, find(t, got, lbl("http_request_duration_seconds_bucket", append(id, "le", "+Inf")...)))
	assert.Equal(t, 10.0, find(t, got, lbl("http_request_duration_seconds_count", id...)))
	assert.Equal(t, 5.0, find(t, got, lbl("pushed_thing", append(id, "exported_job", "batch")...)),
		"the page's own job label is kept as exported_job, like Prometheus")
	assert.Len(t, got, 11)
}

func TestParseTextErrorsNameTheLine(t *testing.T) {
	_, err := ParseText(strings.NewReader("ok 1\nbroken{ 2\n"), Target{Name: "s"}.withDefaults())
	require.ErrorContains(t, err, "line 2")
	// Prometheus 2.x names only: a UTF-8 name is refused, not silently ingested.
	_, err = ParseText(strings.NewReader("{\"my.metric\"} 1\n"), Target{Name: "s"}.withDefaults())
	require.Error(t, err)
}

func newCollector(t *testing.T, s *Store, targets ...Target) *Collector {
	c := NewCollector(s)
	for _, tg := range targets {
		require.NoError(t, c.SetTarget(tg))
	}
	return c
}

func TestCollectorScrapesTextAndJSONWithUp(t *testing.T) {
	text := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(serverPage))
	}))
	defer text.Close()
	js := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(workerMetricsJSON))
	}))
	defer js.Close()

	s := NewStore()
	c := newCollector(t, s,
		Target{Name: "server", Kind: KindPrometheus, URL: text.URL + "/metrics"},
		Target{Name: "worker", Kind: KindJSON, URL: js.URL + "/api/v1/metrics", Prefix: "pocketbrain_worker"},
	)
	res := c.ScrapeOnce(context.Background(), at(0))
	require.Len(t, res, 2)
	for _, r := range res {
		assert.True(t, r.Up, r.Target)
		assert.NoError(t, r.Err)
	}
	e := NewEngine(s)
	v, ok, err := e.Value(context.Background(), `pocketbrain_worker_failure_causes_upstream_origin_unconfigured{job="worker",instance="worker"}`, at(0))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 7.0, v)
	v, _, err = e.Value(context.Background(), `count(up == 1)`, at(0))
	require.NoError(t, err)
	assert.Equal(t, 2.0, v)
	last, ok := c.LastScrape("worker")
	require.True(t, ok)
	assert.Equal(t, 26+2, last.Samples, "26 leaves plus up and scrape_duration_seconds")
}

func TestCollectorDownTargetAndStaleness(t *testing.T) {
	var page atomic.Value
	page.Store(serverPage)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(page.Load().(string)))
	}))
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	c := newCollector(t, s, Target{Name: "server", Kind: KindPrometheus, URL: srv.URL})
	c.ScrapeOnce(ctx, at(0))

	// A series that disappears from the page ends with a staleness marker.
	page.Store("pocketbrain_realtime_subscriber_ready 0\n")
	c.ScrapeOnce(ctx, at(1))
	_, ok, err := e.Value(ctx, `pocketbrain_redis_ready_failures_total`, at(1))
	require.NoError(t, err)
	assert.False(t, ok)

	// A target that stops answering: up 0, and its series go stale, as in Prometheus.
	srv.Close()
	res := c.ScrapeOnce(ctx, at(2))
	require.Len(t, res, 1)
	assert.False(t, res[0].Up)
	require.Error(t, res[0].Err)
	v, ok, err := e.Value(ctx, `up{job="server"}`, at(2))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 0.0, v)
	_, ok, err = e.Value(ctx, `pocketbrain_realtime_subscriber_ready`, at(2))
	require.NoError(t, err)
	assert.False(t, ok)

	// The service comes back on a new port: replacing the target keeps the
	// same job/instance, so the counter stays one series and increase() sees the reset.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("pocketbrain_redis_ready_failures_total 1\n"))
	}))
	defer srv2.Close()
	require.NoError(t, c.SetTarget(Target{Name: "server", Kind: KindPrometheus, URL: srv2.URL}))
	c.ScrapeOnce(ctx, at(3))
	assert.Len(t, s.Range(at(0), at(3), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "pocketbrain_redis_ready_failures_total")), 1)
	assert.Len(t, c.Targets(), 1)

	c.RemoveTarget("server")
	c.ScrapeOnce(ctx, at(4))
	_, ok, err = e.Value(ctx, `up{job="server"}`, at(4))
	require.NoError(t, err)
	assert.False(t, ok, "a removed target's series end")
	assert.Empty(t, c.Targets())
}

func TestCollectorScrapeTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	s := NewStore()
	c := newCollector(t, s, Target{Name: "slow", Kind: KindPrometheus, URL: srv.URL, Timeout: 100 * time.Millisecond})
	start := time.Now()
	res := c.ScrapeOnce(context.Background(), at(0))
	assert.Less(t, time.Since(start), 2*time.Second)
	require.Len(t, res, 1)
	assert.False(t, res[0].Up)
	assert.ErrorIs(t, res[0].Err, context.DeadlineExceeded)
}

func TestProbeRecords200Then503ThenTransportError(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(code.Load()))
	}))
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	c := newCollector(t, s, Target{Name: "server-ready", Kind: KindProbe, URL: srv.URL + "/ready"})

	value := func(expr string, ts time.Time) float64 {
		t.Helper()
		v, ok, err := e.Value(ctx, expr, ts)
		require.NoError(t, err)
		require.True(t, ok, expr)
		return v
	}
	c.ScrapeOnce(ctx, at(0))
	assert.Equal(t, 1.0, value(`probe_success{probe="server-ready"}`, at(0)))
	assert.Equal(t, 200.0, value(`probe_http_status_code{probe="server-ready"}`, at(0)))
	assert.GreaterOrEqual(t, value(`probe_duration_seconds{probe="server-ready"}`, at(0)), 0.0)

	code.Store(503)
	c.ScrapeOnce(ctx, at(1))
	assert.Equal(t, 0.0, value(`probe_success{probe="server-ready"}`, at(1)))
	assert.Equal(t, 503.0, value(`probe_http_status_code{probe="server-ready"}`, at(1)))
	assert.Equal(t, 1.0, value(`up{job="server-ready"}`, at(1)), "the probe ran; its verdict is probe_success")

	srv.Close()
	c.ScrapeOnce(ctx, at(2))
	assert.Equal(t, 0.0, value(`probe_success{probe="server-ready"}`, at(2)))
	assert.Equal(t, 0.0, value(`probe_http_status_code{probe="server-ready"}`, at(2)), "0 on transport error")
}

func TestSetTargetValidates(t *testing.T) {
	c := NewCollector(NewStore())
	for _, tc := range []struct {
		tg   Target
		want string
	}{
		{Target{Kind: KindProbe, URL: "http://x"}, "without a Name"},
		{Target{Name: "a", Kind: KindProbe, URL: "x:80"}, "absolute http(s) URL"},
		{Target{Name: "a", Kind: KindJSON, URL: "http://x"}, "Prefix"},
		{Target{Name: "a", Kind: "soap", URL: "http://x"}, "unknown Kind"},
		{Target{Name: "a", Kind: KindProbe, URL: "http://x", Labels: map[string]string{"bad-name": "v"}}, "label name"},
	} {
		assert.ErrorContains(t, c.SetTarget(tc.tg), tc.want)
	}
}
