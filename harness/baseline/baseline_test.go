package baseline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// programDir is the real program shipped with the harness.
const programDir = "../../program"

func TestRealBaselineLoads(t *testing.T) {
	s, err := Load(programDir)
	require.NoError(t, err)
	assert.Equal(t, 1, s.Version)
	assert.NotEmpty(t, s.Document)
	require.NotEmpty(t, s.Endpoints)
	for _, e := range s.Endpoints {
		assert.NotEmpty(t, e.Expect, e.Label())
	}
	assert.Equal(t, "server GET /ready", s.Endpoints[0].Label())
}

func TestLoadMissingFileNamesIt(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, File))
	assert.Contains(t, err.Error(), "restore it from git")
}

const good = `version: 1
document: the doc
endpoints:
  - name: GET /ready
    role: server
    path: /ready
    format: json
    expect:
      - {field: ok, value: "true"}
`

// Every problem names the file, the entry and its field, and says what to write.
func TestParseRefusesBadFiles(t *testing.T) {
	_, err := Parse("b.yaml", []byte(good))
	require.NoError(t, err)
	cases := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"malformed YAML", func(s string) string { return s + "  - name: [broken\n" }, []string{"fix the YAML"}},
		{"unknown field", func(s string) string { return strings.Replace(s, "    path:", "    paths:", 1) }, []string{"paths", "fix the YAML", "endpoints[name, role, path"}},
		{"version", func(s string) string { return strings.Replace(s, "version: 1", "version: 2", 1) }, []string{"version 2", "write version: 1"}},
		{"no document", func(s string) string { return strings.Replace(s, "document: the doc\n", "", 1) }, []string{"document: required"}},
		{"role", func(s string) string { return strings.Replace(s, "role: server", "role: redis", 1) }, []string{"endpoints[0] (GET /ready)", `role "redis"`, "use server or worker"}},
		{"path", func(s string) string { return strings.Replace(s, "path: /ready", "path: ready", 1) }, []string{"endpoints[0]", `path "ready"`, "must start with /"}},
		{"format", func(s string) string { return strings.Replace(s, "format: json", "format: xml", 1) }, []string{"endpoints[0]", `format "xml"`, "use json or prometheus"}},
		{"no value", func(s string) string { return strings.Replace(s, `value: "true"`, `value: ""`, 1) }, []string{"endpoints[0] (GET /ready) expect[0]", "field and value are both required"}},
		{"prometheus field", func(s string) string {
			s = strings.Replace(s, "format: json", "format: prometheus", 1)
			return strings.Replace(s, "field: ok", "field: a.b", 1)
		}, []string{"expect[0]", `field "a.b"`, "bare metric name"}},
		{"duplicate", func(s string) string { return s + strings.SplitN(s, "endpoints:\n", 2)[1] }, []string{"endpoints[1] (GET /ready)", "repeat endpoints[0]"}},
		{"no endpoints", func(s string) string { return strings.SplitN(s, "endpoints:", 2)[0] }, []string{"no endpoints"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("dir/baseline.yaml", []byte(tc.edit(good)))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "dir/baseline.yaml:"), "error names the file: %v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadReadsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, File), []byte(strings.Replace(good, "format: json", "format: xml", 1)), 0o600))
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, File))
	assert.Contains(t, err.Error(), `format "xml"`)
}

const compareSpec = `version: 1
document: the doc
endpoints:
  - name: GET /ready
    role: server
    path: /ready
    format: json
    expect:
      - {field: ok, value: "true"}
      - {field: deps.redis.attempts, value: "0"}
      - {field: deps.mode, value: distributed}
      - {field: causes.*, value: "0"}
      - {field: missing.field, value: "1"}
      - {field: empty.*, value: "0"}
  - name: GET /metrics
    role: server
    path: /metrics
    format: prometheus
    expect:
      - {field: up_ready, value: "1"}
      - {field: failures_total, value: "0"}
      - {field: absent_metric, value: "0"}
  - name: GET /api/v1/metrics
    role: worker
    path: /api/v1/metrics
    format: json
    expect:
      - {field: a, value: "1"}
`

