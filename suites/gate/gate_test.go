// Package gate checks the release gate's remote steps (issue 16) against a real VPS host
// container: the good input passes steps 2–5, the deploy replaces a server that runs
// another artifact with the one the checked-out release names, and each bad input (a wrong client key, a
// host that answers with another host key, a dirty checkout, a release SHA the release
// repository does not hold, an unreachable host) stops the gate at its own step, as a
// failure that names the step and the fix, with every later step skipped.
//
//	go test -count=1 -v ./suites/gate
package gate

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/gate"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/stack"
	"github.com/pocketbrain/chaos/harness/vps"
)

// stopsAt asserts that steps halted at step n with a failure whose detail holds every
// want: the steps before it passed, the ones after it are skipped.
func stopsAt(t *testing.T, steps []evidence.GateStep, n int, want ...string) {
	t.Helper()
	require.Len(t, steps, len(gate.RemoteSteps), "every remote step is reported, run or not")
	for _, s := range steps {
		t.Logf("step %d %s: %s — %s", s.Step, s.Name, s.Result, s.Detail)
		switch {
		case s.Step < n:
			assert.Equal(t, evidence.GatePass, s.Result, "step %d before the bad input's step", s.Step)
		case s.Step == n:
			assert.Equal(t, evidence.GateFail, s.Result, "step %d must stop the gate", s.Step)
			assert.Contains(t, s.Detail, "stopped the release", "the failure names the step")
			for _, w := range want {
				assert.Contains(t, s.Detail, w)
			}
		default:
			assert.Equal(t, evidence.GateSkipped, s.Result, "step %d after the halt", s.Step)
			assert.Contains(t, s.Detail, "halts there")
		}
	}
}

func TestBadInputStopsTheGateAtItsStep(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a stack with a VPS host on Docker: not with -short")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	prog, err := program.Load(filepath.Join("..", "..", "program"))
	require.NoError(t, err)
	roles := slices.DeleteFunc(slices.Clone(env.FullStack), func(r env.Role) bool { return r == env.Clients })
	st, err := stack.Up(ctx, prog, stack.Options{Roles: roles, Log: os.Stderr, EnvOptions: []env.Option{env.WithLog(os.Stderr)}})
	require.NoError(t, err)
	defer func() {
		tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer tcancel()
		assert.NoError(t, st.Down(tctx))
	}()
	g, err := gate.Load(filepath.Join("..", "..", "program"))
	require.NoError(t, err)
	good, err := gate.RemoteFor(ctx, st)
	require.NoError(t, err)

	// The control: with the run's own host, keys and release every remote step passes, so
	// each failure below is the bad input's doing.
	t.Run("good input passes steps 2–5", func(t *testing.T) {
		steps := gate.RunRemote(ctx, st, g, good)
		require.Len(t, steps, len(gate.RemoteSteps))
		for _, s := range steps {
			t.Logf("step %d %s: %s — %s", s.Step, s.Name, s.Result, s.Detail)
			assert.Equal(t, evidence.GatePass, s.Result, "step %d", s.Step)
		}
	})

	// The deploy acts: a server running another artifact (the drift build) is replaced
	// with the image the checked-out release names, and verify then passes.
	t.Run("deploy replaces a server running another artifact", func(t *testing.T) {
		require.NoError(t, st.Env.Replace(ctx, env.Server, env.Change{Image: "pocketbrain-local/server:drift"}))
		require.NoError(t, st.RefreshTargets(ctx))
		steps := gate.RunRemote(ctx, st, g, good)
		require.Len(t, steps, len(gate.RemoteSteps))
		for _, s := range steps {
			t.Logf("step %d %s: %s — %s", s.Step, s.Name, s.Result, s.Detail)
			assert.Equal(t, evidence.GatePass, s.Result, "step %d", s.Step)
		}
		assert.Contains(t, steps[2].Detail, "replaced; /ready 200", "step 4 must have replaced the drift build")
		revs, err := gate.BuildRevisions(ctx, st.Env)
		require.NoError(t, err)
		assert.Equal(t, []string{good.Revision}, revs, "the server reports the release's revision again")
	})

	t.Run("wrong client key stops at precheck", func(t *testing.T) {
		r := good
		other, err := good.Host.Keys.WithOtherClient()
		require.NoError(t, err)
		r.Host.Keys = other
		stopsAt(t, gate.RunRemote(ctx, st, g, r), 2, "SSH authentication refused", "authorized_keys")
	})

	t.Run("another host key stops at precheck", func(t *testing.T) {
		r := good
		stranger, err := vps.NewKeys()
		require.NoError(t, err)
		pinned := *good.Host.Keys
		pinned.HostPublic = stranger.HostPublic // the harness expects another host
		r.Host.Keys = &pinned
		stopsAt(t, gate.RunRemote(ctx, st, g, r), 2, "host key")
	})

	t.Run("dirty checkout stops at precheck", func(t *testing.T) {
		host, err := st.Env.VPSClient(ctx)
		require.NoError(t, err)
		require.NoError(t, host.Dirty(ctx, "chaos-dirty.txt"))
		stopsAt(t, gate.RunRemote(ctx, st, g, good), 2, "dirty", "chaos-dirty.txt", "git reset --hard")
		_, err = host.Reset(ctx, good.Intended)
		require.NoError(t, err)
		steps := gate.RunRemote(ctx, st, g, good)
		assert.Equal(t, evidence.GatePass, steps[len(steps)-1].Result, "after the reset the gate passes again: %+v", steps)
	})

	t.Run("a SHA the release repository lacks stops at sync", func(t *testing.T) {
		r := good
		r.Intended = strings.Repeat("0badc0ffee", 4)
		stopsAt(t, gate.RunRemote(ctx, st, g, r), 3, "does not exist in the release repository", r.Intended)
		head, err := st.Env.VPSHead(ctx)
		require.NoError(t, err)
		assert.Equal(t, good.Intended, head, "a refused sync leaves the checkout where it was")
	})

	// Last: it stops the host.
	t.Run("unreachable host stops at precheck", func(t *testing.T) {
		c, err := st.Env.Container(env.VPSHost)
		require.NoError(t, err)
		timeout := 2
		_, err = st.Env.Docker().Client().ContainerStop(ctx, c.GetContainerID(), client.ContainerStopOptions{Timeout: &timeout})
		require.NoError(t, err)
		stopsAt(t, gate.RunRemote(ctx, st, g, good), 2, "unreachable")
	})
}
