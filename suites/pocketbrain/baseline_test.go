package pocketbrain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	"gopkg.in/yaml.v3"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// BaselineFile is program/baseline.yaml: the document's baseline captures as data.
const BaselineFile = "baseline.yaml"

type baselineSpec struct {
	Version   int                `yaml:"version"`
	Document  string             `yaml:"document"`
	Endpoints []baselineEndpoint `yaml:"endpoints"`
}

type baselineEndpoint struct {
	Name        string           `yaml:"name"`
	Role        string           `yaml:"role"`
	Path        string           `yaml:"path"`
	DocumentURL string           `yaml:"document_url"`
	Format      string           `yaml:"format"`
	Expect      []baselineExpect `yaml:"expect"`
}

type baselineExpect struct {
	Field string `yaml:"field"`
	Value string `yaml:"value"`
}

// label is how an endpoint appears in the evidence: the service and the request.
func (e baselineEndpoint) label() string { return e.Role + " " + e.Name }

// loadBaselineSpec reads and validates program/baseline.yaml; every problem names the
// file, the entry and the fix.
func loadBaselineSpec(dir string) (*baselineSpec, error) {
	path := filepath.Join(dir, BaselineFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (the baseline captures live there; restore it from git)", path, err)
	}
	var s baselineSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w; fix the YAML (fields: version, document, endpoints[name, role, path, document_url, format, expect[field, value]])", path, err)
	}
	var probs []string
	if s.Version != 1 {
		probs = append(probs, fmt.Sprintf("version %d: only version 1 is known", s.Version))
	}
	if len(s.Endpoints) == 0 {
		probs = append(probs, "no endpoints: list the document's baseline endpoints")
	}
	for i, e := range s.Endpoints {
		where := fmt.Sprintf("endpoints[%d] (%s)", i, e.Name)
		if !slices.Contains(env.FullStack, env.Role(e.Role)) || env.HTTPPort(env.Role(e.Role)) == 0 {
			probs = append(probs, fmt.Sprintf("%s: role %q serves no HTTP in the stack; use server or worker", where, e.Role))
		}
		if !strings.HasPrefix(e.Path, "/") {
			probs = append(probs, fmt.Sprintf("%s: path %q must start with /", where, e.Path))
		}
		if e.Format != "json" && e.Format != "prometheus" {
			probs = append(probs, fmt.Sprintf("%s: format %q: use json or prometheus", where, e.Format))
		}
		if len(e.Expect) == 0 {
			probs = append(probs, where+": no expect entries")
		}
		for j, x := range e.Expect {
			if x.Field == "" || x.Value == "" {
				probs = append(probs, fmt.Sprintf("%s expect[%d]: field and value are both required", where, j))
			}
			if e.Format == "prometheus" && strings.ContainsAny(x.Field, ".*{") {
				probs = append(probs, fmt.Sprintf("%s expect[%d]: %q: a Prometheus endpoint's field is a bare metric name", where, j, x.Field))
			}
		}
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("%s:\n  %s", path, strings.Join(probs, "\n  "))
	}
	return &s, nil
}

// baselineCapture is the raw answer of every baseline endpoint, taken once per process.
type baselineCapture struct {
	At     time.Time
	Waited time.Duration // from the first spec's start to the end of the clean start
	Bodies map[string][]byte
	Status map[string]int
	Err    error
}

var (
	baselineOnce  sync.Once
	baselineTaken *baselineCapture
)

// CaptureBaselineNow takes the baseline captures of this process's stack, once: the
// first spec of every process calls it (BeforeEach below) before its own body runs, so
// the captures always precede every fault of the run, whatever order Ginkgo picks for
// the top-level containers. Later calls return the first capture.
func CaptureBaselineNow(ctx context.Context) *baselineCapture {
	baselineOnce.Do(func() {
		spec, err := loadBaselineSpec(programDir())
		if err != nil {
			baselineTaken = &baselineCapture{Err: err}
			return
		}
		baselineTaken = captureBaseline(ctx, spec)
	})
	return baselineTaken
}

var _ = BeforeEach(func(ctx SpecContext) {
	if st == nil || !baselineSelected() {
		return
	}
	c := CaptureBaselineNow(ctx)
	if c.Err != nil {
		// Not this spec's failure: the baseline spec reports it.
		fmt.Fprintf(GinkgoWriter, "[baseline] capture failed: %s\n", st.Env.Redact(c.Err.Error()))
	}
}, NodeTimeout(2*time.Minute))

