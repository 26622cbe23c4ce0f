// Package promserver runs a real Prometheus server (Debian's 2.42, the server operators
// run) beside the harness's embedded PromQL engine, and compares what the two fired.
//
// The server scrapes the harness's own exporter (everything the harness collected, with
// the targets' job and instance labels: honor_labels), drops at scrape the harness's
// ALERTS and recorded series, and loads the rules exactly as the embedded engine
// evaluates them (the profile's scaled copy, or the files as written). So it evaluates
// every rule itself, from the same samples, and where the two disagree one of them is
// wrong.
//
// The container runs on the host network: on a local engine that is the only way a
// container reaches the harness's loopback endpoint without publishing it to the world.
// A remote engine gets no server (the knob's reason says so).
package promserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	tc "github.com/testcontainers/testcontainers-go"
	"go.yaml.in/yaml/v3"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// EnvPrometheus turns the server off: PB_PROMETHEUS=off. The report then says every row
// was judged by the embedded engine alone.
const EnvPrometheus = "PB_PROMETHEUS"

// EnvImage overrides the server's image (default DefaultImage, built by `make images`).
const EnvImage = "PB_IMAGE_PROMETHEUS"

// DefaultImage is Debian's prometheus package in the harness's debootstrap tree.
const DefaultImage = "pocketbrain-local/prometheus:2.42"

// BootTimeout bounds the wait from container start to ready (Start), and again to the
// first scrape of the harness (AwaitScraping).
const BootTimeout = 60 * time.Second

// APICall bounds one call of the server's HTTP API.
const APICall = 10 * time.Second

// Config describes one server.
type Config struct {
	// Image is the server's image (DefaultImage when empty).
	Image string
	// Scrape is the host:port of the harness's exporter; MetricsPath its path.
	Scrape      string
	MetricsPath string
	// Interval is the scrape and evaluation interval (the harness's monitor interval).
	Interval time.Duration
	// Rules are the rules to load, as the embedded engine evaluates them; RulesNote
	// says which copy they are, for the evidence.
	Rules     *signals.Rules
	RulesNote string
	// Drop are metric names the server must not take from the exporter: the harness's
	// own ALERTS and recorded series, so the server computes them itself.
	Drop []string
	// Name tells two servers of one run apart in container labels ("rows", "canary").
	Name string
	// OneGroup loads every rule into one group, in the embedded engine's order
	// (recording rules first, each in file order), so the server evaluates them in one
	// pass as the engine does (signals.Rules.Eval): one evaluation after a scrape then
	// judges everything it brought (AwaitCaughtUp). Off, the groups are the files' own
	// (a copy of the files as written: the canary's production-timing server).
	OneGroup bool

	// ports picks the listen port of each start (freePort when nil; a test sets it).
	ports func() (int, error)
}

// Server is a running Prometheus server.
type Server struct {
	cfg     Config
	ctr     *tc.DockerContainer
	URL     string
	API     v1.API
	Version string
	// Booted is from container start to ready: API up, every rule loaded, and the
	// loaded configuration scraping this harness.
	Booted time.Duration
	// Scraping is from container start to the first healthy scrape of the harness
	// (AwaitScraping); zero before.
	Scraping time.Duration

	began     time.Time  // when Start began
	scrapeMu  sync.Mutex // serialises AwaitScraping
	scrapedOK bool
	scrapeErr error // AwaitScraping's kept failure
}

// Off reports why the server should not run, or "" when it should: the knob, or an
// engine that is not on this host.
func Off(d *env.Docker) string {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(EnvPrometheus))) {
	case "off", "0", "false", "no":
		return EnvPrometheus + "=off"
	}
	if !d.Local() {
		return "the Docker engine is remote: a container there cannot reach the harness's loopback endpoint"
	}
	return ""
}

