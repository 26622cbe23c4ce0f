package pocketbrain

import (
	"context"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/program"
)

// Self-tests of the harness's own hygiene, registered only when PB_SELFTEST names one
// (suites/leaks does): an ordinary run never sees them, not even as skipped specs.
//
//	PB_SELFTEST=panic  the first row (or PB_SELFTEST_ROW) panics while its fault is active
var _ = func() bool {
	if os.Getenv("PB_SELFTEST") != "panic" {
		return false
	}
	Describe("Harness self-test", Label("selftest"), func() {
		It("survives a panic in the middle of a faulted row", func(ctx SpecContext) {
			row := prog.Matrix.Rows[0]
			if id := os.Getenv("PB_SELFTEST_ROW"); id != "" {
				for _, r := range prog.Matrix.Rows {
					if r.ID == id {
						row = r
					}
				}
			}
			rr, err := rec.BeginRow(evidence.RowSpec{ID: "selftest-panic-" + row.ID, Name: "self-test: panic during " + row.ID, Runbook: row.Runbook})
			Expect(err).NotTo(HaveOccurred())
			hold := runner.Hold
			DeferCleanup(func() { runner.Hold = hold })
			runner.Hold = func(context.Context, program.Row) error {
				panic("selftest: a panic in the middle of a faulted row")
			}
			_ = runner.Run(ctx, row, rr)
		})
	})
	return true
}()
