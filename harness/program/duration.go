package program

import (
	"fmt"
	"time"
)

type parsedDuration = time.Duration

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w (write e.g. 20s)", s, err)
	}
	return d, nil
}
