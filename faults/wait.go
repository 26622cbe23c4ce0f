package faults

import (
	"context"
	"fmt"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

// proofEvery is how often WaitActed and WaitHealed look again.
const proofEvery = 250 * time.Millisecond

// WaitActed waits, up to timeout, until f's target shows the fault's effect (roachprod's
// WaitForFailureToPropagate). It returns the proofs of the last look; the error says
// "fault did not act" and what the target showed instead.
func WaitActed(ctx context.Context, e *env.Environment, f Fault, timeout time.Duration) ([]Proof, error) {
	ps, err := waitFor(ctx, timeout, func(ctx context.Context) ([]Proof, error) { return f.Acted(ctx, e) })
	if err != nil {
		return ps, fmt.Errorf("fault did not act: %s: %w (looked for %s)", f.Spec(), err, timeout)
	}
	return ps, nil
}

// WaitHealed waits, up to timeout, until f's effect is gone from its target (roachprod's
// WaitForFailureToRecover).
func WaitHealed(ctx context.Context, e *env.Environment, f Fault, timeout time.Duration) ([]Proof, error) {
	ps, err := waitFor(ctx, timeout, func(ctx context.Context) ([]Proof, error) { return f.Healed(ctx, e) })
	if err != nil {
		return ps, fmt.Errorf("fault still in effect after its heal: %s: %w (looked for %s)", f.Spec(), err, timeout)
	}
	return ps, nil
}

func waitFor(ctx context.Context, timeout time.Duration, look func(context.Context) ([]Proof, error)) ([]Proof, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastPs []Proof
	var lastErr error
	for {
		ps, err := look(ctx)
		if err == nil {
			return ps, nil
		}
		// A look cut short by the deadline says less than the one before it.
		if ctx.Err() == nil || lastErr == nil {
			lastPs, lastErr = ps, err
		}
		t := time.NewTimer(proofEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return lastPs, lastErr
		case <-t.C:
		}
	}
}
