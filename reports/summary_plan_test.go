package reports_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
	"github.com/pocketbrain/chaos/reports"
)

// The console summary names the planned items the evidence lacks, before the other lines;
// a run that ran its whole plan has no such line.
func TestSummaryTableNamesWhatWasNotRun(t *testing.T) {
	run := evidencetest.SampleRun()
	assert.NotContains(t, reports.SummaryTable(run), "not run")

	run.Rows, run.Canary = run.Rows[:2], nil
	got := reports.SummaryTable(run)
	t.Log("\n" + got)
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	assert.Equal(t, "", lines[3], "header, two rows, a blank line")
	assert.Regexp(t, `^not run +2 of 9 planned items: row queue-overflow, canary$`, lines[4])
}
