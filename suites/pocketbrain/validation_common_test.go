package pocketbrain

// The reliability program's "Validation Coverage", as specs on the real stack:
//
//	VAL-1 queue block + mutation rejection        (e2e/sync-queue-backpressure.spec.ts)
//	VAL-2 queue unblock + recovery durability     (e2e/sync-queue-recovery-durability.spec.ts)
//	VAL-3 cursor reset + pending local edit survival (e2e/sync-reset-recovery.spec.ts)
//
// Each spec is its own assertions on top of the scenario engine (harness/scenario): the
// runner's phases (steady state, inject through the guard, detect, mitigate, recover, the
// timeline chart, the data-loss check) record one evidence row (fault, times,
// evaluations, proofs, data-loss verdict), as for a matrix row, and the spec adds what it
// reads of the clients and the server. Each ends with the no-data-loss check of the whole
// fleet's history. This file holds what the specs share; validation_val<N>_test.go one
// spec each.
//
//	go test ./suites/pocketbrain -count=1 -ginkgo.label-filter='validation' -ginkgo.v
//	go test ./suites/pocketbrain -count=1 -ginkgo.label-filter='val:cursor-reset'

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/pocketbrain/chaos/harness/checker"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/history"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/signals"
)

const queueRunbook = "docs/ops/QUEUE_BACKPRESSURE.md"

var _ = Describe("Validation coverage", Label("validation"), func() {
	validationSpec("VAL-1", "queue block + mutation rejection (e2e/sync-queue-backpressure.spec.ts)", "val:queue-block", valQueueBlock)
	validationSpec("VAL-2", "queue unblock + recovery durability (e2e/sync-queue-recovery-durability.spec.ts)", "val:queue-recovery", valQueueRecovery)
	validationSpec("VAL-3", "cursor reset + pending local edit survival (e2e/sync-reset-recovery.spec.ts)", "val:cursor-reset", valCursorReset)
})

