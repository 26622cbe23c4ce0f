// Package workload talks to the client fleet and the server on the harness's behalf:
// it pauses the users, drains every queue, reads the history and the server's final
// state, keeps the history across client restarts, and hands both to the checker.
package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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

	mu   sync.Mutex
	kept map[string]history.Op // by mutation id + invoke, across client restarts
}

// New returns a Workload for e.
func New(e *env.Environment, outDir string) *Workload {
	return &Workload{Env: e, OutDir: outDir, FinalSyncTimeout: e.Config().Timeouts.FinalSync, kept: map[string]history.Op{}}
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
func (w *Workload) Keep(ctx context.Context) error {
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

// History is every op kept so far.
func (w *Workload) History() []history.Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]history.Op, 0, len(w.kept))
	for _, op := range w.kept {
		out = append(out, op)
	}
	return out
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
	if err := w.Keep(ctx); err != nil {
		return nil, err
	}
	state, err := w.finalState(ctx)
	ops := w.History()
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

// finalState reads the server's final state for the fleet's own clients only (named by the
// fleet's /state): a seeded store holds millions of captures that no workload client wrote,
// and the server then counts those in otherCaptures instead of sending them.
func (w *Workload) finalState(ctx context.Context) (*checker.FinalState, error) {
	fleet, err := w.Env.Fleet(ctx)
	if err != nil {
		return nil, err
	}
	if len(fleet.Clients) == 0 {
		return nil, errors.New("clients /state lists no client: the fleet is not running")
	}
	q := url.Values{}
	for _, c := range fleet.Clients {
		q.Add("clientId", c.Client)
	}
	// The server's state read of every capture (1M in a release run) gets the final
	// sync's own bound.
	body, code, err := w.call(ctx, env.Server, http.MethodGet, "/api/v2/sync/state?"+q.Encode(), w.FinalSyncTimeout)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("server /api/v2/sync/state: status %d", code)
	}
	return checker.DecodeState(bytes.NewReader(body))
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
