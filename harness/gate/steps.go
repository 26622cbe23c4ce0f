package gate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Step returns step n (1-based) of the checklist; Load guarantees all Steps exist.
func (g *Spec) Step(n int) Step { return g.Steps[n-1] }

// Record is the step's evidence with a result and a detail.
func (s Step) Record(result, detail string) evidence.GateStep {
	return evidence.GateStep{Step: s.Step, Name: s.Name, Command: s.Command, Result: result, Detail: detail}
}

// RunConfigCheck is step 1 on the reference stack: the real config gate binary of each
// service image (images maps a role to its image), with the canonical environment and
// with every unsafe one, each in a one-off container started by run. The canonical
// environment must pass in every image; every unsafe change must be refused (exit
// non-zero) naming its variable. One line per container goes to log. An error is a
// container that could not be run, not a refusal.
func RunConfigCheck(ctx context.Context, g *Spec, images env.Images, run OneOffRunner, log io.Writer) (evidence.GateStep, error) {
	cc := g.ConfigCheck
	first := g.Step(1)
	step := evidence.GateStep{Step: first.Step, Name: first.Name,
		Command: CommandLine(cc.CanonicalEnv, cc.CanonicalOrder, first.Command) + " (here: " + cc.Binary + " in the " + strings.Join(cc.Images, " and ") + " images)"}
	var notes, bad []string
	for _, role := range cc.Images {
		img := images[env.Role(role)]
		res, err := run(ctx, OneOff{Image: img, Entrypoint: []string{cc.Binary}, Env: cc.CanonicalEnv})
		if err != nil {
			return step, err
		}
		out := strings.TrimSpace(res.Log)
		ok := res.Exited && res.Code == 0 && strings.Contains(out, cc.OKOutput)
		fmt.Fprintf(log, "[gate] %s %s canonical: exit %d in %s: %s\n", role, cc.Binary, res.Code, res.Elapsed.Round(time.Millisecond), out)
		if ok {
			notes = append(notes, fmt.Sprintf("canonical env → %q, exit 0 (%s image)", cc.OKOutput, role))
		} else {
			bad = append(bad, fmt.Sprintf("canonical env refused by the %s image (exit %d): %s", role, res.Code, OneLine(out)))
		}
	}
	refused := 0
	for _, u := range cc.Unsafe {
		e := maps.Clone(cc.CanonicalEnv)
		maps.Copy(e, u.Set)
		img := images[env.Role(cc.Images[0])]
		res, err := run(ctx, OneOff{Image: img, Entrypoint: []string{cc.Binary}, Env: e})
		if err != nil {
			return step, err
		}
		named := ProblemsNamed(res.Log)
		fmt.Fprintf(log, "[gate] %s: exit %d in %s, names %v\n", u.Label(), res.Code, res.Elapsed.Round(time.Millisecond), named)
		if res.Exited && res.Code != 0 && slices.Contains(named, u.Names) {
			refused++
			notes = append(notes, fmt.Sprintf("%s → exit %d naming %s", u.Label(), res.Code, u.Names))
		} else {
			bad = append(bad, fmt.Sprintf("%s: exit %d, names %v; the gate must refuse it naming %s", u.Label(), res.Code, named, u.Names))
		}
	}
	step.Result = evidence.GatePass
	if len(bad) > 0 {
		step.Result = evidence.GateFail
		step.Detail = strings.Join(bad, "; ") + ". Passed: " + strings.Join(notes, "; ")
	} else {
		step.Detail = fmt.Sprintf("%d of %d unsafe settings refused, each naming its variable; ", refused, len(cc.Unsafe)) + strings.Join(notes, "; ")
	}
	return step, nil
}

// DeployDrift is the rollback trigger that compares the running revision with the
// intended one.
const DeployDrift = "DeployDrift"

// BuildRevisions reads pocketbrain_build_info's revisions from the server's /metrics.
func BuildRevisions(ctx context.Context, e *env.Environment) ([]string, error) {
	resp, err := e.Do(ctx, env.Server, env.Request{Path: "/metrics"})
	if err != nil {
		return nil, err
	}
	revs, err := Revisions(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("server /metrics (status %d): %w", resp.Status, err)
	}
	return revs, nil
}

// Revisions lists the revision label of every pocketbrain_build_info sample of value 1
// in a Prometheus text exposition.
func Revisions(metrics []byte) ([]string, error) {
	samples, err := signals.ParseText(bytes.NewReader(metrics), signals.Target{Name: "verify", Kind: signals.KindPrometheus})
	if err != nil {
		return nil, err
	}
	var revs []string
	for _, s := range samples {
		if s.Labels.Get("__name__") == "pocketbrain_build_info" && s.Value == 1 {
			revs = append(revs, s.Labels.Get("revision"))
		}
	}
	return revs, nil
}
