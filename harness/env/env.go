package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/sync/errgroup"

	"github.com/pocketbrain/chaos/harness/history"
	"github.com/pocketbrain/chaos/harness/vps"
)

// Config describes one environment. Build it with Option functions: defaults first,
// the caller's options last (the testcontainers-go habit).
type Config struct {
	RunID     string
	Roles     []Role
	Images    Images
	Timeouts  Timeouts
	Revision  string            // RELEASE_REVISION given to the server; "": none, it reports its stamped revision
	Clients   int               // simulated clients in the fleet
	VolumeMiB int               // size of each client data volume (tmpfs)
	Env       map[Role]Settings // per-role overrides, applied last
	Log       io.Writer         // progress lines; secrets never reach it
	Secrets   *Secrets          // the run's secrets (WithSecrets); nil: fresh ones
	// JournalDir is the host folder under which the client fleet journals every op
	// (WithJournalDir); "": no journal.
	JournalDir string
	// Alongside runs while the containers start (WithAlongside).
	Alongside func(context.Context, *Environment) error
}

// EnvPublishIP chooses the host address published ports bind to. A local engine
// publishes on 127.0.0.1 unless told otherwise; a remote engine needs an address its
// clients can reach (default: all of the engine host's interfaces, with a warning).
const EnvPublishIP = "PB_PUBLISH_IP"

// Settings are environment variables for a container; an empty value unsets a variable.
type Settings map[string]string

// Option changes a Config.
type Option func(*Config)

// WithRoles chooses which roles start (FullStack by default).
func WithRoles(r ...Role) Option { return func(c *Config) { c.Roles = r } }

// WithServiceEnv overrides environment variables of one role.
func WithServiceEnv(r Role, s Settings) Option {
	return func(c *Config) {
		if c.Env[r] == nil {
			c.Env[r] = Settings{}
		}
		maps.Copy(c.Env[r], s)
	}
}

// WithTimeouts replaces the timeouts.
func WithTimeouts(t Timeouts) Option { return func(c *Config) { c.Timeouts = t } }

// WithRevision makes the server report rev (RELEASE_REVISION) instead of the revision
// stamped into its binary.
func WithRevision(rev string) Option { return func(c *Config) { c.Revision = rev } }

// WithClients sets the size of the client fleet.
func WithClients(n int) Option { return func(c *Config) { c.Clients = n } }

// WithSecrets makes the environment use the run's secrets instead of fresh ones, so
// that the caller's redactor knows them before anything is written.
func WithSecrets(s Secrets) Option { return func(c *Config) { c.Secrets = &s } }

// WithLog sends progress lines to w.
func WithLog(w io.Writer) Option { return func(c *Config) { c.Log = w } }

// WithJournalDir makes the client fleet journal every op on the harness's disk, where a
// crash of the clients container cannot erase it: dir (created 0700 if missing) gets one
// folder per environment, dir/<RunID> (Environment.JournalDir), bind-mounted into the
// clients container at JournalMount with JOURNAL_DIR set to it. Only a local engine
// shares the harness's disk: on a remote one the option is ignored (and said so), and
// the history is read from the fleet's /history as without it.
func WithJournalDir(dir string) Option { return func(c *Config) { c.JournalDir = dir } }

// WithAlongside runs f while the stack's containers start, for what needs the
// environment's engine and run id but none of its containers (the stack's Prometheus
// server): the boot then takes the longer of the two, not their sum. Start returns
// once both are done; an error of either fails it, and a failed container start cancels
// f's context.
func WithAlongside(f func(context.Context, *Environment) error) Option {
	return func(c *Config) { c.Alongside = f }
}

// JournalMount is where the clients container sees its journal folder.
const JournalMount = "/journal"

// WithImages replaces image references (PB_IMAGE_* already applied by default).
func WithImages(i Images) Option { return func(c *Config) { maps.Copy(c.Images, i) } }

