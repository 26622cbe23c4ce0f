package promserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/signals"
)

// impostor answers on a port like another run's Prometheus server: the same rule count,
// a healthy target, but not this harness's exporter.
func impostor(t *testing.T) (port int) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/status/buildinfo":
			fmt.Fprint(w, `{"status":"success","data":{"version":"0.0.0-impostor","revision":"","branch":"","buildUser":"","buildDate":"","goVersion":""}}`)
		case "/api/v1/rules":
			fmt.Fprint(w, `{"status":"success","data":{"groups":[{"name":"triggers","file":"r.yml","interval":1,"rules":[{"type":"alerting","name":"A","query":"x > 5","duration":0,"labels":{},"annotations":{},"alerts":[],"health":"ok","evaluationTime":0.001,"lastEvaluation":"2026-01-01T00:00:00Z","state":"inactive"}]}]}}`)
		case "/api/v1/status/config":
			fmt.Fprint(w, `{"status":"success","data":{"yaml":"global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: other\n  static_configs:\n  - targets:\n    - 127.0.0.1:1\n"}}`)
		case "/api/v1/targets":
			fmt.Fprint(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"other"},"scrapeUrl":"http://127.0.0.1:1/metrics","lastScrape":"2026-01-01T00:00:00Z","lastScrapeDuration":0.01,"health":"up","lastError":""}],"droppedTargets":[]}}`)
		default:
			http.NotFound(w, r)
		}
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	_, p, err := net.SplitHostPort(hs.Listener.Addr().String())
	require.NoError(t, err)
	port, err = strconv.Atoi(p)
	require.NoError(t, err)
	return port
}

// CI once failed with "bind: address already in use": two ginkgo processes picked one
// free port for their servers. A server whose port is taken (here by a look-alike of
// another run's server) is started again on a new port, and the look-alike is never
// taken for it.
func TestStartMovesToANewPortWhenItsPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus container on Docker: not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := env.Start(ctx, env.WithRoles())
	if err != nil && strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
		t.Skipf("no Docker engine: %v", err)
	}
	require.NoError(t, err)
	defer func() { assert.NoError(t, e.Close(context.WithoutCancel(ctx))) }()
	if _, err := e.Docker().ImageID(ctx, DefaultImage); err != nil {
		t.Skipf("%s is not built (make images): %v", DefaultImage, err)
	}

	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "pb_test_up 1")
	}))
	defer exporter.Close()
	rules, err := signals.ParseRuleFiles([]signals.RuleFile{{Name: "r.yml", Content: []byte(
		"groups:\n- name: triggers\n  rules:\n  - alert: A\n    expr: pb_test_up > 5\n")}})
	require.NoError(t, err)
	taken := impostor(t)
	cfg := Config{Scrape: exporter.Listener.Addr().String(), Interval: time.Second, Rules: rules, Name: "port-test"}

	t.Run("a fresh port after a taken one", func(t *testing.T) {
		var picked []int
		cfg := cfg
		cfg.ports = func() (int, error) {
			if len(picked) == 0 {
				picked = append(picked, taken)
				return taken, nil
			}
			p, err := freePort()
			picked = append(picked, p)
			return p, err
		}
		s, err := Start(ctx, e, cfg)
		defer func() { assert.NoError(t, s.Close(ctx)) }()
		require.NoError(t, err)
		require.Len(t, picked, 2, "one start on the taken port, one on a fresh one")
		assert.Equal(t, "http://127.0.0.1:"+strconv.Itoa(picked[1]), s.URL)
		assert.NotEqual(t, "0.0.0-impostor", s.Version, "the server is the one it started")

		// Start did not wait for the first scrape; AwaitScraping does, and History
		// reads after it.
		require.NoError(t, s.AwaitScraping(ctx))
		assert.Greater(t, s.Scraping, s.Booted, "the first scrape comes after ready")
		t.Logf("ready after %s, first scrape after %s", s.Booted, s.Scraping)
		_, err = s.History(ctx, time.Now().Add(-time.Minute), time.Now())
		assert.NoError(t, err)
	})

	t.Run("the taken port every time", func(t *testing.T) {
		cfg := cfg
		n := 0
		cfg.ports = func() (int, error) { n++; return taken, nil }
		s, err := Start(ctx, e, cfg)
		assert.NoError(t, s.Close(ctx))
		require.ErrorIs(t, err, errPortTaken)
		assert.Contains(t, err.Error(), "address already in use", "the error shows the server's own words")
		assert.Equal(t, portAttempts, n)
	})
}