// Start runs the server and waits (BootTimeout) until its API answers, every rule is
// loaded and its configuration scrapes this harness. It does not wait for the first
// scrape: Prometheus 2.42 hands its scrape loops their targets on a fixed 5 s tick from
// its start (no flag changes it), so the first scrape comes about 5 s later whatever
// the harness does. The caller boots the rest meanwhile and calls AwaitScraping before
// it reads anything from the server. The container carries the run's owner labels, so
// a sweep finds it if Close never runs.
func Start(ctx context.Context, e *env.Environment, cfg Config) (s *Server, err error) {
	if cfg.Image == "" {
		cfg.Image = os.Getenv(EnvImage)
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if cfg.MetricsPath == "" {
		cfg.MetricsPath = "/metrics"
	}
	if cfg.Interval <= 0 {
		return nil, errors.New("promserver: Interval must be positive (the harness's monitor interval)")
	}
	if _, err := e.Docker().ImageID(ctx, cfg.Image); err != nil {
		return nil, fmt.Errorf("prometheus server: image %s: %w; run `make images` (or set %s=off to run without the server)", cfg.Image, err, EnvPrometheus)
	}
	promYAML, err := ConfigFile(cfg)
	if err != nil {
		return nil, err
	}
	rulesYAML, err := RuleFile(cfg.Rules, cfg.OneGroup)
	if err != nil {
		return nil, err
	}
	pick := cfg.ports
	if pick == nil {
		pick = freePort
	}
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, BootTimeout)
	defer cancel()
	// The server binds on the host network, so the port is picked here and bound there:
	// another process (a second ginkgo process's server, CI once showed) can take it in
	// between. A server that exits saying so is started again on a new port.
	for attempt := 1; ; attempt++ {
		port, err := pick()
		if err != nil {
			return nil, err
		}
		s, err = start(sctx, ctx, e, cfg, "127.0.0.1:"+strconv.Itoa(port), promYAML, rulesYAML)
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			if cerr := s.Close(ctx); cerr != nil {
				return s, errors.Join(err, cerr)
			}
			continue
		}
		if err != nil {
			return s, err
		}
		s.began, s.Booted = began, time.Since(began)
		return s, nil
	}
}

// portAttempts bounds the starts on a fresh port after the last one was taken.
const portAttempts = 3

// errPortTaken is a server that exited because its listen address was already bound.
var errPortTaken = errors.New("its listen port was taken before it bound it")

// start runs one server container listening on listen and waits (sctx) until it is
// ready; ctx outlives sctx for the log tail of an error.
func start(sctx, ctx context.Context, e *env.Environment, cfg Config, listen string, promYAML, rulesYAML []byte) (*Server, error) {
	ctr, err := tc.Run(sctx, cfg.Image,
		tc.WithCmd("/usr/bin/prometheus",
			"--config.file=/etc/pb-prometheus/prometheus.yml",
			"--storage.tsdb.path=/tmp/prometheus",
			"--storage.tsdb.retention.time=1d",
			"--web.listen-address="+listen,
			"--log.level=warn"),
		tc.WithLabels(env.OwnerLabels(e.RunID())),
		tc.WithLabels(map[string]string{"pocketbrain.chaos.role": "prometheus-" + cfg.Name}),
		tc.WithFiles(
			tc.ContainerFile{Reader: strings.NewReader(string(promYAML)), ContainerFilePath: "/etc/pb-prometheus/prometheus.yml", FileMode: 0o644},
			tc.ContainerFile{Reader: strings.NewReader(string(rulesYAML)), ContainerFilePath: "/etc/pb-prometheus/rules.yml", FileMode: 0o644},
		),
		tc.WithConfigModifier(func(c *container.Config) { c.User = "nobody" }),
		tc.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
	)
	s := &Server{cfg: cfg, ctr: ctr, URL: "http://" + listen}
	if err != nil {
		return s, fmt.Errorf("prometheus server: start %s: %w", cfg.Image, err)
	}
	client, err := promapi.NewClient(promapi.Config{Address: s.URL})
	if err != nil {
		return s, err
	}
	s.API = v1.NewAPI(client)
	if err := s.waitReady(sctx); err != nil {
		return s, fmt.Errorf("prometheus server at %s: %w%s", s.URL, err, s.logTail(ctx))
	}
	return s, nil
}