// Environment is one running stack.
type Environment struct {
	cfg     Config
	docker  *Docker
	Secrets Secrets
	// ImageIDs records the exact image behind every role, for provenance.
	ImageIDs map[Role]string

	network *tc.DockerNetwork
	host    string              // where published ports are reached
	publish netip.Addr          // the only address ports are published on (publishAddr)
	exposed map[string][]string // image → the ports its EXPOSE lists (cached)

	mu         sync.Mutex
	containers map[Role]*tc.DockerContainer
	current    map[Role]Settings // env each role runs with now
	images     map[Role]string   // image each role runs now
	volumes    []string
	journal    string // host folder mounted at JournalMount in the clients container; "": none
	toxi       *Toxi
	release    *ReleaseRepo // the run's release repository (VPS host only)
	releaseTmp string       // the folder that holds it, removed by Close
	vps        *vps.Client  // SSH client of the VPS host (VPSClient)
	vpsDial    sync.Mutex   // one dial of the VPS host at a time (dialVPS)
	closed     bool         // Close began: no new VPS client is installed

	// BeforeReplace, when set, runs before a role's container is replaced (e.g. to save
	// the client fleet's in-memory history before a restart starts a new one).
	BeforeReplace func(ctx context.Context, r Role) error
}

// Start boots an environment. On any error it removes whatever it had started before
// returning, so a failed boot leaks nothing.
func Start(ctx context.Context, opts ...Option) (env *Environment, err error) {
	// Ryuk would be pulled from a registry; the harness does its own cleanup by label.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	cfg := Config{
		RunID:     "pb" + randomHex(4),
		Roles:     FullStack,
		Images:    ImagesFromEnv(),
		Timeouts:  DefaultTimeouts(),
		Clients:   10,
		VolumeMiB: 8,
		Env:       map[Role]Settings{},
		Log:       io.Discard,
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeouts.Boot)
	defer cancel()

	d, err := NewDocker(ctx, cfg.Timeouts)
	if err != nil {
		return nil, err
	}
	ids, err := d.CheckImages(ctx, cfg.Images, cfg.Roles)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	secrets := NewSecrets()
	if cfg.Secrets != nil {
		secrets = *cfg.Secrets
	}
	e := &Environment{
		cfg: cfg, docker: d, Secrets: secrets, ImageIDs: ids,
		containers: map[Role]*tc.DockerContainer{}, current: map[Role]Settings{}, images: map[Role]string{},
		exposed: map[string][]string{},
	}
	local, engineHost := engineLocality(d)
	e.publish, e.host, err = publishAddr(local, engineHost, os.Getenv(EnvPublishIP))
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	if !e.publish.IsLoopback() {
		// Said before anything is published, so a CI log shows it next to the cause.
		e.logf("WARNING: publishing the stack's ports on %s, beyond loopback: other hosts and users that reach it reach the services (their control endpoints still need the run's token); set %s=127.0.0.1 where the engine is local", e.publish, EnvPublishIP)
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		// Inside a container testcontainers-go guesses the host from the default gateway;
		// the ports are published on e.publish and nowhere else.
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", e.host)
	}
	defer func() {
		if err != nil {
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeouts.Teardown)
			defer ccancel()
			err = errors.Join(err, e.Close(cctx))
			env = nil
		}
	}()

	e.logf("environment %s: creating network", cfg.RunID)
	nw, err := network.New(ctx, network.WithLabels(ownerLabels(cfg.RunID)))
	if nw != nil {
		e.network = nw // registered before the error check: Close removes it even if half made
	}
	if err != nil {
		return e, fmt.Errorf("create network: %w", err)
	}
	if e.hasVPSHost() {
		if err := e.createRelease(ctx); err != nil {
			return e, err
		}
	}
	if slices.Contains(cfg.Roles, Clients) {
		if err := e.createVolumes(ctx); err != nil {
			return e, err
		}
		if err := e.createJournal(local); err != nil {
			return e, err
		}
	}

	alongside := make(chan error, 1)
	actx, cancelAlongside := context.WithCancel(ctx)
	defer cancelAlongside()
	if cfg.Alongside != nil {
		go func() { alongside <- cfg.Alongside(actx, e) }()
	} else {
		alongside <- nil
	}
	err = e.startContainers(ctx)
	if err != nil {
		cancelAlongside()
	}
	// Never return while f may still start something the caller does not know of.
	if aerr := <-alongside; err == nil {
		err = aerr
	}
	if err != nil {
		return e, err
	}
	e.logf("environment %s: all %d containers started", cfg.RunID, len(cfg.Roles))
	return e, nil
}

