package pocketbrain

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	tc "github.com/testcontainers/testcontainers-go"
	"gopkg.in/yaml.v3"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// ReleaseGateFile is program/release-gate.yaml: the document's checklist as data.
const ReleaseGateFile = "release-gate.yaml"

type gateSpec struct {
	Version         int                     `yaml:"version"`
	Document        string                  `yaml:"document"`
	Steps           []gateStepSpec          `yaml:"steps"`
	ConfigCheck     configCheckSpec         `yaml:"config_check"`
	ProductionStart map[string]env.Settings `yaml:"production_start"`
}

type gateStepSpec struct {
	Step             int    `yaml:"step"`
	Name             string `yaml:"name"`
	Command          string `yaml:"command"`
	OnReferenceStack string `yaml:"on_reference_stack"`
	NA               string `yaml:"na"`
}

// mappingKeys returns the keys of the mapping at path, in the file's order.
func mappingKeys(n *yaml.Node, path ...string) []string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	var keys []string
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

type configCheckSpec struct {
	Binary       string         `yaml:"binary"`
	Images       []string       `yaml:"images"`
	OKOutput     string         `yaml:"ok_output"`
	CanonicalEnv env.Settings   `yaml:"canonical_env"`
	Unsafe       []unsafeChange `yaml:"unsafe"`
	// canonicalOrder is the document's order of the canonical variables.
	canonicalOrder []string
}

type unsafeChange struct {
	Set   env.Settings `yaml:"set"`
	Names string       `yaml:"names"`
	Start []string     `yaml:"start"`
}