// captureBaseline reproduces the document's procedure ("collected with Docker
// Postgres/Redis running and local Worker dev"): the services start after their
// dependencies are up. The harness boots every container at once (each service retries
// its dependencies, as in production), so the clients' first requests may meet a server
// whose database is not up yet and the counters carry that boot noise. So, on the
// healthy stack, the server and then the worker are restarted (same image, same
// configuration: a clean start with every dependency up, in the order the document's
// counters assume), both must answer /ready 200, one scrape interval passes, and every
// endpoint is read once. Nothing is retried until it matches.
func captureBaseline(ctx context.Context, spec *baselineSpec) *baselineCapture {
	c := &baselineCapture{Bodies: map[string][]byte{}, Status: map[string]int{}}
	began := time.Now()
	ready := func() error {
		wctx, cancel := context.WithTimeout(ctx, st.Env.Config().Timeouts.SteadyState)
		defer cancel()
		for _, r := range []env.Role{env.Server, env.Worker} {
			if err := waitRoleReady(wctx, r); err != nil {
				return fmt.Errorf("the stack never became healthy for the baseline: %w", err)
			}
		}
		return nil
	}
	if c.Err = ready(); c.Err != nil {
		return c
	}
	for _, r := range []env.Role{env.Server, env.Worker} {
		if err := st.Env.Replace(ctx, r, env.Change{}); err != nil {
			c.Err = fmt.Errorf("clean start of the %s for the baseline: %w", r, err)
			return c
		}
		if err := st.RefreshTargets(ctx); err != nil {
			c.Err = err
			return c
		}
		if c.Err = ready(); c.Err != nil {
			return c
		}
	}
	c.Waited = time.Since(began)
	select {
	case <-ctx.Done():
		c.Err = ctx.Err()
		return c
	case <-time.After(st.Monitor.Interval()):
	}
	c.At = time.Now()
	for _, e := range spec.Endpoints {
		body, code, err := stackGet(ctx, env.Role(e.Role), e.Path)
		if err != nil {
			c.Err = fmt.Errorf("baseline %s: %w", e.label(), err)
			return c
		}
		c.Bodies[e.label()], c.Status[e.label()] = body, code
	}
	fmt.Fprintf(progressOut(), "[baseline] captured %d endpoints at %s, after a clean start of server and worker on the healthy stack (%s)\n", len(spec.Endpoints), c.At.UTC().Format(time.RFC3339), c.Waited.Round(time.Millisecond))
	return c
}

// baselineSelected reports whether this invocation runs the baseline spec, so the clean
// start is spent only where the captures are used.
func baselineSelected() bool {
	f := GinkgoLabelFilter()
	if strings.TrimSpace(f) == "" {
		return true
	}
	match, err := types.ParseLabelFilter(f)
	return err != nil || match([]string{"baseline"})
}

