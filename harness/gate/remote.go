package gate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/ready"
	"github.com/pocketbrain/chaos/harness/stack"
	"github.com/pocketbrain/chaos/harness/vps"

	"golang.org/x/crypto/ssh"
)

// Remote is what the checklist's remote steps (2–5) act on: the VPS host, reached over
// SSH, and the release to put there.
type Remote struct {
	Host vps.Host
	// Intended is the release under test: its commit in the release repository.
	Intended string
	// Revision is the revision its server binary was built at (pocketbrain_build_info).
	Revision string
}

// RemoteFor is the stack's own VPS host and its release under test.
func RemoteFor(ctx context.Context, s *stack.Stack) (Remote, error) {
	rel := s.Env.Release()
	if rel == nil {
		return Remote{}, fmt.Errorf("no VPS host in this stack (role %s): the remote steps need one", env.VPSHost)
	}
	h, err := s.Env.VPSHostConfig(ctx)
	if err != nil {
		return Remote{}, err
	}
	return Remote{Host: h, Intended: rel.Intended(), Revision: s.IntendedRevision()}, nil
}

// RemoteSteps are the step numbers RunRemote runs, in the document's order.
var RemoteSteps = []int{2, 3, 4, 5}

// RunRemote runs steps 2–5 against r, in order, each over a connection of its own (as
// each of the document's commands logs in by itself). The first step that fails halts
// the checklist, as in a release: it is returned as failed, naming the step and the fix,
// and every later one as skipped with the reason. A run that passes returns four passes.
func RunRemote(ctx context.Context, s *stack.Stack, g *Spec, r Remote) []evidence.GateStep {
	steps := []func(context.Context, *stack.Stack, *Spec, Remote) evidence.GateStep{precheck, syncStep, deploy, verify}
	var out []evidence.GateStep
	for i, run := range steps {
		st := run(ctx, s, g, r)
		st.Detail = s.Env.Redact(st.Detail)
		out = append(out, st)
		if st.Result == evidence.GateFail {
			why := fmt.Sprintf("step %d (%s) failed and the checklist halts there", st.Step, st.Name)
			for _, n := range RemoteSteps[i+1:] {
				out = append(out, g.Step(n).Record(evidence.GateSkipped, why))
			}
			break
		}
	}
	return out
}

// failed is a step that stopped the release: the error already names the problem and
// the fix.
func failed(step Step, err error) evidence.GateStep {
	return step.Record(evidence.GateFail, fmt.Sprintf("step %d (%s) stopped the release: %v", step.Step, step.Name, err))
}

// dial opens the step's own SSH connection, bounded by the stack's start timeout.
func dial(ctx context.Context, s *stack.Stack, r Remote) (*vps.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.ContainerStart)
	defer cancel()
	return vps.Dial(dctx, r.Host)
}

// precheck is step 2: the host answers SSH with the pinned host key and takes this
// run's key, git is installed, the checkout's filesystem has room, the checkout is clean.
func precheck(ctx context.Context, s *stack.Stack, g *Spec, r Remote) evidence.GateStep {
	step := g.Step(2)
	c, err := dial(ctx, s, r)
	if err != nil {
		return failed(step, err)
	}
	defer c.Close()
	p, err := c.Precheck(ctx)
	if err != nil {
		return failed(step, err)
	}
	return step.Record(evidence.GatePass, fmt.Sprintf("%s@%s reachable, host key %s pinned; %s; %d MiB free on the checkout's filesystem (≥ %d MiB); checkout %s clean at %s",
		r.Host.User, r.Host.Addr, hostKeyName(r.Host), p.GitVersion, p.FreeKiB/1024, vps.MinFreeKiB/1024, r.Host.Checkout, shortSHA(p.Head)))
}

// syncStep is step 3: the checkout fetches the release repository and checks out the
// intended release.
func syncStep(ctx context.Context, s *stack.Stack, g *Spec, r Remote) evidence.GateStep {
	step := g.Step(3)
	c, err := dial(ctx, s, r)
	if err != nil {
		return failed(step, err)
	}
	defer c.Close()
	from, to, err := c.Sync(ctx, r.Intended)
	if err != nil {
		return failed(step, err)
	}
	moved := fmt.Sprintf("HEAD moved from %s to %s", shortSHA(from), shortSHA(to))
	if from == to {
		moved = "HEAD already at " + shortSHA(to)
	}
	return step.Record(evidence.GatePass, fmt.Sprintf("fetched origin; checked out the intended release %s; %s", r.Intended, moved))
}