func TestCompare(t *testing.T) {
	spec, err := Parse("b.yaml", []byte(compareSpec))
	require.NoError(t, err)
	c := &Capture{
		Bodies: map[string][]byte{
			"server GET /ready": []byte(`{"ok": true, "deps": {"redis": {"attempts": 0.0}, "mode": "local"},
				"causes": {"b": 0, "a": 2, "c": {"d": 0}}, "empty": {}}`),
			"server GET /metrics": []byte("# TYPE up_ready gauge\nup_ready 1\n# TYPE failures_total counter\nfailures_total{edge=\"a\"} 0\nfailures_total{edge=\"b\"} 3\n"),
			// the worker answered an error page
			"worker GET /api/v1/metrics": []byte("<html>bad gateway</html>"),
		},
		Status: map[string]int{"server GET /ready": 200, "server GET /metrics": 200, "worker GET /api/v1/metrics": 502},
	}
	got := map[string]evidence.BaselineCheck{}
	var order []string
	for _, ch := range Compare(spec, c) {
		k := ch.Endpoint + " " + ch.Field
		got[k] = ch
		order = append(order, k)
	}
	assert.Equal(t, []string{
		"server GET /ready ok",
		"server GET /ready deps.redis.attempts",
		"server GET /ready deps.mode",
		"server GET /ready causes.a", "server GET /ready causes.b", "server GET /ready causes.c.d",
		"server GET /ready missing.field",
		"server GET /ready empty.*",
		"server GET /metrics up_ready",
		"server GET /metrics failures_total",
		"server GET /metrics absent_metric",
		"worker GET /api/v1/metrics a",
	}, order)
	pass := func(k string) bool { return got[k].Pass }
	assert.True(t, pass("server GET /ready ok"), "JSON true is \"true\"")
	assert.True(t, pass("server GET /ready deps.redis.attempts"), "0.0 equals 0 as numbers")
	assert.False(t, pass("server GET /ready deps.mode"))
	assert.Equal(t, "local", got["server GET /ready deps.mode"].Observed)
	assert.False(t, pass("server GET /ready causes.a"))
	assert.Equal(t, "2", got["server GET /ready causes.a"].Observed)
	assert.True(t, pass("server GET /ready causes.b"))
	assert.True(t, pass("server GET /ready causes.c.d"))
	assert.False(t, pass("server GET /ready missing.field"))
	assert.Equal(t, "<absent>", got["server GET /ready missing.field"].Observed)
	assert.Equal(t, "<no field under empty>", got["server GET /ready empty.*"].Observed)
	assert.True(t, pass("server GET /metrics up_ready"))
	assert.False(t, pass("server GET /metrics failures_total"), "every sample must match")
	assert.Equal(t, "0, 3", got["server GET /metrics failures_total"].Observed)
	assert.Equal(t, "<absent>", got["server GET /metrics absent_metric"].Observed)
	w := got["worker GET /api/v1/metrics a"]
	assert.False(t, w.Pass)
	assert.Contains(t, w.Observed, "<status 502, not JSON")
	assert.Equal(t, "1", w.Document)
}

func TestCompareEmptyCaptureFailsEveryCheck(t *testing.T) {
	spec, err := Load(programDir)
	require.NoError(t, err)
	checks := Compare(spec, &Capture{})
	require.NotEmpty(t, checks)
	for _, ch := range checks {
		assert.False(t, ch.Pass, "%s %s", ch.Endpoint, ch.Field)
	}
}

func TestSameValue(t *testing.T) {
	assert.True(t, SameValue("0", "0.0"))
	assert.True(t, SameValue("1", "1e0"))
	assert.False(t, SameValue("1", "2"))
	assert.True(t, SameValue("true", "true"))
	assert.False(t, SameValue("true", "1"))
}
