package pocketbrain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pocketbrain/chaos/harness/gate"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pocketbrain/chaos/harness/env"
)

// failFastWithin is how soon a production start with an unsafe setting must have exited,
// container creation included ("exits non-zero within seconds").
const failFastWithin = 20 * time.Second

// authProbePath is an authenticated /api/v2 request that is cheap whatever the data: a
// pull from beyond the log head answers an empty page.
const authProbePath = "/api/v2/sync/pull?clientId=security&cursor=999999999"

func signedToken(key []byte, method jwt.SigningMethod, claims jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	Expect(err).NotTo(HaveOccurred())
	return tok
}

func forgedKey() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return []byte("sk_test_" + hex.EncodeToString(b))
}

func workerStatus(ctx context.Context, hdr http.Header) (int, string) {
	body, code, err := stackDo(ctx, env.Worker, http.MethodGet, authProbePath, hdr, nil)
	Expect(err).NotTo(HaveOccurred())
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return code, e.Error
}

var _ = Describe("Security of the stack", Label("security"), func() {
	g, err := gate.Load(programDir())
	if err != nil {
		panic(err.Error())
	}
	// A failed security spec is a run-level problem: the verdict cannot be GO.
	JustAfterEach(func() {
		if r := CurrentSpecReport(); r.Failed() && rec != nil {
			_ = rec.AddProblem("security: " + r.LeafNodeText + ": " + st.Env.Redact(securityFirstLine(r.FailureMessage())))
		}
	})

	It("refuses unauthenticated and forged requests to the worker's /api/v2", func(ctx SpecContext) {
		bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
		claims := func() jwt.MapClaims {
			return jwt.MapClaims{"sub": "c01", "exp": time.Now().Add(5 * time.Minute).Unix()}
		}
		cases := []struct {
			name string
			hdr  http.Header
		}{
			{"no credentials", nil},
			{"a token signed with a forged key", bearer(signedToken(forgedKey(), jwt.SigningMethodHS256, claims()))},
			{"an unsigned token (alg none)", bearer(unsignedToken(claims()))},
			{"X-Dev-User without a token (insecure dev auth is off)", http.Header{"X-Dev-User": {"c01"}}},
		}
		for _, c := range cases {
			code, e := workerStatus(ctx, c.hdr)
			fmt.Fprintf(GinkgoWriter, "[security] %s → %d %s\n", c.name, code, e)
			Expect(code).To(Equal(http.StatusUnauthorized), "%s must be refused with 401 (got %d %s)", c.name, code, e)
		}
		// Control: the same request with a token signed by the stack's own key passes, so
		// the refusals above are the forgeries' and not a broken path.
		// Auth runs before the proxy, so the refusals above never depend on the upstream;
		// the control does, and may meet a circuit still open after a restart: it gets a
		// few seconds.
		genuine := bearer(signedToken([]byte(st.Env.Secrets.ClerkSecretKey), jwt.SigningMethodHS256, claims()))
		Eventually(ctx, func() string {
			code, e := workerStatus(ctx, genuine)
			return fmt.Sprintf("%d %s", code, e)
		}).WithTimeout(20*time.Second).WithPolling(500*time.Millisecond).Should(Equal("200 "), "a genuine token must pass")
	}, NodeTimeout(time.Minute))

	// Another user of a shared host can reach a published port; without the run's token
	// they must not re-point a proxy, flip a fault, pause the clients or read the run's
	// data. Each endpoint is tried without the token (refused), with a wrong one
	// (refused), and, for the reads, with the run's own (answered: the path is not
	// simply broken).
	It("refuses every control request without the run's token", func(ctx SpecContext) {
		cases := []struct {
			role         env.Role
			method, path string
			read         bool // safe to repeat with the token
		}{
			{env.Toxiproxy, http.MethodGet, "/proxies", true},
			{env.Toxiproxy, http.MethodPost, "/proxies/pg", false},
			{env.Toxiproxy, http.MethodPost, "/reset", false},
			{env.Provider, http.MethodGet, "/control/stats", true},
			{env.Provider, http.MethodPost, "/control", false},
			{env.Clients, http.MethodGet, "/history", true},
			{env.Clients, http.MethodGet, "/state", true},
			{env.Clients, http.MethodPost, "/pause", false},
		}
		wrong := http.Header{"Authorization": {"Bearer " + hex.EncodeToString(forgedKey())}}
		for _, c := range cases {
			base, err := st.Env.URL(ctx, c.role)
			Expect(err).NotTo(HaveOccurred())
			for name, hdr := range map[string]http.Header{"no token": nil, "a wrong token": wrong} {
				code := rawStatus(ctx, c.method, env.PlainURL(base)+c.path, hdr)
				fmt.Fprintf(GinkgoWriter, "[security] %s %s %s with %s → %d\n", c.role, c.method, c.path, name, code)
				Expect(code).To(Equal(http.StatusUnauthorized), "%s %s %s with %s must be refused with 401", c.role, c.method, c.path, name)
			}
			if c.read {
				Expect(rawStatus(ctx, c.method, base+c.path, nil)).To(Equal(http.StatusOK), "%s %s %s with the run's token must answer", c.role, c.method, c.path)
			}
		}
		// What production exposes stays open: the probes and the scrapes.
		for _, r := range []env.Role{env.Toxiproxy, env.Provider, env.Clients, env.Server} {
			base, err := st.Env.URL(ctx, r)
			Expect(err).NotTo(HaveOccurred())
			path := "/ready"
			if r == env.Toxiproxy {
				path = "/version"
			}
			Expect(rawStatus(ctx, http.MethodGet, env.PlainURL(base)+path, nil)).To(Equal(http.StatusOK), "%s %s is public", r, path)
		}
	}, NodeTimeout(time.Minute))

	for _, role := range []env.Role{env.Worker, env.Server} {
		It(fmt.Sprintf("starts the %s in production with the canonical config", role), func(ctx SpecContext) {
			e := st.Env.CurrentEnv(role)
			maps.Copy(e, g.ProductionStart[string(role)])
			res, err := gate.RunOneOff(ctx, st.Env, gate.OneOff{
				Image:  st.Env.Config().Images[role],
				Env:    e,
				Until:  func(log string) bool { return strings.Contains(log, "listening") },
				Within: failFastWithin,
			})
			Expect(err).NotTo(HaveOccurred())
			fmt.Fprintf(GinkgoWriter, "[security] %s production start: exited %t (code %d) after %s\n%s\n", role, res.Exited, res.Code, res.Elapsed.Round(time.Millisecond), res.Log)
			Expect(res.Exited).To(BeFalse(), "the %s must start in production with the canonical config; it exited %d:\n%s", role, res.Code, res.Log)
			Expect(res.Log).To(ContainSubstring("listening"))
			Expect(res.Log).NotTo(ContainSubstring("unsafe configuration"))
		}, NodeTimeout(2*time.Minute))

		for _, u := range g.ConfigCheck.Unsafe {
			if !containsString(u.Start, string(role)) {
				continue
			}
			It(fmt.Sprintf("refuses a production start of the %s with %s, naming %s", role, u.Label(), u.Names), func(ctx SpecContext) {
				ch := maps.Clone(g.ProductionStart[string(role)])
				maps.Copy(ch, u.Set)
				began := time.Now()
				ex, err := st.Env.StartExpectExit(ctx, role, env.Change{Env: ch})
				took := time.Since(began)
				Expect(err).NotTo(HaveOccurred())
				fmt.Fprintf(GinkgoWriter, "[security] %s with %s: exit %d after %s\n%s\n", role, u.Label(), ex.Code, took.Round(time.Millisecond), ex.Log)
				Expect(ex.Code).NotTo(BeZero(), "an unsafe production start must exit non-zero")
				Expect(took).To(BeNumerically("<", failFastWithin), "it must fail fast")
				Expect(ex.Log).To(ContainSubstring(u.Names), "the message must name the setting")
			}, NodeTimeout(2*time.Minute))
		}
	}
})

