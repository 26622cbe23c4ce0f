// Package scale is the benchmark of the sync endpoints' cost as the store grows (`make
// bench` runs it): one server stack, seeded through 10 k, 100 k and 1 M captures, measured
// at each size straight at the server's published port.
//
//	go test -run '^$' -bench Scale -benchtime 1x -timeout 30m ./suites/scale
package scale

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/scale"
	"github.com/pocketbrain/chaos/harness/stack"
)

// sizes are the store sizes measured; PB_SCALE_SIZES (comma-separated) overrides them.
func sizes(b *testing.B) []int {
	v := os.Getenv("PB_SCALE_SIZES")
	if v == "" {
		return []int{10_000, 100_000, 1_000_000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(out) > 0 && n <= out[len(out)-1]) {
			b.Fatalf("PB_SCALE_SIZES=%q: give growing whole numbers of captures, e.g. 10000,100000,1000000", v)
		}
		out = append(out, n)
	}
	return out
}

func BenchmarkScale(b *testing.B) {
	ss := sizes(b)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	e, err := env.Start(ctx, env.WithRoles(env.ServerStack...), env.WithLog(os.Stderr))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		tctx, tcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer tcancel()
		if err := e.Close(tctx); err != nil {
			b.Error(err)
		}
	}()
	base, err := e.URL(ctx, env.Server)
	if err != nil {
		b.Fatal(err)
	}
	var results []scale.Result
	have := 0
	for range b.N {
		for _, n := range ss {
			seed, err := stack.Grow(ctx, e, have, n, 0)
			if err != nil {
				b.Fatal(err)
			}
			have = n
			fmt.Fprintf(os.Stderr, "[scale] %d captures (seeded %d more in %s)\n", n, seed.Captures, seed.Took.Round(time.Millisecond))
			r, err := scale.Measure(ctx, base, n, scale.DefaultOptions())
			if err != nil {
				b.Fatal(err)
			}
			results = append(results, r)
			label := strconv.Itoa(n/1000) + "k"
			b.ReportMetric(float64(r.Pull.P99)/1e6, "pull-p99-ms@"+label)
			b.ReportMetric(float64(r.Push.P99)/1e6, "push-p99-ms@"+label)
			b.ReportMetric(r.Resync.Seconds(), "resync-s@"+label)
		}
	}
	table := scale.Table(results)
	fmt.Fprint(os.Stderr, "\n"+table)
	if out := os.Getenv("PB_SCALE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			b.Error(err)
		}
	}
	for _, breach := range scale.Check(results) {
		b.Error(breach)
	}
}
