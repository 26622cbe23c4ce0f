package signals

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12 §3: a rule whose label matcher matches no exposed value (probe="server_raedy")
// is refused, each message placed at the rule's file:line. The check itself (which
// values are known) is the catalogue's; here a stand-in refuses one value.
func TestValidateMatchersNamesRuleAndLine(t *testing.T) {
	const readiness = `groups:
  - name: pocketbrain-rollback-triggers
    rules:
      - alert: DeployDrift
        expr: count(pocketbrain_build_info) > 1
      - alert: ReadinessRegression
        expr: min by (probe) (probe_success{probe=~"server_raedy|worker_ready"}) == 0
        for: 2m
`
	r := parseRules(t, []RuleOption{WithWindowScale(1.0 / 30), WithForScale(1.0 / 60)},
		RuleFile{Name: "rules/alerts.yml", Content: []byte(readiness)})
	var seen []string
	check := func(expr string) []string {
		seen = append(seen, expr)
		if strings.Contains(expr, `"server_raedy|`) {
			return []string{`matcher probe=~"server_raedy|worker_ready" has alternatives that match no value a target exposes; fix: did you mean probe=~"server_ready|worker_ready"?`}
		}
		return nil
	}
	err := r.ValidateMatchers(check)
	require.Error(t, err)
	t.Log(err)
	msg := err.Error()
	assert.Contains(t, msg, "1 label matcher in rules matches no value")
	assert.Contains(t, msg, `rules/alerts.yml:6: alerting rule "ReadinessRegression" (group "pocketbrain-rollback-triggers"): matcher probe=~"server_raedy|worker_ready"`)
	assert.Contains(t, msg, `did you mean probe=~"server_ready|worker_ready"?`)
	assert.NotContains(t, msg, "DeployDrift")
	assert.Contains(t, msg, "\nfix:")
	assert.Len(t, seen, 2, "every rule is checked")
	assert.Contains(t, seen, `min by (probe) (probe_success{probe=~"server_raedy|worker_ready"}) == 0`, "expressions are checked as written, not scaled")

	require.NoError(t, r.ValidateMatchers(func(string) []string { return nil }))
}
