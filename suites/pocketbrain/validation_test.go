package pocketbrain

// The reliability program's "Validation Coverage", as specs on the real stack:
//
//	VAL-1 queue block + mutation rejection        (e2e/sync-queue-backpressure.spec.ts)
//	VAL-2 queue unblock + recovery durability     (e2e/sync-queue-recovery-durability.spec.ts)
//	VAL-3 cursor reset + pending local edit survival (e2e/sync-reset-recovery.spec.ts)
//
// Each spec records one evidence row (fault, times, evaluations, proofs, data-loss verdict)
// and ends with the no-data-loss check of the whole fleet's history (wl.Check).
//
//	go test ./suites/pocketbrain -count=1 -ginkgo.label-filter='validation' -ginkgo.v
//	go test ./suites/pocketbrain -count=1 -ginkgo.label-filter='val:cursor-reset'

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/checker"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/history"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/signals"
)

const queueRunbook = "docs/ops/QUEUE_BACKPRESSURE.md"

// The refusal message of a blocked queue starts with this (fixtures/clients, "tell the user").
const blockedErrPrefix = "sync queue blocked"

var _ = Describe("Validation coverage", Label("validation"), func() {
	validationSpec("VAL-1", "queue block + mutation rejection (e2e/sync-queue-backpressure.spec.ts)", "val:queue-block", valQueueBlock)
	validationSpec("VAL-2", "queue unblock + recovery durability (e2e/sync-queue-recovery-durability.spec.ts)", "val:queue-recovery", valQueueRecovery)
	validationSpec("VAL-3", "cursor reset + pending local edit survival (e2e/sync-reset-recovery.spec.ts)", "val:cursor-reset", valCursorReset)
})

// validationSpec runs body as one spec and one evidence row: the row fails with the body's
// error (or panic), passes otherwise.
func validationSpec(id, name, label string, body func(context.Context, *evidence.RowRecorder) error) {
	It(id+": "+name, Label(label), func(ctx SpecContext) {
		Expect(wl).NotTo(BeNil(), "the validation specs need the client fleet")
		rr, err := rec.BeginRow(evidence.RowSpec{ID: id, Name: "Validation — " + name, Labels: []string{"validation", label}, Runbook: queueRunbook})
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprintf(progressOut(), "\n[%s] %s\n", id, name)
		var runErr error
		func() {
			defer func() {
				if p := recover(); p != nil {
					runErr = fmt.Errorf("panic: %v", p)
				}
			}()
			runErr = body(ctx, rr)
		}()
		if runErr != nil {
			_ = rr.Fail(st.Env.Redact(runErr.Error()))
		} else {
			_ = rr.Pass()
		}
		Expect(runErr).NotTo(HaveOccurred())
	}, NodeTimeout(6*time.Minute))
}

// ---------------------------------------------------------------------------------------
// VAL-1: queue block + mutation rejection.

