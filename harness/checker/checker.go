// Package checker is the Jepsen-style no-data-loss checker: the client history and the
// server's final state go in, a verdict comes out. It is pure (no I/O besides the decoders)
// so a stored run can be re-checked offline (cmd/pbcheck).
//
// Definitions (per mutationId; history entries with the same id, e.g. replayed after a
// restart, are merged, the strongest outcome winning: ok > info > fail):
//   - lost: acknowledged (ok) but not among the applied rows;
//   - duplicated: applied more than once;
//   - unexpected: applied but never attempted, or applied with another value/capture than attempted;
//   - rejected-but-applied: refused to the user (fail) but applied;
//   - stale: a capture's final value is not the value of its last applied ok-or-info mutation in
//     the client's order (or the capture is missing from the final state).
//
// info ops may or may not be applied; the applied rows decide which, so they are counted
// (InfoApplied, InfoNotApplied) and never anomalies. An applied info op also counts as a
// candidate for the last value of its capture, since it may legitimately have been last.
//
// Verdict: invalid if any anomaly. Otherwise unknown if the final state could not be read (nil)
// or no op was acknowledged (nothing was checked: a run that proves nothing must not pass).
// Info ops never make the verdict unknown on their own, because the applied rows resolve them.
// Otherwise valid.
package checker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pocketbrain/chaos/harness/history"
)

// Verdict of a check.
type Verdict string

const (
	Valid   Verdict = "valid"
	Invalid Verdict = "invalid"
	Unknown Verdict = "unknown"
)

// Kind of anomaly.
type Kind string

const (
	Lost               Kind = "lost"
	Duplicated         Kind = "duplicated"
	Unexpected         Kind = "unexpected"
	RejectedButApplied Kind = "rejected-but-applied"
	Stale              Kind = "stale"
)

// Kinds lists every anomaly kind, in report order.
var Kinds = []Kind{Lost, Duplicated, Unexpected, RejectedButApplied, Stale}

// FinalState is what the store holds at the end: read straight from Postgres
// (harness/workload), never from the server under test.
type FinalState struct {
	Captures []Capture `json:"captures"`
	Applied  []Applied `json:"applied"`
	// OtherCaptures counts the captures of clients the state was not asked for (the
	// seeded data set), when it was asked for some clients only.
	OtherCaptures *int64 `json:"otherCaptures,omitempty"`
}

// Capture is one live capture with its final value.
type Capture struct {
	CaptureID string `json:"captureId"`
	ClientID  string `json:"clientId"`
	Value     string `json:"value"`
}

// Applied is one application of one mutation (a mutation applied twice shows twice).
type Applied struct {
	MutationID string `json:"mutationId"`
	CaptureID  string `json:"captureId"`
	Value      string `json:"value"`
}

// Counts summarises a check.
type Counts struct {
	Ops                int `json:"ops"` // distinct mutations in the history
	Acknowledged       int `json:"acknowledged"`
	Failed             int `json:"failed"`
	Unknown            int `json:"unknown"`
	InfoApplied        int `json:"infoApplied"`
	InfoNotApplied     int `json:"infoNotApplied"`
	Applied            int `json:"applied"` // applied rows in the final state
	Lost               int `json:"lost"`
	Duplicated         int `json:"duplicated"`
	Unexpected         int `json:"unexpected"`
	RejectedButApplied int `json:"rejectedButApplied"`
	Stale              int `json:"stale"`
}

// Anomaly is one offending entry.
type Anomaly struct {
	Kind       Kind        `json:"kind"`
	MutationID string      `json:"mutationId,omitempty"`
	CaptureID  string      `json:"captureId,omitempty"`
	Client     string      `json:"client,omitempty"`
	Op         *history.Op `json:"op,omitempty"`       // the history entry, when there is one
	Times      int         `json:"times,omitempty"`    // duplicated: how often applied
	Expected   string      `json:"expected,omitempty"` // value the history implies
	Actual     string      `json:"actual,omitempty"`   // value the server holds
	Detail     string      `json:"detail"`
}

// Result is the checker's output.
type Result struct {
	Verdict   Verdict            `json:"verdict"`
	Counts    Counts             `json:"counts"`
	Anomalies map[Kind][]Anomaly `json:"anomalies"` // every kind present, empty when clean
	Reasons   []string           `json:"reasons"`   // why this verdict, in words
}

