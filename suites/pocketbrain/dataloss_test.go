package pocketbrain

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/profile"
	"github.com/pocketbrain/chaos/harness/stack"
	"github.com/pocketbrain/chaos/harness/workload"
)

var wl *workload.Workload

// seeded is what seedDataset wrote (zero when nothing was seeded).
var seeded stack.SeedResult

// wireWorkload follows the client fleet: its history is kept across client restarts,
// and the checker judges it after every row.
func wireWorkload() {
	if !st.Env.Has(env.Clients) {
		return
	}
	wl = workload.New(st.Env, filepath.Join(prof.OutDir, "p"+strconv.Itoa(ginkgo.GinkgoParallelProcess())))
	wl.Redactor = red
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

// seedDataset fills the store before the first spec (PB_SEED_CAPTURES, by profile), so
// every row runs on a store of production size, and records it in the evidence. Every
// data-loss check then counts the seeded captures again.
func seedDataset(ctx context.Context, progress io.Writer) {
	if prof.SeedCaptures == 0 || !st.Env.Has(env.Clients) {
		return
	}
	fmt.Fprintf(progress, "[suite] seeding %d captures (%s)\n", prof.SeedCaptures, profile.EnvSeed)
	res, err := stack.Seed(ctx, st.Env, prof.SeedCaptures, stack.SeedWait(prof.SeedCaptures))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	seeded = res
	fmt.Fprintf(progress, "[suite] seeded %d captures over %d client ids in %s (log pruned %d times, horizon %d); fleet resynced in %s\n",
		res.Captures, res.Owners, res.Took.Round(time.Millisecond), res.Prunes, res.Horizon, res.ResyncTook.Round(time.Millisecond))
	if wl != nil {
		wl.Seeded = int64(res.Captures)
	}
	gomega.Expect(rec.Update(func(run *evidence.Run) {
		run.Dataset = &evidence.Dataset{SeededCaptures: res.Captures, Owners: res.Owners, Prunes: res.Prunes, Horizon: res.Horizon,
			SeedSeconds: res.Took.Seconds(), ResyncSeconds: res.ResyncTook.Seconds()}
	})).To(gomega.Succeed())
}

// resyncAllowance is how long a recovery that includes a full resync of the whole fleet may
// take on top of the usual recovery time: twice the fleet's measured resync past the seed.
func resyncAllowance() time.Duration { return 2 * seeded.ResyncTook }