// rawStatus is the status of one request to url, whose credentials are whatever url and
// hdr carry (nothing else is added).
func rawStatus(ctx context.Context, method, url string, hdr http.Header) int {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, url, nil)
	Expect(err).NotTo(HaveOccurred())
	maps.Copy(req.Header, hdr)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode
}

// unsignedToken is an alg "none" token; the library produces one only on explicit opt-in.
func unsignedToken(claims jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	Expect(err).NotTo(HaveOccurred())
	return tok
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func securityFirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// EnvSecretsProbe is a test-only channel for suites/secrets: when it names a Unix socket,
// the first spec of the process sends this environment's generated secrets there, one a
// line, so that test can search every output of the run for them. Nothing is written to
// disk, and nothing is sent unless the variable is set.
const EnvSecretsProbe = "PB_SECRETS_PROBE_SOCKET"

var secretsProbeOnce sync.Once

var _ = BeforeEach(func() {
	path := os.Getenv(EnvSecretsProbe)
	if st == nil || path == "" {
		return
	}
	secretsProbeOnce.Do(func() {
		conn, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			fmt.Fprintf(GinkgoWriter, "secrets probe: %v\n", err)
			return
		}
		defer conn.Close()
		for _, v := range st.Env.Secrets.Values() {
			fmt.Fprintln(conn, v)
		}
	})
})