// Check judges ops against the final state; state nil means it could not be read.
func Check(ops []history.Op, state *FinalState) Result {
	res := Result{Anomalies: map[Kind][]Anomaly{}, Reasons: []string{}}
	for _, k := range Kinds {
		res.Anomalies[k] = []Anomaly{}
	}
	byID := merge(ops)
	for _, op := range byID {
		switch op.Outcome {
		case history.OK:
			res.Counts.Acknowledged++
		case history.Fail:
			res.Counts.Failed++
		default:
			res.Counts.Unknown++
		}
	}
	res.Counts.Ops = len(byID)

	if state == nil {
		res.Verdict = Unknown
		res.Reasons = append(res.Reasons, "the server's final state could not be read, so no history op could be checked")
		return res
	}

	rows := map[string][]Applied{}
	var order []string
	for _, a := range state.Applied {
		if _, seen := rows[a.MutationID]; !seen {
			order = append(order, a.MutationID)
		}
		rows[a.MutationID] = append(rows[a.MutationID], a)
	}
	res.Counts.Applied = len(state.Applied)
	add := func(a Anomaly) { res.Anomalies[a.Kind] = append(res.Anomalies[a.Kind], a) }

	for _, id := range order {
		rs := rows[id]
		op, attempted := byID[id]
		if len(rs) > 1 {
			add(Anomaly{Kind: Duplicated, MutationID: id, CaptureID: rs[0].CaptureID, Client: clientOf(op, id),
				Op: opPtr(op, attempted), Times: len(rs), Detail: fmt.Sprintf("mutation applied %d times", len(rs))})
		}
		if !attempted {
			add(Anomaly{Kind: Unexpected, MutationID: id, CaptureID: rs[0].CaptureID, Client: clientOf(op, id),
				Actual: rs[0].Value, Detail: "applied but never attempted by any client"})
			continue
		}
		for _, r := range rs {
			if r.Value != op.Value || r.CaptureID != op.CaptureID {
				add(Anomaly{Kind: Unexpected, MutationID: id, CaptureID: r.CaptureID, Client: op.Client, Op: opPtr(op, true),
					Expected: op.Value, Actual: r.Value,
					Detail: fmt.Sprintf("applied to %s with a value other than the one attempted on %s", r.CaptureID, op.CaptureID)})
				break
			}
		}
		if op.Outcome == history.Fail {
			add(Anomaly{Kind: RejectedButApplied, MutationID: id, CaptureID: op.CaptureID, Client: op.Client, Op: opPtr(op, true),
				Actual: rs[0].Value, Detail: "the user was told the write failed (" + op.Error + ") but the server applied it"})
		}
	}

	ids := sortedKeys(byID)
	for _, id := range ids {
		op := byID[id]
		_, applied := rows[id]
		switch op.Outcome {
		case history.OK:
			if !applied {
				add(Anomaly{Kind: Lost, MutationID: id, CaptureID: op.CaptureID, Client: op.Client, Op: opPtr(op, true),
					Expected: op.Value, Detail: "acknowledged to the user but never applied"})
			}
		case history.Fail:
		default:
			if applied {
				res.Counts.InfoApplied++
			} else {
				res.Counts.InfoNotApplied++
			}
		}
	}

	// Final values: per capture, the last applied ok/info mutation in the client's order.
	final := map[string]Capture{}
	for _, c := range state.Captures {
		final[c.CaptureID] = c
	}
	perCapture := map[string][]history.Op{}
	for _, id := range ids {
		op := byID[id]
		if _, applied := rows[id]; applied && op.Outcome != history.Fail {
			perCapture[op.CaptureID] = append(perCapture[op.CaptureID], op)
		}
	}
	for _, capID := range sortedKeys(perCapture) {
		list := perCapture[capID]
		sort.SliceStable(list, func(i, j int) bool { return before(list[i], list[j]) })
		last := list[len(list)-1]
		got, ok := final[capID]
		switch {
		case !ok:
			add(Anomaly{Kind: Stale, MutationID: last.MutationID, CaptureID: capID, Client: last.Client, Op: opPtr(last, true),
				Expected: last.Value, Detail: "capture missing from the final state although mutations for it were applied"})
		case got.Value != last.Value:
			add(Anomaly{Kind: Stale, MutationID: last.MutationID, CaptureID: capID, Client: last.Client, Op: opPtr(last, true),
				Expected: last.Value, Actual: got.Value, Detail: "final value is not the value of the last applied mutation " + last.MutationID})
		}
	}

	res.Counts.Lost = len(res.Anomalies[Lost])
	res.Counts.Duplicated = len(res.Anomalies[Duplicated])
	res.Counts.Unexpected = len(res.Anomalies[Unexpected])
	res.Counts.RejectedButApplied = len(res.Anomalies[RejectedButApplied])
	res.Counts.Stale = len(res.Anomalies[Stale])

	var bad []string
	for _, k := range Kinds {
		if n := len(res.Anomalies[k]); n > 0 {
			bad = append(bad, fmt.Sprintf("%d %s", n, k))
		}
	}
	switch {
	case len(bad) > 0:
		res.Verdict = Invalid
		res.Reasons = append(res.Reasons, "anomalies: "+strings.Join(bad, ", "))
	case res.Counts.Acknowledged == 0:
		res.Verdict = Unknown
		res.Reasons = append(res.Reasons, "no op was acknowledged, so the run proves nothing about data loss")
	default:
		res.Verdict = Valid
		res.Reasons = append(res.Reasons, fmt.Sprintf("all %d acknowledged mutations applied exactly once with their values, final values current", res.Counts.Acknowledged))
	}
	if res.Counts.Unknown > 0 {
		res.Reasons = append(res.Reasons, fmt.Sprintf("%d info ops resolved by the final state: %d applied, %d not applied (neither is an anomaly)",
			res.Counts.Unknown, res.Counts.InfoApplied, res.Counts.InfoNotApplied))
	}
	return res
}

