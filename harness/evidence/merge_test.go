package evidence_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/evidence/evidencetest"
)

// shards splits the sample run in two, the way two label filters would.
func shards() (*evidence.Run, *evidence.Run) {
	a, b := evidencetest.SampleRun(), evidencetest.SampleRun()
	a.RunID, b.RunID = "shard-a", "shard-b"
	a.Provenance.LabelFilter, b.Provenance.LabelFilter = "network", "!network"
	a.Provenance.Host, b.Provenance.Host = "ci-1", "ci-2"
	a.Rows, b.Rows = a.Rows[:2], a.Rows[2:]
	b.Control, b.Canary, b.Gate, b.Baseline = nil, nil, nil, nil
	b.Provenance.Images = append(b.Provenance.Images, evidence.Image{Role: "clients", Ref: "pocketbrain-local/clients:dev", ID: "sha256:3333"})
	b.Started = a.Started.Add(-time.Minute)
	b.Ended = a.Ended.Add(time.Hour)
	// Each shard on its own is not release evidence.
	a.Verdict, b.Verdict = evidence.ComputeVerdict(a), evidence.ComputeVerdict(b)
	return a, b
}

func TestMergeShards(t *testing.T) {
	a, b := shards()
	assert.Equal(t, evidence.DecisionIncomplete, b.Verdict.Decision, "a shard alone lacks the other shard's items")
	m, err := evidence.Merge(a, b)
	require.NoError(t, err)
	full := evidencetest.SampleRun()
	assert.Equal(t, full.Rows, m.Rows, "union of rows, in shard order")
	assert.Equal(t, evidence.DecisionGo, m.Verdict.Decision, "%v", m.Verdict.Reasons)
	assert.Equal(t, "shard-a+shard-b", m.RunID)
	assert.Equal(t, b.Started, m.Started)
	assert.Equal(t, b.Ended, m.Ended)
	assert.Len(t, m.Provenance.Images, 3)
	assert.Equal(t, "ci-1, ci-2", m.Provenance.Host)
	require.Len(t, m.Shards, 2)
	assert.Equal(t, []string{"vps-path", "redis-ready"}, m.Shards[0].Rows)
	assert.Equal(t, "!network", m.Shards[1].LabelFilter)
	require.NoError(t, evidence.Validate(m))
	assert.Len(t, a.Rows, 2, "inputs untouched")
}

func TestMergeIdenticalDuplicatesAccepted(t *testing.T) {
	a, b := shards()
	b.Rows = append(b.Rows, a.Rows[0])
	m, err := evidence.Merge(a, b)
	require.NoError(t, err)
	assert.Len(t, m.Rows, 3)
}

func TestMergeConflicts(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(a, b *evidence.Run)
		want   []string
	}{
		{"duplicate row differs", func(a, b *evidence.Run) {
			r := a.Rows[0]
			r.Status = evidence.StatusFailed
			b.Rows = append(b.Rows, r)
		}, []string{`row "vps-path"`, "shard 1 (run shard-a)", "shard 2 (run shard-b)", "label-filter"}},
		{"harness revision", func(a, b *evidence.Run) { b.Provenance.HarnessRevision = "fff" }, []string{"harness revision", `"abc1234def5678"`, `"fff"`, "same commit"}},
		{"file hash", func(a, b *evidence.Run) { b.Provenance.Files[0].SHA256 = "ff99" }, []string{"suites/matrix.yaml differs", "shard-a", "shard-b"}},
		{"file missing", func(a, b *evidence.Run) { b.Provenance.Files = b.Provenance.Files[:1] }, []string{"harness/rules/triggers.rules.yml", "did not"}},
		{"profile", func(a, b *evidence.Run) { b.Profile = evidence.ProfileRelease }, []string{"profile"}},
		{"control twice", func(a, b *evidence.Run) { c := *a.Control; c.Pass = false; b.Control = &c }, []string{"control window is in both"}},
		{"gate step twice", func(a, b *evidence.Run) {
			b.Gate = []evidence.GateStep{{Step: 1, Name: "config:check", Result: evidence.GateFail}}
		}, []string{"release-gate step 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := shards()
			tc.mutate(a, b)
			_, err := evidence.Merge(a, b)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := evidence.Merge()
	assert.ErrorContains(t, err, "no evidence files")
}

func TestMergeIncompleteShard(t *testing.T) {
	a, b := shards()
	b.Complete, b.Interrupted, b.InterruptReason = false, true, "signal interrupt"
	m, err := evidence.Merge(a, b)
	require.NoError(t, err)
	assert.False(t, m.Complete)
	assert.Equal(t, evidence.DecisionIncomplete, m.Verdict.Decision)
	assert.Contains(t, m.InterruptReason, "shard 2 (run shard-b): signal interrupt")
}
