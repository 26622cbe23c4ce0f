// Package workload talks to the client fleet and the server on the harness's behalf:
// it pauses the users, drains every queue, reads the history and the server's final
// state, keeps the history across client restarts, and hands both to the checker.
//
// The history comes from the fleet's journal when the environment has one
// (env.WithJournalDir: every op is on the harness's disk before it runs and again
// before the user is told its outcome, so a killed clients container loses nothing),
// and otherwise from the fleet's in-memory GET /history, kept before every clients
// replace.
package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pocketbrain/chaos/harness/checker"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/history"
)

// Workload follows one environment's client fleet.
type Workload struct {
	Env *env.Environment
	// OutDir receives history/<name>.json and verdict files for offline re-checks.
	OutDir string
	// FinalSyncTimeout bounds the drain of every queue.
	FinalSyncTimeout time.Duration
	// Seeded is how many captures the harness seeded before the first row, under client
	// ids that are not the fleet's: every check counts them again, and fewer is data loss.
	Seeded int64
	// Redactor hides the run's secrets in the history files (nil: the environment's own).
	Redactor *evidence.Redactor
	// JournalDir is the folder of the fleet's journal files (env.JournalDir): the history
	// is read from them. "": no journal, the history is what Keep read from /history.
	JournalDir string

	mu      sync.Mutex
	kept    map[string]history.Op // by mutation id + invoke, across client restarts
	journal *history.JournalReader
}

// New returns a Workload for e.
func New(e *env.Environment, outDir string) *Workload {
	return &Workload{Env: e, OutDir: outDir, FinalSyncTimeout: e.Config().Timeouts.FinalSync, kept: map[string]history.Op{},
		JournalDir: e.JournalDir()}
}

func (w *Workload) call(ctx context.Context, role env.Role, method, path string, timeout time.Duration) ([]byte, int, error) {
	resp, err := w.Env.Do(ctx, role, env.Request{Method: method, Path: path, Timeout: timeout})
	return resp.Body, resp.Status, err
}

// finalSyncAnswer is the time the fleet gets, past its own drain deadline, to answer.
const finalSyncAnswer = 10 * time.Second

func (w *Workload) fleetTimeout() time.Duration { return w.Env.Config().Timeouts.FleetCall }

// Keep fetches the fleet's history now and keeps it, so that a client restart (which
// starts a new in-memory history) loses nothing. Environment hooks call it before the
// clients container is replaced. It pauses the users first: an op acknowledged after the
// read would die with the old process's memory while its mutation may still be synced,
// and the checker would see it applied but never attempted. (A replaced fleet starts
// unpaused; Check resumes the users itself.)
//
// With a journal it does nothing, and talks to no one. There is nothing to keep: every op
// is on the harness's disk before it runs, and again before the user is told its
// outcome, so an op acknowledged at any time, also after this call, survives the
// replace. Nor is there a reason left to pause: the stop lets an op under way finish
// (SIGTERM), and one that the stop's SIGKILL cuts short reads as info, which is what it
// is. And a fleet that is dead or hung (a kill -9 row) must not stop its own replace.
func (w *Workload) Keep(ctx context.Context) error {
	if w.JournalDir != "" {
		return nil
	}
	if _, code, err := w.call(ctx, env.Clients, http.MethodPost, "/pause", w.fleetTimeout()); err != nil || code != http.StatusOK {
		return fmt.Errorf("pause the users before reading the history: status %d: %v", code, err)
	}
	b, code, err := w.call(ctx, env.Clients, http.MethodGet, "/history", w.fleetTimeout())
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("clients /history: status %d", code)
	}
	ops, err := checker.DecodeHistory(bytes.NewReader(b))
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, op := range ops {
		w.kept[op.MutationID+"|"+op.Invoke.Format(time.RFC3339Nano)] = op
	}
	return nil
}

// History is every op so far: the journal's (the ops of files that do not read are
// missing; Ops says why), or without one every op kept.
func (w *Workload) History() []history.Op {
	if w.JournalDir != "" {
		ops, _ := w.Ops()
		return ops
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]history.Op, 0, len(w.kept))
	for _, op := range w.kept {
		out = append(out, op)
	}
	return out
}

// Ops is History with the journal's read error: a file with a malformed line (other than
// a torn last one), or a journal folder without a single file (the fleet never opened
// one: the image ignores JOURNAL_DIR, or the mount missed the folder).
func (w *Workload) Ops() ([]history.Op, error) {
	if w.JournalDir == "" {
		return w.History(), nil
	}
	w.mu.Lock()
	if w.journal == nil || w.journal.Dir() != w.JournalDir {
		w.journal = history.NewJournalReader(w.JournalDir)
	}
	jr := w.journal
	w.mu.Unlock()
	ops, err := jr.Read()
	if err != nil {
		return ops, fmt.Errorf("client journal: %w", err)
	}
	if files, ferr := history.JournalFiles(w.JournalDir); ferr != nil || len(files) == 0 {
		return ops, fmt.Errorf("client journal: no journal file in %s: the clients never opened one (an image that ignores JOURNAL_DIR, or a mount that missed the folder)", w.JournalDir)
	}
	return ops, nil
}

