// Package stack joins the parts of a run: the containers (env), the program (matrix,
// targets, rules) and the signal monitor that scrapes and evaluates them, plus a small
// HTTP server of the harness's own that serves the release under test and everything
// collected as one Prometheus /metrics endpoint.
package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/promserver"
	"github.com/pocketbrain/chaos/harness/signals"
)

// EnvListen overrides where the harness serves its own /metrics (default 127.0.0.1:0, a
// free port), e.g. PB_LISTEN=127.0.0.1:9464 for a Prometheus scrape config that stays put.
const EnvListen = "PB_LISTEN"

// Options configure Up.
type Options struct {
	Roles []env.Role
	// ForScale multiplies every `for:` and every range window of the rules (1 = production).
	ForScale float64
	// IntendedRevision is the release the deploy-drift trigger compares against; "": the
	// revision stamped into the server image (its env.RevisionLabel).
	IntendedRevision string
	// Interval is the scrape and evaluation interval.
	Interval time.Duration
	// ListenAddr is where the harness serves /metrics and /release ($PB_LISTEN, else "127.0.0.1:0").
	ListenAddr string
	Log        io.Writer
	EnvOptions []env.Option
}

// Stack is one running environment with its monitor.
type Stack struct {
	Env     *env.Environment
	Program *program.Program
	Store   *signals.Store
	Engine  *signals.Engine
	Rules   *signals.Rules
	Monitor *signals.Monitor
	opts    Options
	// intended is the release under test (IntendedRevision): read by the harness's own
	// /release handler, set once the server image's stamp is known.
	intended atomic.Pointer[string]
	srv      *http.Server
	// HarnessURL serves /metrics (everything collected) and /release.
	HarnessURL string
	// Server is the real Prometheus server beside the embedded engine (nil when off;
	// ServerOff says why).
	Server    *promserver.Server
	ServerOff string
}

// Check validates the program against the rules and the target catalogue; it needs no
// Docker, so bad input fails in seconds, before any container starts.
func Check(prog *program.Program, roles []env.Role, forScale float64) (*signals.Rules, error) {
	if forScale == 0 {
		forScale = 1
	}
	rules, err := signals.LoadRuleFiles(prog.RulePaths(), signals.WithForScale(forScale), signals.WithWindowScale(forScale))
	if err != nil {
		return nil, err
	}
	recorded := map[string]bool{}
	for n := range rules.RecordedNames() {
		recorded[n] = true
	}
	alerts := map[string]bool{}
	for _, r := range rules.Rules() {
		if r.Kind == signals.AlertingRule {
			alerts[r.Name] = true
		}
	}
	exposed := map[string]struct{}{}
	for n := range prog.Exposed(nil) {
		exposed[n] = struct{}{}
	}
	if err := rules.ValidateAgainst(exposed); err != nil {
		return nil, fmt.Errorf("rule files name series no target exposes: %w; fix the rule or add the series to %s", err, program.TargetsFile)
	}
	if err := CheckMatchers(prog, rules); err != nil {
		return nil, err
	}
	if err := prog.Validate(nil, recorded, alerts); err != nil {
		return nil, err
	}
	return rules, nil
}

// Up validates the program, boots the environment, and starts the monitor. On error
// everything started is removed again.
func Up(ctx context.Context, prog *program.Program, o Options) (s *Stack, err error) {
	if o.Roles == nil {
		o.Roles = env.FullStack
	}
	if o.Interval == 0 {
		o.Interval = signals.DefaultInterval
	}
	if o.ListenAddr == "" {
		o.ListenAddr = os.Getenv(EnvListen)
	}
	if o.ListenAddr == "" {
		o.ListenAddr = "127.0.0.1:0"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	rules, err := Check(prog, o.Roles, o.ForScale)
	if err != nil {
		return nil, err
	}
	if err := CheckDeployImages(ctx, prog, o.Roles); err != nil {
		return nil, err
	}
	store := signals.NewStore()
	engine := signals.NewEngine(store)
	s = &Stack{Program: prog, Store: store, Engine: engine, Rules: rules, opts: o}
	s.Monitor = signals.NewMonitor(signals.NewCollector(store), engine, rules, signals.WithInterval(o.Interval))
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			err = errors.Join(err, s.Down(cctx))
			s = nil
		}
	}()
	if err := s.serve(); err != nil {
		return s, err
	}
	// The Prometheus server scrapes the harness's own endpoint, not the containers: it
	// starts while they do.
	envOpts := append([]env.Option{env.WithRoles(o.Roles...), env.WithLog(o.Log), env.WithAlongside(s.startServer)}, o.EnvOptions...)
	s.Env, err = env.Start(ctx, envOpts...)
	if err != nil {
		return s, err
	}
	if err := s.intendRevision(ctx); err != nil {
		return s, err
	}
	if err := s.RefreshTargets(ctx); err != nil {
		return s, err
	}
	if err := s.Monitor.Start(context.WithoutCancel(ctx)); err != nil {
		return s, err
	}
	return s, nil
}