func valQueueBlock(ctx context.Context, rr *evidence.RowRecorder) error {
	const id = "VAL-1"
	qcap, _ := queueLimits()
	started := time.Now()
	if err := steadyQueues(ctx, id); err != nil {
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
	f, t0, err := inject(ctx, rr, faults.Spec{Kind: "network", Action: "down", Edge: "edge"})
	if err != nil {
		return err
	}
	var healedAt time.Time
	defer func() { addTimeline(context.WithoutCancel(ctx), rr, started, t0, healedAt, blockExprs()...) }()

	say(id, "detect", "awaiting every client's queue blocked at the cap (%d)", qcap)
	if err := waitExpr(ctx, "every queue blocked", fmt.Sprintf("sum(sync_queue_blocked) == %d", n), st.Env.Config().Timeouts.Detect); err != nil {
		return fmt.Errorf("detection: %w", err)
	}
	_ = rr.Detected(time.Now())
	// Let refused writes accumulate on every client.
	if err := poll(ctx, 30*time.Second, "every client refused at least 3 writes", func() (bool, string, error) {
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
	say(id, "counters", "%d clients blocked; block events +%g; refused writes +%g", n, sumBlocked, sumRefused)
	if err := recordNow(ctx, rr, evidence.PhaseFault, true,
		fmt.Sprintf("sum(sync_queue_blocked) == %d", n),
		"sum(increase(sync_queue_block_events[15m])) > 0",
		"sum(increase(sync_queue_blocked_mutations[15m])) > 0",
	); err != nil {
		problems = append(problems, err.Error())
	}
	resume()

	// First mitigation: restore the sync path.
	healedAt, err = heal(ctx, rr, f, "heal: restore the sync path (edge clients→worker) — Restore sync path first, avoid immediate cap increase")
	if err != nil {
		return err
	}
	if err := waitExpr(ctx, "every queue unblocked", "sum(sync_queue_blocked) == 0", st.Env.Config().Timeouts.Recover); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	_ = rr.Recovered(time.Now())
	_ = recordNow(ctx, rr, evidence.PhaseRecovered, true, "sum(sync_queue_blocked) == 0")
	if err := dataLoss(ctx, rr, id); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New("queue block / rejection: " + strings.Join(problems, "; "))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// VAL-2: queue unblock + recovery durability.

func valQueueRecovery(ctx context.Context, rr *evidence.RowRecorder) error {
	const id = "VAL-2"
	_, resume := queueLimits()
	started := time.Now()
	if err := steadyQueues(ctx, id); err != nil {
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
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}

	// Cut the worker→server path this time: the worker answers 502/503 (its circuit opens),
	// the clients keep their queues.
	f, t0, err := inject(ctx, rr, faults.Spec{Kind: "network", Action: "down", Edge: "vps"})
	if err != nil {
		return err
	}
	var healedAt time.Time
	defer func() { addTimeline(context.WithoutCancel(ctx), rr, started, t0, healedAt, blockExprs()...) }()
	if err := waitExpr(ctx, "every queue blocked", fmt.Sprintf("sum(sync_queue_blocked) == %d", n), st.Env.Config().Timeouts.Detect); err != nil {
		return fmt.Errorf("detection: %w", err)
	}
	blockedAt := time.Now()
	_ = rr.Detected(blockedAt)
	_ = recordNow(ctx, rr, evidence.PhaseFault, true, fmt.Sprintf("sum(sync_queue_blocked) == %d", n))
	if err := sleepCtx(ctx, 2*time.Second); err != nil { // refused writes while blocked
		return err
	}

	healedAt, err = heal(ctx, rr, f, "heal: restore the sync path (worker→server) — Restore sync path first (API/Worker/network), avoid immediate cap increase")
	if err != nil {
		return err
	}
	// Drained to ≤ resume and unblocked, on the monitor and in every client's own /state.
	if err := waitExpr(ctx, "every queue unblocked and drained to the resume mark",
		fmt.Sprintf("sum(sync_queue_blocked) == 0 and max(sync_queue_depth) <= %d", resume), st.Env.Config().Timeouts.Recover); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	_ = rr.Recovered(time.Now())
	var problems, lines []string
	if err := poll(ctx, 30*time.Second, "every client unblocked in /state", func() (bool, string, error) {
		s, err := fleetState(ctx)
		if err != nil {
			return false, "", err
		}
		var still []string
		for _, c := range s.Clients {
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
	say(id, "counters", "block events +%g, recovery events +%g over %d clients", sumBlock, sumRec, n)
	_ = recordNow(ctx, rr, evidence.PhaseRecovered, true,
		"sum(sync_queue_blocked) == 0",
		fmt.Sprintf("max(sync_queue_depth) <= %d", resume),
		"sum(increase(sync_queue_recovery_events[15m])) > 0",
	)
	// The QueueNonRecovery rollback trigger's expression must not hold once queues recover.
	_ = recordNow(ctx, rr, evidence.PhaseRecovered, false,
		"sum(increase(sync_queue_block_events[15m])) >= 5 and sum(increase(sync_queue_recovery_events[15m])) == 0")

	// Durability: every write acknowledged before the block (before and during the outage)
	// is on the server, once, with its value.
	dl, res, state, err := dataLossFull(ctx, rr, id)
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
	say(id, "durable", "%d acks before the fault, %d during the outage, %d missing", len(before), len(during), missing)
	if len(before) == 0 || len(during) == 0 {
		problems = append(problems, fmt.Sprintf("want acknowledged writes both before the fault (%d) and during the outage before the block (%d)", len(before), len(during)))
	}
	if dl.Acknowledged == 0 || dl.Lost != 0 || dl.Duplicated != 0 {
		problems = append(problems, fmt.Sprintf("data loss: acknowledged %d, lost %d, duplicated %d", dl.Acknowledged, dl.Lost, dl.Duplicated))
	}
	if len(problems) > 0 {
		return errors.New("queue recovery: " + strings.Join(problems, "; "))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// VAL-3: cursor reset + pending local edit survival.

func valCursorReset(ctx context.Context, rr *evidence.RowRecorder) error {
	const id = "VAL-3"
	started := time.Now()
	srvEnv := st.Env.CurrentEnv(env.Server)
	retention, err := envDuration(srvEnv, "SYNC_RETENTION", 24*time.Hour)
	if err != nil {
		return err
	}
	pruneEvery, err := envDuration(srvEnv, "PRUNE_INTERVAL", time.Minute)
	if err != nil {
		return err
	}
	if retention > 2*time.Minute || pruneEvery > 30*time.Second {
		return fmt.Errorf("SYNC_RETENTION=%s / PRUNE_INTERVAL=%s: this spec keeps the clients away past the prune horizon and needs them short (the harness sets 20s / 2s)", retention, pruneEvery)
	}
	if err := steadyQueues(ctx, id); err != nil {
		return err
	}
	s0, err := scrape(ctx, env.Server)
	if err != nil {
		return err
	}
	c0, err := scrape(ctx, env.Clients)
	if err != nil {
		return err
	}

	// The clients go away in two steps. First they stop hearing the server: the edge drops
	// every answer (timeout toxic, downstream), so their pushes still land and the log moves
	// past their cursors, but no push is acknowledged and no pull answered. Then the edge is
	// cut: what the users write from now on exists only in the clients' queues. If the edge
	// were cut at once, a client that had just pulled would hold the log head as its cursor
	// and could never be behind the horizon (nothing else writes to the log).
	deaf, err := faults.New(faults.Spec{Kind: "network", Action: "timeout", Edge: "edge", Params: map[string]string{"timeout": "0", "stream": "downstream"}})
	if err != nil {
		return err
	}
	cut, err := faults.New(faults.Spec{Kind: "network", Action: "down", Edge: "edge"})
	if err != nil {
		return err
	}
	_ = rr.SetFault("network", "edge edge", map[string]string{"action": "timeout (downstream, no answers) for 3s, then down", "stream": "downstream"})
	say(id, "inject", "%s", deaf.Spec())
	if err := guard.Inject(ctx, st.Env, deaf); err != nil {
		return fmt.Errorf("inject %s: %w", deaf.Spec(), err)
	}
	t0 := time.Now()
	_ = rr.Injected(t0)
	var healedAt, t1 time.Time
	defer func() {
		addTimeline(context.WithoutCancel(ctx), rr, started, t0, healedAt,
			"sum(sync_queue_depth)", "sum(pocketbrain_sync_push_mutations_total)", "sum(pocketbrain_sync_pruned_rows_total)", "sum(pocketbrain_sync_cursor_resets_total)", "sum(sync_cursor_resets_total)")
	}()
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	say(id, "inject", "%s", cut.Spec())
	if err := guard.Inject(ctx, st.Env, cut); err != nil {
		return fmt.Errorf("inject %s: %w", cut.Spec(), err)
	}
	t1 = time.Now()
	if err := guard.Heal(ctx, st.Env, deaf); err != nil {
		return fmt.Errorf("remove %s: %w", deaf.Spec(), err)
	}
	for _, p := range cut.Proof(ctx, st.Env) {
		_ = rr.AddProof("after inject: "+p.What, p.Value)
	}
	sD, err := scrape(ctx, env.Server)
	if err != nil {
		return err
	}
	_ = rr.AddProof("pushes that reached the server while the clients heard nothing (3s)", fmt.Sprintf("pocketbrain_sync_push_mutations_total +%g",
		sD.get("pocketbrain_sync_push_mutations_total", "")-s0.get("pocketbrain_sync_push_mutations_total", "")))

	// The horizon passes every client's cursor once a prune that started after
	// t1 + retention (+ margin for pushes in flight at t1) has completed: every row written
	// before then is gone, and nothing was written since.
	margin := 3 * time.Second
	horizonAt := t1.Add(retention + margin)
	say(id, "horizon", "clients away; waiting %s for the prune horizon to pass their cursors", time.Until(horizonAt).Round(time.Second))
	if err := sleepCtx(ctx, time.Until(horizonAt)); err != nil {
		return err
	}
	sH, err := scrape(ctx, env.Server)
	if err != nil {
		return err
	}
	runsAt := sH.get("pocketbrain_sync_prune_runs_total", "")
	var sP counters
	if err := poll(ctx, 5*pruneEvery+15*time.Second, "two prune runs completed after the horizon moment", func() (bool, string, error) {
		s, err := scrape(ctx, env.Server)
		if err != nil {
			return false, "", err
		}
		sP = s
		runs := s.get("pocketbrain_sync_prune_runs_total", "")
		return runs >= runsAt+2, fmt.Sprintf("prune runs %g (at the horizon moment %g)", runs, runsAt), nil
	}); err != nil {
		return err
	}
	prunedDuring := sP.get("pocketbrain_sync_pruned_rows_total", "") - s0.get("pocketbrain_sync_pruned_rows_total", "")
	// The server's head now: with the log pruned empty it is the horizon itself.
	head, err := serverHead(ctx)
	if err != nil {
		return err
	}
	sBefore, err := fleetState(ctx)
	if err != nil {
		return err
	}
	hBefore, err := liveHistory(ctx)
	if err != nil {
		return err
	}
	_ = rr.Detected(time.Now())
	var problems, lines []string
	if prunedDuring <= 0 {
		problems = append(problems, fmt.Sprintf("pocketbrain_sync_pruned_rows_total did not grow while the clients were away (%g)", prunedDuring))
	}
	behind := 0
	pendingOutageEdits := 0
	outage := map[string]history.Op{} // acknowledged edits made while the clients were away
	for _, op := range hBefore {
		if op.Op == history.KindEdit && op.Outcome == history.OK && !op.Replayed && !op.Invoke.Before(t0) {
			outage[op.MutationID] = op
		}
	}
	for _, c := range sBefore.Clients {
		if c.Cursor > 0 && c.Cursor < head {
			behind++
		}
		edits := 0
		for _, p := range c.PendingEdits {
			if _, ok := outage[p.MutationID]; ok {
				edits++
			}
		}
		pendingOutageEdits += edits
		lines = append(lines, fmt.Sprintf("%s: cursor %d (horizon %d), %s, %d queued, %d of them edits made during the outage", c.Client, c.Cursor, head, c.SyncState, c.QueueDepth, edits))
	}
	_ = rr.AddProof("before the clients return", fmt.Sprintf("prune horizon %d after %s away; %g change-log rows pruned meanwhile; %d of %d clients have a cursor behind it; %d edits made during the outage pending in their queues\n%s",
		head, time.Since(t0).Round(time.Second), prunedDuring, behind, len(sBefore.Clients), pendingOutageEdits, strings.Join(lines, "\n")))
	_ = recordNow(ctx, rr, evidence.PhaseFault, true, fmt.Sprintf("sum(increase(pocketbrain_sync_pruned_rows_total[%ds])) > 0", int(time.Since(t0).Seconds())))
	say(id, "horizon", "horizon %d; %d clients behind it; %d outage edits pending", head, behind, pendingOutageEdits)
	if behind == 0 {
		problems = append(problems, fmt.Sprintf("no client's cursor is behind the prune horizon %d: the spec cannot show a reset", head))
	}
	if pendingOutageEdits == 0 {
		problems = append(problems, "no edit made during the outage is pending in a client's queue")
	}

	// The clients return.
	healedAt, err = heal(ctx, rr, cut, "heal: the clients reach the worker again (edge) — they resync after the cursor reset")
	if err != nil {
		return err
	}
	var sAfter, cAfter counters
	var sAfterState fleetStateDoc
	// Every client pages through the whole store again: on a seeded store that takes what
	// the fleet's first resync took, measured at the seed.
	recoverWithin := st.Env.Config().Timeouts.Recover + resyncAllowance()
	if err := poll(ctx, recoverWithin, "every client behind the horizon reset and resynced, every queue unblocked", func() (bool, string, error) {
		s, err := scrape(ctx, env.Server)
		if err != nil {
			return false, "", err
		}
		c, err := scrape(ctx, env.Clients)
		if err != nil {
			return false, "", err
		}
		fs, err := fleetState(ctx)
		if err != nil {
			return false, "", err
		}
		sAfter, cAfter, sAfterState = s, c, fs
		dSrv := s.get("pocketbrain_sync_cursor_resets_total", "") - s0.get("pocketbrain_sync_cursor_resets_total", "")
		dCli := c.sum("sync_cursor_resets_total") - c0.sum("sync_cursor_resets_total")
		var waiting []string
		for _, cs := range fs.Clients {
			wasBehind := false
			for _, b := range sBefore.Clients {
				wasBehind = wasBehind || (b.Client == cs.Client && b.Cursor > 0 && b.Cursor < head)
			}
			reset := c.get("sync_cursor_resets_total", cs.Client) > c0.get("sync_cursor_resets_total", cs.Client)
			switch {
			case cs.Blocked:
				waiting = append(waiting, cs.Client+" blocked")
			case wasBehind && !reset:
				waiting = append(waiting, cs.Client+" not reset")
			case cs.Cursor < head:
				waiting = append(waiting, fmt.Sprintf("%s cursor %d", cs.Client, cs.Cursor))
			}
		}
		return dSrv >= 1 && dCli >= 1 && len(waiting) == 0, fmt.Sprintf("server resets +%g, client resets +%g, waiting for %s", dSrv, dCli, strings.Join(waiting, ", ")), nil
	}); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	_ = rr.Recovered(time.Now())
	dSrv := sAfter.get("pocketbrain_sync_cursor_resets_total", "") - s0.get("pocketbrain_sync_cursor_resets_total", "")
	dCli := cAfter.sum("sync_cursor_resets_total") - c0.sum("sync_cursor_resets_total")
	before := map[string]clientState{}
	for _, c := range sBefore.Clients {
		before[c.Client] = c
	}
	lines = lines[:0]
	resetClients := 0
	for _, c := range sAfterState.Clients {
		d := cAfter.get("sync_cursor_resets_total", c.Client) - c0.get("sync_cursor_resets_total", c.Client)
		b := before[c.Client]
		if d >= 1 {
			resetClients++
		}
		lines = append(lines, fmt.Sprintf("%s: cursor %d → %d, resets +%g (/state cursorResets %d), %s", c.Client, b.Cursor, c.Cursor, d, c.CursorResets, c.SyncState))
		// Reset iff the cursor is behind the horizon (0 < N < horizon).
		if b.Cursor > 0 && b.Cursor < head && d < 1 {
			problems = append(problems, fmt.Sprintf("%s: cursor %d behind the horizon %d but no cursor reset counted", c.Client, b.Cursor, head))
		}
		if float64(c.CursorResets) != cAfter.get("sync_cursor_resets_total", c.Client) {
			problems = append(problems, fmt.Sprintf("%s: /state cursorResets %d ≠ sync_cursor_resets_total %g", c.Client, c.CursorResets, cAfter.get("sync_cursor_resets_total", c.Client)))
		}
	}
	if dSrv < dCli {
		problems = append(problems, fmt.Sprintf("server counted %g cursor resets, the clients %g", dSrv, dCli))
	}
	_ = rr.AddProof("after the clients return", fmt.Sprintf("pocketbrain_sync_cursor_resets_total +%g; clients' sync_cursor_resets_total +%g over %d clients\n%s", dSrv, dCli, resetClients, strings.Join(lines, "\n")))
	say(id, "reset", "server resets +%g, client resets +%g (%d clients)", dSrv, dCli, resetClients)
	// The resync is paged: on a seeded store every client that reset crossed many pages,
	// each one bounded, instead of one answer holding the whole store.
	pages := cAfter.sum("sync_resync_pages_total") - c0.sum("sync_resync_pages_total")
	_ = rr.AddProof("full resync, paged", fmt.Sprintf("sync_resync_pages_total +%g over %d resetting clients, on a store seeded with %d captures", pages, resetClients, prof.SeedCaptures))
	say(id, "reset", "resync crossed %g pages in all (%d captures seeded)", pages, prof.SeedCaptures)
	if minPages := float64(resetClients * (prof.SeedCaptures / 1000)); pages < minPages {
		problems = append(problems, fmt.Sprintf("the clients' resync crossed %g pages; %d resetting clients over %d seeded captures must cross at least %g", pages, resetClients, prof.SeedCaptures, minPages))
	}
	_ = recordNow(ctx, rr, evidence.PhaseRecovered, true,
		"sum(increase(pocketbrain_sync_cursor_resets_total[1m])) > 0",
		"sum(increase(sync_cursor_resets_total[1m])) > 0",
		"sum(sync_queue_blocked) == 0",
	)

	// Pending local edits survived the reset: on the server, with their local values.
	dl, res, state, err := dataLossFull(ctx, rr, id)
	if err != nil {
		return err
	}
	if res.Counts.Stale != 0 {
		problems = append(problems, fmt.Sprintf("%d captures stale after the resync", res.Counts.Stale))
	}
	applied := appliedValues(state)
	final := map[string]string{}
	for _, c := range state.Captures {
		final[c.CaptureID] = c.Value
	}
	lastOf := lastMutationPerCapture(wl.History())
	// Edits made after the cut (t1) reached nobody before the clients returned: only the
	// clients' queues held them across the outage and the reset.
	onServer, current, notApplied, localOnly, localCurrent := 0, 0, 0, 0, 0
	var example string
	for _, op := range outage {
		local := !op.Invoke.Before(t1)
		if local {
			localOnly++
		}
		if vs := applied[op.MutationID]; len(vs) == 1 && vs[0] == op.Value {
			onServer++
		} else {
			notApplied++
			continue
		}
		if lastOf[op.CaptureID] == op.MutationID && final[op.CaptureID] == op.Value {
			current++
			if local {
				localCurrent++
				if example == "" || op.MutationID < example {
					example = op.MutationID
				}
			}
		}
	}
	ex := ""
	if op, ok := outage[example]; ok {
		ex = fmt.Sprintf("; e.g. %s edited %s at %s (edge cut) to %.40q…, and that is the server's final value of %s", op.MutationID, op.CaptureID, op.Invoke.Format(time.RFC3339Nano), op.Value, op.CaptureID)
	}
	_ = rr.AddProof("edits made during the outage", fmt.Sprintf("%d acknowledged edits made while away (%d of them after the edge was cut, held only in the clients' queues): %d applied exactly once with their local value, %d not; %d are their capture's final value (%d of the local-only ones)%s; stale %d",
		len(outage), localOnly, onServer, notApplied, current, localCurrent, ex, res.Counts.Stale))
	say(id, "edits", "%d outage edits (%d local-only): %d on the server with their value, %d final values (%d local-only)", len(outage), localOnly, onServer, current, localCurrent)
	if notApplied > 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged edits made during the outage are not on the server with their value", notApplied))
	}
	if localCurrent == 0 {
		problems = append(problems, "no edit made after the edge was cut is its capture's final value on the server")
	}
	if dl.Lost != 0 || dl.Duplicated != 0 {
		problems = append(problems, fmt.Sprintf("lost %d, duplicated %d", dl.Lost, dl.Duplicated))
	}
	if len(problems) > 0 {
		return errors.New("cursor reset: " + strings.Join(problems, "; "))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Shared steps.

func say(id, phase, format string, args ...any) {
	fmt.Fprintf(progressOut(), "[%s] %-9s %s\n", id, phase, fmt.Sprintf(format, args...))
}

func queueLimits() (qcap, resume int) {
	e := st.Env.CurrentEnv(env.Clients)
	qcap, resume = 20, 10
	if v, err := strconv.Atoi(e["QUEUE_CAP"]); err == nil {
		qcap = v
	}
	if v, err := strconv.Atoi(e["QUEUE_RESUME"]); err == nil {
		resume = v
	}
	return qcap, resume
}

func envDuration(s env.Settings, name string, def time.Duration) (time.Duration, error) {
	v := s[name]
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("server %s=%q: %w", name, v, err)
	}
	return d, nil
}

// steadyQueues waits until no queue is blocked, the server is ready, and every client has
// synced (pushed and pulled) within the last two seconds with a cursor past 0.
func steadyQueues(ctx context.Context, id string) error {
	say(id, "steady", "awaiting every queue unblocked, the server ready and every client syncing")
	if err := waitExpr(ctx, "steady state (no queue blocked, server ready)",
		`sum(sync_queue_blocked) == 0 and on() min(probe_success{probe="server_ready"}) == 1`, st.Env.Config().Timeouts.SteadyState); err != nil {
		return fmt.Errorf("steady state: %w", err)
	}
	return poll(ctx, st.Env.Config().Timeouts.SteadyState, "every client syncing", func() (bool, string, error) {
		s, err := fleetState(ctx)
		if err != nil {
			return false, "", err
		}
		var not []string
		for _, c := range s.Clients {
			if c.Blocked || c.Cursor <= 0 || c.LastSyncOK == nil || time.Since(*c.LastSyncOK) > 2*time.Second {
				not = append(not, fmt.Sprintf("%s (cursor %d, last ok %v, error %q)", c.Client, c.Cursor, c.LastSyncOK, c.LastSyncErr))
			}
		}
		return len(not) == 0, "not syncing: " + strings.Join(not, ", "), nil
	})
}

func waitExpr(ctx context.Context, what, expr string, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := st.Monitor.WaitFor(wctx, what, st.Monitor.ExprTrue(expr))
	return err
}

func inject(ctx context.Context, rr *evidence.RowRecorder, s faults.Spec) (faults.Fault, time.Time, error) {
	f, err := faults.New(s)
	if err != nil {
		return nil, time.Time{}, err
	}
	params := map[string]string{"action": s.Action}
	for k, v := range s.Params {
		params[k] = v
	}
	_ = rr.SetFault(s.Kind, "edge "+s.Edge, params)
	fmt.Fprintf(progressOut(), "[%s] inject    %s\n", rr.ID(), s)
	if err := guard.Inject(ctx, st.Env, f); err != nil {
		return nil, time.Time{}, fmt.Errorf("inject %s: %w", s, err)
	}
	t0 := time.Now()
	_ = rr.Injected(t0)
	for _, p := range f.Proof(ctx, st.Env) {
		_ = rr.AddProof("after inject: "+p.What, p.Value)
	}
	return f, t0, nil
}

func heal(ctx context.Context, rr *evidence.RowRecorder, f faults.Fault, action string) (time.Time, error) {
	fmt.Fprintf(progressOut(), "[%s] mitigate  %s\n", rr.ID(), action)
	if err := guard.Heal(ctx, st.Env, f); err != nil {
		return time.Time{}, fmt.Errorf("mitigation: heal %s: %w", f.Spec(), err)
	}
	at := time.Now()
	_ = rr.Healed(at)
	_ = rr.Mitigated(action, at)
	for _, p := range f.Proof(ctx, st.Env) {
		_ = rr.AddProof("after mitigation: "+p.What, p.Value)
	}
	return at, nil
}

// dataLoss runs the no-data-loss check and requires a valid verdict.
func dataLoss(ctx context.Context, rr *evidence.RowRecorder, name string) error {
	_, _, _, err := dataLossFull(ctx, rr, name)
	return err
}

// dataLossFull runs wl.Check (pause, final sync, history + final state, checker), records
// the verdict, and returns it with the stored checker result and final state.
func dataLossFull(ctx context.Context, rr *evidence.RowRecorder, name string) (*evidence.DataLoss, checker.Result, *checker.FinalState, error) {
	say(name, "check", "final sync and data-loss check")
	dl, err := wl.Check(ctx, name)
	if dl != nil {
		_ = rr.SetDataLoss(*dl)
	}
	if err != nil {
		return dl, checker.Result{}, nil, fmt.Errorf("data-loss check: %w", err)
	}
	say(name, "check", "verdict %s: ops %d, acknowledged %d, lost %d, duplicated %d", dl.Verdict, dl.Ops, dl.Acknowledged, dl.Lost, dl.Duplicated)
	if dl.Verdict != evidence.DataLossValid {
		return dl, checker.Result{}, nil, fmt.Errorf("data-loss check: verdict %s: %s", dl.Verdict, dl.Detail)
	}
	dir := filepath.Join(wl.OutDir, "history")
	var res checker.Result
	b, err := os.ReadFile(filepath.Join(dir, name+".verdict.json"))
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		return dl, res, nil, fmt.Errorf("stored verdict of %s: %w", name, err)
	}
	sf, err := os.Open(filepath.Join(dir, name+".state.json"))
	if err != nil {
		return dl, res, nil, fmt.Errorf("stored final state of %s: %w", name, err)
	}
	defer sf.Close()
	state, err := checker.DecodeState(sf)
	if err != nil {
		return dl, res, nil, err
	}
	_ = rr.AddProof("stored for pbcheck", fmt.Sprintf("go run ./cmd/pbcheck -history %s -state %s",
		filepath.Join(dir, name+".history.json"), filepath.Join(dir, name+".state.json")))
	return dl, res, state, nil
}

// recordNow evaluates exprs at the monitor's last tick and adds them to the row; it
// returns an error naming those that do not match want.
func recordNow(ctx context.Context, rr *evidence.RowRecorder, phase string, want bool, exprs ...string) error {
	_ = sleepCtx(ctx, 2*st.Monitor.Interval()) // let a scrape see the state just observed
	last, _ := st.Monitor.LastTick()
	var bad []string
	for _, e := range exprs {
		v, present, err := st.Engine.Value(ctx, e, last.T)
		w := "holds"
		if !want {
			w = "does not hold"
		}
		pass := err == nil && present == want
		_ = rr.AddEvaluation(evidence.Evaluation{Phase: phase, Expr: e, Value: evidence.Float(v), Present: present, Want: w, Pass: pass, At: last.T})
		if !pass {
			bad = append(bad, fmt.Sprintf("%q should %s (value %g, present %t, err %v)", e, strings.TrimSuffix(w, "s"), v, present, err))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

func blockExprs() []string {
	return []string{"sum(sync_queue_blocked)", "sum(sync_queue_depth)", "sum(sync_queue_blocked_mutations)", "sum(sync_queue_block_events)", "sum(sync_queue_recovery_events)"}
}

// addTimeline samples exprs over the spec and shades the fault window.
func addTimeline(ctx context.Context, rr *evidence.RowRecorder, from, faultFrom, faultTo time.Time, exprs ...string) {
	to := time.Now()
	for _, e := range exprs {
		pts, err := scenario.Curve(ctx, st.Engine, e, from, to, st.Monitor.Interval())
		if err != nil || len(pts) == 0 {
			continue
		}
		_ = rr.AddSeries(evidence.Series{Name: e, Expr: e, Kind: evidence.KindSignal, Points: pts})
	}
	if !faultFrom.IsZero() {
		if faultTo.IsZero() {
			faultTo = to
		}
		_ = rr.AddWindow(evidence.Span{From: faultFrom, To: faultTo, Label: "fault"})
	}
}

// poll calls cond every 250 ms until it holds; on timeout the error carries its last word.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	var last string
	var lastErr error
	for {
		ok, obs, err := cond()
		if err == nil && ok {
			return nil
		}
		last, lastErr = obs, err
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s (last: %s, error: %v)", what, timeout, last, lastErr)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w (last: %s)", what, err, last)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
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

// ---------------------------------------------------------------------------------------
// Reading the clients and the server directly (CONTRACTS.md shapes).

type fleetStateDoc struct {
	Paused  bool          `json:"paused"`
	Clients []clientState `json:"clients"`
}

type clientState struct {
	Client       string `json:"client"`
	QueueDepth   int    `json:"queueDepth"`
	Blocked      bool   `json:"blocked"`
	SyncState    string `json:"syncState"`
	Cursor       int64  `json:"cursor"`
	PendingEdits []struct {
		MutationID string `json:"mutationId"`
		CaptureID  string `json:"captureId"`
		Kind       string `json:"kind"`
		Value      string `json:"value"`
	} `json:"pendingEdits"`
	CursorResets int        `json:"cursorResets"`
	LastSyncOK   *time.Time `json:"lastSyncOk"`
	LastSyncErr  string     `json:"lastSyncError"`
}

func httpCall(ctx context.Context, role env.Role, method, path string) ([]byte, error) {
	base, err := st.Env.URL(ctx, role)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", role, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return b, fmt.Errorf("%s %s %s: status %d: %s", role, method, path, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 300)]))
	}
	return b, nil
}

func clientsPost(ctx context.Context, path string) error {
	_, err := httpCall(ctx, env.Clients, http.MethodPost, path)
	return err
}

func fleetState(ctx context.Context) (fleetStateDoc, error) {
	var s fleetStateDoc
	b, err := httpCall(ctx, env.Clients, http.MethodGet, "/state")
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err == nil && len(s.Clients) == 0 {
		err = errors.New("clients /state lists no client")
	}
	sort.Slice(s.Clients, func(i, j int) bool { return s.Clients[i].Client < s.Clients[j].Client })
	return s, err
}

// liveHistory is the clients' own /history (since the fleet process started).
func liveHistory(ctx context.Context) ([]history.Op, error) {
	b, err := httpCall(ctx, env.Clients, http.MethodGet, "/history")
	if err != nil {
		return nil, err
	}
	return checker.DecodeHistory(bytes.NewReader(b))
}

// serverHead asks the server for a full sync (cursor 0, which never counts as a reset) and
// returns its cursor, the log head.
func serverHead(ctx context.Context) (int64, error) {
	b, err := httpCall(ctx, env.Server, http.MethodGet, "/api/v2/sync/pull?clientId=harness&cursor=0")
	if err != nil {
		return 0, err
	}
	var r struct {
		Cursor int64 `json:"cursor"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("server full sync answer: %w", err)
	}
	return r.Cursor, nil
}

// counters: metric name → client label ("" when none) → value, summed over other labels.
type counters map[string]map[string]float64

func (c counters) get(name, client string) float64 { return c[name][client] }

func (c counters) sum(name string) float64 {
	t := 0.0
	for _, v := range c[name] {
		t += v
	}
	return t
}

func scrape(ctx context.Context, role env.Role) (counters, error) {
	b, err := httpCall(ctx, role, http.MethodGet, "/metrics")
	if err != nil {
		return nil, err
	}
	samples, err := signals.ParseText(bytes.NewReader(b), signals.Target{Name: string(role), Kind: signals.KindPrometheus})
	if err != nil {
		return nil, err
	}
	out := counters{}
	for _, s := range samples {
		name := s.Labels.Get(labels.MetricName)
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][s.Labels.Get("client")] += s.Value
	}
	return out, nil
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

func appliedValues(s *checker.FinalState) map[string][]string {
	out := map[string][]string{}
	if s == nil {
		return out
	}
	for _, a := range s.Applied {
		out[a.MutationID] = append(out[a.MutationID], a.Value)
	}
	return out
}

// lastMutationPerCapture: capture id → the id of the last ok/info mutation on it in its
// client's order (the value the server must end with).
func lastMutationPerCapture(ops []history.Op) map[string]string {
	best := map[string]int64{}
	out := map[string]string{}
	for _, op := range ops {
		if op.Outcome == history.Fail {
			continue
		}
		n, ok := history.Seq(op.MutationID)
		if !ok {
			continue
		}
		if prev, seen := best[op.CaptureID]; !seen || n > prev {
			best[op.CaptureID] = n
			out[op.CaptureID] = op.MutationID
		}
	}
	return out
}