// waitReady polls until the API answers, every rule of cfg.Rules is loaded and the
// loaded configuration scrapes cfg.Scrape.
func (s *Server) waitReady(ctx context.Context) error {
	want := len(s.cfg.Rules.Rules())
	var last string
	for {
		ok, why := s.ready(ctx, want)
		if ok {
			return nil
		}
		last = why
		if err := s.exited(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %s", BootTimeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) ready(ctx context.Context, wantRules int) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	bi, err := s.API.Buildinfo(cctx)
	if err != nil {
		return false, "API: " + err.Error()
	}
	s.Version = bi.Version
	rr, err := s.API.Rules(cctx, nil)
	if err != nil {
		return false, "rules API: " + err.Error()
	}
	n := 0
	for _, g := range rr.Groups {
		n += len(g.Rules)
	}
	if n != wantRules {
		return false, fmt.Sprintf("%d of %d rules loaded", n, wantRules)
	}
	if s.cfg.OneGroup && len(rr.Groups) != 1 {
		return false, fmt.Sprintf("%d rule groups loaded, want one (OneGroup)", len(rr.Groups))
	}
	cr, err := s.API.Config(cctx)
	if err != nil {
		return false, "config API: " + err.Error()
	}
	targets, err := scrapeTargets(cr.YAML)
	if err != nil {
		return false, "config API: " + err.Error()
	}
	if !slices.Contains(targets, s.cfg.Scrape) {
		// Another server answers on this port (its own run's): not this one.
		return false, fmt.Sprintf("the server at this port scrapes %v, not the harness at %s", targets, s.cfg.Scrape)
	}
	return true, ""
}

// scrapeTargets are the static targets of a loaded configuration (the config API's YAML).
func scrapeTargets(config string) ([]string, error) {
	var doc struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(config), &doc); err != nil {
		return nil, fmt.Errorf("the loaded configuration does not parse as YAML: %w", err)
	}
	var out []string
	for _, sc := range doc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			out = append(out, st.Targets...)
		}
	}
	return out, nil
}

// AwaitScraping waits (BootTimeout) until the server has scraped the harness healthily,
// and records when (Scraping). Nothing the server says can be compared before: its
// history would be empty, and empty reads as quiet. Its verdict is kept: after the
// first answer it returns at once, with the same error if it failed.
func (s *Server) AwaitScraping(ctx context.Context) error {
	s.scrapeMu.Lock()
	defer s.scrapeMu.Unlock()
	if s.scrapedOK {
		return nil
	}
	if s.scrapeErr != nil {
		return s.scrapeErr
	}
	wctx, cancel := context.WithTimeout(ctx, BootTimeout)
	defer cancel()
	last := "the harness's exporter not scraped yet"
	for {
		if ok, why := s.scraped(wctx); ok {
			s.scrapedOK, s.Scraping = true, s.firstScrape(wctx).Sub(s.began)
			return nil
		} else if why != "" {
			last = why
		}
		if err := s.exited(wctx); err != nil {
			s.scrapeErr = fmt.Errorf("prometheus server at %s: %w%s", s.URL, err, s.logTail(ctx))
			return s.scrapeErr
		}
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				// The caller gave up (an interrupt, its own bound): no verdict to keep.
				return fmt.Errorf("prometheus server at %s: waiting for its first scrape of the harness: %w (last seen: %s)", s.URL, err, last)
			}
			s.scrapeErr = fmt.Errorf("prometheus server at %s: no healthy scrape of the harness within %s: %s; check that the harness's exporter at %s answers on the host's loopback (it is this process's own endpoint), or run without the server (%s=off)%s",
				s.URL, BootTimeout, last, s.cfg.Scrape, EnvPrometheus, s.logTail(ctx))
			return s.scrapeErr
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// firstScrape is when the server first scraped the harness healthily: its oldest `up`
// sample of 1 (AwaitScraping may look long after). Now, when that cannot be read.
func (s *Server) firstScrape(ctx context.Context) time.Time {
	now := time.Now()
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	span := model.Duration(now.Sub(s.began).Round(time.Second) + time.Second)
	v, _, _, err := s.API.Query(cctx, fmt.Sprintf(`up{job=%q}[%s]`, scrapeJob, span), now)
	m, ok := v.(model.Matrix)
	if err != nil || !ok {
		return now
	}
	first := now
	for _, ss := range m {
		for _, p := range ss.Values {
			if p.Value == 1 && p.Timestamp.Time().Before(first) {
				first = p.Timestamp.Time()
				break
			}
		}
	}
	return first
}

// scraped is true once the harness target's last scrape was healthy; else why not
// ("" while the target is not listed yet).
func (s *Server) scraped(ctx context.Context) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	tr, err := s.API.Targets(cctx)
	if err != nil {
		return false, "targets API: " + err.Error()
	}
	for _, t := range tr.Active {
		if u, err := url.Parse(t.ScrapeURL); err != nil || u.Host != s.cfg.Scrape {
			continue
		}
		if t.Health == v1.HealthGood {
			return true, ""
		}
		if t.LastError != "" {
			return false, "scrape of the harness: " + t.LastError
		}
	}
	return false, ""
}

