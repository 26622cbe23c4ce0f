package signals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
)

// FlattenJSON turns a JSON document into metric samples: each numeric leaf at
// path a.bC.d becomes <prefix>_a_b_c_d (camelCase to snake_case, existing
// underscores kept), booleans count as 0/1. Strings and nulls are not signals
// and are skipped; arrays are skipped too, because an element index is not a
// stable identity for a series (the worker's metrics document has none).
// The result maps metric name to value.
func FlattenJSON(prefix string, r io.Reader) (map[string]float64, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode JSON metrics: %w (the endpoint must return one JSON object)", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, fmt.Errorf("JSON metrics: top level is %T, want an object", doc)
	}
	out := map[string]float64{}
	var walk func(path []string, v any) error
	walk = func(path []string, v any) error {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if err := walk(append(path, k), x[k]); err != nil {
					return err
				}
			}
		case json.Number:
			f, err := x.Float64()
			if err != nil {
				return fmt.Errorf("JSON metrics: %s = %s is not a float64: %w", strings.Join(path, "."), x, err)
			}
			return put(out, prefix, path, f)
		case bool:
			f := 0.0
			if x {
				f = 1
			}
			return put(out, prefix, path, f)
		}
		return nil
	}
	if err := walk(nil, doc); err != nil {
		return nil, err
	}
	return out, nil
}

func put(out map[string]float64, prefix string, path []string, f float64) error {
	name := JSONMetricName(prefix, path...)
	if _, dup := out[name]; dup {
		// e.g. "fooBar" and "foo_bar" side by side: refuse rather than let one hide the other.
		return fmt.Errorf("JSON metrics: two leaves flatten to %s (last at %s); rename one of the fields", name, strings.Join(path, "."))
	}
	out[name] = f
	return nil
}

// JSONMetricName is the metric name of the JSON leaf at path under prefix:
// JSONMetricName("pocketbrain_worker", "reliability", "authConfig", "missingClerkConfig")
// is "pocketbrain_worker_reliability_auth_config_missing_clerk_config".
func JSONMetricName(prefix string, path ...string) string {
	parts := make([]string, 0, len(path)+1)
	if prefix != "" {
		parts = append(parts, prefix)
	}
	for _, p := range path {
		if s := SnakeCase(p); s != "" {
			parts = append(parts, s)
		}
	}
	name := strings.Join(parts, "_")
	// A Prometheus 2.x name cannot start with a digit.
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "_" + name
	}
	return name
}

// SnakeCase converts one JSON key to snake_case with only [a-z0-9_]:
// vpsProxyCircuitOpens → vps_proxy_circuit_opens, HTTPStatus → http_status,
// origin_unconfigured stays, http2Errors → http2_errors; any other character
// becomes '_'.
func SnakeCase(s string) string {
	rs := []rune(s)
	var b bytes.Buffer
	lastUnderscore := func() bool { return b.Len() > 0 && b.Bytes()[b.Len()-1] == '_' }
	for i, r := range rs {
		switch {
		case r < unicode.MaxASCII && unicode.IsUpper(r):
			prevLowerOrDigit := i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]))
			// End of an acronym: the U in "HTTPStatus" before "S"+"tatus".
			acronymEnd := i > 0 && unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if (prevLowerOrDigit || acronymEnd) && !lastUnderscore() {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case r < unicode.MaxASCII && (unicode.IsLower(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		default:
			if !lastUnderscore() {
				b.WriteByte('_')
			}
		}
	}
	return strings.Trim(b.String(), "_")
}
