package pocketbrain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/scenario"
	"github.com/pocketbrain/chaos/harness/signals"
	"github.com/pocketbrain/chaos/harness/stack"
)

// describeMatrix turns every row of the matrix file into a spec: the matrix is data,
// and this is the only Go that rows need. The rows run in Matrix.RunOrder, which spaces
// rows that read the same series. Ginkgo sorts specs of one code location by their
// text (and runs them in that order unless --randomize-all), so each row's text begins
// with its place in that order: "07 FM2-edge-timeout: …".
func describeMatrix(p *program.Program) {
	Describe("Failure-mode matrix", Label("matrix"), func() {
		for i, row := range p.Matrix.RunOrder() {
			It(fmt.Sprintf("%02d %s: %s", i+1, row.ID, row.Name), Label(row.GinkgoLabels()...), func(ctx SpecContext) {
				rr, err := rec.BeginRow(evidence.RowSpec{ID: row.ID, Name: row.Mode + " — " + row.Name, Labels: row.GinkgoLabels(), Runbook: row.Runbook, Triggers: row.Triggers})
				Expect(err).NotTo(HaveOccurred())
				fmt.Fprintf(progressOut(), "\n[%s] runbook %s\n", row.ID, row.Runbook)
				if why := runner.Unsupported(row); why != "" {
					_ = rr.Skip(why)
					Skip(why)
				}
				began := time.Now()
				runErr := runner.Run(ctx, row, rr)
				runErr = errors.Join(runErr, compareRow(ctx, rr, began))
				if runErr != nil {
					_ = rr.Fail(st.Env.Redact(runErr.Error()))
				} else {
					_ = rr.Pass()
				}
				Expect(runErr).NotTo(HaveOccurred())
			}, NodeTimeout(6*time.Minute))
		}
	})

	Describe("No-fault control", Label("control"), func() {
		It("keeps every trigger quiet and every row's detection false under steady traffic", func(ctx SpecContext) {
			w, err := observeWindow(ctx, prof.ControlSpan, controlExprs(p))
			if err == nil {
				err = rec.SetControl(w)
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(w.Pass).To(BeTrue(), w.Detail)
		}, NodeTimeout(prof.ControlSpan+3*time.Minute))
	})
}

// controlExprs are the detection expressions of every row: none may hold without its fault.
func controlExprs(p *program.Program) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range p.Matrix.Rows {
		for _, e := range r.Detect {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// observeWindow watches the stack with no fault for span: every trigger must stay
// inactive and no expression in mustStayFalse may ever hold. It returns the window with
// the triggers' values over the span. The window opens once the stack is steady: every
// trigger quiet and every expression false, so that the scaled windows of an earlier
// spec's fault have passed (that residue is not the no-fault behaviour under test).
func observeWindow(ctx context.Context, span time.Duration, mustStayFalse []string) (evidence.Window, error) {
	steadyCtx, cancel := context.WithTimeout(ctx, st.Env.Config().Timeouts.SteadyState)
	defer cancel()
	conds := []signals.Condition{st.Quiet()}
	for _, e := range mustStayFalse {
		conds = append(conds, st.Monitor.ExprFalse(e))
	}
	conds = append(conds, st.Observed(nil, mustStayFalse))
	if _, err := st.Monitor.WaitFor(steadyCtx, "steady state before the window (triggers quiet, no detection expression holding, every target read up and its series present)", signals.All(conds...)); err != nil {
		return evidence.Window{}, err
	}
	w := evidence.Window{Planned: evidence.Millis(span), Started: time.Now()}
	var violations []string
	deadline := time.Now().Add(span)
	lastLine := time.Time{}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return w, ctx.Err()
		case <-time.After(st.Monitor.Interval()):
		}
		last, _ := st.Monitor.LastTick()
		for _, a := range st.Rules.Alerts() {
			if a.State.Loud() {
				violations = append(violations, fmt.Sprintf("%s %s at %s", a.Name, a.State, last.T.UTC().Format(time.RFC3339)))
			}
		}
		for _, e := range mustStayFalse {
			if _, present, err := st.Engine.Value(ctx, e, last.T); err == nil && present {
				violations = append(violations, fmt.Sprintf("%q held at %s", e, last.T.UTC().Format(time.RFC3339)))
			}
		}
		// Quiet because absent is not quiet: every target read up, its series present, and
		// (with a fleet) traffic reaching the server.
		if bad, err := st.Unobserved(ctx, last.T, st.AlertNames(), mustStayFalse); err != nil {
			return w, err
		} else if len(bad) > 0 {
			violations = append(violations, fmt.Sprintf("not observed at %s: %s", last.T.UTC().Format(time.RFC3339), strings.Join(bad, "; ")))
		}
		if st.Env.Has(env.Clients) {
			if _, present, err := st.Engine.Value(ctx, stack.Traffic, last.T); err == nil && !present {
				violations = append(violations, fmt.Sprintf("no traffic at %s: %s does not hold (the client fleet is paused or idle)", last.T.UTC().Format(time.RFC3339), stack.Traffic))
			}
		}
		if time.Since(lastLine) > 10*time.Second {
			fmt.Fprintf(progressOut(), "[window] %s left, %d violations so far\n", time.Until(deadline).Round(time.Second), len(violations))
			lastLine = time.Now()
		}
	}
	w.Ended = time.Now()
	for _, info := range st.Rules.Rules() {
		if info.Kind != signals.AlertingRule {
			continue
		}
		tr, _ := scenario.Trace(ctx, st.Engine, info.Name, info.Expr, w.Started, w.Ended, st.Monitor.Interval())
		for _, v := range violations {
			if strings.HasPrefix(v, info.Name+" ") && strings.Contains(v, "firing") {
				tr.EverFired = true
			}
		}
		w.Triggers = append(w.Triggers, tr)
	}
	w.Pass = len(violations) == 0
	a, err := serverAgreement(ctx, w.Started, w.Ended)
	if err != nil {
		return w, err
	}
	if a != nil {
		w.Server = a
		if !a.Agree {
			violations = append(violations, "the Prometheus server disagrees with the embedded engine: "+a.Detail)
			w.Pass = false
		}
	}
	if !w.Pass {
		if len(violations) > 20 {
			violations = append(violations[:20], fmt.Sprintf("… and %d more", len(violations)-20))
		}
		w.Detail = strings.Join(violations, "; ")
	} else {
		w.Detail = fmt.Sprintf("%d triggers quiet and %d detection expressions false at every tick for %s", len(w.Triggers), len(mustStayFalse), span)
	}
	return w, nil
}

// serverAgreement compares what the Prometheus server fired over (from, to] with the
// embedded engine (nil when the server is off: the evidence says why).
func serverAgreement(ctx context.Context, from, to time.Time) (*evidence.ServerAgreement, error) {
	if st.Server == nil {
		return nil, nil
	}
	began := time.Now()
	a, err := st.Server.Compare(ctx, st.Rules, from, to)
	if err != nil {
		return nil, fmt.Errorf("comparing with the Prometheus server: %w", err)
	}
	fmt.Fprintf(progressOut(), "[prometheus] %s (compared %s after the span's end)\n", a.Detail, time.Since(began).Round(time.Millisecond))
	return &a, nil
}

// compareRow records the Prometheus server's agreement over a row that began at began;
// a disagreement (or a failed comparison) is the row's error.
func compareRow(ctx context.Context, rr *evidence.RowRecorder, began time.Time) error {
	a, err := serverAgreement(ctx, began, time.Now())
	if err != nil || a == nil {
		return err
	}
	_ = rr.SetServer(*a)
	if !a.Agree {
		return fmt.Errorf("the Prometheus server disagrees with the embedded engine: %s", a.Detail)
	}
	return nil
}

// tee writes to several writers; a progress line must reach the terminal even when
// Ginkgo buffers the spec's output.
type tee struct {
	mu sync.Mutex
	ws []io.Writer
}

func newTee(ws ...io.Writer) *tee { return &tee{ws: ws} }

func (t *tee) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.ws {
		_, _ = w.Write(p)
	}
	return len(p), nil
}

func progressOut() io.Writer {
	if runner != nil && runner.Progress != nil {
		return runner.Progress
	}
	return GinkgoWriter
}
