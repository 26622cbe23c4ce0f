package promserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAPI answers the two API calls AwaitCaughtUp reads. Every rules call is one
// evaluation cycle of the two groups: the recording rule at cycle·interval, the alert a
// third of an interval later, each taking 5 ms.
type fakeAPI struct {
	mu         sync.Mutex
	lastScrape time.Time
	evalBase   time.Time
	interval   time.Duration
	rulesCalls int
	frozen     bool // rules never evaluate again
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	switch r.URL.Path {
	case "/api/v1/targets":
		fmt.Fprintf(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"h"},"scrapeUrl":"http://h/metrics","lastScrape":%q,"lastScrapeDuration":0.02,"health":"up","lastError":""}],"droppedTargets":[]}}`, ts(f.lastScrape))
	case "/api/v1/rules":
		if !f.frozen {
			f.rulesCalls++
		}
		rec := f.evalBase.Add(time.Duration(f.rulesCalls) * f.interval)
		alert := rec.Add(f.interval / 3)
		fmt.Fprintf(w, `{"status":"success","data":{"groups":[`+
			`{"name":"aliases","file":"r.yml","interval":1,"rules":[{"type":"recording","name":"q","query":"x","health":"ok","evaluationTime":0.005,"lastEvaluation":%q}]},`+
			`{"name":"triggers","file":"r.yml","interval":1,"rules":[{"type":"alerting","name":"A","query":"q > 0","duration":0,"labels":{},"annotations":{},"alerts":[],"health":"ok","evaluationTime":0.005,"lastEvaluation":%q,"state":"inactive"}]}]}}`,
			ts(rec), ts(alert))
	default:
		http.NotFound(w, r)
	}
}

func fakeServer(t *testing.T, f *fakeAPI) *Server {
	t.Helper()
	hs := httptest.NewServer(f)
	t.Cleanup(hs.Close)
	c, err := promapi.NewClient(promapi.Config{Address: hs.URL})
	require.NoError(t, err)
	return &Server{cfg: Config{Interval: f.interval}, API: v1.NewAPI(c)}
}

func TestAwaitCaughtUp(t *testing.T) {
	ctx := context.Background()
	iv := time.Second
	end := t0.Add(time.Minute) // the span's end

	t.Run("no scrape after the span's end: not caught up", func(t *testing.T) {
		f := &fakeAPI{lastScrape: end.Add(-100 * time.Millisecond), evalBase: end, interval: iv}
		s := fakeServer(t, f)
		assert.False(t, s.AwaitCaughtUp(ctx, end, time.Now().Add(50*time.Millisecond)))
	})
	t.Run("scraped, rules not evaluated after the scrape: not caught up", func(t *testing.T) {
		f := &fakeAPI{lastScrape: end.Add(300 * time.Millisecond), evalBase: end.Add(-5 * iv), interval: iv, frozen: true}
		s := fakeServer(t, f)
		assert.False(t, s.AwaitCaughtUp(ctx, end, time.Now().Add(50*time.Millisecond)))
	})
	t.Run("every rule evaluated after the scrape, but not again after the last of them: not caught up", func(t *testing.T) {
		// The scrape ends at +30 ms, the recording rule runs at +100 ms and the alert at
		// +433 ms; frozen, the alert never reads the recording rule's new output.
		f := &fakeAPI{lastScrape: end.Add(10 * time.Millisecond), evalBase: end.Add(100 * time.Millisecond), interval: iv, frozen: true}
		s := fakeServer(t, f)
		assert.False(t, s.AwaitCaughtUp(ctx, end, time.Now().Add(50*time.Millisecond)))
	})
	t.Run("one group in the engine's order: one evaluation after the scrape is caught up", func(t *testing.T) {
		// The same frozen server as above: its recording rule and alert each ran once
		// after the scrape. In one group the alert ran after the recording rule, in the
		// same pass, so it read the new output.
		f := &fakeAPI{lastScrape: end.Add(10 * time.Millisecond), evalBase: end.Add(200 * time.Millisecond), interval: iv, frozen: true}
		s := fakeServer(t, f)
		s.cfg.OneGroup = true
		assert.True(t, s.AwaitCaughtUp(ctx, end, time.Now().Add(time.Second)))
	})
	t.Run("one group stamped within its wake-up margin after the scrape: not caught up", func(t *testing.T) {
		// The scrape ends at +30 ms and the group's rules are stamped from +100 ms: a
		// group that woke 70 ms late queried at a tick before the scrape.
		f := &fakeAPI{lastScrape: end.Add(10 * time.Millisecond), evalBase: end.Add(100 * time.Millisecond), interval: iv, frozen: true}
		s := fakeServer(t, f)
		s.cfg.OneGroup = true
		assert.False(t, s.AwaitCaughtUp(ctx, end, time.Now().Add(50*time.Millisecond)))
	})
	t.Run("scraped after the end and every rule evaluated twice after it: caught up", func(t *testing.T) {
		f := &fakeAPI{lastScrape: end.Add(300 * time.Millisecond), evalBase: end, interval: iv}
		s := fakeServer(t, f)
		require.True(t, s.AwaitCaughtUp(ctx, end, time.Now().Add(10*time.Second)))
		f.mu.Lock()
		defer f.mu.Unlock()
		assert.GreaterOrEqual(t, f.rulesCalls, 2, "one evaluation cycle after the scrape is not enough: the alert reads the recording rule")
	})
}

// A server that has not scraped the harness yet has no history to compare: History
// says so instead of reading its empty ALERTS as "nothing fired".
func TestHistoryBeforeTheFirstScrapeIsAnError(t *testing.T) {
	var healthy atomic.Bool
	began := time.Now().Add(-10 * time.Second).Truncate(time.Millisecond)
	secs := func(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/targets":
			health, scraped := "unknown", "0001-01-01T00:00:00Z"
			if healthy.Load() {
				health, scraped = "up", time.Now().UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintf(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"h"},"scrapeUrl":"http://127.0.0.1:4000/metrics","lastScrape":%q,"lastScrapeDuration":0,"health":%q,"lastError":""}],"droppedTargets":[]}}`, scraped, health)
		case "/api/v1/query":
			// up of the harness's job: a failed first scrape (0), then healthy ones.
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"pocketbrain-harness"},"values":[[%.3f,"0"],[%.3f,"1"],[%.3f,"1"]]}]}}`,
				secs(began.Add(5*time.Second)), secs(began.Add(6*time.Second)), secs(began.Add(7*time.Second)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(hs.Close)
	c, err := promapi.NewClient(promapi.Config{Address: hs.URL})
	require.NoError(t, err)
	s := &Server{cfg: Config{Interval: time.Second, Scrape: "127.0.0.1:4000"}, API: v1.NewAPI(c), URL: hs.URL, began: began}

	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	_, err = s.History(ctx, time.Now().Add(-time.Minute), time.Now())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "waiting for its first scrape of the harness")

	healthy.Store(true)
	_, err = s.History(context.Background(), time.Now().Add(-time.Minute), time.Now())
	require.NoError(t, err)
	assert.Equal(t, 6*time.Second, s.Scraping, "the first healthy scrape (up 1), not the failed one, nor when the harness looked")
}

// The targets are read from the configuration as Prometheus 2.42 gives it back (its own
// marshalling, every default spelled out); one that does not parse is an error, never
// "another server".
func TestScrapeTargets(t *testing.T) {
	const loaded = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
- /etc/pb-prometheus/rules.yml
scrape_configs:
- job_name: pocketbrain-harness
  honor_labels: true
  honor_timestamps: true
  scrape_interval: 1s
  scrape_timeout: 1s
  metrics_path: /metrics
  scheme: http
  follow_redirects: true
  enable_http2: true
  metric_relabel_configs:
  - source_labels: [__name__]
    separator: ;
    regex: ALERTS|ALERTS_FOR_STATE
    replacement: $1
    action: drop
  static_configs:
  - targets:
    - 127.0.0.1:34525
`
	got, err := scrapeTargets(loaded)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:34525"}, got)
	_, err = scrapeTargets("scrape_configs: [")
	assert.ErrorContains(t, err, "does not parse")
}