// startContainers starts the roles in their waves, with the proxies between them.
func (e *Environment) startContainers(ctx context.Context) error {
	cfg := e.cfg
	for wave := 0; wave <= 1; wave++ {
		g, gctx := errgroup.WithContext(ctx)
		for _, r := range cfg.Roles {
			if startWave(r) != wave {
				continue
			}
			g.Go(func() error { return e.startRole(gctx, r, cfg.Images[r], e.defaultEnv(r)) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if wave == 0 && slices.Contains(cfg.Roles, Toxiproxy) {
			if err := e.createProxies(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// engineLocality decides where published ports are reached. A local engine publishes
// on 127.0.0.1 only (a chaos stack runs with test secrets, often on shared CI hosts);
// a remote engine (DOCKER_HOST=tcp://…) is reached at its own address.
func engineLocality(d *Docker) (local bool, host string) {
	u, err := url.Parse(d.cli.DaemonHost())
	if err != nil || u.Scheme == "unix" || u.Scheme == "npipe" || u.Scheme == "" {
		return true, "127.0.0.1"
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() || h == "localhost" {
		return true, "127.0.0.1"
	}
	if o := os.Getenv("TESTCONTAINERS_HOST_OVERRIDE"); o != "" {
		return false, o
	}
	return false, h
}

// publishAddr decides the address ports are published on and the host the harness
// reaches them at. An explicit PB_PUBLISH_IP wins; otherwise a local engine publishes on
// 127.0.0.1 and a remote one on all its interfaces (reached at the engine's host name).
func publishAddr(local bool, engineHost, override string) (publish netip.Addr, reach string, err error) {
	switch {
	case override != "":
		publish, err = netip.ParseAddr(override)
		if err != nil {
			return netip.Addr{}, "", fmt.Errorf("%s=%q is not an IP address: give the address published ports bind to, e.g. 127.0.0.1 (a local engine) or the remote engine host's own address", EnvPublishIP, override)
		}
	case local:
		publish = netip.MustParseAddr("127.0.0.1")
	default:
		publish = netip.IPv4Unspecified()
	}
	switch {
	case publish.IsUnspecified() && local:
		reach = "127.0.0.1"
	case publish.IsUnspecified():
		reach = engineHost
	default:
		reach = publish.String()
	}
	return publish, reach, nil
}

func (e *Environment) logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Log, "[env] "+format+"\n", args...)
}

// RunID identifies the environment (and labels everything it created).
func (e *Environment) RunID() string { return e.cfg.RunID }

// Config returns the configuration the environment was started with.
func (e *Environment) Config() Config { return e.cfg }

// Docker returns the engine handle (process and storage faults use it).
func (e *Environment) Docker() *Docker { return e.docker }

// Toxi returns the Toxiproxy handle.
func (e *Environment) Toxi() *Toxi { return e.toxi }

// Has reports whether the role runs in this environment.
func (e *Environment) Has(r Role) bool { return slices.Contains(e.cfg.Roles, r) }

// defaultEnv is the configuration each service starts with, from docs/CONTRACTS.md,
// with the per-role overrides of the Config applied last.
func (e *Environment) defaultEnv(r Role) Settings {
	s := e.Secrets
	proxy := func(edge string) string {
		ed, _ := EdgeByName(edge)
		return "toxiproxy:" + strconv.Itoa(ed.Port)
	}
	var base Settings
	switch r {
	case Postgres:
		base = Settings{"POSTGRES_PASSWORD": s.PostgresPassword}
	case Toxiproxy:
		base = Settings{"CONTROL_TOKEN": s.ControlToken}
	case Redis:
		base = Settings{"REDIS_PASSWORD": s.RedisPassword}
	case KV:
		base = Settings{"REDIS_PASSWORD": s.KVPassword}
	case VPSHost:
		// The host boots at the release under test, as deployed before this run.
		base = Settings{"PB_DEPLOYED_SHA": e.release.Intended()}
	case Server:
		base = Settings{
			"PORT":                    "8788",
			"NODE_ENV":                "staging",
			"DATABASE_URL":            "postgres://pocketbrain:" + s.PostgresPassword + "@" + proxy("pg") + "/pocketbrain?sslmode=disable",
			"REDIS_URL":               "redis://:" + s.RedisPassword + "@" + proxy("redis") + "/0",
			"REQUIRE_REDIS_FOR_READY": "true",
			"STREAM_TICKET_SECRET":    s.StreamTicketSecret,
			"RELEASE_REVISION":        e.cfg.Revision,
			"CORS_ORIGIN":             "https://app.pocketbrain.example",
			"REDIS_HEALTH_INTERVAL":   "500ms",
			"DEPENDENCY_TIMEOUT":      "1s",
			"SYNC_RETENTION":          "20s",
			"PRUNE_INTERVAL":          "2s",
			"CONTROL_TOKEN":           s.ControlToken,
		}
	case Worker:
		base = Settings{
			"PORT":                      "8787",
			"NODE_ENV":                  "staging",
			"WORKER_ROUTE_MODE":         "dashboard",
			"VPS_API_ORIGIN":            "http://" + proxy("vps"),
			"CLERK_SECRET_KEY":          s.ClerkSecretKey,
			"CLERK_PUBLISHABLE_KEY":     s.ClerkPublishableKey,
			"KEY_ENCRYPTION_SECRET":     s.KeyEncryptionSecret,
			"KV_URL":                    "redis://:" + s.KVPassword + "@" + proxy("kv") + "/0",
			"PROVIDER_URL":              "http://" + proxy("provider"),
			"CORS_ORIGIN":               "https://app.pocketbrain.example",
			"ALLOW_INSECURE_DEV_AUTH":   "false",
			"VPS_TIMEOUT":               "1s",
			"VPS_BREAKER_FAILURES":      "5",
			"VPS_BREAKER_OPEN_FOR":      "3s",
			"PROVIDER_TIMEOUT":          "1s",
			"PROVIDER_MAX_RETRIES":      "2",
			"PROVIDER_BREAKER_FAILURES": "5",
			"PROVIDER_BREAKER_OPEN_FOR": "3s",
		}
	case Provider:
		base = Settings{"PORT": "8790", "CONTROL_TOKEN": s.ControlToken}
	case Clients:
		base = Settings{
			"WORKER_URL":       "http://" + proxy("edge"),
			"CLIENT_COUNT":     strconv.Itoa(e.cfg.Clients),
			"AUTH_SIGNING_KEY": s.ClerkSecretKey,
			"QUEUE_CAP":        "20",
			"QUEUE_RESUME":     "10",
			"CAPTURE_INTERVAL": "250ms",
			"SYNC_INTERVAL":    "500ms",
			"SYNC_TIMEOUT":     "2s",
			"AI_INTERVAL":      "1s",
			"PRIMARY_DIR":      "/data/primary",
			"FALLBACK_DIR":     "/data/fallback",
			"CONTROL_TOKEN":    s.ControlToken,
		}
		if e.journal != "" {
			base["JOURNAL_DIR"] = JournalMount
		}
	default:
		base = Settings{}
	}
	maps.Copy(base, e.cfg.Env[r])
	return base
}

// DefaultEnv is the configuration a role starts with: what a restore after a failed
// spec (stack.Restore) puts back.
func (e *Environment) DefaultEnv(r Role) Settings { return e.defaultEnv(r) }

// command and user per role: the data images are plain Debian trees, the services are
// FROM scratch images with an entrypoint.
func roleCommand(r Role) (cmd []string, user string) {
	switch r {
	case Postgres:
		return []string{"pb-postgres-start"}, "postgres"
	case Redis, KV:
		// The password comes from the environment so it never appears in the command line.
		return []string{"sh", "-c", `printf 'requirepass %s\n' "$REDIS_PASSWORD" | exec redis-server - --bind 0.0.0.0 --protected-mode no --save "" --appendonly no`}, "redis"
	case Toxiproxy:
		return []string{"-proxy-metrics"}, ""
	case VPSHost:
		// As root: sshd drops privileges itself; the checkout is deploy's.
		return []string{"pb-vps-start"}, "root"
	}
	return nil, ""
}

func roleWait(r Role, t Timeouts) wait.Strategy {
	switch r {
	case Postgres:
		return wait.ForLog("database system is ready to accept connections").WithStartupTimeout(t.ContainerStart)
	case Redis, KV:
		return wait.ForLog("Ready to accept connections").WithStartupTimeout(t.ContainerStart)
	case Toxiproxy:
		return wait.ForHTTP("/version").WithPort("8474/tcp").WithStartupTimeout(t.ContainerStart).WithPollInterval(100 * time.Millisecond).WithForcedIPv4LocalHost()
	case Server:
		// /metrics answers as soon as the process serves; /ready may rightly be 503 until
		// Postgres and Redis answer, and steady state is the suite's business.
		return wait.ForHTTP("/metrics").WithPort("8788/tcp").WithStartupTimeout(t.ContainerStart).WithPollInterval(100 * time.Millisecond).WithForcedIPv4LocalHost()
	case Worker:
		return wait.ForHTTP("/ready").WithPort("8787/tcp").WithStartupTimeout(t.ContainerStart).WithPollInterval(100 * time.Millisecond).WithForcedIPv4LocalHost()
	case Provider:
		return wait.ForHTTP("/ready").WithPort("8790/tcp").WithStartupTimeout(t.ContainerStart).WithPollInterval(100 * time.Millisecond).WithForcedIPv4LocalHost()
	case VPSHost:
		return wait.ForLog("Server listening on 0.0.0.0 port 22").WithStartupTimeout(t.ContainerStart)
	case Clients:
		return wait.ForHTTP("/metrics").WithPort("8789/tcp").WithStartupTimeout(t.ContainerStart).WithPollInterval(100 * time.Millisecond).WithForcedIPv4LocalHost()
	}
	return nil
}

func (e *Environment) requestOptions(ctx context.Context, r Role, image string, settings Settings, wantWait bool) []tc.ContainerCustomizer {
	envVars := map[string]string{}
	for k, v := range settings {
		if v != "" {
			envVars[k] = v
		}
	}
	opts := []tc.ContainerCustomizer{
		network.WithNetwork([]string{string(r)}, e.network),
		tc.WithEnv(envVars),
		tc.WithLabels(ownerLabels(e.cfg.RunID)),
		tc.WithLabels(map[string]string{"pocketbrain.chaos.role": string(r)}),
	}
	cmd, user := roleCommand(r)
	if len(cmd) > 0 {
		opts = append(opts, tc.WithCmd(cmd...))
	}
	if user != "" {
		opts = append(opts, tc.WithConfigModifier(func(c *container.Config) { c.User = user }))
	}
	// Every port the container exposes (its HTTP port and whatever the image's EXPOSE
	// lists: an override such as PB_IMAGE_REDIS=redis:7 exposes 6379) is published on
	// e.publish only. Listing them here keeps testcontainers from publishing the image's
	// EXPOSE on every interface.
	exposed := e.imagePorts(ctx, image)
	if p := HTTPPort(r); p > 0 {
		exposed = append(exposed, strconv.Itoa(p)+"/tcp")
	}
	if r == VPSHost {
		exposed = append(exposed, strconv.Itoa(servicePort[VPSHost])+"/tcp")
	}
	if r == Toxiproxy {
		// Each proxy's listen port too: a network fault's proof sends a probe through
		// the proxy itself (faults/probe.go).
		for _, ed := range Edges {
			exposed = append(exposed, strconv.Itoa(ed.Port)+"/tcp")
		}
	}
	slices.Sort(exposed)
	exposed = slices.Compact(exposed)
	if len(exposed) > 0 {
		opts = append(opts, tc.WithExposedPorts(exposed...))
	}
	publish := e.publish
	vols := e.volumes
	journal := e.journal
	if r == Clients && journal != "" {
		// The mount and the variable go together, whatever a change did to the env.
		envVars["JOURNAL_DIR"] = JournalMount
	}
	opts = append(opts, tc.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.PortBindings = mobynet.PortMap{}
		for _, p := range exposed {
			if port, err := mobynet.ParsePort(p); err == nil {
				hc.PortBindings[port] = []mobynet.PortBinding{{HostIP: publish, HostPort: "0"}}
			}
		}
		hc.PublishAllPorts = false
		if r == Clients && len(vols) == 2 {
			hc.Mounts = []mount.Mount{
				{Type: mount.TypeVolume, Source: vols[0], Target: "/data/primary"},
				{Type: mount.TypeVolume, Source: vols[1], Target: "/data/fallback"},
			}
		}
		if r == Clients && journal != "" {
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: journal, Target: JournalMount})
		}
	}))
	if w := roleWait(r, e.cfg.Timeouts); w != nil && wantWait {
		opts = append(opts, tc.WithWaitStrategy(w))
	}
	return opts
}

func (e *Environment) startRole(ctx context.Context, r Role, image string, settings Settings) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.ContainerStart)
	defer cancel()
	began := time.Now()
	var journals []string
	if r == Clients && e.journal != "" {
		journals, _ = history.JournalFiles(e.journal)
	}
	opts := e.requestOptions(ctx, r, image, settings, true)
	if r == VPSHost {
		files, err := e.vpsHostFiles()
		if err != nil {
			return err
		}
		opts = append(opts, tc.WithFiles(files...))
	}
	ctr, err := tc.Run(ctx, image, opts...)
	if ctr != nil {
		e.mu.Lock()
		e.containers[r] = ctr // registered before the error check, so Close removes it
		e.current[r] = settings
		e.images[r] = image
		e.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("start %s (%s): %w%s", r, image, err, e.logTail(r))
	}
	if r == Clients && e.journal != "" {
		if err := e.awaitJournal(ctx, journals); err != nil {
			return fmt.Errorf("start %s (%s): %w%s", r, image, err, e.logTail(r))
		}
	}
	if r == VPSHost {
		e.mu.Lock()
		old := e.vps
		e.mu.Unlock()
		if err := e.dialVPS(ctx, old); err != nil {
			return fmt.Errorf("start %s (%s): %w%s", r, image, err, e.logTail(r))
		}
	}
	e.logf("%s up in %s", r, time.Since(began).Round(time.Millisecond))
	return nil
}

