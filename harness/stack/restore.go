package stack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/faults"
	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Loud lists the alerts that are pending or firing now ("Name state"), in rule-file
// order; with names, only those alerts.
func (s *Stack) Loud(names ...string) []string {
	var loud []string
	for _, a := range s.Rules.Alerts() {
		if len(names) > 0 && !slices.Contains(names, a.Name) {
			continue
		}
		if a.State.Loud() {
			loud = append(loud, a.Name+" "+string(a.State))
		}
	}
	return loud
}

// Quiet holds when no alert of the rule files (with names, none of those) is pending or
// firing, and each of them can see what it reads (Observed: every target it reads up,
// every series it reads present): the one "every trigger quiet" check of the harness.
// Quiet because absent is not quiet.
func (s *Stack) Quiet(names ...string) signals.Condition {
	alerts := names
	if len(alerts) == 0 {
		alerts = s.AlertNames()
	}
	observed := s.Observed(alerts, nil)
	return func(ctx context.Context) (bool, error) {
		loud := s.Loud(names...)
		if len(loud) > 0 {
			signals.Observe(ctx, "triggers not quiet: %s", strings.Join(loud, ", "))
			return false, nil
		}
		return observed(ctx)
	}
}

// NoResync holds when the fleet exposes its resync gauge and no client has one under way.
const NoResync = "max(sync_resync_in_progress) == 0"

// Steady is the steady state the rows need before injection: every trigger quiet, each
// row's detection false and its recovery (with the matrix defaults) true, and every
// target they read up with its series present (Observed). The scenario
// awaits it for one row; Restore awaits it for every row, since any row may run next.
func (s *Stack) Steady(rows ...program.Row) signals.Condition {
	conds := []signals.Condition{s.Quiet()}
	// No client is in the middle of a full resync: on a production-sized store a fleet
	// resync is tens of seconds of load, and a row started in it measures that load.
	if s.Env.Has(env.Clients) {
		conds = append(conds, s.Monitor.ExprTrue(NoResync))
	}
	seen := map[string]bool{}
	var read []string // what the detections and recoveries read must be seen (Observed)
	for _, row := range rows {
		for _, e := range row.Detect {
			if !seen["false:"+e] {
				seen["false:"+e] = true
				conds = append(conds, s.Monitor.ExprFalse(e))
				read = append(read, e)
			}
		}
		for _, e := range s.Program.RecoverExprs(row) {
			if !seen["true:"+e] {
				seen["true:"+e] = true
				conds = append(conds, s.Monitor.ExprTrue(e))
				read = append(read, e)
			}
		}
	}
	// A detection false because its series is absent is not steady state.
	conds = append(conds, s.Observed(nil, read))
	return signals.All(conds...)
}

// Restoration is what Restore found and did.
type Restoration struct {
	// Restored is false when the stack was steady without help (Actions is empty).
	Restored    bool
	Reason      string
	Actions     []string
	SteadyAfter bool
	Took        time.Duration
}

// Restore runs after a failed spec, once the guard has healed its faults: a failed row
// can leave what no guard knows about (a container replaced or stopped behind the
// guard's back, a service stuck in a bad state), and the next row would then fail in its
// own steady state. Restore waits (Timeouts.Restore) for every row's steady state; if it
// does not return, it puts the stack back in steps, cheapest first, checking steady
// state after each:
//
//  1. Toxiproxy reset; every container that is not running, or runs another image or
//     configuration than at boot, restarted in place or replaced with its boot image
//     and configuration;
//  2. last resort: every service (provider, server, worker, clients) replaced with its
//     boot image and configuration; the data stores keep their data.
//
// A stack with a broken container or a dirty Toxiproxy goes straight to step 1: waiting
// cannot mend those. The error is non-nil when steady state is still not back.
func (s *Stack) Restore(ctx context.Context) (res Restoration, err error) {
	began := time.Now()
	defer func() { res.Took = time.Since(began) }()
	steady := s.Steady(s.Program.Matrix.Rows...)

	broken, err := s.broken(ctx)
	if err != nil {
		return res, err
	}
	if len(broken) == 0 {
		took, err := s.awaitSteady(ctx, "returned by itself", steady)
		if err == nil {
			res.Reason = fmt.Sprintf("steady state returned by itself after %s; nothing restored", took.Round(time.Millisecond))
			res.SteadyAfter = true
			return res, nil
		}
		res.Reason = err.Error()
	} else {
		res.Reason = strings.Join(broken, "; ")
	}
	res.Restored = true

	// Step 1: undo what is visibly off.
	res.Actions = append(res.Actions, s.repairBroken(ctx)...)
	_, err = s.awaitSteady(ctx, "after repairing", steady)
	if err == nil {
		res.SteadyAfter = true
		return res, nil
	}
	res.Actions = append(res.Actions, "still not steady: "+s.Env.Redact(err.Error()))
	s.logf("still not steady: %v", err)

	// Step 2: every container looks right and steady state is still not back: some
	// service is stuck in a bad state of its own (a blocked queue, an open circuit).
	for _, r := range []env.Role{env.Provider, env.Server, env.Worker, env.Clients} {
		if s.Env.Has(r) {
			res.Actions = append(res.Actions, s.replaceDefault(ctx, r, "last resort"))
		}
	}
	if err := s.RefreshTargets(ctx); err != nil {
		res.Actions = append(res.Actions, "refresh scrape targets: "+err.Error())
	}
	_, err = s.awaitSteady(ctx, "after replacing every service", steady)
	res.SteadyAfter = err == nil
	return res, err
}

