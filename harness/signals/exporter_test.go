package signals

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExporterOutputReparses(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	r := parseRules(t, []RuleOption{WithForScale(1.0 / 60)},
		RuleFile{Name: "aliases.yml", Content: []byte(aliasRules)},
		RuleFile{Name: "triggers.yml", Content: []byte(triggerRules)})
	for sec := 0; sec <= 3; sec++ {
		feed(t, s, sec, float64(sec), 0)
		require.NoError(t, r.Eval(ctx, e, at(sec)))
	}
	// A label name sorting before __name__ must not split a family.
	mustAppend(t, s, lbl("odd", "Zone", "b"), at(3), 1)
	mustAppend(t, s, lbl("odd", "zone", "a"), at(3), 2)
	mustAppend(t, s, lbl("gone"), at(2), 1)
	mustAppend(t, s, lbl("gone"), at(3), staleNaN)

	srv := httptest.NewServer(NewExporter(s))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")

	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)

	require.Contains(t, fams, "pocketbrain_worker_reliability_auth_config_missing_clerk_config")
	m := fams["pocketbrain_worker_reliability_auth_config_missing_clerk_config"].Metric[0]
	assert.Equal(t, 3.0, m.GetUntyped().GetValue())
	assert.Equal(t, map[string]string{"job": "worker", "instance": "worker"}, pairs(m))

	require.Contains(t, fams, "invalidClerkConfig", "recording-rule outputs are served")
	require.Contains(t, fams, "ALERTS")
	var alerts []map[string]string
	for _, m := range fams["ALERTS"].Metric {
		alerts = append(alerts, pairs(m))
	}
	require.Len(t, alerts, 1)
	assert.Equal(t, "WorkerConfigRegression", alerts[0]["alertname"])
	assert.Equal(t, "pending", alerts[0]["alertstate"])
	assert.NotContains(t, fams, "ALERTS_FOR_STATE")
	assert.Len(t, fams["odd"].Metric, 2)
	assert.NotContains(t, fams, "gone", "stale series are not served")
}

func pairs(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}