// createJournal makes the environment's journal folder, JournalDir/<RunID>, on a local
// engine (the only kind that shares the harness's disk).
func (e *Environment) createJournal(local bool) error {
	if e.cfg.JournalDir == "" {
		return nil
	}
	if !local {
		e.logf("no client journal: the Docker engine is remote and cannot mount %s; the history is read from the fleet's /history", e.cfg.JournalDir)
		return nil
	}
	parent, err := filepath.Abs(e.cfg.JournalDir)
	if err != nil {
		return fmt.Errorf("journal folder %s: %w", e.cfg.JournalDir, err)
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("journal folder: %w", err)
	}
	// Its own folder: a run never reads another run's (or another process's) journal.
	dir := filepath.Join(parent, e.cfg.RunID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("journal folder: %w", err)
	}
	e.journal = dir
	e.logf("client journal in %s", dir)
	return nil
}

// awaitJournal checks that the clients container just started opened a journal file of
// its own in the host folder (it does so before it serves /metrics, which the start
// waited for). None means the history would be lost: the bind mount did not reach the
// harness's folder (say, a harness inside a container), or the image ignores JOURNAL_DIR.
func (e *Environment) awaitJournal(ctx context.Context, before []string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		now, err := history.JournalFiles(e.journal)
		if err != nil {
			return err
		}
		for _, f := range now {
			if !slices.Contains(before, f) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the clients container wrote no journal file in %s (JOURNAL_DIR=%s): the bind mount does not reach the harness's folder, or the image ignores JOURNAL_DIR; run the harness on the engine's host with a current clients image", e.journal, JournalMount)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// JournalDir is the host folder holding the client fleet's journal files ("": no
// journal: none asked for, or a remote engine).
func (e *Environment) JournalDir() string { return e.journal }

// logTail returns the last lines of a role's log for an error message (redacted of
// this environment's secrets).
func (e *Environment) logTail(r Role) string {
	e.mu.Lock()
	ctr := e.containers[r]
	e.mu.Unlock()
	if ctr == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.DockerCall)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n--- last log lines of " + string(r) + " ---\n" + e.Redact(strings.Join(lines, "\n"))
}

// Redact replaces every secret of this environment in s.
func (e *Environment) Redact(s string) string {
	for _, v := range e.Secrets.Values() {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return s
}

func (e *Environment) createVolumes(ctx context.Context) error {
	for _, name := range []string{"primary", "fallback"} {
		vname := fmt.Sprintf("%s-%s", e.cfg.RunID, name)
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.DockerCall)
		_, err := e.docker.cli.VolumeCreate(cctx, client.VolumeCreateOptions{
			Name:   vname,
			Driver: "local",
			// tmpfs with a hard size: a "full disk" is a real ENOSPC, and nothing touches the host disk.
			DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": fmt.Sprintf("size=%dm", e.cfg.VolumeMiB)},
			Labels:     ownerLabels(e.cfg.RunID),
		})
		cancel()
		if err != nil {
			return fmt.Errorf("create volume %s: %w", vname, err)
		}
		e.volumes = append(e.volumes, vname)
	}
	return e.keepVolumes(ctx)
}

// Volume returns the docker volume name behind a client data dir ("primary" or "fallback").
func (e *Environment) Volume(which string) (string, error) {
	for _, v := range e.volumes {
		if strings.HasSuffix(v, "-"+which) {
			return v, nil
		}
	}
	return "", fmt.Errorf("no %q volume in environment %s (known: primary, fallback)", which, e.cfg.RunID)
}

// Container returns the running container of a role.
func (e *Environment) Container(r Role) (*tc.DockerContainer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.containers[r]
	if !ok {
		return nil, fmt.Errorf("role %q is not running in environment %s (roles: %v)", r, e.cfg.RunID, e.cfg.Roles)
	}
	return c, nil
}

// imagePorts lists the ports an image's EXPOSE names ("6379/tcp"), cached per image.
func (e *Environment) imagePorts(ctx context.Context, image string) []string {
	e.mu.Lock()
	ports, ok := e.exposed[image]
	e.mu.Unlock()
	if ok {
		return slices.Clone(ports)
	}
	ports, err := e.docker.ImageExposedPorts(ctx, image)
	if err != nil {
		return nil // the start then fails on the image itself, with a clearer error
	}
	e.mu.Lock()
	e.exposed[image] = ports
	e.mu.Unlock()
	return slices.Clone(ports)
}

// URL is the base URL at which the harness reaches a role's HTTP port from outside. It
// carries the run's control token as basic auth (user "pb"): Go's HTTP client sends it
// on every request, and every endpoint that steers the run requires it. Show it to a
// person through PlainURL (the redactor hides the token anyway).
func (e *Environment) URL(ctx context.Context, r Role) (string, error) {
	c, err := e.Container(r)
	if err != nil {
		return "", err
	}
	p := HTTPPort(r)
	if p == 0 {
		return "", fmt.Errorf("role %q serves no HTTP", r)
	}
	mp, err := c.MappedPort(ctx, strconv.Itoa(p)+"/tcp")
	if err != nil {
		return "", fmt.Errorf("mapped port of %s: %w", r, err)
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(e.host, mp.Port()), User: url.UserPassword(ControlUser, e.Secrets.ControlToken)}
	return u.String(), nil
}

// ProxyAddr is the loopback address at which the harness reaches an edge's Toxiproxy
// proxy: a connection there goes through the proxy (and its toxics) to the upstream, as
// the service on the edge's near side connects.
func (e *Environment) ProxyAddr(ctx context.Context, edge string) (string, error) {
	ed, ok := EdgeByName(edge)
	if !ok {
		return "", fmt.Errorf("no edge %q", edge)
	}
	c, err := e.Container(Toxiproxy)
	if err != nil {
		return "", err
	}
	mp, err := c.MappedPort(ctx, strconv.Itoa(ed.Port)+"/tcp")
	if err != nil {
		return "", fmt.Errorf("mapped port of proxy %s: %w", edge, err)
	}
	return net.JoinHostPort(e.host, mp.Port()), nil
}

// ControlUser is the basic-auth user of the control token (fixtures/control.User).
const ControlUser = "pb"

// PlainURL drops the credentials from a URL that URL built, for display.
func PlainURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	u.User = nil
	return u.String()
}