// awaitSteady waits for steady state, bounded by Timeouts.Restore, with a progress line.
func (s *Stack) awaitSteady(ctx context.Context, when string, steady signals.Condition) (time.Duration, error) {
	t := s.Env.Config().Timeouts.Restore
	s.logf("awaiting every row's steady state (%s, up to %s)", when, t)
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	took, err := s.Monitor.WaitFor(ctx, "every row's steady state "+when, steady)
	if err == nil {
		s.logf("steady state %s after %s", when, took.Round(time.Millisecond))
	}
	return took, err
}

// broken lists what a wait cannot mend: a dirty Toxiproxy, a container that is not
// running, a role whose image or configuration is not the one it booted with.
func (s *Stack) broken(ctx context.Context) ([]string, error) {
	var out []string
	tctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.ToxiproxyCall)
	dirty, err := s.Env.Toxi().Dirty(tctx)
	cancel()
	if err != nil {
		return nil, err
	}
	if len(dirty) > 0 {
		out = append(out, "toxiproxy not clean: "+strings.Join(dirty, ", "))
	}
	down, err := s.notRunning(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range s.opts.Roles {
		if why, ok := down[r]; ok {
			out = append(out, why)
		}
		if d := s.drift(r); d != "" {
			out = append(out, string(r)+": "+d)
		}
	}
	if _, isDown := down[env.VPSHost]; !isDown {
		if d := s.checkoutDrift(ctx); d != "" {
			out = append(out, string(env.VPSHost)+": "+d)
		}
	}
	return out, nil
}

// checkoutDrift says how the VPS host's deploy checkout differs from the release under
// test ("" if it does not, or the stack has no VPS host): a HEAD elsewhere, or a host
// that cannot be read.
func (s *Stack) checkoutDrift(ctx context.Context) string {
	rel := s.Env.Release()
	if rel == nil {
		return ""
	}
	cctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.DockerCall)
	defer cancel()
	head, err := s.Env.VPSHead(cctx)
	switch {
	case err != nil:
		return "deploy checkout unreadable: " + s.Env.Redact(err.Error())
	case head != rel.Intended():
		return fmt.Sprintf("deploy checkout at %s, not the release under test %s", head, rel.Intended())
	}
	return ""
}

// notRunning maps each role that env.Unhealthy lists to its line ("role: why").
func (s *Stack) notRunning(ctx context.Context) (map[env.Role]string, error) {
	lines, err := s.Env.Unhealthy(ctx)
	if err != nil {
		return nil, err
	}
	out := map[env.Role]string{}
	for _, l := range lines {
		role, _, _ := strings.Cut(l, ":")
		out[env.Role(role)] = l
	}
	return out, nil
}

// drift says how a role differs from its boot image and configuration ("" if not).
// Variable names only: values may be secrets.
func (s *Stack) drift(r env.Role) string {
	var d []string
	if img, boot := s.Env.CurrentImage(r), s.Env.Config().Images[r]; img != "" && img != boot && img != s.Env.ImageIDs[r] {
		d = append(d, "image "+img+" instead of "+boot)
	}
	cur, def := s.Env.CurrentEnv(r), s.Env.DefaultEnv(r)
	var vars []string
	for k, v := range cur {
		if v != def[k] {
			vars = append(vars, k)
		}
	}
	for k, v := range def {
		if _, set := cur[k]; !set && v != "" {
			vars = append(vars, k)
		}
	}
	if len(vars) > 0 {
		slices.Sort(vars)
		d = append(d, "configuration differs from boot in "+strings.Join(slices.Compact(vars), ", "))
	}
	return strings.Join(d, "; ")
}

// repairBroken resets Toxiproxy, restarts stopped or paused containers in place (their
// data stays) and replaces drifted roles with their boot image and configuration, in
// start order (dependencies first), then points the scrape targets at the new ports.
func (s *Stack) repairBroken(ctx context.Context) []string {
	var acts []string
	tctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.ToxiproxyCall)
	dirty, err := s.Env.Toxi().Dirty(tctx)
	if err == nil && len(dirty) > 0 {
		err = s.Env.Toxi().Reset(tctx)
		acts = append(acts, s.did("toxiproxy reset ("+strings.Join(dirty, ", ")+")", err))
	}
	cancel()
	down, err := s.notRunning(ctx)
	if err != nil {
		acts = append(acts, s.did("inspect containers", err))
	}
	for _, r := range env.FullStack {
		if !s.Env.Has(r) {
			continue
		}
		_, isDown := down[r]
		why := s.drift(r)
		if r == env.VPSHost && !isDown && why == "" {
			// A new container of the host boots its checkout at the release under test.
			why = s.checkoutDrift(ctx)
		}
		drifted := why != ""
		switch {
		case r == env.Toxiproxy && (isDown || drifted):
			// Its proxies are made once, at boot: a new container would have none.
			acts = append(acts, s.did("toxiproxy", errors.New("not running as booted; it cannot be restored in place (its proxies exist only from boot)")))
		case drifted:
			acts = append(acts, s.replaceDefault(ctx, r, why))
		case isDown:
			acts = append(acts, s.startInPlace(ctx, r, down[r]))
		}
	}
	if err := s.RefreshTargets(ctx); err != nil {
		acts = append(acts, s.did("refresh scrape targets", err))
	}
	if len(acts) == 0 {
		acts = append(acts, "nothing visibly off: no container stopped or reconfigured, toxiproxy clean")
		s.logf("%s", acts[0])
	}
	return acts
}