// collect is the history a check judges, read once the users are paused: the journal,
// checked against the running fleet's /history (every op there must be in the journal
// with the same outcome, or the journal missed writes), or without one every op kept.
func (w *Workload) collect(ctx context.Context) ([]history.Op, error) {
	if w.JournalDir == "" {
		if err := w.Keep(ctx); err != nil {
			return nil, err
		}
		return w.History(), nil
	}
	ops, err := w.Ops()
	if err != nil {
		return nil, err
	}
	b, code, err := w.call(ctx, env.Clients, http.MethodGet, "/history", w.fleetTimeout())
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("clients /history: status %d", code)
	}
	live, err := checker.DecodeHistory(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if err := journalHolds(ops, live); err != nil {
		return nil, err
	}
	return ops, nil
}

// journalHolds checks that every op of the fleet's in-memory history is in the journal
// with the same outcome: the journal is then at least as complete as /history was.
func journalHolds(journal, live []history.Op) error {
	have := make(map[string]history.Outcome, len(journal))
	for _, op := range journal {
		have[history.OpKey(op)] = op.Outcome
	}
	var missing, differ []string
	for _, op := range live {
		got, ok := have[history.OpKey(op)]
		switch {
		case !ok:
			missing = append(missing, op.MutationID)
		case got != op.Outcome:
			differ = append(differ, fmt.Sprintf("%s (%s in the journal, %s in /history)", op.MutationID, got, op.Outcome))
		}
	}
	if len(missing) == 0 && len(differ) == 0 {
		return nil
	}
	first := func(ids []string) string {
		if len(ids) > 5 {
			return strings.Join(ids[:5], ", ") + ", …"
		}
		return strings.Join(ids, ", ")
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d ops of the fleet's /history are not in it (%s)", len(missing), first(missing)))
	}
	if len(differ) > 0 {
		parts = append(parts, fmt.Sprintf("%d have another outcome there (%s)", len(differ), first(differ)))
	}
	return fmt.Errorf("client journal is incomplete: %s; the fleet could not write it (clients_journal_write_failures_total), so the history cannot be judged", strings.Join(parts, "; "))
}

// Check pauses the users, drains every queue, reads history and final state, judges
// them, stores both as JSON under OutDir/history/<name>.*.json, and resumes the users.
func (w *Workload) Check(ctx context.Context, name string) (*evidence.DataLoss, error) {
	if _, code, err := w.call(ctx, env.Clients, http.MethodPost, "/pause", w.fleetTimeout()); err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("pause the users: status %d: %v", code, err)
	}
	defer func() {
		_, _, _ = w.call(context.WithoutCancel(ctx), env.Clients, http.MethodPost, "/resume", w.fleetTimeout())
	}()
	path := fmt.Sprintf("/final-sync?timeout=%s", w.FinalSyncTimeout)
	body, code, err := w.call(ctx, env.Clients, http.MethodPost, path, w.FinalSyncTimeout+finalSyncAnswer)
	if err != nil {
		return nil, fmt.Errorf("final sync: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("final sync did not drain every queue within %s: %s", w.FinalSyncTimeout, bytes.TrimSpace(body))
	}
	ops, err := w.collect(ctx)
	if err != nil {
		return nil, err
	}
	state, err := w.finalState(ctx, ops)
	res := checker.Check(ops, state)
	if werr := w.store(name, ops, state, res); werr != nil && err == nil {
		err = werr
	}
	if err == nil && state != nil && state.OtherCaptures != nil && *state.OtherCaptures < w.Seeded {
		err = fmt.Errorf("seeded data lost: %d of the %d seeded captures are left on the server", *state.OtherCaptures, w.Seeded)
	}
	dl := &evidence.DataLoss{
		Verdict:            string(res.Verdict),
		Ops:                res.Counts.Ops,
		Acknowledged:       res.Counts.Acknowledged,
		Lost:               res.Counts.Lost,
		Duplicated:         res.Counts.Duplicated,
		Unexpected:         res.Counts.Unexpected,
		RejectedButApplied: res.Counts.RejectedButApplied,
		Unknown:            res.Counts.Unknown,
		Detail:             res.Summary(),
	}
	return dl, err
}

// finalState reads the final state straight from Postgres (finalStateFromPostgres) for
// the clients of the history and of the fleet running now: a seeded store holds millions
// of captures that no workload client wrote, and those are only counted.
func (w *Workload) finalState(ctx context.Context, ops []history.Op) (*checker.FinalState, error) {
	var clients []string
	for _, op := range ops {
		clients = append(clients, op.Client)
	}
	if fleet, err := w.Env.Fleet(ctx); err == nil {
		for _, c := range fleet.Clients {
			clients = append(clients, c.Client)
		}
	}
	// The read of every capture (1M in a release run) gets the final sync's own bound.
	ctx, cancel := context.WithTimeout(ctx, w.FinalSyncTimeout)
	defer cancel()
	return w.finalStateFromPostgres(ctx, clients)
}

func (w *Workload) store(name string, ops []history.Op, state *checker.FinalState, res checker.Result) error {
	if w.OutDir == "" {
		return nil
	}
	dir := filepath.Join(w.OutDir, "history")
	if err := os.MkdirAll(dir, evidence.DirMode); err != nil {
		return err
	}
	for suffix, v := range map[string]any{"history": history.History{Ops: ops}, "state": state, "verdict": res} {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return err
		}
		red := w.Redactor
		if red == nil {
			red = evidence.NewRedactor(w.Env.Secrets.Values()...)
		}
		if err := evidence.WriteFileAtomic(filepath.Join(dir, name+"."+suffix+".json"), red.Bytes(b)); err != nil {
			return err
		}
	}
	return nil
}