// CurrentEnv returns a copy of the environment a role runs with now.
func (e *Environment) CurrentEnv(r Role) Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.current[r])
}

// CurrentImage returns the image a role runs now.
func (e *Environment) CurrentImage(r Role) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.images[r]
}

// Change is a new configuration for a role: env variables to set ("" unsets) and,
// optionally, another image (a deploy or a rollback).
type Change struct {
	Env   Settings
	Image string
}

// Replace restarts a role with a changed configuration, keeping its network alias: the
// way a deploy or a config change reaches a service. The new container must come up.
func (e *Environment) Replace(ctx context.Context, r Role, ch Change) error {
	old, err := e.Container(r)
	if err != nil {
		return err
	}
	settings := e.CurrentEnv(r)
	maps.Copy(settings, ch.Env)
	image := e.CurrentImage(r)
	if ch.Image != "" {
		image = ch.Image
	}
	if e.BeforeReplace != nil {
		if err := e.BeforeReplace(ctx, r); err != nil {
			return fmt.Errorf("before replacing %s: %w", r, err)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Teardown)
	err = old.Terminate(tctx, tc.StopTimeout(2*time.Second))
	cancel()
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("stop %s before reconfiguring: %w", r, err)
	}
	e.mu.Lock()
	delete(e.containers, r)
	e.mu.Unlock()
	e.logf("%s restarting with a changed configuration", r)
	return e.startRole(ctx, r, image, settings)
}

