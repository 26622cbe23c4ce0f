package pocketbrain

// VAL-2: queue unblock + recovery durability (e2e/sync-queue-recovery-durability.spec.ts).
// The worker→server path is cut; the queues block, then drain once it is back: every
// block event is matched by a recovery event, and every write acknowledged before and
// during the outage is on the server, once, with its value.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/history"
	"github.com/pocketbrain/chaos/harness/scenario"
)

func valQueueRecovery(ctx context.Context, s *scenario.Scenario) error {
	rr := s.Evidence()
	_, resume := queueLimits()
	started := s.Started()
	if err := steadyQueues(ctx, s); err != nil {
		return err
	}
	st0, err := fleetState(ctx)
	if err != nil {
		return err
	}
	n := len(st0.Clients)
	m0, err := scrape(ctx, env.Clients)
	if err != nil {
		return err
	}
	// Acknowledged writes before the fault: a couple of seconds of normal traffic.
	if err := scenario.Sleep(ctx, 2*time.Second); err != nil {
		return err
	}

	// Cut the worker→server path this time: the worker answers 502/503 (its circuit opens),
	// the clients keep their queues.
	if err := s.Inject(ctx, faults.Spec{Kind: "network", Action: "down", Edge: "vps"}); err != nil {
		return err
	}
	t0 := s.InjectedAt()
	defer s.Timeline(context.WithoutCancel(ctx), scenario.Chart{Signals: blockExprs(), OmitEmpty: true})
	if err := s.Detect(ctx, "every queue blocked", st.Monitor.ExprTrue(fmt.Sprintf("sum(sync_queue_blocked) == %d", n))); err != nil {
		return err
	}
	blockedAt := s.DetectedAt()
	_ = s.RecordSettled(ctx, evidence.PhaseFault, true, fmt.Sprintf("sum(sync_queue_blocked) == %d", n))
	if err := scenario.Sleep(ctx, 2*time.Second); err != nil { // refused writes while blocked
		return err
	}

	if err := s.Mitigate(ctx, scenario.Mitigation{Action: "heal: restore the sync path (worker→server) — Restore sync path first (API/Worker/network), avoid immediate cap increase"}); err != nil {
		return err
	}
	healedAt := s.HealedAt()
	// Drained to ≤ resume and unblocked, on the monitor and in every client's own /state.
	if err := s.Recover(ctx, "every queue unblocked and drained to the resume mark",
		st.Monitor.ExprTrue(fmt.Sprintf("sum(sync_queue_blocked) == 0 and max(sync_queue_depth) <= %d", resume))); err != nil {
		return err
	}
	var problems, lines []string
	if err := scenario.Poll(ctx, 30*time.Second, "every client unblocked in /state", func() (bool, string, error) {
		fs, err := fleetState(ctx)
		if err != nil {
			return false, "", err
		}
		var still []string
		for _, c := range fs.Clients {
			if c.Blocked || c.SyncState == "Blocked" {
				still = append(still, fmt.Sprintf("%s depth %d", c.Client, c.QueueDepth))
			}
		}
		return len(still) == 0, "still blocked: " + strings.Join(still, ", "), nil
	}); err != nil {
		problems = append(problems, err.Error())
	}
	m1, err := scrape(ctx, env.Clients)
	if err != nil {
		return err
	}
	var sumBlock, sumRec float64
	for _, c := range st0.Clients {
		dBlock := m1.get("sync_queue_block_events", c.Client) - m0.get("sync_queue_block_events", c.Client)
		dRec := m1.get("sync_queue_recovery_events", c.Client) - m0.get("sync_queue_recovery_events", c.Client)
		sumBlock += dBlock
		sumRec += dRec
		lines = append(lines, fmt.Sprintf("%s: block events +%g, recovery events +%g, depth now %g", c.Client, dBlock, dRec, m1.get("sync_queue_depth", c.Client)))
		// Every transition into blocked is matched by one back out of it.
		if dBlock < 1 || dRec != dBlock {
			problems = append(problems, fmt.Sprintf("%s: block events +%g, recovery events +%g: want ≥ 1 and equal after recovery", c.Client, dBlock, dRec))
		}
	}
	_ = rr.AddProof("clients /metrics after recovery, per client", strings.Join(lines, "\n"))
	s.Say("counters", "block events +%g, recovery events +%g over %d clients", sumBlock, sumRec, n)
	_ = s.RecordSettled(ctx, evidence.PhaseRecovered, true,
		"sum(sync_queue_blocked) == 0",
		fmt.Sprintf("max(sync_queue_depth) <= %d", resume),
		"sum(increase(sync_queue_recovery_events[15m])) > 0",
	)
	// The QueueNonRecovery rollback trigger's expression must not hold once queues recover.
	_ = s.RecordSettled(ctx, evidence.PhaseRecovered, false,
		"sum(increase(sync_queue_block_events[15m])) >= 5 and sum(increase(sync_queue_recovery_events[15m])) == 0")

	// Durability: every write acknowledged before the block (before and during the outage)
	// is on the server, once, with its value.
	dl, res, state, err := dataLossFull(ctx, s)
	if err != nil {
		return err
	}
	h := wl.History()
	var before, during []history.Op
	for _, op := range h {
		if op.Outcome != history.OK || op.Replayed || op.Invoke.Before(started) || !op.Invoke.Before(healedAt) {
			continue
		}
		if op.Invoke.Before(t0) {
			before = append(before, op)
		} else {
			during = append(during, op)
		}
	}
	// Each of this spec's acknowledged writes applied exactly once with its value: the
	// valid verdict implies it for the whole history; counted here for the spec's own
	// window (before the fault, during the outage) and kept as a cross-check of the checker.
	applied := appliedValues(state)
	missing := 0
	for _, op := range append(append([]history.Op{}, before...), during...) {
		if vs := applied[op.MutationID]; len(vs) != 1 || vs[0] != op.Value {
			missing++
			if missing <= 5 {
				problems = append(problems, fmt.Sprintf("%s (acknowledged %s) applied %d times on the server, values %q", op.MutationID, op.Invoke.Format(time.RFC3339Nano), len(vs), vs))
			}
		}
	}
	_ = rr.AddProof("acknowledged writes of this spec on the server", fmt.Sprintf(
		"%d acknowledged before the fault, %d acknowledged after it until the queues blocked (%s); %d of them not applied exactly once with their value; whole history: %d ops, %d acknowledged, %d lost, %d duplicated, %d stale",
		len(before), len(during), blockedAt.Sub(t0).Round(time.Millisecond), missing, dl.Ops, dl.Acknowledged, dl.Lost, dl.Duplicated, res.Counts.Stale))
	s.Say("durable", "%d acks before the fault, %d during the outage, %d missing", len(before), len(during), missing)
	if len(before) == 0 || len(during) == 0 {
		problems = append(problems, fmt.Sprintf("want acknowledged writes both before the fault (%d) and during the outage before the block (%d)", len(before), len(during)))
	}
	// No lost or duplicated write anywhere in the history: dataLossFull already required a
	// valid verdict, which means exactly that; it is not asserted twice.
	if len(problems) > 0 {
		return errors.New("queue recovery: " + strings.Join(problems, "; "))
	}
	return nil
}
