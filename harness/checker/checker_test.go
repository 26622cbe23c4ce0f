package checker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/history"
)

var t0 = time.Date(2026, 2, 14, 12, 0, 0, 0, time.UTC)

// op builds a history entry; n orders it in time.
func op(n int, outcome history.Outcome, kind, capID, mutID, value string) history.Op {
	o := history.Op{Client: strings.SplitN(capID, "-", 2)[0], Op: kind, CaptureID: capID, MutationID: mutID, Value: value,
		Invoke: t0.Add(time.Duration(n) * time.Second), Complete: t0.Add(time.Duration(n)*time.Second + time.Millisecond), Outcome: outcome}
	if outcome == history.Fail {
		o.Error = "sync queue blocked"
	}
	return o
}

// clean: c01 captures 1, edits it, captures 2; one refused write; c02 captures 1.
func cleanHistory() []history.Op {
	return []history.Op{
		op(1, history.OK, "capture", "c01-1", "c01-m1", "a1"),
		op(2, history.OK, "edit", "c01-1", "c01-m2", "a2"),
		op(3, history.OK, "capture", "c01-2", "c01-m3", "b1"),
		op(4, history.Fail, "capture", "c01-3", "c01-m4", "x"),
		op(5, history.OK, "capture", "c02-1", "c02-m1", "z1"),
	}
}

func cleanState() *FinalState {
	return &FinalState{
		Captures: []Capture{{"c01-1", "c01", "a2"}, {"c01-2", "c01", "b1"}, {"c02-1", "c02", "z1"}},
		Applied: []Applied{
			{"c01-m1", "c01-1", "a1"}, {"c01-m2", "c01-1", "a2"}, {"c01-m3", "c01-2", "b1"}, {"c02-m1", "c02-1", "z1"},
		},
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		ops     func() []history.Op
		state   func() *FinalState
		verdict Verdict
		counts  func(c *Counts)   // expected deviations from the clean counts
		kinds   map[Kind][]string // expected anomalies: kind → mutation ids
	}{
		{name: "clean run", verdict: Valid},
		{
			name: "lost acknowledged write",
			state: func() *FinalState {
				s := cleanState()
				s.Applied = s.Applied[:3]
				s.Captures = s.Captures[:2]
				return s
			},
			verdict: Invalid,
			counts:  func(c *Counts) { c.Lost = 1; c.Applied = 3 },
			kinds:   map[Kind][]string{Lost: {"c02-m1"}},
		},
		{
			name: "duplicate application",
			state: func() *FinalState {
				s := cleanState()
				s.Applied = append(s.Applied, Applied{"c01-m3", "c01-2", "b1"})
				return s
			},
			verdict: Invalid,
			counts:  func(c *Counts) { c.Duplicated = 1; c.Applied = 5 },
			kinds:   map[Kind][]string{Duplicated: {"c01-m3"}},
		},
		{
			name: "unexpected mutation never attempted",
			state: func() *FinalState {
				s := cleanState()
				s.Applied = append(s.Applied, Applied{"c09-m1", "c09-1", "ghost"})
				s.Captures = append(s.Captures, Capture{"c09-1", "c09", "ghost"})
				return s
			},
			verdict: Invalid,
			counts:  func(c *Counts) { c.Unexpected = 1; c.Applied = 5 },
			kinds:   map[Kind][]string{Unexpected: {"c09-m1"}},
		},
		{
			name: "unexpected value for a known mutation",
			state: func() *FinalState {
				s := cleanState()
				s.Applied[2].Value = "corrupted"
				s.Captures[1].Value = "corrupted"
				return s
			},
			verdict: Invalid,
			counts:  func(c *Counts) { c.Unexpected = 1; c.Stale = 1 },
			kinds:   map[Kind][]string{Unexpected: {"c01-m3"}, Stale: {"c01-m3"}},
		},
		{
			name: "rejected but applied",
			state: func() *FinalState {
				s := cleanState()
				s.Applied = append(s.Applied, Applied{"c01-m4", "c01-3", "x"})
				s.Captures = append(s.Captures, Capture{"c01-3", "c01", "x"})
				return s
			},
			verdict: Invalid,
			counts:  func(c *Counts) { c.RejectedButApplied = 1; c.Applied = 5 },
			kinds:   map[Kind][]string{RejectedButApplied: {"c01-m4"}},
		},
		{
			name: "stale final value",
			state: func() *FinalState {
				s := cleanState()
				s.Captures[0].Value = "a1" // the edit was applied but overwritten by the older value
				return s
			},
			verdict: Invalid,
			counts:  func(c *Counts) { c.Stale = 1 },
			kinds:   map[Kind][]string{Stale: {"c01-m2"}},
		},
		{
			name: "capture missing from final state",
			state: func() *FinalState {
				s := cleanState()
				s.Captures = s.Captures[1:]
				return s
			},
			verdict: Invalid,
			counts:  func(c *Counts) { c.Stale = 1 },
			kinds:   map[Kind][]string{Stale: {"c01-m2"}},
		},
		{
			name: "info ops applied or not are not anomalies",
			ops: func() []history.Op {
				return append(cleanHistory(),
					op(6, history.Info, "edit", "c02-1", "c02-m2", "z2"),    // applied: becomes the final value
					op(7, history.Info, "capture", "c02-2", "c02-m3", "y1"), // not applied
				)
			},
			state: func() *FinalState {
				s := cleanState()
				s.Applied = append(s.Applied, Applied{"c02-m2", "c02-1", "z2"})
				s.Captures[2].Value = "z2"
				return s
			},
			verdict: Valid,
			counts: func(c *Counts) {
				c.Ops, c.Unknown, c.InfoApplied, c.InfoNotApplied, c.Applied = 7, 2, 1, 1, 5
			},
		},
		{
			name:    "final state unreadable",
			state:   func() *FinalState { return nil },
			verdict: Unknown,
			counts: func(c *Counts) {
				c.Applied = 0
			},
		},
		{
			name:    "nothing acknowledged",
			ops:     func() []history.Op { return []history.Op{op(1, history.Fail, "capture", "c01-1", "c01-m1", "a")} },
			state:   func() *FinalState { return &FinalState{} },
			verdict: Unknown,
			counts:  func(c *Counts) { *c = Counts{Ops: 1, Failed: 1} },
		},
		{
			name: "replayed entry after a restart merges with the original",
			ops: func() []history.Op {
				r := op(9, history.OK, "capture", "c01-2", "c01-m3", "b1")
				r.Replayed = true
				return append(cleanHistory(), r)
			},
			verdict: Valid,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops := cleanHistory()
			if tc.ops != nil {
				ops = tc.ops()
			}
			state := cleanState()
			if tc.state != nil {
				state = tc.state()
			}
			want := Counts{Ops: 5, Acknowledged: 4, Failed: 1, Applied: 4}
			if tc.counts != nil {
				tc.counts(&want)
			}
			res := Check(ops, state)
			assert.Equal(t, tc.verdict, res.Verdict, res.Summary())
			assert.Equal(t, want, res.Counts)
			assert.NotEmpty(t, res.Reasons)
			for _, k := range Kinds {
				var got []string
				for _, a := range res.Anomalies[k] {
					got = append(got, a.MutationID)
					assert.NotEmpty(t, a.Detail)
				}
				assert.Equal(t, tc.kinds[k], got, "anomalies of kind %s", k)
			}
		})
	}
}

