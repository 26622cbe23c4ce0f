package evidence

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Duration is a time.Duration that travels in JSON as a whole number of
// milliseconds: one unambiguous number is easy to compare, sort and chart in
// any tool; the unit is in every field name (`*_ms`). Sub-millisecond parts
// are dropped when the value is made (Millis) so memory and file agree.
type Duration struct{ time.Duration }

// Millis truncates d to whole milliseconds.
func Millis(d time.Duration) Duration { return Duration{d.Truncate(time.Millisecond)} }

// MillisPtr is Millis for the optional fields of Times.
func MillisPtr(d time.Duration) *Duration { v := Millis(d); return &v }

// MarshalJSON writes the whole milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, d.Milliseconds(), 10), nil
}

// UnmarshalJSON reads whole milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms int64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration: want whole milliseconds as a JSON number, got %s", b)
	}
	d.Duration = time.Duration(ms) * time.Millisecond
	return nil
}

// Float is a sample value. PromQL yields NaN and ±Inf, which plain JSON
// cannot hold; they travel as the strings "NaN", "+Inf", "-Inf" (as in the
// Prometheus HTTP API) so an evidence file is always valid JSON.
type Float float64

// MarshalJSON writes a number, or a string for NaN and ±Inf.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number or one of "NaN", "+Inf", "-Inf".
func (f *Float) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = Float(math.NaN())
		case "+Inf", "Inf":
			*f = Float(math.Inf(1))
		case "-Inf":
			*f = Float(math.Inf(-1))
		default:
			return fmt.Errorf("value: want a number or \"NaN\", \"+Inf\", \"-Inf\", got %q", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("value: want a number, got %s", b)
	}
	*f = Float(v)
	return nil
}

// String formats like Prometheus does.
func (f Float) String() string {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// normTime strips the monotonic reading and the zone so a time survives a
// JSON round trip unchanged.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Round(0).UTC()
}