// exited is an error when the server's container has stopped (errPortTaken when its log
// says the listen address was in use), nil while it runs.
func (s *Server) exited(ctx context.Context) error {
	if s.ctr == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	st, err := s.ctr.State(cctx)
	if err != nil || st.Running {
		return nil // a failed inspection is no verdict: the poll goes on until the bound
	}
	if strings.Contains(s.log(ctx), "address already in use") {
		return errPortTaken
	}
	return fmt.Errorf("exited with code %d", st.ExitCode)
}

// logTail is the end of the server's log, for an error message.
func (s *Server) logTail(ctx context.Context) string {
	if s.ctr == nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(s.log(ctx)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "; last lines of its log:\n" + strings.Join(lines, "\n")
}

// log is the start of the server's log (64 KiB), "" when it cannot be read.
func (s *Server) log(ctx context.Context) string {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rc, err := s.ctr.Logs(lctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	out, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	return string(out)
}

// PeakMemory is the server's peak resident memory (VmHWM of its process).
func (s *Server) PeakMemory(ctx context.Context) (int64, error) {
	if s.ctr == nil {
		return 0, errors.New("not running")
	}
	cctx, cancel := context.WithTimeout(ctx, APICall)
	defer cancel()
	code, rd, err := s.ctr.Exec(cctx, []string{"cat", "/proc/1/status"})
	if err != nil {
		return 0, err
	}
	status, _ := io.ReadAll(io.LimitReader(rd, 16<<10))
	if code != 0 {
		return 0, fmt.Errorf("cat /proc/1/status: exit %d", code)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		return 0, errors.New("no VmHWM in /proc/1/status")
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024, nil
}

// Close removes the container.
func (s *Server) Close(ctx context.Context) error {
	if s == nil || s.ctr == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := s.ctr.Terminate(cctx)
	s.ctr = nil
	return err
}

// scrapeJob is the server's one scrape job, over the harness's exporter.
const scrapeJob = "pocketbrain-harness"

// ConfigFile is the server's prometheus.yml: one scrape job over the harness's exporter
// (honor_labels keeps the targets' job and instance), the drop list applied at scrape,
// and the global intervals.
func ConfigFile(cfg Config) ([]byte, error) {
	if _, _, err := net.SplitHostPort(cfg.Scrape); err != nil {
		return nil, fmt.Errorf("promserver: scrape address %q: %w", cfg.Scrape, err)
	}
	iv := model.Duration(cfg.Interval).String()
	drop := slices.Clone(cfg.Drop)
	sort.Strings(drop)
	for i := range drop {
		drop[i] = regexp.QuoteMeta(drop[i])
	}
	job := map[string]any{
		"job_name":       scrapeJob,
		"honor_labels":   true,
		"metrics_path":   cfg.MetricsPath,
		"scrape_timeout": iv,
		"static_configs": []map[string]any{{"targets": []string{cfg.Scrape}}},
	}
	if len(drop) > 0 {
		job["metric_relabel_configs"] = []map[string]any{{
			"source_labels": []string{"__name__"},
			"regex":         strings.Join(drop, "|"),
			"action":        "drop",
		}}
	}
	doc := map[string]any{
		"global":         map[string]any{"scrape_interval": iv, "evaluation_interval": iv, "scrape_timeout": iv},
		"rule_files":     []string{"/etc/pb-prometheus/rules.yml"},
		"scrape_configs": []any{job},
	}
	return yaml.Marshal(doc)
}

// RuleFile writes rules as one Prometheus rule file, group by group in load order, with
// the expressions and for: the embedded engine evaluates (EffectiveExpr, EffectiveFor).
// With oneGroup every rule goes into one group, OneGroupName, in the engine's order.
func RuleFile(r *signals.Rules, oneGroup bool) ([]byte, error) {
	if r == nil {
		return nil, errors.New("promserver: no rules")
	}
	var groups []rulefmt.RuleGroup
	index := map[string]int{}
	for _, ri := range r.Rules() {
		key := ri.File + "\x00" + ri.Group
		if oneGroup {
			key = ""
			ri.Group = OneGroupName
		}
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, rulefmt.RuleGroup{Name: ri.Group})
		}
		expr := ri.Expr
		if ri.EffectiveExpr != "" {
			expr = ri.EffectiveExpr
		}
		rule := rulefmt.Rule{Expr: expr, Labels: ri.Labels}
		if ri.Kind == signals.AlertingRule {
			rule.Alert = ri.Name
			rule.For = model.Duration(ri.EffectiveFor)
			rule.KeepFiringFor = model.Duration(ri.EffectiveKeepFiringFor)
		} else {
			rule.Record = ri.Name
		}
		groups[i].Rules = append(groups[i].Rules, rule)
	}
	// Two files may hold groups of one name; Prometheus refuses that within one file.
	seen := map[string]int{}
	for i := range groups {
		seen[groups[i].Name]++
		if n := seen[groups[i].Name]; n > 1 {
			groups[i].Name += "-" + strconv.Itoa(n)
		}
	}
	return yaml.Marshal(rulefmt.RuleGroups{Groups: groups})
}

// OneGroupName names the one group of a OneGroup server.
const OneGroupName = "as-the-embedded-engine-evaluates"

// Drop lists what the server must not take from the exporter: the ALERTS series and
// every recorded name.
func Drop(r *signals.Rules) []string {
	out := []string{"ALERTS", "ALERTS_FOR_STATE"}
	for n := range r.RecordedNames() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ScrapeAddress is the host:port of a harness URL such as http://127.0.0.1:41234.
func ScrapeAddress(harnessURL string) (string, error) {
	u, err := url.Parse(harnessURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("promserver: harness URL %q: want http://host:port", harnessURL)
	}
	return u.Host, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("prometheus server: no free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Evidence describes the server for the run's evidence (memory is read at the end).
func (s *Server) Evidence() evidence.PrometheusServer {
	return evidence.PrometheusServer{
		Enabled: true, Version: s.Version, Image: s.cfg.Image, Rules: s.cfg.RulesNote,
		ScrapeInterval: evidence.Millis(s.cfg.Interval), EvalInterval: evidence.Millis(s.cfg.Interval),
		BootSeconds: s.Scraping.Seconds(), // zero (left out) until AwaitScraping
	}
}