func TestAnomalyCarriesOffendingEntry(t *testing.T) {
	s := cleanState()
	s.Applied = append(s.Applied, Applied{"c01-m3", "c01-2", "b1"}, Applied{"c01-m3", "c01-2", "b1"})
	res := Check(cleanHistory(), s)
	require.Len(t, res.Anomalies[Duplicated], 1)
	a := res.Anomalies[Duplicated][0]
	assert.Equal(t, 3, a.Times)
	require.NotNil(t, a.Op)
	assert.Equal(t, "b1", a.Op.Value)
	assert.Equal(t, "c01", a.Client)
}

func TestResultJSONRoundTrip(t *testing.T) {
	s := cleanState()
	s.Applied = s.Applied[1:]
	res := Check(cleanHistory(), s)
	require.Equal(t, Invalid, res.Verdict)
	data, err := json.Marshal(res)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"verdict":"invalid"`)
	assert.Contains(t, string(data), `"rejected-but-applied":[]`)
	var back Result
	require.NoError(t, json.Unmarshal(data, &back))
	// Times lose their monotonic reading in JSON; compare the re-encoded forms.
	again, err := json.Marshal(back)
	require.NoError(t, err)
	assert.JSONEq(t, string(data), string(again))
	assert.Equal(t, res.Counts, back.Counts)
	assert.Equal(t, res.Anomalies[Lost][0].Op.Invoke.UnixNano(), back.Anomalies[Lost][0].Op.Invoke.UnixNano())
}

func TestDecoders(t *testing.T) {
	h := `{"ops":[{"client":"c01","op":"capture","captureId":"c01-1","mutationId":"c01-m1","value":"v",
	        "invoke":"2026-02-14T12:00:00.123456789Z","complete":"2026-02-14T12:00:00.2Z","outcome":"ok"}]}`
	ops, err := DecodeHistory(strings.NewReader(h))
	require.NoError(t, err)
	require.Len(t, ops, 1)
	assert.Equal(t, 123456789, ops[0].Invoke.Nanosecond())
	arr, err := DecodeHistory(strings.NewReader(`[` + h[8:len(h)-2] + `]`))
	require.NoError(t, err)
	assert.Equal(t, ops, arr)
	_, err = DecodeHistory(strings.NewReader("nope"))
	assert.Error(t, err)

	st, err := DecodeState(strings.NewReader(`{"captures":[{"captureId":"c01-1","clientId":"c01","value":"v"}],"applied":[{"mutationId":"c01-m1","captureId":"c01-1","value":"v"}]}`))
	require.NoError(t, err)
	assert.Equal(t, Valid, Check(ops, st).Verdict)
}

// TestCheckMoreAnomalies covers shapes of the anomalies that TestCheck's table does not:
// a lost edit (its capture exists with the older value, so only "lost" can see it), a
// refused write applied twice, a mutation applied to another capture, a refused edit that
// overwrote an acknowledged value, and several anomalies in one run.
func TestCheckMoreAnomalies(t *testing.T) {
	t.Run("lost acknowledged edit of an applied capture", func(t *testing.T) {
		s := cleanState()
		s.Applied = append(s.Applied[:1], s.Applied[2:]...) // c01-m2 (edit a2) never applied
		s.Captures[0].Value = "a1"
		res := Check(cleanHistory(), s)
		assert.Equal(t, Invalid, res.Verdict)
		assert.Equal(t, 1, res.Counts.Lost)
		assert.Equal(t, 0, res.Counts.Stale, "the final value is that of the last applied mutation")
		require.Len(t, res.Anomalies[Lost], 1)
		assert.Equal(t, "c01-m2", res.Anomalies[Lost][0].MutationID)
		assert.Equal(t, "a2", res.Anomalies[Lost][0].Expected)
	})
	t.Run("refused write applied twice is duplicated and rejected-but-applied", func(t *testing.T) {
		s := cleanState()
		s.Applied = append(s.Applied, Applied{"c01-m4", "c01-3", "x"}, Applied{"c01-m4", "c01-3", "x"})
		s.Captures = append(s.Captures, Capture{"c01-3", "c01", "x"})
		res := Check(cleanHistory(), s)
		assert.Equal(t, Invalid, res.Verdict)
		assert.Equal(t, 1, res.Counts.Duplicated)
		assert.Equal(t, 1, res.Counts.RejectedButApplied)
		assert.Equal(t, 2, res.Anomalies[Duplicated][0].Times)
	})
	t.Run("mutation applied to another capture with its value", func(t *testing.T) {
		s := cleanState()
		s.Applied[2].CaptureID = "c01-1" // c01-m3 (capture c01-2 = b1) landed on c01-1
		res := Check(cleanHistory(), s)
		assert.Equal(t, Invalid, res.Verdict)
		require.Len(t, res.Anomalies[Unexpected], 1)
		a := res.Anomalies[Unexpected][0]
		assert.Equal(t, "c01-m3", a.MutationID)
		assert.Equal(t, "c01-1", a.CaptureID)
	})
	t.Run("refused edit applied over an acknowledged value", func(t *testing.T) {
		ops := append(cleanHistory(), op(6, history.Fail, "edit", "c01-2", "c01-m5", "refused"))
		s := cleanState()
		s.Applied = append(s.Applied, Applied{"c01-m5", "c01-2", "refused"})
		s.Captures[1].Value = "refused"
		res := Check(ops, s)
		assert.Equal(t, Invalid, res.Verdict)
		assert.Equal(t, []string{"c01-m5"}, ids(res.Anomalies[RejectedButApplied]))
		assert.Equal(t, []string{"c01-m3"}, ids(res.Anomalies[Stale]), "the user's acknowledged b1 was overwritten")
		assert.Equal(t, "b1", res.Anomalies[Stale][0].Expected)
		assert.Equal(t, "refused", res.Anomalies[Stale][0].Actual)
	})
	t.Run("acknowledged then refused entries of one id: the acknowledgement counts", func(t *testing.T) {
		// A refused entry must never hide an acknowledgement of the same mutation.
		ops := append(cleanHistory(), op(9, history.Fail, "capture", "c02-1", "c02-m1", "z1"))
		s := cleanState()
		s.Applied = s.Applied[:3]
		s.Captures = s.Captures[:2]
		res := Check(ops, s)
		assert.Equal(t, Invalid, res.Verdict)
		assert.Equal(t, []string{"c02-m1"}, ids(res.Anomalies[Lost]))
	})
	t.Run("every kind at once is counted per kind", func(t *testing.T) {
		ops := append(cleanHistory(), op(6, history.OK, "capture", "c02-2", "c02-m2", "lost-me"))
		s := cleanState()
		s.Applied = append(s.Applied,
			Applied{"c01-m3", "c01-2", "b1"},    // duplicated
			Applied{"c09-m1", "c09-1", "ghost"}, // unexpected
			Applied{"c01-m4", "c01-3", "x"},     // rejected but applied
		)
		s.Captures = append(s.Captures, Capture{"c09-1", "c09", "ghost"}, Capture{"c01-3", "c01", "x"})
		s.Captures[0].Value = "a1" // stale
		res := Check(ops, s)
		assert.Equal(t, Invalid, res.Verdict)
		assert.Equal(t, 1, res.Counts.Lost)
		assert.Equal(t, 1, res.Counts.Duplicated)
		assert.Equal(t, 1, res.Counts.Unexpected)
		assert.Equal(t, 1, res.Counts.RejectedButApplied)
		assert.Equal(t, 1, res.Counts.Stale)
		sum := res.Summary()
		for _, k := range Kinds {
			assert.Contains(t, sum, string(k)+" ", "summary names every anomaly kind found")
		}
	})
}

func ids(as []Anomaly) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.MutationID)
	}
	return out
}