// label is the change as a reader sees it; secret-named values show by length only.
func (u unsafeChange) label() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(u.Set)) {
		v := u.Set[k]
		switch {
		case v == "":
			parts = append(parts, k+" unset")
		case evidence.IsSecretEnvName(k):
			parts = append(parts, fmt.Sprintf("%s=<%d bytes>", k, len(v)))
		default:
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func loadGateSpec(dir string) (*gateSpec, error) {
	path := filepath.Join(dir, ReleaseGateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (the release gate lives there; restore it from git)", path, err)
	}
	var s gateSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w; fix the YAML", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err == nil {
		s.ConfigCheck.canonicalOrder = mappingKeys(&root, "config_check", "canonical_env")
	}
	var probs []string
	if s.Version != 1 {
		probs = append(probs, fmt.Sprintf("version %d: only version 1 is known", s.Version))
	}
	for i, sp := range s.Steps {
		if sp.Step != i+1 {
			probs = append(probs, fmt.Sprintf("steps[%d]: step %d out of order; number the steps 1, 2, 3... as the document does", i, sp.Step))
		}
		if sp.Name == "" || sp.Command == "" {
			probs = append(probs, fmt.Sprintf("steps[%d]: name and command are required", i))
		}
		if (sp.NA == "") == (sp.OnReferenceStack == "") {
			probs = append(probs, fmt.Sprintf("steps[%d] (%s): give exactly one of on_reference_stack (how it runs here) or na (why it cannot)", i, sp.Name))
		}
	}
	if len(s.Steps) != 6 {
		probs = append(probs, fmt.Sprintf("%d steps: the document's checklist has 6", len(s.Steps)))
	}
	cc := s.ConfigCheck
	if cc.Binary == "" || len(cc.Images) == 0 || cc.OKOutput == "" || len(cc.CanonicalEnv) == 0 {
		probs = append(probs, "config_check: binary, images, ok_output and canonical_env are required")
	}
	for _, im := range cc.Images {
		if im != string(env.Server) && im != string(env.Worker) {
			probs = append(probs, fmt.Sprintf("config_check.images: %q: the config gate ships in the server and worker images", im))
		}
	}
	for i, u := range cc.Unsafe {
		if len(u.Set) == 0 || u.Names == "" {
			probs = append(probs, fmt.Sprintf("config_check.unsafe[%d]: set and names are required", i))
		}
		for _, r := range u.Start {
			if _, ok := s.ProductionStart[r]; !ok {
				probs = append(probs, fmt.Sprintf("config_check.unsafe[%d]: start %q has no production_start entry; use server or worker", i, r))
			}
		}
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("%s:\n  %s", path, strings.Join(probs, "\n  "))
	}
	return &s, nil
}

// commandLine renders an environment and a command as the document writes step 1 (its
// variables in the given order, any others sorted after them), with every secret-named
// value shown by its length only.
func commandLine(e env.Settings, order []string, cmd string) string {
	var parts []string
	keys := slices.Clone(order)
	for _, k := range slices.Sorted(maps.Keys(e)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if _, ok := e[k]; !ok {
			continue
		}
		v := e[k]
		if evidence.IsSecretEnvName(k) {
			v = fmt.Sprintf("<%d bytes>", len(v))
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(append(parts, cmd), " ")
}

// oneOff is a short-lived container of a service image run beside the stack: labelled as
// the stack's (so a sweep removes it after a crash), with no network, always removed.
type oneOff struct {
	Image      string
	Entrypoint []string
	Env        env.Settings
	// Until ends the wait early while the container still runs (e.g. "it is listening").
	Until  func(log string) bool
	Within time.Duration
}

type oneOffResult struct {
	Exited  bool
	Code    int
	Log     string // redacted
	Elapsed time.Duration
}

func runOneOff(ctx context.Context, o oneOff) (oneOffResult, error) {
	vars := map[string]string{}
	for k, v := range o.Env {
		if v != "" {
			vars[k] = v
		}
	}
	host, _ := os.Hostname()
	opts := []tc.ContainerCustomizer{
		tc.WithEnv(vars),
		tc.WithLabels(map[string]string{
			env.LabelHarness: "1", env.LabelRun: st.Env.RunID(), env.LabelPID: strconv.Itoa(os.Getpid()),
			env.LabelHost: host, "pocketbrain.chaos.role": "oneoff",
		}),
		tc.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "none" }),
	}
	if len(o.Entrypoint) > 0 {
		opts = append(opts, tc.WithEntrypoint(o.Entrypoint...))
	}
	began := time.Now()
	ctr, err := tc.Run(ctx, o.Image, opts...)
	if ctr != nil {
		defer func() {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.Env.Config().Timeouts.Teardown)
			defer cancel()
			_ = ctr.Terminate(tctx)
		}()
	}
	if err != nil {
		return oneOffResult{}, fmt.Errorf("start one-off %s: %w", o.Image, err)
	}
	within := o.Within
	if within == 0 {
		within = st.Env.Config().Timeouts.ContainerStart
	}
	logs := func() string {
		rc, err := ctr.Logs(ctx)
		if err != nil {
			return ""
		}
		defer rc.Close()
		b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
		return st.Env.Redact(string(b))
	}
	for {
		s, err := ctr.State(ctx)
		if err != nil {
			return oneOffResult{}, fmt.Errorf("state of one-off %s: %w", o.Image, err)
		}
		if !s.Running {
			return oneOffResult{Exited: true, Code: s.ExitCode, Log: logs(), Elapsed: time.Since(began)}, nil
		}
		if o.Until != nil {
			if l := logs(); o.Until(l) {
				return oneOffResult{Log: l, Elapsed: time.Since(began)}, nil
			}
		}
		if time.Since(began) > within {
			return oneOffResult{Log: logs(), Elapsed: time.Since(began)}, nil
		}
		select {
		case <-ctx.Done():
			return oneOffResult{}, ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// problemsNamed lists the variables the config check's "PROBLEM VAR: ..." lines name.
func problemsNamed(out string) []string {
	var vars []string
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "PROBLEM "); ok {
			if v, _, ok := strings.Cut(rest, ":"); ok {
				vars = append(vars, v)
			}
		}
	}
	return vars
}

// runConfigCheck is release-gate step 1 on the reference stack: the real pb-config-check
// binary of each service image, with the canonical environment and with every unsafe one.
func runConfigCheck(ctx context.Context, g *gateSpec) (evidence.GateStep, error) {
	cc := g.ConfigCheck
	step := evidence.GateStep{Step: 1, Name: g.Steps[0].Name,
		Command: commandLine(cc.CanonicalEnv, cc.canonicalOrder, g.Steps[0].Command) + " (here: " + cc.Binary + " in the " + strings.Join(cc.Images, " and ") + " images)"}
	var notes, bad []string
	images := st.Env.Config().Images
	for _, role := range cc.Images {
		img := images[env.Role(role)]
		res, err := runOneOff(ctx, oneOff{Image: img, Entrypoint: []string{cc.Binary}, Env: cc.CanonicalEnv})
		if err != nil {
			return step, err
		}
		out := strings.TrimSpace(res.Log)
		ok := res.Exited && res.Code == 0 && strings.Contains(out, cc.OKOutput)
		fmt.Fprintf(GinkgoWriter, "[gate] %s %s canonical: exit %d in %s: %s\n", role, cc.Binary, res.Code, res.Elapsed.Round(time.Millisecond), out)
		if ok {
			notes = append(notes, fmt.Sprintf("canonical env → %q, exit 0 (%s image)", cc.OKOutput, role))
		} else {
			bad = append(bad, fmt.Sprintf("canonical env refused by the %s image (exit %d): %s", role, res.Code, gateOneLine(out)))
		}
	}
	refused := 0
	for _, u := range cc.Unsafe {
		e := maps.Clone(cc.CanonicalEnv)
		maps.Copy(e, u.Set)
		img := images[env.Role(cc.Images[0])]
		res, err := runOneOff(ctx, oneOff{Image: img, Entrypoint: []string{cc.Binary}, Env: e})
		if err != nil {
			return step, err
		}
		named := problemsNamed(res.Log)
		fmt.Fprintf(GinkgoWriter, "[gate] %s: exit %d in %s, names %v\n", u.label(), res.Code, res.Elapsed.Round(time.Millisecond), named)
		if res.Exited && res.Code != 0 && slices.Contains(named, u.Names) {
			refused++
			notes = append(notes, fmt.Sprintf("%s → exit %d naming %s", u.label(), res.Code, u.Names))
		} else {
			bad = append(bad, fmt.Sprintf("%s: exit %d, names %v; the gate must refuse it naming %s", u.label(), res.Code, named, u.Names))
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

func gateOneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// buildRevision reads pocketbrain_build_info's revision from the server's /metrics.
func buildRevision(ctx context.Context) ([]string, error) {
	body, code, err := stackGet(ctx, env.Server, "/metrics")
	if err != nil {
		return nil, err
	}
	samples, err := signals.ParseText(bytes.NewReader(body), signals.Target{Name: "verify", Kind: signals.KindPrometheus})
	if err != nil {
		return nil, fmt.Errorf("server /metrics (status %d): %w", code, err)
	}
	var revs []string
	for _, s := range samples {
		if s.Labels.Get("__name__") == "pocketbrain_build_info" && s.Value == 1 {
			revs = append(revs, s.Labels.Get("revision"))
		}
	}
	return revs, nil
}

var _ = Describe("Release gate", Ordered, Label("gate"), func() {
	g, err := loadGateSpec(programDir())
	if err != nil {
		panic(err.Error())
	}
	done := map[int]bool{}
	halted := ""
	record := func(s evidence.GateStep) {
		Expect(rec.SetGateStep(s)).To(Succeed())
		done[s.Step] = true
		if s.Result == evidence.GateFail && halted == "" {
			halted = fmt.Sprintf("step %d (%s) failed and the checklist halts there", s.Step, s.Name)
		}
		fmt.Fprintf(progressOut(), "[gate] step %d %s: %s — %s\n", s.Step, s.Name, s.Result, s.Detail)
	}
	// A step that must be run and fails records "fail"; any error on the way too.
	failStep := func(n int, err error) {
		s := g.Steps[n-1]
		record(evidence.GateStep{Step: n, Name: s.Name, Command: s.Command, Result: evidence.GateFail, Detail: st.Env.Redact(err.Error())})
	}

	// Every step not run (filtered out, or after a failed step) is recorded as skipped,
	// so a partial checklist can never read as a passed one.
	AfterAll(func() {
		if rec == nil {
			return
		}
		why := halted
		if why == "" {
			why = fmt.Sprintf("not run in this invocation (label filter %q)", GinkgoLabelFilter())
		}
		for _, s := range g.Steps {
			if !done[s.Step] {
				Expect(rec.SetGateStep(evidence.GateStep{Step: s.Step, Name: s.Name, Command: s.Command, Result: evidence.GateSkipped, Detail: why})).To(Succeed())
			}
		}
	})

	It("step 1: the config check passes the canonical env and refuses every unsafe one", func(ctx SpecContext) {
		s, err := runConfigCheck(ctx, g)
		if err != nil {
			failStep(1, err)
			Fail(err.Error())
		}
		record(s)
		Expect(s.Result).To(Equal(evidence.GatePass), s.Detail)
	}, NodeTimeout(5*time.Minute))

	It("steps 2–3: precheck and sync have no remote VPS to act on (n/a, with the reason)", func() {
		for _, n := range []int{2, 3} {
			s := g.Steps[n-1]
			record(evidence.GateStep{Step: n, Name: s.Name, Command: s.Command, Result: evidence.GateNA, Detail: s.NA})
		}
	})

	It("step 4: deploy puts the release's server image with the intended revision in place", func(ctx SpecContext) {
		s := g.Steps[3]
		img := st.Env.Config().Images[env.Server]
		began := time.Now()
		deployStartedAt = began
		err := st.Env.Replace(ctx, env.Server, env.Change{Image: img, Env: env.Settings{"RELEASE_REVISION": prof.Revision}})
		if err == nil {
			err = st.RefreshTargets(ctx)
		}
		if err == nil {
			wctx, cancel := context.WithTimeout(ctx, st.Env.Config().Timeouts.SteadyState)
			err = waitRoleReady(wctx, env.Server)
			cancel()
		}
		if err != nil {
			failStep(4, fmt.Errorf("deploy: %w", err))
			Fail(err.Error())
		}
		id := st.Env.ImageIDs[env.Server]
		if len(id) > 19 {
			id = id[:19]
		}
		record(evidence.GateStep{Step: 4, Name: s.Name, Command: s.Command, Result: evidence.GatePass,
			Detail: fmt.Sprintf("server replaced with %s (%s), RELEASE_REVISION=%s; new container /ready 200 %s after the deploy began — %s",
				img, id, prof.Revision, time.Since(began).Round(time.Millisecond), s.OnReferenceStack)})
	}, NodeTimeout(3*time.Minute))

	It("step 5: verify finds the stack ready at the intended revision with no drift", func(ctx SpecContext) {
		s := g.Steps[4]
		began := time.Now()
		var problems, facts []string
		wctx, cancel := context.WithTimeout(ctx, st.Env.Config().Timeouts.SteadyState)
		defer cancel()
		for _, r := range []env.Role{env.Server, env.Worker} {
			if err := waitRoleReady(wctx, r); err != nil {
				problems = append(problems, err.Error())
			} else {
				facts = append(facts, string(r)+" /ready 200")
			}
		}
		revs, err := buildRevision(ctx)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case len(revs) == 1 && revs[0] == prof.Revision:
			facts = append(facts, fmt.Sprintf("pocketbrain_build_info{revision=%q} = intended %q", revs[0], prof.Revision))
		default:
			problems = append(problems, fmt.Sprintf("pocketbrain_build_info revisions %q, intended %q (deploy drift)", revs, prof.Revision))
		}
		// The DeployDrift trigger must be inactive on a tick taken after the deploy.
		since := time.Now()
		_, werr := st.Monitor.WaitFor(wctx, "a monitor tick after the deploy", func(ctx context.Context) (bool, error) {
			last, _ := st.Monitor.LastTick()
			return last.T.After(since), nil
		})
		if werr != nil {
			problems = append(problems, werr.Error())
		} else if state := st.Rules.State("DeployDrift"); state == signals.AlertPending || state == signals.AlertFiring {
			problems = append(problems, "rollback trigger DeployDrift is "+string(state))
		} else {
			facts = append(facts, "DeployDrift inactive")
		}
		res := evidence.GatePass
		detail := strings.Join(facts, "; ") + fmt.Sprintf(" (verified in %s)", time.Since(began).Round(time.Millisecond))
		if len(problems) > 0 {
			res = evidence.GateFail
			detail = strings.Join(problems, "; ") + "; " + detail
		}
		record(evidence.GateStep{Step: 5, Name: s.Name, Command: s.Command, Result: res, Detail: st.Env.Redact(detail)})
		Expect(problems).To(BeEmpty())
	}, NodeTimeout(3*time.Minute))

	It("step 6: the canary runs with no rollback trigger firing", Label("canary"), func(ctx SpecContext) {
		s := g.Steps[5]
		w, err := runCanary(ctx)
		if err != nil {
			failStep(6, fmt.Errorf("canary: %w", err))
			Fail(err.Error())
		}
		Expect(rec.SetCanary(w)).To(Succeed())
		res := evidence.GatePass
		if !w.Pass {
			res = evidence.GateFail
		}
		record(evidence.GateStep{Step: 6, Name: s.Name, Command: s.Command + fmt.Sprintf(" (this profile: %s, %s)", prof.Name, prof.CanarySpan), Result: res, Detail: w.Detail})
		Expect(w.Pass).To(BeTrue(), w.Detail)
	}, NodeTimeout(canaryNodeTimeout()))
})
