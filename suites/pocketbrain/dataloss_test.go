package pocketbrain

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/onsi/ginkgo/v2"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/workload"
)

var wl *workload.Workload

// wireWorkload follows the client fleet: its history is kept across client restarts,
// and the checker judges it after every row.
func wireWorkload() {
	if !st.Env.Has(env.Clients) {
		return
	}
	wl = workload.New(st.Env, filepath.Join(prof.OutDir, "p"+strconv.Itoa(ginkgo.GinkgoParallelProcess())))
	st.Env.BeforeReplace = func(ctx context.Context, r env.Role) error {
		if r == env.Clients {
			return wl.Keep(ctx)
		}
		return nil
	}
	runner.DataLoss = func(ctx context.Context) (*evidence.DataLoss, error) {
		name := strings.NewReplacer(" ", "_", "/", "_", ":", "_").Replace(ginkgo.CurrentSpecReport().LeafNodeText)
		if i := strings.Index(name, "_"); i > 0 {
			name = name[:i]
		}
		return wl.Check(ctx, name)
	}
}
