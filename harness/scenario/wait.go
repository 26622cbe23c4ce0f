package scenario

import (
	"context"
	"fmt"
	"time"
)

// PollEvery is how often Poll asks: a condition read over HTTP (a fleet's /state, a
// /metrics page) changes between the monitor's ticks, and a spec measures it finer.
const PollEvery = 250 * time.Millisecond

// PollCondition is a condition Poll asks again and again: whether it holds, what it saw
// (quoted when the wait times out) and an error, which does not stop the wait.
type PollCondition func() (ok bool, seen string, err error)

// Poll calls cond every PollEvery until it holds. On timeout the error names what was
// awaited and carries cond's last word and last error; a canceled ctx ends it at once.
func Poll(ctx context.Context, timeout time.Duration, what string, cond PollCondition) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, seen, err := cond()
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s (last: %s, error: %v)", what, timeout, seen, err)
		}
		if err := Sleep(ctx, PollEvery); err != nil {
			return fmt.Errorf("%s: %w (last: %s)", what, err, seen)
		}
	}
}

// Sleep waits d, or less if ctx ends first (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
