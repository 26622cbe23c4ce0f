package pocketbrain

// VAL-3: cursor reset + pending local edit survival (e2e/sync-reset-recovery.spec.ts). The
// clients stop hearing the server, then lose the edge, and stay away until the change
// log is pruned past their cursors; when they return, every client behind the prune
// horizon resets its cursor and resyncs (paged, over the seeded store), and the edits
// they made while away survive the reset: on the server, once, with their local values.

import (
	"context"
	"encoding/json"
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

func valCursorReset(ctx context.Context, s *scenario.Scenario) error {
	rr := s.Evidence()
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
	if err := steadyQueues(ctx, s); err != nil {
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
	deafSpec := faults.Spec{Kind: "network", Action: "timeout", Edge: "edge", Params: map[string]string{"timeout": "0", "stream": "downstream"}}
	cutSpec := faults.Spec{Kind: "network", Action: "down", Edge: "edge"}
	// One fault of two steps, recorded as one.
	_ = rr.SetFault("network", "edge edge", map[string]string{"action": "timeout (downstream, no answers) for 3s, then down", "stream": "downstream"})
	deaf, err := s.InjectFault(ctx, deafSpec)
	if err != nil {
		return err
	}
	s.MarkInjected()
	t0 := s.InjectedAt()
	defer s.Timeline(context.WithoutCancel(ctx), scenario.Chart{OmitEmpty: true, Signals: []string{
		"sum(sync_queue_depth)", "sum(pocketbrain_sync_push_mutations_total)", "sum(pocketbrain_sync_pruned_rows_total)", "sum(pocketbrain_sync_cursor_resets_total)", "sum(sync_cursor_resets_total)",
	}})
	if err := s.Prove(ctx, "after inject: ", deaf); err != nil {
		return err
	}
	if err := scenario.Sleep(ctx, time.Until(t0.Add(3*time.Second))); err != nil {
		return err
	}
	cut, err := s.InjectFault(ctx, cutSpec)
	if err != nil {
		return err
	}
	t1 := time.Now()
	if err := s.RemoveFault(ctx, deaf); err != nil {
		return err
	}
	if err := s.Prove(ctx, "after inject: ", cut); err != nil {
		return err
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
	s.Say("horizon", "clients away; waiting %s for the prune horizon to pass their cursors", time.Until(horizonAt).Round(time.Second))
	if err := scenario.Sleep(ctx, time.Until(horizonAt)); err != nil {
		return err
	}
	sH, err := scrape(ctx, env.Server)
	if err != nil {
		return err
	}
	runsAt := sH.get("pocketbrain_sync_prune_runs_total", "")
	var sP counters
	if err := scenario.Poll(ctx, 5*pruneEvery+15*time.Second, "two prune runs completed after the horizon moment", func() (bool, string, error) {
		srv, err := scrape(ctx, env.Server)
		if err != nil {
			return false, "", err
		}
		sP = srv
		runs := srv.get("pocketbrain_sync_prune_runs_total", "")
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
	s.MarkDetected()
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
	_ = s.RecordSettled(ctx, evidence.PhaseFault, true, fmt.Sprintf("sum(increase(pocketbrain_sync_pruned_rows_total[%ds])) > 0", int(time.Since(t0).Seconds())))
	s.Say("horizon", "horizon %d; %d clients behind it; %d outage edits pending", head, behind, pendingOutageEdits)
	if behind == 0 {
		problems = append(problems, fmt.Sprintf("no client's cursor is behind the prune horizon %d: the spec cannot show a reset", head))
	}
	if pendingOutageEdits == 0 {
		problems = append(problems, "no edit made during the outage is pending in a client's queue")
	}

	// The clients return.
	if err := s.Mitigate(ctx, scenario.Mitigation{Action: "heal: the clients reach the worker again (edge) — they resync after the cursor reset"}); err != nil {
		return err
	}
	var sAfter, cAfter counters
	var sAfterState fleetStateDoc
	// Every client pages through the whole store again: on a seeded store that takes what
	// the fleet's first resync took, measured at the seed.
	recoverWithin := st.Env.Config().Timeouts.Recover + resyncAllowance()
	if err := s.Poll(ctx, "recover", recoverWithin, "every client behind the horizon reset and resynced, every queue unblocked", func() (bool, string, error) {
		srv, err := scrape(ctx, env.Server)
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
		sAfter, cAfter, sAfterState = srv, c, fs
		dSrv := srv.get("pocketbrain_sync_cursor_resets_total", "") - s0.get("pocketbrain_sync_cursor_resets_total", "")
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
	s.MarkRecovered()
	dSrv := sAfter.get("pocketbrain_sync_cursor_resets_total", "") - s0.get("pocketbrain_sync_cursor_resets_total", "")
	dCli := cAfter.sum("sync_cursor_resets_total") - c0.sum("sync_cursor_resets_total")
	before := map[string]env.ClientState{}
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
	s.Say("reset", "server resets +%g, client resets +%g (%d clients)", dSrv, dCli, resetClients)
	// The resync is paged: on a seeded store every client that reset crossed many pages,
	// each one bounded, instead of one answer holding the whole store.
	pages := cAfter.sum("sync_resync_pages_total") - c0.sum("sync_resync_pages_total")
	_ = rr.AddProof("full resync, paged", fmt.Sprintf("sync_resync_pages_total +%g over %d resetting clients, on a store seeded with %d captures", pages, resetClients, prof.SeedCaptures))
	s.Say("reset", "resync crossed %g pages in all (%d captures seeded)", pages, prof.SeedCaptures)
	if minPages := float64(resetClients * (prof.SeedCaptures / 1000)); pages < minPages {
		problems = append(problems, fmt.Sprintf("the clients' resync crossed %g pages; %d resetting clients over %d seeded captures must cross at least %g", pages, resetClients, prof.SeedCaptures, minPages))
	}
	_ = s.RecordSettled(ctx, evidence.PhaseRecovered, true,
		"sum(increase(pocketbrain_sync_cursor_resets_total[1m])) > 0",
		"sum(increase(sync_cursor_resets_total[1m])) > 0",
		"sum(sync_queue_blocked) == 0",
	)

	// Pending local edits survived the reset: on the server, with their local values.
	_, res, state, err := dataLossFull(ctx, s)
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
	s.Say("edits", "%d outage edits (%d local-only): %d on the server with their value, %d final values (%d local-only)", len(outage), localOnly, onServer, current, localCurrent)
	if notApplied > 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged edits made during the outage are not on the server with their value", notApplied))
	}
	if localCurrent == 0 {
		problems = append(problems, "no edit made after the edge was cut is its capture's final value on the server")
	}
	// Lost or duplicated writes: dataLossFull already required a valid verdict, which
	// means none; it is not asserted twice.
	if len(problems) > 0 {
		return errors.New("cursor reset: " + strings.Join(problems, "; "))
	}
	return nil
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

// serverHead asks the server for a full sync (cursor 0, which never counts as a reset) and
// returns its cursor, the log head.
func serverHead(ctx context.Context) (int64, error) {
	req := env.Request{Path: "/api/v2/sync/pull?clientId=harness&cursor=0"}
	resp, err := st.Env.Do(ctx, env.Server, req)
	if err != nil {
		return 0, err
	}
	if err := resp.Err(env.Server, req); err != nil {
		return 0, err
	}
	var r struct {
		Cursor int64 `json:"cursor"`
	}
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		return 0, fmt.Errorf("server full sync answer: %w", err)
	}
	return r.Cursor, nil
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