// StartServer starts a Prometheus server over the harness's exporter with rules (note
// says which copy, for the evidence) and waits for its first scrape; the caller closes
// it. The canary starts a second one with the rule files as written.
func (s *Stack) StartServer(ctx context.Context, name string, rules *signals.Rules, note string) (*promserver.Server, error) {
	srv, err := s.startServerOn(ctx, s.Env, name, rules, note, false)
	if err != nil {
		return srv, err
	}
	if err := srv.AwaitScraping(ctx); err != nil {
		return nil, errors.Join(err, srv.Close(ctx))
	}
	return srv, nil
}

func (s *Stack) startServerOn(ctx context.Context, e *env.Environment, name string, rules *signals.Rules, note string, oneGroup bool) (*promserver.Server, error) {
	addr, err := promserver.ScrapeAddress(s.HarnessURL)
	if err != nil {
		return nil, err
	}
	srv, err := promserver.Start(ctx, e, promserver.Config{
		Scrape: addr, Interval: s.opts.Interval, Rules: rules, RulesNote: note,
		Drop: promserver.Drop(rules), Name: name, OneGroup: oneGroup,
	})
	if err != nil {
		return nil, errors.Join(err, srv.Close(ctx))
	}
	return srv, nil
}

// startServer starts the Prometheus server over the harness's exporter with the rules
// the embedded engine evaluates, unless promserver.Off says why not. It runs beside the
// containers' start (env.WithAlongside), on the environment e that Up does not hold yet.
// Up does not wait for its first scrape (promserver.Start says why): the caller does,
// with Server.AwaitScraping, before the first row.
func (s *Stack) startServer(ctx context.Context, e *env.Environment) error {
	if s.ServerOff = promserver.Off(e.Docker()); s.ServerOff != "" {
		fmt.Fprintf(s.opts.Log, "[stack] Prometheus server off: %s\n", s.ServerOff)
		return nil
	}
	note := "the rule files as written (production timing)"
	if f := s.Rules.ForScale(); f != 1 {
		scale := strconv.FormatFloat(f, 'g', 4, 64)
		if n := math.Round(1 / f); n >= 2 && math.Abs(1/f-n) < 1e-6*n {
			scale = fmt.Sprintf("1/%d", int(n))
		}
		note = "the scaled copy the embedded engine evaluates (every for: and window × " + scale + ")"
	}
	note += ", in one group in the engine's order"
	var err error
	// One group, as the engine evaluates: the rows compare the two evaluators, and one
	// pass per interval is what the engine does.
	if s.Server, err = s.startServerOn(ctx, e, "rows", s.Rules, note, true); err != nil {
		return err
	}
	fmt.Fprintf(s.opts.Log, "[stack] Prometheus server %s up in %s at %s\n", s.Server.Version, s.Server.Booted.Round(time.Millisecond), s.Server.URL)
	return nil
}

// vpsScrapeTimeout bounds one read of the VPS host's HEAD by a scrape, below the
// collector's own scrape timeout, so a host that does not answer reads as a 503.
const vpsScrapeTimeout = 1500 * time.Millisecond

