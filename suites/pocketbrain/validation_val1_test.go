package pocketbrain

// VAL-1: queue block + mutation rejection (e2e/sync-queue-backpressure.spec.ts). The sync
// path is cut at the clients' edge; every queue fills to the cap and blocks, and the
// users' writes are refused from then on: the clients' /state, /metrics and /history
// must agree on it, write for write.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/history"
	"github.com/pocketbrain/chaos/harness/scenario"
)

// The refusal message of a blocked queue starts with this (fixtures/clients, "tell the user").
const blockedErrPrefix = "sync queue blocked"

func valQueueBlock(ctx context.Context, s *scenario.Scenario) error {
	rr := s.Evidence()
	qcap, _ := queueLimits()
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
	h0, err := liveHistory(ctx)
	if err != nil {
		return err
	}

	// Cut the sync path at the clients' edge: every push and pull fails, the queues fill.
	if err := s.Inject(ctx, faults.Spec{Kind: "network", Action: "down", Edge: "edge"}); err != nil {
		return err
	}
	t0 := s.InjectedAt()
	defer s.Timeline(context.WithoutCancel(ctx), scenario.Chart{Signals: blockExprs(), OmitEmpty: true})

	if err := s.Detect(ctx, fmt.Sprintf("every client's queue blocked at the cap (%d)", qcap),
		st.Monitor.ExprTrue(fmt.Sprintf("sum(sync_queue_blocked) == %d", n))); err != nil {
		return err
	}
	// Let refused writes accumulate on every client.
	if err := scenario.Poll(ctx, 30*time.Second, "every client refused at least 3 writes", func() (bool, string, error) {
		m, err := scrape(ctx, env.Clients)
		if err != nil {
			return false, "", err
		}
		least := -1.0
		for _, c := range st0.Clients {
			d := m.get("sync_queue_blocked_mutations", c.Client) - m0.get("sync_queue_blocked_mutations", c.Client)
			if least < 0 || d < least {
				least = d
			}
		}
		return least >= 3, fmt.Sprintf("fewest refused writes on a client: %g", least), nil
	}); err != nil {
		return err
	}

	// Freeze the users (no op in flight once /pause returns) so /state, /history and
	// /metrics can be compared exactly.
	if err := clientsPost(ctx, "/pause"); err != nil {
		return err
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = clientsPost(context.WithoutCancel(ctx), "/resume")
		}
	}
	defer resume()
	st1, err := fleetState(ctx)
	if err != nil {
		return err
	}
	m1, err := scrape(ctx, env.Clients)
	if err != nil {
		return err
	}
	h1, err := liveHistory(ctx)
	if err != nil {
		return err
	}

	var problems, lines []string
	var sumBlocked, sumRefused float64
	var example string
	for _, c := range st1.Clients {
		id := c.Client
		dBlock := m1.get("sync_queue_block_events", id) - m0.get("sync_queue_block_events", id)
		dRec := m1.get("sync_queue_recovery_events", id) - m0.get("sync_queue_recovery_events", id)
		dRefused := m1.get("sync_queue_blocked_mutations", id) - m0.get("sync_queue_blocked_mutations", id)
		failsNow, failsBefore := blockedFails(h1, id), blockedFails(h0, id)
		sumBlocked += dBlock
		sumRefused += dRefused
		lines = append(lines, fmt.Sprintf("%s: %s depth %d, block events +%g, recovery events +%g, refused writes +%g (fail ops in /history +%d; totals %g counter / %d history)",
			id, c.SyncState, c.QueueDepth, dBlock, dRec, dRefused, failsNow-failsBefore, m1.get("sync_queue_blocked_mutations", id), failsNow))
		switch {
		case !c.Blocked || c.SyncState != "Blocked":
			problems = append(problems, fmt.Sprintf("%s: /state shows blocked=%t syncState=%q, want the user told Blocked", id, c.Blocked, c.SyncState))
		case c.QueueDepth < qcap:
			problems = append(problems, fmt.Sprintf("%s: blocked with depth %d below the cap %d", id, c.QueueDepth, qcap))
		}
		// Block events count transitions into blocked: one per client for one outage,
		// however many writes were refused.
		if dBlock != 1 {
			problems = append(problems, fmt.Sprintf("%s: sync_queue_block_events grew by %g during one continuous block, want exactly 1 (a transition)", id, dBlock))
		}
		if dRec != 0 {
			problems = append(problems, fmt.Sprintf("%s: sync_queue_recovery_events grew by %g while the queue stayed blocked, want 0", id, dRec))
		}
		// Blocked mutations count refused user writes: exactly the fail ops the user saw.
		if dRefused < 1 || int(dRefused) != failsNow-failsBefore {
			problems = append(problems, fmt.Sprintf("%s: sync_queue_blocked_mutations grew by %g but /history has %d new refused writes", id, dRefused, failsNow-failsBefore))
		}
		if int(m1.get("sync_queue_blocked_mutations", id)) != failsNow {
			problems = append(problems, fmt.Sprintf("%s: sync_queue_blocked_mutations total %g ≠ %d refused writes in /history since the fleet started", id, m1.get("sync_queue_blocked_mutations", id), failsNow))
		}
		// Rejection: once this client refused a write in this outage, it acknowledged none.
		if bad := acceptedAfterRefusal(h1, id, t0); bad != "" {
			problems = append(problems, id+": "+bad)
		}
		if example == "" {
			for _, op := range h1 {
				if op.Client == id && op.Outcome == history.Fail && strings.HasPrefix(op.Error, blockedErrPrefix) && !op.Invoke.Before(t0) {
					example = fmt.Sprintf("%s %s %s → outcome %s: %q", op.Client, op.Op, op.MutationID, op.Outcome, op.Error)
					break
				}
			}
		}
	}
	_ = rr.AddProof("clients /state, /metrics and /history with the users paused, per client", strings.Join(lines, "\n"))
	_ = rr.AddProof("what a refused user write looks like in /history", example)
	_ = rr.AddProof("fleet totals during the block", fmt.Sprintf("%d clients blocked; block events +%g; refused writes +%g", n, sumBlocked, sumRefused))
	s.Say("counters", "%d clients blocked; block events +%g; refused writes +%g", n, sumBlocked, sumRefused)
	if err := s.RecordSettled(ctx, evidence.PhaseFault, true,
		fmt.Sprintf("sum(sync_queue_blocked) == %d", n),
		"sum(increase(sync_queue_block_events[15m])) > 0",
		"sum(increase(sync_queue_blocked_mutations[15m])) > 0",
	); err != nil {
		problems = append(problems, err.Error())
	}
	resume()

	// First mitigation: restore the sync path.
	if err := s.Mitigate(ctx, scenario.Mitigation{Action: "heal: restore the sync path (edge clients→worker) — Restore sync path first, avoid immediate cap increase"}); err != nil {
		return err
	}
	if err := s.Recover(ctx, "every queue unblocked", st.Monitor.ExprTrue("sum(sync_queue_blocked) == 0")); err != nil {
		return err
	}
	_ = s.RecordSettled(ctx, evidence.PhaseRecovered, true, "sum(sync_queue_blocked) == 0")
	if err := dataLoss(ctx, s); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New("queue block / rejection: " + strings.Join(problems, "; "))
	}
	return nil
}

func blockedFails(ops []history.Op, client string) int {
	n := 0
	for _, op := range ops {
		if op.Client == client && op.Outcome == history.Fail && strings.HasPrefix(op.Error, blockedErrPrefix) {
			n++
		}
	}
	return n
}

// acceptedAfterRefusal returns a description of the first write of client acknowledged
// after its first refusal since t0 (none: "").
func acceptedAfterRefusal(ops []history.Op, client string, t0 time.Time) string {
	var mine []history.Op
	for _, op := range ops {
		if op.Client == client && !op.Invoke.Before(t0) && !op.Replayed {
			mine = append(mine, op)
		}
	}
	sort.SliceStable(mine, func(i, j int) bool {
		a, _ := history.Seq(mine[i].MutationID)
		b, _ := history.Seq(mine[j].MutationID)
		return a < b
	})
	refused := false
	for _, op := range mine {
		if op.Outcome == history.Fail && strings.HasPrefix(op.Error, blockedErrPrefix) {
			refused = true
		} else if refused && op.Outcome == history.OK {
			return fmt.Sprintf("write %s acknowledged after the queue had refused one in the same block", op.MutationID)
		}
	}
	if !refused {
		return "no write refused since the fault"
	}
	return ""
}