// startInPlace starts (or unpauses) a role's own container, as a process fault heals;
// if that fails, the role is replaced with its boot configuration.
func (s *Stack) startInPlace(ctx context.Context, r env.Role, why string) string {
	f, err := faults.New(faults.Spec{Kind: "process", Action: "stop", Target: string(r)})
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.DockerCall)
		err = f.Heal(cctx, s.Env)
		cancel()
	}
	if err == nil {
		return s.did(fmt.Sprintf("%s started in place (was %s)", r, strings.TrimPrefix(why, string(r)+": ")), nil)
	}
	s.did(fmt.Sprintf("%s start in place", r), err)
	return s.replaceDefault(ctx, r, why)
}

// replaceDefault replaces a role's container with its boot image and configuration. The
// image is the one booted, by ID: its tag may have moved since (`make images` while the
// suite runs), and a newer build is not what the run tests.
func (s *Stack) replaceDefault(ctx context.Context, r env.Role, why string) string {
	def := s.Env.DefaultEnv(r)
	ch := env.Change{Env: def, Image: s.Env.ImageIDs[r]}
	if ch.Image == "" {
		ch.Image = s.Env.Config().Images[r]
	}
	for k := range s.Env.CurrentEnv(r) {
		if _, ok := def[k]; !ok {
			ch.Env[k] = "" // set by someone else: unset
		}
	}
	err := s.Env.Replace(ctx, r, ch)
	return s.did(fmt.Sprintf("%s replaced with its boot image and configuration (%s)", r, why), err)
}

// did logs an action and returns its line for the evidence.
func (s *Stack) did(what string, err error) string {
	if err != nil {
		what += ": FAILED: " + s.Env.Redact(err.Error())
	}
	s.logf("%s", what)
	return what
}

func (s *Stack) logf(format string, args ...any) {
	fmt.Fprintf(s.opts.Log, "[restore] "+format+"\n", args...)
}

// Settle lets a disturbance the harness made itself (the baseline's clean start of
// server and worker) leave every trigger's windows before the next spec. Its events (the
// clients' queues blocking while the server restarts, then recovering) stay in each
// window for that window's length after steady state returns; a row injected meanwhile
// reads them beside its own fault's. Near a window's edge the embedded engine and the
// Prometheus server, which samples a second later, can then judge an expression like
// QueueNonRecovery differently (the release run's "fired 0.1 s after injection in the
// server, 29.6 s later in the embedded engine"). Settle awaits every row's steady
// state, lets the longest window (rules and matrix, as evaluated) and the server's
// tolerance pass, and awaits steady state again. It returns how long it took.
func (s *Stack) Settle(ctx context.Context, what string) (time.Duration, error) {
	began := time.Now()
	steady := s.Steady(s.Program.Matrix.Rows...)
	if _, err := s.awaitSteady(ctx, "after "+what, steady); err != nil {
		return time.Since(began), err
	}
	hold, err := s.ResidueSpan()
	if err != nil {
		return time.Since(began), err
	}
	s.logf("letting %s of %s leave every trigger's windows", hold, what)
	select {
	case <-ctx.Done():
		return time.Since(began), ctx.Err()
	case <-time.After(hold):
	}
	_, err = s.awaitSteady(ctx, "once "+what+" left the windows", steady)
	return time.Since(began), err
}

// ResidueSpan is how long an event stays in what the triggers and the rows read: the
// longest range window of the rules and the matrix, as evaluated, plus two monitor ticks
// and (with a Prometheus server) its agreement tolerance, since it samples later.
func (s *Stack) ResidueSpan() (time.Duration, error) {
	var exprs []string
	for _, row := range s.Program.Matrix.Rows {
		exprs = append(exprs, row.Detect...)
		exprs = append(exprs, s.Program.RecoverExprs(row)...)
	}
	longest, err := signals.LongestRange(exprs...)
	if err != nil {
		return 0, fmt.Errorf("the matrix's windows: %w", err)
	}
	span := max(longest, s.Rules.LongestWindow()) + 2*s.Monitor.Interval()
	if s.Server != nil {
		span += s.Server.Tolerance()
	}
	return span, nil
}