// serve starts the harness's own endpoint: /release (the intended revision, a static
// target) and /metrics (everything collected, for an engineer's Prometheus or Grafana).
func (s *Stack) serve() error {
	ln, err := net.Listen("tcp", s.opts.ListenAddr)
	if err != nil {
		return fmt.Errorf("harness endpoint: listen on %s: %w; the address is taken or invalid: set %s to a free host:port (127.0.0.1:0 picks any free port)", s.opts.ListenAddr, err, EnvListen)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", signals.NewExporter(s.Store))
	mux.HandleFunc("/release", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		sha := ""
		if r := s.Env.Release(); r != nil {
			sha = r.Intended()
		}
		fmt.Fprintf(w, "# HELP pocketbrain_release_intended_info The release under test: the revision its server binary was built at and its commit in the release repository.\n# TYPE pocketbrain_release_intended_info gauge\npocketbrain_release_intended_info{revision=%q,sha=%q} 1\n", s.IntendedRevision(), sha)
	})
	// /vps is the VPS host's deploy checkout as it is now: its HEAD, read over SSH at
	// every scrape (the deploy-drift trigger compares it with the release under test).
	// A host that cannot be read answers 503, so the target is down, never quiet.
	mux.HandleFunc("/vps", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), vpsScrapeTimeout)
		defer cancel()
		head, err := s.Env.VPSHead(ctx)
		if err != nil {
			http.Error(w, s.Env.Redact(err.Error()), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP pocketbrain_vps_head_info The commit the VPS host's deploy checkout is at (git rev-parse HEAD).\n# TYPE pocketbrain_vps_head_info gauge\npocketbrain_vps_head_info{sha=%q} 1\n", head)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.HarnessURL = "http://" + ln.Addr().String()
	if w := ListenWarning(ln.Addr()); w != "" {
		fmt.Fprintln(s.opts.Log, "[stack] "+w)
	}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// RefreshTargets points every scrape target at the role's current published port
// (a restarted container gets a new one). Target names stay, so series stay one series.
func (s *Stack) RefreshTargets(ctx context.Context) error {
	c := s.Monitor.Collector()
	for _, t := range s.Program.Targets {
		var url string
		switch {
		case t.Kind == "static" && (t.Role == "" || slices.Contains(s.opts.Roles, t.Role)):
			// Served by the harness itself (serve): /release unless the target names a path.
			url = s.HarnessURL + cmp.Or(t.Path, "/release")
		case t.Kind == "static":
			continue
		default:
			if !slices.Contains(s.opts.Roles, t.Role) {
				continue
			}
			base, err := s.Env.URL(ctx, t.Role)
			if err != nil {
				if running, rerr := s.Env.Running(ctx, t.Role); rerr == nil && !running {
					// A stopped or killed container has no published port: its target
					// keeps the old address and fails to scrape (up 0) until it is back.
					continue
				}
				return err
			}
			url = base + t.Path
		}
		kind := signals.TargetKind(t.Kind)
		if t.Kind == "static" {
			kind = signals.KindPrometheus
		}
		if err := c.SetTarget(signals.Target{Name: t.Name, Kind: kind, URL: url, Prefix: t.Prefix}); err != nil {
			return err
		}
	}
	return nil
}

// VerifyCatalogue waits until every series the catalogue lists for the running roles
// is really exposed, so the catalogue cannot drift from the services.
func (s *Stack) VerifyCatalogue(ctx context.Context) error {
	var missing []string
	_, err := s.Monitor.WaitFor(ctx, "every catalogued series to be exposed", func(ctx context.Context) (bool, error) {
		have := s.Store.MetricNames()
		missing = missing[:0]
		for _, t := range s.Program.Targets {
			if t.Lazy || (t.Role != "" && !slices.Contains(s.opts.Roles, t.Role)) {
				continue
			}
			for _, n := range t.Series {
				if _, ok := have[n]; !ok {
					missing = append(missing, t.Name+":"+n)
				}
			}
		}
		sort.Strings(missing)
		signals.Observe(ctx, "missing %s", strings.Join(missing, ", "))
		return len(missing) == 0, nil
	})
	return err
}

// Down stops the monitor and the harness endpoint and removes the environment.
func (s *Stack) Down(ctx context.Context) error {
	var errs []error
	if s.Monitor != nil {
		s.Monitor.Stop()
	}
	if s.Server != nil {
		errs = append(errs, s.Server.Close(ctx))
	}
	if s.srv != nil {
		_ = s.srv.Close()
	}
	if s.Env != nil {
		errs = append(errs, s.Env.Close(ctx))
	}
	return errors.Join(errs...)
}

// ListenWarning is what to say when the harness's own endpoint listens beyond loopback:
// its /metrics carries every series of the run to whoever reaches it.
func ListenWarning(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("WARNING: the harness endpoint listens on %s, beyond loopback (%s): every host and user that reaches it reads the run's series; use %s=127.0.0.1:PORT unless a Prometheus elsewhere must scrape it", tcp, EnvListen, EnvListen)
}

// PreflightWithin bounds the engine and image checks that run before anything is
// written (Preflight, CheckDeployImages): a local engine answers in milliseconds, so a
// slower one is not usable for a timed run.
const PreflightWithin = 20 * time.Second

// Preflight checks, in milliseconds and before anything is written, what would make a
// run fail at boot: the harness endpoint's address ($PB_LISTEN, when set), the Docker
// engine, and every image of roles (nil: the full stack). Each error names the fix.
func Preflight(ctx context.Context, roles []env.Role) error {
	if roles == nil {
		roles = env.FullStack
	}
	if addr := os.Getenv(EnvListen); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("harness endpoint: listen on %s: %w; the address is taken or invalid: set %s to a free host:port (127.0.0.1:0 picks any free port)", addr, err, EnvListen)
		}
		_ = ln.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, PreflightWithin)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.CheckImages(ctx, env.ImagesFromEnv(), roles)
	return err
}

// IntendedRevision is the release under test: what pocketbrain_release_intended_info
// reports and the deploy-drift trigger compares pocketbrain_build_info with.
func (s *Stack) IntendedRevision() string {
	if p := s.intended.Load(); p != nil {
		return *p
	}
	return s.opts.IntendedRevision
}

// intendRevision reads the intended revision from the server image's stamp, unless the
// caller named one (PB_REVISION). The drift trigger then compares two facts of the
// artifact: what it was built at, and what the running binary reports.
func (s *Stack) intendRevision(ctx context.Context) error {
	if s.opts.IntendedRevision != "" || !s.Env.Has(env.Server) {
		return nil
	}
	img := s.Env.CurrentImage(env.Server)
	rev, err := s.Env.Docker().ImageLabel(ctx, img, env.RevisionLabel)
	if err != nil {
		return fmt.Errorf("intended revision: inspect %s: %w", img, err)
	}
	if rev == "" {
		return fmt.Errorf("intended revision: the server image %s has no %s label (make images stamps it); set PB_REVISION to the revision its pocketbrain_build_info reports", img, env.RevisionLabel)
	}
	s.intended.Store(&rev)
	return nil
}