// deploy is step 4: the stack runs the image set the checked-out commit names (a role
// running another image is replaced with it, no pull), and every replaced service
// answers /ready 200 within Timeouts.SteadyState.
func deploy(ctx context.Context, s *stack.Stack, g *Spec, r Remote) evidence.GateStep {
	step := g.Step(4)
	began := time.Now()
	c, err := dial(ctx, s, r)
	if err != nil {
		return failed(step, err)
	}
	defer c.Close()
	head, done, err := s.Env.DeployRelease(ctx, c)
	if err == nil {
		err = s.RefreshTargets(ctx)
	}
	var facts []string
	for _, d := range done {
		what := "already ran it: not recreated"
		if d.Replaced {
			wctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.SteadyState)
			werr := ready.Wait(wctx, s.Env, d.Role)
			cancel()
			if werr != nil && err == nil {
				err = fmt.Errorf("%s %s deployed but not ready: %w", d.Role, d.Image.Ref, werr)
			}
			what = fmt.Sprintf("replaced; /ready 200 %s after the deploy began", time.Since(began).Round(time.Millisecond))
		}
		facts = append(facts, fmt.Sprintf("%s %s (%s): %s", d.Role, d.Image.Ref, shortID(d.Image.ID), what))
	}
	if err != nil {
		return failed(step, err)
	}
	return step.Record(evidence.GatePass, fmt.Sprintf("checkout at %s names %s", shortSHA(head), strings.Join(facts, "; ")))
}

// verify is step 5: the host's HEAD is the intended release, server and worker answer
// /ready 200, pocketbrain_build_info's revision is the intended one, and the DeployDrift
// trigger is inactive on a monitor tick taken after the step began (all within
// Timeouts.SteadyState).
func verify(ctx context.Context, s *stack.Stack, g *Spec, r Remote) evidence.GateStep {
	step := g.Step(5)
	began := time.Now()
	var problems, facts []string
	c, err := dial(ctx, s, r)
	if err != nil {
		return failed(step, err)
	}
	head, err := c.Head(ctx)
	c.Close()
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case head != r.Intended:
		problems = append(problems, fmt.Sprintf("VPS HEAD %s is not the intended release %s (deploy drift: resolve git/branch drift before rerun)", head, r.Intended))
	default:
		facts = append(facts, "VPS HEAD = intended "+shortSHA(head))
	}
	wctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.SteadyState)
	defer cancel()
	for _, role := range []env.Role{env.Server, env.Worker} {
		if err := ready.Wait(wctx, s.Env, role); err != nil {
			problems = append(problems, err.Error())
		} else {
			facts = append(facts, string(role)+" /ready 200")
		}
	}
	revs, err := BuildRevisions(ctx, s.Env)
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case len(revs) == 1 && revs[0] == r.Revision:
		facts = append(facts, fmt.Sprintf("pocketbrain_build_info{revision=%q} = intended %q", revs[0], r.Revision))
	default:
		problems = append(problems, fmt.Sprintf("pocketbrain_build_info revisions %q, intended %q (deploy drift)", revs, r.Revision))
	}
	// The DeployDrift trigger must be inactive on a tick taken after the deploy.
	since := time.Now()
	_, werr := s.Monitor.WaitFor(wctx, "a monitor tick after the deploy", func(ctx context.Context) (bool, error) {
		last, _ := s.Monitor.LastTick()
		return last.T.After(since), nil
	})
	if werr != nil {
		problems = append(problems, werr.Error())
	} else if state := s.Rules.State(DeployDrift); state.Loud() {
		problems = append(problems, "rollback trigger "+DeployDrift+" is "+string(state))
	} else {
		facts = append(facts, DeployDrift+" inactive")
	}
	detail := strings.Join(facts, "; ") + fmt.Sprintf(" (verified in %s)", time.Since(began).Round(time.Millisecond))
	if len(problems) > 0 {
		return step.Record(evidence.GateFail, fmt.Sprintf("step %d (%s) stopped the release: %s; %s", step.Step, step.Name, strings.Join(problems, "; "), detail))
	}
	return step.Record(evidence.GatePass, detail)
}

// hostKeyName is the pinned host key's public fingerprint.
func hostKeyName(h vps.Host) string {
	if h.Keys == nil || h.Keys.HostPublic == nil {
		return "(none)"
	}
	return ssh.FingerprintSHA256(h.Keys.HostPublic)
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// imageIDShown is how much of an image id ("sha256:" and 12 hex digits) a detail shows.
const imageIDShown = 19

func shortID(id string) string {
	if len(id) > imageIDShown {
		return id[:imageIDShown]
	}
	return id
}
