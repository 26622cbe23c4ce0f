package reports_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/reports"
)

func TestSummaryTable(t *testing.T) {
	run := noGoRun()
	run.Rows[0].Times.Detect = evidence.MillisPtr(850 * time.Millisecond)
	run.Rows[0].Times.Recover = evidence.MillisPtr(1234 * time.Millisecond)
	run.Rows[2].DataLoss = nil
	run.Baseline[1].Pass, run.Baseline[1].Observed = false, "1"
	run.Canary.Pass = false
	run.Canary.Triggers[1].EverFired = true

	got := reports.SummaryTable(run)
	t.Log("\n" + got)
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	require.Len(t, lines, 1+3+1+4, "header, three rows, a blank line, baseline, gate, control, canary")

	assert.Equal(t, []string{"row", "status", "detect", "fire", "recover", "data", "loss"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"vps-path", "passed", "850", "ms", "12.4", "s", "1.2", "s", "valid"}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"redis-ready", "failed", "3.2", "s", "—", "—", "invalid", "(lost", "2)"}, strings.Fields(lines[2]))
	assert.Equal(t, []string{"queue-overflow", "passed", "3.2", "s", "12.4", "s", "6.1", "s", "—"}, strings.Fields(lines[3]))
	// Aligned columns: every column starts at the same rune offset on every line.
	for _, col := range []string{"status", "detect", "fire", "recover", "data loss"} {
		at := runeIndex(lines[0], col)
		require.Positive(t, at, col)
		for _, l := range lines[1:4] {
			r := []rune(l)
			require.Greater(t, len(r), at, "line %q", l)
			assert.NotEqual(t, ' ', r[at], "column %s of %q does not start at rune %d", col, l, at)
			assert.Equal(t, ' ', r[at-1], "column %s of %q does not start at rune %d", col, l, at)
		}
	}
	assert.Equal(t, "", lines[4])
	assert.Regexp(t, `^baseline +1/2 pass — differs: GET /metrics pocketbrain_redis_ready_degraded$`, lines[5])
	assert.Regexp(t, `^gate +3 steps: 1 pass, 1 fail, 1 n/a — step 1 config:check \(fail\)$`, lines[6])
	assert.Regexp(t, `^control +pass — planned 3m 00s, ran 3m 00s, 3 triggers, none fired$`, lines[7])
	assert.Regexp(t, `^canary +fail — planned 3m 00s, ran 3m 00s, 1 of 3 triggers fired: QueueNonRecovery$`, lines[8])
	assert.NotContains(t, got, "never fired within", "failure text belongs in the report, not the table")
}

func TestSummaryTableOfAnEmptyRun(t *testing.T) {
	run := &evidence.Run{Schema: evidence.SchemaVersion, RunID: "r", Profile: evidence.ProfileFast}
	assert.Equal(t, "rows  none recorded\n", reports.SummaryTable(run))
	assert.Equal(t, "", reports.SummaryTable(nil))
}

func runeIndex(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		return -1
	}
	return utf8.RuneCountInString(s[:i])
}
