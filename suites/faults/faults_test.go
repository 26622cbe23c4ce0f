// Package faults checks, on a real stack, that each fault kind proves what it claims
// (issue 12 §2): the proof looks at the target itself, so a fault that was never injected
// fails "fault did not act", an injected one passes, its effect is still seen before the
// heal, and is gone after it.
//
//	go test -count=1 -v ./suites/faults
package faults

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
)

// inertLook is how long a proof is given to find an effect that is not there.
const inertLook = 3 * time.Second

func TestEveryFaultKindProvesItActedAndHealed(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the reference stack on Docker: not with -short")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	e, err := env.Start(ctx, env.WithClients(3), env.WithLog(os.Stderr))
	require.NoError(t, err)
	var guard faults.Guard
	defer func() {
		tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer tcancel()
		_, _ = guard.HealAll(tctx, e)
		assert.NoError(t, e.Close(tctx))
	}()
	proofWait := e.Config().Timeouts.FaultProof

	specs := []faults.Spec{
		{Kind: "network", Action: "down", Edge: "redis"},
		{Kind: "network", Action: "timeout", Edge: "pg", Params: map[string]string{"timeout": "0"}},
		{Kind: "network", Action: "latency", Edge: "vps", Params: map[string]string{"latency": "1500"}},
		{Kind: "network", Action: "reset_peer", Edge: "kv", Params: map[string]string{"timeout": "0"}},
		{Kind: "storage", Action: "fill", Target: "primary"},
		{Kind: "process", Action: "pause", Target: "provider"},
		{Kind: "config", Action: "set_env", Target: "provider", Params: map[string]string{"PB_CHAOS_MARK": "proof"}},
		{Kind: "provider", Action: "respond", Params: map[string]string{"status": "503"}},
		{Kind: "release", Action: "local_commit", Target: "vpshost"},
	}
	for _, spec := range specs {
		t.Run(spec.Kind+"-"+spec.Action, func(t *testing.T) {
			f, err := faults.New(spec)
			require.NoError(t, err)

			// Never injected: the proof must say so (the old proof recorded what it saw and
			// let the row go on).
			ps, err := faults.WaitActed(ctx, e, f, inertLook)
			t.Logf("not injected: %v → %v", ps, err)
			require.Error(t, err, "%s: the proof passed for a fault that was never injected", spec)
			assert.Contains(t, err.Error(), "fault did not act")

			require.NoError(t, guard.Inject(ctx, e, f))
			ps, err = faults.WaitActed(ctx, e, f, proofWait)
			t.Logf("injected: %v", ps)
			require.NoError(t, err)
			_, err = faults.WaitHealed(ctx, e, f, inertLook)
			require.Error(t, err, "%s: the heal proof passed while the fault is still in place", spec)
			assert.Contains(t, err.Error(), "still in effect")

			require.NoError(t, guard.Heal(ctx, e, f))
			ps, err = faults.WaitHealed(ctx, e, f, proofWait)
			t.Logf("healed: %v", ps)
			require.NoError(t, err)
			for _, p := range ps {
				for _, secret := range e.Secrets.Values() {
					assert.False(t, strings.Contains(p.Value, secret), "the proof %q carries a secret of the run", p.What)
				}
			}
		})
	}

	// A full disk stays full while the app frees space: the clients delete what a drained
	// sync queue held (CI once saw "20 KiB free" under a single fill). Freeing 64 KiB of
	// the filler behind the fault's back must not end the fault.
	t.Run("storage-fill-stays-full", func(t *testing.T) {
		f, err := faults.New(faults.Spec{Kind: "storage", Action: "fill", Target: "primary"})
		require.NoError(t, err)
		require.NoError(t, guard.Inject(ctx, e, f))
		_, err = faults.WaitActed(ctx, e, f, proofWait)
		require.NoError(t, err)
		vol, err := e.Volume("primary")
		require.NoError(t, err)
		out, err := e.RunUtility(ctx, []string{"sh", "-c", "truncate -s -64K /mnt/primary/.pb-chaos-fill && df -k /mnt/primary | tail -n 1"}, map[string]string{vol: "/mnt/primary"})
		require.NoError(t, err)
		require.Zero(t, out.Code, out.Log)
		t.Logf("freed 64 KiB: %s", strings.TrimSpace(out.Log))
		time.Sleep(time.Second)
		ps, err := faults.WaitActed(ctx, e, f, inertLook)
		t.Logf("a second later: %v", ps)
		require.NoError(t, err, "the volume did not stay full")
		require.NoError(t, guard.Heal(ctx, e, f))
		_, err = faults.WaitHealed(ctx, e, f, proofWait)
		require.NoError(t, err)
	})
}
