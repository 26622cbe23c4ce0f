package pocketbrain

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/harness/baseline"
	"github.com/pocketbrain/chaos/harness/env"
)

// BaselineFile is program/baseline.yaml: the document's baseline captures as data
// (harness/baseline loads and validates it, takes the captures and compares them).
const BaselineFile = baseline.File

var (
	baselineOnce  sync.Once
	baselineTaken *baseline.Capture
)

// CaptureBaselineNow takes the baseline captures of this process's stack, once: the
// first spec of every process calls it (BeforeEach below) before its own body runs, so
// the captures always precede every fault of the run, whatever order Ginkgo picks for
// the top-level containers. Later calls return the first capture.
func CaptureBaselineNow(ctx context.Context) *baseline.Capture {
	baselineOnce.Do(func() {
		spec, err := baseline.Load(programDir())
		if err != nil {
			baselineTaken = &baseline.Capture{Err: err}
			return
		}
		baselineTaken = baseline.Take(ctx, st, spec, progressOut())
		if baselineTaken.Err != nil {
			return
		}
		// The clean start disturbed the stack (the clients' queues block while the server
		// restarts): the first row must not read that in its windows.
		took, err := st.Settle(ctx, "the baseline's clean start")
		if err != nil {
			fmt.Fprintf(progressOut(), "[baseline] the stack did not settle after the clean start (the next spec's steady state judges): %s\n", st.Env.Redact(err.Error()))
			return
		}
		fmt.Fprintf(progressOut(), "[baseline] the clean start's residue left every trigger's windows after %s\n", took.Round(time.Millisecond))
	})
	return baselineTaken
}

var _ = BeforeEach(func(ctx SpecContext) {
	if st == nil || !baselineSelected() {
		return
	}
	c := CaptureBaselineNow(ctx)
	if c.Err != nil {
		// Not this spec's failure: the baseline spec reports it.
		fmt.Fprintf(GinkgoWriter, "[baseline] capture failed: %s\n", st.Env.Redact(c.Err.Error()))
	}
}, NodeTimeout(6*time.Minute))

// baselineSelected reports whether this invocation runs the baseline spec, so the clean
// start is spent only where the captures are used.
func baselineSelected() bool {
	f := GinkgoLabelFilter()
	if strings.TrimSpace(f) == "" {
		return true
	}
	match, err := types.ParseLabelFilter(f)
	return err != nil || match([]string{"baseline"})
}

// stackDo is one request to a role through env.Do (the run's control token, a
// Timeouts.HTTPCall bound, errors naming role and path), kept in this shape for the
// suite's other files.
func stackDo(ctx context.Context, r env.Role, method, path string, hdr http.Header, body []byte) ([]byte, int, error) {
	resp, err := st.Env.Do(ctx, r, env.Request{Method: method, Path: path, Header: hdr, Body: body})
	return resp.Body, resp.Status, err
}

var _ = Describe("Baseline captures", Label("baseline"), func() {
	// Bad data fails while the spec tree is built, before any container starts.
	spec, err := baseline.Load(programDir())
	if err != nil {
		panic(err.Error())
	}

	It("match every value of the document's baseline on the healthy stack, before any fault", func(ctx SpecContext) {
		c := CaptureBaselineNow(ctx)
		if c.Err != nil {
			msg := "baseline captures: " + st.Env.Redact(c.Err.Error())
			Expect(rec.AddProblem(msg)).To(Succeed())
			Fail(msg)
		}
		checks := baseline.Compare(spec, c)
		Expect(rec.AddBaseline(checks...)).To(Succeed())
		var bad []string
		for _, ch := range checks {
			mark := "ok  "
			if !ch.Pass {
				mark = "FAIL"
				bad = append(bad, fmt.Sprintf("%s %s: observed %s, document %s", ch.Endpoint, ch.Field, ch.Observed, ch.Document))
			}
			fmt.Fprintf(GinkgoWriter, "[baseline] %s %-18s %-55s document %-8s observed %s\n", mark, ch.Endpoint, ch.Field, ch.Document, ch.Observed)
		}
		fmt.Fprintf(progressOut(), "[baseline] %d checks against %s, %d failed (captured %s, before any fault)\n", len(checks), spec.Document, len(bad), c.At.UTC().Format(time.RFC3339))
		Expect(bad).To(BeEmpty(), "the healthy stack must match the document's baseline captures")
	}, NodeTimeout(2*time.Minute))
})