// validationSpec runs body as one spec and one evidence row, on a scenario of the suite's
// runner: the row fails with the body's error (or panic), passes otherwise.
func validationSpec(id, name, label string, body func(context.Context, *scenario.Scenario) error) {
	It(id+": "+name, Label(label), func(ctx SpecContext) {
		Expect(wl).NotTo(BeNil(), "the validation specs need the client fleet")
		rr, err := rec.BeginRow(evidence.RowSpec{ID: id, Name: "Validation — " + name, Labels: []string{"validation", label}, Runbook: queueRunbook})
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprintf(progressOut(), "\n[%s] %s\n", id, name)
		s := runner.Begin(id, rr)
		s.RecordAction = true
		var runErr error
		began := time.Now()
		func() {
			defer func() {
				if p := recover(); p != nil {
					runErr = fmt.Errorf("panic: %v", p)
				}
			}()
			defer s.Abandon() // a proof still running beside a failed phase stops here
			runErr = body(ctx, s)
		}()
		runErr = errors.Join(runErr, compareRow(ctx, rr, began))
		if runErr != nil {
			_ = rr.Fail(st.Env.Redact(runErr.Error()))
		} else {
			_ = rr.Pass()
		}
		Expect(runErr).NotTo(HaveOccurred())
	}, NodeTimeout(6*time.Minute))
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

// steadyQueues waits until no queue is blocked, the server is ready, and every client has
// synced (pushed and pulled) within the last two seconds with a cursor past 0.
func steadyQueues(ctx context.Context, s *scenario.Scenario) error {
	if err := s.Steady(ctx, "steady state (no queue blocked, server ready)",
		st.Monitor.ExprTrue(`sum(sync_queue_blocked) == 0 and on() min(probe_success{probe="server_ready"}) == 1`)); err != nil {
		return err
	}
	return s.Poll(ctx, evidence.PhaseSteady, st.Env.Config().Timeouts.SteadyState, "every client syncing", func() (bool, string, error) {
		fs, err := fleetState(ctx)
		if err != nil {
			return false, "", err
		}
		var not []string
		for _, c := range fs.Clients {
			if c.Blocked || c.Cursor <= 0 || c.LastSyncOK == nil || time.Since(*c.LastSyncOK) > 2*time.Second {
				not = append(not, fmt.Sprintf("%s (cursor %d, last ok %v, error %q)", c.Client, c.Cursor, c.LastSyncOK, c.LastSyncErr))
			}
		}
		return len(not) == 0, "not syncing: " + strings.Join(not, ", "), nil
	})
}

// dataLoss runs the no-data-loss check and requires a valid verdict.
func dataLoss(ctx context.Context, s *scenario.Scenario) error {
	_, _, _, err := dataLossFull(ctx, s)
	return err
}

// dataLossFull runs the runner's data-loss check (wl.Check: pause, final sync, history +
// final state, checker), records the verdict, requires it valid, and returns it with the
// stored checker result and final state.
func dataLossFull(ctx context.Context, s *scenario.Scenario) (*evidence.DataLoss, checker.Result, *checker.FinalState, error) {
	name := s.ID()
	dl, err := s.CheckDataLoss(ctx)
	if err != nil {
		return dl, checker.Result{}, nil, err
	}
	s.Say("check", "verdict %s: ops %d, acknowledged %d, lost %d, duplicated %d", dl.Verdict, dl.Ops, dl.Acknowledged, dl.Lost, dl.Duplicated)
	if err := scenario.ValidVerdict(dl); err != nil {
		return dl, checker.Result{}, nil, err
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
	_ = s.Evidence().AddProof("stored for pbcheck", fmt.Sprintf("go run ./cmd/pbcheck -history %s -state %s",
		filepath.Join(dir, name+".history.json"), filepath.Join(dir, name+".state.json")))
	return dl, res, state, nil
}

func blockExprs() []string {
	return []string{"sum(sync_queue_blocked)", "sum(sync_queue_depth)", "sum(sync_queue_blocked_mutations)", "sum(sync_queue_block_events)", "sum(sync_queue_recovery_events)"}
}

// ---------------------------------------------------------------------------------------
// Reading the clients and the server directly (CONTRACTS.md shapes), with env.Do.

type fleetStateDoc = env.FleetState

// fleetCall is the bound of one request to the whole client fleet.
func fleetCall() time.Duration { return st.Env.Config().Timeouts.FleetCall }

func clientsPost(ctx context.Context, path string) error {
	req := env.Request{Method: http.MethodPost, Path: path, Timeout: fleetCall()}
	resp, err := st.Env.Do(ctx, env.Clients, req)
	if err != nil {
		return err
	}
	return resp.Err(env.Clients, req)
}

// fleetState is the fleet's /state with the clients in id order.
func fleetState(ctx context.Context) (fleetStateDoc, error) {
	s, err := st.Env.Fleet(ctx)
	if err == nil && len(s.Clients) == 0 {
		err = errors.New("clients /state lists no client")
	}
	sort.Slice(s.Clients, func(i, j int) bool { return s.Clients[i].Client < s.Clients[j].Client })
	return s, err
}

// liveHistory is the clients' own /history (since the fleet process started).
func liveHistory(ctx context.Context) ([]history.Op, error) {
	req := env.Request{Path: "/history", Timeout: fleetCall()}
	resp, err := st.Env.Do(ctx, env.Clients, req)
	if err != nil {
		return nil, err
	}
	if err := resp.Err(env.Clients, req); err != nil {
		return nil, err
	}
	return checker.DecodeHistory(bytes.NewReader(resp.Body))
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

// scrape reads a role's /metrics: the clients' within Timeouts.FleetCall (one request to
// the whole fleet), the server's within Timeouts.HTTPCall (env.Do's default).
func scrape(ctx context.Context, role env.Role) (counters, error) {
	req := env.Request{Path: "/metrics"}
	if role == env.Clients {
		req.Timeout = fleetCall()
	}
	resp, err := st.Env.Do(ctx, role, req)
	if err != nil {
		return nil, err
	}
	if err := resp.Err(role, req); err != nil {
		return nil, err
	}
	samples, err := signals.ParseText(bytes.NewReader(resp.Body), signals.Target{Name: string(role), Kind: signals.KindPrometheus})
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