// waitRoleReady polls a role's /ready until it answers 200.
func waitRoleReady(ctx context.Context, r env.Role) error {
	var last string
	for {
		_, code, err := stackGet(ctx, r, "/ready")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "status " + strconv.Itoa(code)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s /ready not 200 (last: %s): %w", r, last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// httpGet reads one endpoint of a role from outside the stack.
func stackGet(ctx context.Context, r env.Role, path string) ([]byte, int, error) {
	return stackDo(ctx, r, http.MethodGet, path, nil, nil)
}

func stackDo(ctx context.Context, r env.Role, method, path string, hdr http.Header, body []byte) ([]byte, int, error) {
	base, err := st.Env.URL(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s %s: %w", method, r, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return b, resp.StatusCode, err
}

// baselineChecks compares a capture with the document's values, one check per value
// (a wildcard field gives one check per leaf found).
func baselineChecks(spec *baselineSpec, c *baselineCapture) []evidence.BaselineCheck {
	var out []evidence.BaselineCheck
	for _, e := range spec.Endpoints {
		label := e.label()
		body, code := c.Bodies[label], c.Status[label]
		fail := func(field, doc, observed string) {
			out = append(out, evidence.BaselineCheck{Endpoint: label, Field: field, Document: doc, Observed: observed})
		}
		switch e.Format {
		case "json":
			var doc any
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			derr := dec.Decode(&doc)
			for _, x := range e.Expect {
				if derr != nil {
					fail(x.Field, x.Value, fmt.Sprintf("<status %d, not JSON: %v>", code, derr))
					continue
				}
				if prefix, ok := strings.CutSuffix(x.Field, ".*"); ok {
					leaves := jsonLeaves(jsonAt(doc, prefix), prefix)
					if len(leaves) == 0 {
						fail(x.Field, x.Value, "<no field under "+prefix+">")
						continue
					}
					for _, l := range leaves {
						out = append(out, evidence.BaselineCheck{Endpoint: label, Field: l.path, Document: x.Value, Observed: l.value, Pass: sameValue(x.Value, l.value)})
					}
					continue
				}
				v := jsonAt(doc, x.Field)
				obs := jsonScalar(v)
				out = append(out, evidence.BaselineCheck{Endpoint: label, Field: x.Field, Document: x.Value, Observed: obs, Pass: v != nil && sameValue(x.Value, obs)})
			}
		case "prometheus":
			samples, perr := signals.ParseText(bytes.NewReader(body), signals.Target{Name: "baseline", Kind: signals.KindPrometheus})
			for _, x := range e.Expect {
				if perr != nil {
					fail(x.Field, x.Value, fmt.Sprintf("<status %d, not Prometheus text: %v>", code, perr))
					continue
				}
				var vals []string
				pass := true
				for _, s := range samples {
					if s.Labels.Get("__name__") != x.Field {
						continue
					}
					v := strconv.FormatFloat(s.Value, 'g', -1, 64)
					vals = append(vals, v)
					pass = pass && sameValue(x.Value, v)
				}
				if len(vals) == 0 {
					fail(x.Field, x.Value, "<absent>")
					continue
				}
				out = append(out, evidence.BaselineCheck{Endpoint: label, Field: x.Field, Document: x.Value, Observed: strings.Join(vals, ", "), Pass: pass})
			}
		}
	}
	return out
}

// jsonAt walks a dotted path; nil when any step is missing.
func jsonAt(doc any, path string) any {
	cur := doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[k]; !ok {
			return nil
		}
	}
	return cur
}

type jsonLeaf struct{ path, value string }

// jsonLeaves lists every scalar below v with its full path, sorted.
func jsonLeaves(v any, prefix string) []jsonLeaf {
	var out []jsonLeaf
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			out = append(out, jsonLeaves(c, prefix+"."+k)...)
		}
	case nil:
	default:
		out = append(out, jsonLeaf{prefix, jsonScalar(t)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func jsonScalar(v any) string {
	switch t := v.(type) {
	case nil:
		return "<absent>"
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return t.String()
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}

// sameValue compares as numbers when both parse, else as text.
func sameValue(doc, observed string) bool {
	a, errA := strconv.ParseFloat(doc, 64)
	b, errB := strconv.ParseFloat(observed, 64)
	if errA == nil && errB == nil {
		return a == b
	}
	return doc == observed
}

var _ = Describe("Baseline captures", Label("baseline"), func() {
	// Bad data fails while the spec tree is built, before any container starts.
	spec, err := loadBaselineSpec(programDir())
	if err != nil {
		panic(err.Error())
	}

	It("match every value of the document's baseline on the healthy stack, before any fault", func(ctx SpecContext) {
		c := CaptureBaselineNow(ctx)
		if c.Err != nil {
			msg := "baseline captures: " + st.Env.Redact(c.Err.Error())
			Expect(rec.AddProblem(msg)).To(Succeed())
			Fail(msg)
		}
		checks := baselineChecks(spec, c)
		Expect(rec.AddBaseline(checks...)).To(Succeed())
		var bad []string
		for _, ch := range checks {
			mark := "ok  "
			if !ch.Pass {
				mark = "FAIL"
				bad = append(bad, fmt.Sprintf("%s %s: observed %s, document %s", ch.Endpoint, ch.Field, ch.Observed, ch.Document))
			}
			fmt.Fprintf(GinkgoWriter, "[baseline] %s %-18s %-55s document %-8s observed %s\n", mark, ch.Endpoint, ch.Field, ch.Document, ch.Observed)
		}
		fmt.Fprintf(progressOut(), "[baseline] %d checks against %s, %d failed (captured %s, before any fault)\n", len(checks), spec.Document, len(bad), c.At.UTC().Format(time.RFC3339))
		Expect(bad).To(BeEmpty(), "the healthy stack must match the document's baseline captures")
	}, NodeTimeout(2*time.Minute))
})
