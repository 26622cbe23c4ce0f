package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// The one place measured values become text, for the Markdown, the HTML and the
// console summary alike: a reader wants 70 or 0.0333, not 70.00233341111371.

// fmtNum writes a measured value with up to three significant digits: whole numbers
// as they are (a count stays exact), 100 and above to the nearest whole number,
// smaller values to three significant digits without trailing zeros.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == 0:
		return "0"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e15:
		return strconv.FormatFloat(v, 'g', 3, 64)
	case v == math.Trunc(v) || a >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case a < 1e-6:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	// Three significant digits: 70.0023 → 70, 0.0333333 → 0.0333, 1.23456 → 1.23.
	decimals := 2 - int(math.Floor(math.Log10(a)))
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}

// fmtFloat is fmtNum for the evidence's values.
func fmtFloat(f evidence.Float) string { return fmtNum(float64(f)) }

// fmtScale writes a time scale: as written when it is short (0.1, 0.5, 2), as a
// fraction when it is one (1/30 for 0.0333…), else rounded like any value.
func fmtScale(f float64) string {
	if s := fmtNum(f); s == strconv.FormatFloat(f, 'f', -1, 64) {
		return s
	}
	if f > 0 && f < 1 {
		n := 1 / f
		if r := math.Round(n); r >= 2 && math.Abs(n-r) < 1e-6*r {
			return "1/" + strconv.FormatFloat(r, 'f', 0, 64)
		}
	}
	return fmtNum(f)
}

// fmtSecs writes a number of seconds as a duration.
func fmtSecs(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return fmtNum(s)
	}
	return fmtDuration(time.Duration(s * float64(time.Second)))
}

// fmtDuration writes a duration rounded to what a reader compares: 850 ms, 3.2 s,
// 2m 05s, 1h 04m.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDuration(-d)
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	case d.Round(100*time.Millisecond) < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	d = d.Round(time.Second)
	if d < time.Hour {
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

// fmtLabelFilter names an empty label filter: every spec ran.
func fmtLabelFilter(f string) string {
	if strings.TrimSpace(f) == "" {
		return "none"
	}
	return f
}

// fmtDelta writes a signed difference of two times, the sign always shown: +2.1 s, -850 ms, 0 ms.
func fmtDelta(d time.Duration) string {
	if d > 0 {
		return "+" + fmtDuration(d)
	}
	return fmtDuration(d)
}

// fmtMB writes a byte count in megabytes (10^6 bytes), rounded like any value.
func fmtMB(b int64) string { return fmtNum(float64(b)/1e6) + " MB" }
