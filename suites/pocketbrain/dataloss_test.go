package pocketbrain

import (
	"context"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// dataLossCheck is set once the stack runs a client fleet (see workload wiring).
var dataLossCheck func(ctx context.Context) (*evidence.DataLoss, error)
