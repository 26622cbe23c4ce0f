package signals

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The worker's /api/v1/metrics document from CONTRACTS.md.
const workerMetricsJSON = `{"metrics":{"vpsProxyRequests":0,"vpsProxyFailures":3,"vpsProxyTimeouts":0,"vpsProxyCircuitOpens":1,"vpsProxyCircuitRejects":0,
            "providerRequests":0,"providerAttempts":0,"providerRetries":0},
 "circuits":{"vps":{"open":true},"provider":{"open":false}},
 "failureCauses":{"upstream":{"timeout":0,"network_error":0,"upstream_5xx":0,"circuit_open":0,"origin_unconfigured":7,"kv_unavailable":0},
                  "provider":{"provider_timeout":0,"provider_5xx":0,"provider_circuit_open":0,"provider_network_error":0}},
 "reliability":{"authConfig":{"missingClerkConfig":2,"partialClerkConfig":0},
                "runtimeConfig":{"invalidEncryptionSecret":0},
                "secretRotation":{"fallbackDecrypts":0,"decryptFailures":0},
                "kvFailures":0}}`

func TestFlattenWorkerMetrics(t *testing.T) {
	got, err := FlattenJSON("pocketbrain_worker", strings.NewReader(workerMetricsJSON))
	require.NoError(t, err)
	want := map[string]float64{
		"pocketbrain_worker_failure_causes_upstream_origin_unconfigured":          7,
		"pocketbrain_worker_reliability_auth_config_missing_clerk_config":         2,
		"pocketbrain_worker_metrics_vps_proxy_circuit_opens":                      1,
		"pocketbrain_worker_metrics_vps_proxy_failures":                           3,
		"pocketbrain_worker_circuits_vps_open":                                    1,
		"pocketbrain_worker_circuits_provider_open":                               0,
		"pocketbrain_worker_failure_causes_upstream_upstream_5xx":                 0,
		"pocketbrain_worker_failure_causes_provider_provider_network_error":       0,
		"pocketbrain_worker_reliability_runtime_config_invalid_encryption_secret": 0,
		"pocketbrain_worker_reliability_secret_rotation_decrypt_failures":         0,
		"pocketbrain_worker_reliability_kv_failures":                              0,
	}
	for name, v := range want {
		assert.Contains(t, got, name)
		assert.Equal(t, v, got[name], name)
	}
	assert.Len(t, got, 8+2+10+6, "every numeric and boolean leaf, nothing else")
}

func TestFlattenNestedBooleansStringsArrays(t *testing.T) {
	// The server's /ready body: strings (mode) are skipped, booleans are 0/1.
	ready := `{"ok":true,"dependencies":{"postgres":{"ok":true},"redis":{"ok":false,"degraded":true,"required":true},
	 "realtime":{"mode":"local","degraded":true,"degradedTransitions":4},
	 "streamTicket":{"replayStoreAvailable":false,"degraded":true,"consumeAttempts":12}},
	 "list":[1,2,3],"nothing":null,"deep":{"a":{"b":{"c":{"d":1.5}}}}}`
	got, err := FlattenJSON("pocketbrain_server_ready", strings.NewReader(ready))
	require.NoError(t, err)
	assert.Equal(t, 1.0, got["pocketbrain_server_ready_ok"])
	assert.Equal(t, 0.0, got["pocketbrain_server_ready_dependencies_redis_ok"])
	assert.Equal(t, 1.0, got["pocketbrain_server_ready_dependencies_redis_degraded"])
	assert.Equal(t, 4.0, got["pocketbrain_server_ready_dependencies_realtime_degraded_transitions"])
	assert.Equal(t, 0.0, got["pocketbrain_server_ready_dependencies_stream_ticket_replay_store_available"])
	assert.Equal(t, 12.0, got["pocketbrain_server_ready_dependencies_stream_ticket_consume_attempts"])
	assert.Equal(t, 1.5, got["pocketbrain_server_ready_deep_a_b_c_d"])
	for name := range got {
		assert.NotContains(t, name, "mode", "strings are not signals")
		assert.NotContains(t, name, "list", "arrays are skipped")
		assert.NotContains(t, name, "nothing", "null is skipped")
	}
}

func TestFlattenRejectsNonObjectAndCollisions(t *testing.T) {
	_, err := FlattenJSON("p", strings.NewReader(`[1,2]`))
	require.ErrorContains(t, err, "want an object")
	_, err = FlattenJSON("p", strings.NewReader(`{"a":`))
	require.ErrorContains(t, err, "decode JSON")
	_, err = FlattenJSON("p", strings.NewReader(`{"fooBar":1,"foo_bar":2}`))
	require.ErrorContains(t, err, "p_foo_bar")
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"vpsProxyCircuitOpens": "vps_proxy_circuit_opens",
		"degradedTransitions":  "degraded_transitions",
		"origin_unconfigured":  "origin_unconfigured",
		"upstream_5xx":         "upstream_5xx",
		"missingClerkConfig":   "missing_clerk_config",
		"kvFailures":           "kv_failures",
		"HTTPStatus":           "http_status",
		"requestID":            "request_id",
		"http2Errors":          "http2_errors",
		"ABC":                  "abc",
		"x":                    "x",
		"kv-failures.total":    "kv_failures_total",
		"fooBar_Baz":           "foo_bar_baz",
		"_leading":             "leading",
	} {
		assert.Equal(t, want, SnakeCase(in), in)
	}
	assert.Equal(t, "pocketbrain_worker_reliability_auth_config_missing_clerk_config",
		JSONMetricName("pocketbrain_worker", "reliability", "authConfig", "missingClerkConfig"))
	assert.Equal(t, "_5xx", JSONMetricName("", "5xx"), "a name cannot start with a digit")
}
