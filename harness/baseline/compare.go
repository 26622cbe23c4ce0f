package baseline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Capture is the raw answer of every baseline endpoint, keyed by Endpoint.Label.
type Capture struct {
	At     time.Time     // when the endpoints were read
	Waited time.Duration // the clean start before the read
	Bodies map[string][]byte
	Status map[string]int
	Err    error // the capture could not be taken; Bodies may be partial
}

// Compare compares a capture with the document's values, one check per value (a
// wildcard field gives one check per leaf found). An endpoint missing from the capture,
// or answering something that does not parse, fails each of its checks with the reason
// as the observed value.
func Compare(spec *Spec, c *Capture) []evidence.BaselineCheck {
	var out []evidence.BaselineCheck
	for _, e := range spec.Endpoints {
		label := e.Label()
		body, code := c.Bodies[label], c.Status[label]
		fail := func(field, doc, observed string) {
			out = append(out, evidence.BaselineCheck{Endpoint: label, Field: field, Document: doc, Observed: observed})
		}
		switch e.Format {
		case FormatJSON:
			var doc any
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			derr := dec.Decode(&doc)
			for _, x := range e.Expect {
				if derr != nil {
					fail(x.Field, x.Value, fmt.Sprintf("<status %d, not JSON: %v>", code, derr))
					continue
				}
				if prefix, ok := strings.CutSuffix(x.Field, ".*"); ok {
					leaves := jsonLeaves(jsonAt(doc, prefix), prefix)
					if len(leaves) == 0 {
						fail(x.Field, x.Value, "<no field under "+prefix+">")
						continue
					}
					for _, l := range leaves {
						out = append(out, evidence.BaselineCheck{Endpoint: label, Field: l.path, Document: x.Value, Observed: l.value, Pass: SameValue(x.Value, l.value)})
					}
					continue
				}
				v := jsonAt(doc, x.Field)
				obs := jsonScalar(v)
				out = append(out, evidence.BaselineCheck{Endpoint: label, Field: x.Field, Document: x.Value, Observed: obs, Pass: v != nil && SameValue(x.Value, obs)})
			}
		case FormatPrometheus:
			samples, perr := signals.ParseText(bytes.NewReader(body), signals.Target{Name: "baseline", Kind: signals.KindPrometheus})
			for _, x := range e.Expect {
				if perr != nil {
					fail(x.Field, x.Value, fmt.Sprintf("<status %d, not Prometheus text: %v>", code, perr))
					continue
				}
				var vals []string
				pass := true
				for _, s := range samples {
					if s.Labels.Get("__name__") != x.Field {
						continue
					}
					v := strconv.FormatFloat(s.Value, 'g', -1, 64)
					vals = append(vals, v)
					pass = pass && SameValue(x.Value, v)
				}
				if len(vals) == 0 {
					fail(x.Field, x.Value, "<absent>")
					continue
				}
				out = append(out, evidence.BaselineCheck{Endpoint: label, Field: x.Field, Document: x.Value, Observed: strings.Join(vals, ", "), Pass: pass})
			}
		}
	}
	return out
}

// SameValue compares as numbers when both parse, else as text.
func SameValue(doc, observed string) bool {
	a, errA := strconv.ParseFloat(doc, 64)
	b, errB := strconv.ParseFloat(observed, 64)
	if errA == nil && errB == nil {
		return a == b
	}
	return doc == observed
}

// jsonAt walks a dotted path; nil when any step is missing.
func jsonAt(doc any, path string) any {
	cur := doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[k]; !ok {
			return nil
		}
	}
	return cur
}

type jsonLeaf struct{ path, value string }

// jsonLeaves lists every scalar below v with its full path, sorted.
func jsonLeaves(v any, prefix string) []jsonLeaf {
	var out []jsonLeaf
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			out = append(out, jsonLeaves(c, prefix+"."+k)...)
		}
	case nil:
	default:
		out = append(out, jsonLeaf{prefix, jsonScalar(t)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func jsonScalar(v any) string {
	switch t := v.(type) {
	case nil:
		return "<absent>"
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return t.String()
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}