// merge keys ops by mutationId, the strongest outcome winning (ok > info > fail), so an entry
// re-recorded at a client restart does not count twice. Ops without an id are ignored.
func merge(ops []history.Op) map[string]history.Op {
	rank := map[history.Outcome]int{history.Fail: 0, history.Info: 1, history.OK: 2}
	out := map[string]history.Op{}
	for _, op := range ops {
		if op.MutationID == "" {
			continue
		}
		if _, known := rank[op.Outcome]; !known {
			op.Outcome = history.Info // an outcome we do not know is an unknown outcome
		}
		if prev, ok := out[op.MutationID]; ok {
			if rank[op.Outcome] < rank[prev.Outcome] || (op.Outcome == prev.Outcome && op.Replayed) {
				continue
			}
		}
		out[op.MutationID] = op
	}
	return out
}

// before orders a client's ops: by the id's sequence number, then invoke time.
func before(a, b history.Op) bool {
	if a.Client != b.Client {
		return a.Invoke.Before(b.Invoke)
	}
	na, oka := history.Seq(a.MutationID)
	nb, okb := history.Seq(b.MutationID)
	if oka && okb && na != nb {
		return na < nb
	}
	return a.Invoke.Before(b.Invoke)
}

func opPtr(op history.Op, ok bool) *history.Op {
	if !ok {
		return nil
	}
	return &op
}

func clientOf(op history.Op, id string) string {
	if op.Client != "" {
		return op.Client
	}
	c, _, _ := strings.Cut(id, "-")
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Summary is a short human-readable report.
func (r Result) Summary() string {
	var b strings.Builder
	c := r.Counts
	fmt.Fprintf(&b, "verdict: %s\n", r.Verdict)
	fmt.Fprintf(&b, "ops %d: acknowledged %d, failed %d, unknown %d (applied %d, not applied %d); applied rows %d\n",
		c.Ops, c.Acknowledged, c.Failed, c.Unknown, c.InfoApplied, c.InfoNotApplied, c.Applied)
	fmt.Fprintf(&b, "lost %d, duplicated %d, unexpected %d, rejected-but-applied %d, stale %d\n",
		c.Lost, c.Duplicated, c.Unexpected, c.RejectedButApplied, c.Stale)
	for _, reason := range r.Reasons {
		fmt.Fprintf(&b, "- %s\n", reason)
	}
	for _, k := range Kinds {
		for i, a := range r.Anomalies[k] {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more %s\n", len(r.Anomalies[k])-20, k)
				break
			}
			fmt.Fprintf(&b, "  %s %s %s: %s", k, a.MutationID, a.CaptureID, a.Detail)
			if a.Expected != "" || a.Actual != "" {
				fmt.Fprintf(&b, " (expected %q, actual %q)", a.Expected, a.Actual)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// DecodeHistory reads a history as served by GET /history ({"ops":[…]}) or a bare array.
func DecodeHistory(r io.Reader) ([]history.Op, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var ops []history.Op
		if err := json.Unmarshal(data, &ops); err != nil {
			return nil, fmt.Errorf("history is not a JSON array of ops: %w", err)
		}
		return ops, nil
	}
	var h history.History
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf(`history is not {"ops":[…]} JSON: %w`, err)
	}
	return h.Ops, nil
}

// DecodeState reads a FinalState JSON document.
func DecodeState(r io.Reader) (*FinalState, error) {
	var s FinalState
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf(`final state is not {"captures":[…],"applied":[…]} JSON: %w`, err)
	}
	return &s, nil
}
