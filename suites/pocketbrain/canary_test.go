package pocketbrain

import (
	"context"
	"time"

	"github.com/pocketbrain/chaos/harness/canary"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
)

// The canary (release-gate step 6, the gate's last spec) is harness/canary: steady client
// load with no fault for prof.CanarySpan, the run's rules (observeWindow, as the control)
// and the rule files at production timing (canary.Evaluator) judged side by side.

func canaryNodeTimeout() time.Duration {
	// st is not up while the tree is built: the steady-state default stands in for it.
	return canary.NodeTimeout(prof.ForScale, env.DefaultTimeouts().SteadyState, prof.CanarySpan)
}

// deployStartedAt is when release-gate step 4 began replacing the server (zero if it did
// not run in this process).
var deployStartedAt time.Time

func runCanary(ctx context.Context) (evidence.Window, error) {
	return canary.Run(ctx, st, canary.Options{
		Span:            prof.CanarySpan,
		ForScale:        prof.ForScale,
		ScaleNote:       prof.ScaleNote(),
		DeployStartedAt: deployStartedAt,
		Quiet:           st.Quiet(),
		Observe: func(ctx context.Context, span time.Duration) (evidence.Window, error) {
			return observeWindow(ctx, span, nil)
		},
	})
}
