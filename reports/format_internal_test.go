package reports

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFmtNum(t *testing.T) {
	for in, want := range map[float64]string{
		70.00233341111371:   "70",
		0.03333333333333333: "0.0333",
		1.23456:             "1.23",
		12.345:              "12.3",
		99.96:               "100",
		117:                 "117",
		1234.5678:           "1235",
		2400:                "2400",
		100000:              "100000",
		0:                   "0",
		1:                   "1",
		-0.5:                "-0.5",
		0.1:                 "0.1",
		0.000123456:         "0.000123",
		1.5e-9:              "1.5e-09",
		math.NaN():          "NaN",
		math.Inf(1):         "+Inf",
		math.Inf(-1):        "-Inf",
	} {
		assert.Equal(t, want, fmtNum(in), "fmtNum(%v)", in)
	}
}

func TestFmtScale(t *testing.T) {
	for in, want := range map[float64]string{
		1.0 / 30: "1/30",
		1.0 / 3:  "1/3",
		0.1:      "0.1",
		0.25:     "0.25",
		1:        "1",
		2:        "2",
		0.123456: "0.123",
	} {
		assert.Equal(t, want, fmtScale(in), "fmtScale(%v)", in)
	}
}

func TestFmtDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		850 * time.Millisecond:                  "850 ms",
		1234567 * time.Microsecond:              "1.2 s",
		3200 * time.Millisecond:                 "3.2 s",
		59970 * time.Millisecond:                "1m 00s",
		125 * time.Second:                       "2m 05s",
		time.Hour + 4*time.Minute + time.Second: "1h 04m",
		0:                                       "0 ms",
	} {
		assert.Equal(t, want, fmtDuration(in), "fmtDuration(%v)", in)
	}
	assert.Equal(t, "4.7 s", fmtSecs(4.744396632))
}

func TestFmtDeltaAndMB(t *testing.T) {
	for in, want := range map[time.Duration]string{
		45 * time.Second:        "+45.0 s",
		-850 * time.Millisecond: "-850 ms",
		0:                       "0 ms",
	} {
		assert.Equal(t, want, fmtDelta(in), "fmtDelta(%v)", in)
	}
	assert.Equal(t, "123 MB", fmtMB(123_400_000))
	assert.Equal(t, "48.2 MB", fmtMB(48_234_567))
}
