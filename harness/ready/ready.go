// Package ready waits for a role of the stack to answer its readiness probe, over the
// harness's one HTTP helper (env.Environment.Do).
package ready

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

// Path is the readiness probe every service of the stack serves (docs/CONTRACTS.md).
const Path = "/ready"

// PollInterval is the pause between two probes of Wait: short against the seconds a
// service takes to start, long enough not to load a starting service.
const PollInterval = 200 * time.Millisecond

// Wait polls a role's /ready until it answers 200, or ctx ends: the caller bounds the
// wait (e.g. with Timeouts.SteadyState); each probe is bounded by Timeouts.HTTPCall. The
// error names the role and the last answer.
func Wait(ctx context.Context, e *env.Environment, r env.Role) error {
	var last string
	for {
		resp, err := e.Do(ctx, r, env.Request{Path: Path})
		if err == nil && resp.Status == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "status " + strconv.Itoa(resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s /ready not 200 (last: %s): %w", r, last, ctx.Err())
		case <-time.After(PollInterval):
		}
	}
}
