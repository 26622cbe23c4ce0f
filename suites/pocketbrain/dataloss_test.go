package pocketbrain

import (
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/pocketbrain/chaos/harness/stack"
	"github.com/pocketbrain/chaos/harness/workload"
)

// wl follows the client fleet (the session's workload): its history is kept across
// client restarts, and the checker judges it after every row.
var wl *workload.Workload

// seeded is what the session seeded before the first spec (PB_SEED_CAPTURES, by
// profile; zero when nothing was seeded): every data-loss check counts it again.
var seeded stack.SeedResult

// checkName names the history files of the data-loss check after the current spec: the
// first word of its leaf text (the row id).
func checkName() string {
	name := strings.NewReplacer(" ", "_", "/", "_", ":", "_").Replace(ginkgo.CurrentSpecReport().LeafNodeText)
	if i := strings.Index(name, "_"); i > 0 {
		name = name[:i]
	}
	return name
}

// resyncAllowance is how long a recovery that includes a full resync of the whole fleet may
// take on top of the usual recovery time: twice the fleet's measured resync past the seed.
func resyncAllowance() time.Duration { return 2 * seeded.ResyncTook }