// Exited is what a one-off start of a role produced.
type Exited struct {
	Code int
	Log  string // redacted
}

// StartExpectExit starts a role with a changed configuration that is expected to make
// it exit (a fail-fast config gate), waits for the exit, and returns the exit code and
// log. The running container of the role is left alone.
func (e *Environment) StartExpectExit(ctx context.Context, r Role, ch Change) (Exited, error) {
	settings := e.CurrentEnv(r)
	if settings == nil {
		settings = e.defaultEnv(r)
	}
	maps.Copy(settings, ch.Env)
	image := ch.Image
	if image == "" {
		image = e.cfg.Images[r]
	}
	opts := e.requestOptions(ctx, r, image, settings, false)
	// A second container of the role must not answer to the role's alias.
	opts[0] = network.WithNetwork([]string{string(r) + "-oneoff"}, e.network)
	out, err := e.runToExit(ctx, image, opts...)
	if err != nil {
		return Exited{}, fmt.Errorf("one-off %s did not fail fast: %w", r, err)
	}
	return out, nil
}

// Close removes every container, then the volumes, then the network, each removal
// checked; errors are joined. Safe to call more than once.
func (e *Environment) Close(ctx context.Context) error {
	var errs []error
	e.mu.Lock()
	ctrs := maps.Clone(e.containers)
	e.containers = map[Role]*tc.DockerContainer{}
	e.mu.Unlock()
	var wg sync.WaitGroup
	var emu sync.Mutex
	for r, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Terminate(ctx, tc.StopTimeout(2*time.Second)); err != nil && !isNotFound(err) {
				emu.Lock()
				errs = append(errs, fmt.Errorf("remove %s: %w", r, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	// A container of this run that is not a role's (a one-off whose removal is still
	// under way) would hold a volume: "volume is in use" (seen in CI). Those go first.
	if err := e.docker.RemoveRunContainers(ctx, e.cfg.RunID); err != nil {
		errs = append(errs, err)
	}
	for _, v := range e.volumes {
		if err := e.docker.removeVolume(ctx, v); err != nil {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v, err))
		}
	}
	e.volumes = nil
	e.mu.Lock()
	e.closed = true
	if e.vps != nil {
		_ = e.vps.Close()
		e.vps = nil
	}
	e.mu.Unlock()
	if e.releaseTmp != "" {
		if err := os.RemoveAll(e.releaseTmp); err != nil {
			errs = append(errs, fmt.Errorf("remove the release repository: %w", err))
		}
		e.releaseTmp = ""
	}
	if e.network != nil {
		if err := e.network.Remove(ctx); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network: %w", err))
		}
		e.network = nil
	}
	// Belt and braces: anything else labelled with this run (a one-off container whose
	// removal raced an interrupt) goes too.
	if _, err := e.docker.Sweep(ctx, SweepAll, e.cfg.RunID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		e.logf("environment %s removed", e.cfg.RunID)
	}
	return errors.Join(errs...)
}
