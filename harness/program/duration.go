package program

import (
	"fmt"
	"time"
)

type parsedDuration = time.Duration

// parseDuration is the grammar of a row's hold: a Go duration with its unit (10s, 1m30s);
// empty means none.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w; write a Go duration with its unit, e.g. hold: 10s (or leave hold out for none)", s, err)
	}
	return d, nil
}
