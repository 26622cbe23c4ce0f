package signals

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// TargetKind says how a target's response becomes series.
type TargetKind string

const (
	// KindPrometheus is a Prometheus text exposition page (/metrics).
	KindPrometheus TargetKind = "prometheus"
	// KindJSON is a JSON document whose numeric and boolean leaves are flattened (see FlattenJSON).
	KindJSON TargetKind = "json"
	// KindProbe is an HTTP GET recorded in the blackbox-exporter convention:
	// probe_success, probe_http_status_code, probe_duration_seconds, each with probe="<name>".
	KindProbe TargetKind = "probe"
)

// DefaultScrapeTimeout bounds one scrape when a Target sets none. It is above
// the services' 1s dependency timeout so that a /ready probe sees the
// service's own 503 rather than our timeout.
const DefaultScrapeTimeout = 2 * time.Second

// Target is one endpoint to scrape.
type Target struct {
	// Name identifies the target in the Collector; SetTarget with the same Name replaces it.
	// For a probe it is the probe label.
	Name string
	Kind TargetKind
	URL  string
	// Job and Instance label every series of the target; both default to Name.
	// Not host:port as in Prometheus: services are restarted on new ports, and a
	// stable instance keeps a counter one series across the restart (increase()
	// handles the reset).
	Job, Instance string
	// Prefix is the metric-name prefix of a KindJSON target, e.g. "pocketbrain_worker".
	Prefix string
	// Labels are added to every series of the target (e.g. {"client": "c01"} is not
	// needed for the clients page, which carries its own; use it for static facts).
	Labels map[string]string
	// Timeout bounds one scrape (DefaultScrapeTimeout when zero).
	Timeout time.Duration
}

func (t Target) withDefaults() Target {
	if t.Job == "" {
		t.Job = t.Name
	}
	if t.Instance == "" {
		t.Instance = t.Name
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultScrapeTimeout
	}
	return t
}

func (t Target) validate() error {
	if t.Name == "" {
		return errors.New("scrape target without a Name: name it (it becomes the job, instance or probe label)")
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("scrape target %q: URL %q is not an absolute http(s) URL; give e.g. http://127.0.0.1:8788/metrics", t.Name, t.shownURL())
	}
	switch t.Kind {
	case KindPrometheus, KindProbe:
	case KindJSON:
		if t.Prefix == "" || !model.LegacyValidation.IsValidMetricName(t.Prefix) {
			return fmt.Errorf("scrape target %q: JSON target needs a Prefix that is a valid metric name (got %q), e.g. pocketbrain_worker", t.Name, t.Prefix)
		}
	default:
		return fmt.Errorf("scrape target %q: unknown Kind %q; use %q, %q or %q", t.Name, t.Kind, KindPrometheus, KindJSON, KindProbe)
	}
	for k := range t.Labels {
		if !model.LegacyValidation.IsValidLabelName(k) || k == labels.MetricName {
			return fmt.Errorf("scrape target %q: label name %q is not a valid Prometheus 2.x label name", t.Name, k)
		}
	}
	return nil
}

// ScrapeResult is the outcome of scraping one target once.
type ScrapeResult struct {
	Target   string
	Kind     TargetKind
	Time     time.Time
	Up       bool
	Samples  int
	Duration time.Duration
	// Err is why the scrape failed (Up false); for a probe a non-2xx answer is
	// not an error, only a transport failure is.
	Err error
}

type targetState struct {
	t Target
	// seen holds the series the last scrape appended, so those missing from the
	// next one get a staleness marker, as Prometheus does.
	seen map[uint64]labels.Labels
	last ScrapeResult
}

// Collector scrapes its targets into a Store. Targets may be added or replaced
// while a Monitor runs (a restarted service comes back on a new port).
type Collector struct {
	store  *Store
	client *http.Client

	scrapeMu sync.Mutex // one ScrapeOnce at a time: staleness tracking is sequential

	mu      sync.Mutex
	targets map[string]*targetState
}

// CollectorOption configures NewCollector.
type CollectorOption func(*Collector)

// WithHTTPClient sets the client used for every scrape (default: a client
// with its own connection pool and no overall timeout; each scrape has its own).
func WithHTTPClient(c *http.Client) CollectorOption {
	return func(col *Collector) { col.client = c }
}

// NewCollector returns a Collector appending to store.
func NewCollector(store *Store, opts ...CollectorOption) *Collector {
	// An own transport, not http.DefaultTransport: Close can drop its idle
	// connections, which matter when restarted services reuse ports.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &Collector{store: store, client: &http.Client{Transport: tr}, targets: map[string]*targetState{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Close drops the collector's idle connections.
func (c *Collector) Close() { c.client.CloseIdleConnections() }

// SetTarget adds a target, or replaces the one with the same Name (keeping
// its series identity, so staleness and counter resets work across the change).
func (c *Collector) SetTarget(t Target) error {
	if err := t.validate(); err != nil {
		return err
	}
	t = t.withDefaults()
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.targets[t.Name]; ok {
		st.t = t
		return nil
	}
	c.targets[t.Name] = &targetState{t: t, seen: map[uint64]labels.Labels{}}
	return nil
}

// RemoveTarget stops scraping a target; its series end with a staleness marker
// at the next ScrapeOnce.
func (c *Collector) RemoveTarget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.targets[name]; ok {
		st.t.URL = "" // marks removal; ScrapeOnce writes the markers and forgets it
	}
}

// Targets returns the current targets, sorted by name.
func (c *Collector) Targets() []Target {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Target, 0, len(c.targets))
	for _, st := range c.targets {
		if st.t.URL != "" {
			out = append(out, st.t)
		}
	}
	slices.SortFunc(out, func(a, b Target) int { return compareStrings(a.Name, b.Name) })
	return out
}

// LastScrape returns the latest result for the named target.
func (c *Collector) LastScrape(name string) (ScrapeResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.targets[name]
	if !ok || st.last.Time.IsZero() {
		return ScrapeResult{}, false
	}
	return st.last, true
}

// ScrapeOnce scrapes every target concurrently and appends everything at the
// single timestamp ts, so one evaluation sees one consistent instant. Each
// scrape is bounded by its target's Timeout and by ctx. A failed target is
// reported in its result (and as up 0), not as an error.
func (c *Collector) ScrapeOnce(ctx context.Context, ts time.Time) []ScrapeResult {
	c.scrapeMu.Lock()
	defer c.scrapeMu.Unlock()
	c.mu.Lock()
	states := make([]*targetState, 0, len(c.targets))
	var removed []*targetState
	for name, st := range c.targets {
		if st.t.URL == "" {
			removed = append(removed, st)
			delete(c.targets, name)
			continue
		}
		states = append(states, st)
	}
	c.mu.Unlock()
	slices.SortFunc(states, func(a, b *targetState) int { return compareStrings(a.t.Name, b.t.Name) })

	for _, st := range removed {
		c.markStale(st, nil, ts)
	}
	type scraped struct {
		series []Sample
		res    ScrapeResult
	}
	out := make([]scraped, len(states))
	var wg sync.WaitGroup
	for i, st := range states {
		c.mu.Lock()
		t := st.t
		c.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			sctx, cancel := context.WithTimeout(ctx, t.Timeout)
			defer cancel()
			series, err := c.scrape(sctx, t)
			res := ScrapeResult{Target: t.Name, Kind: t.Kind, Time: ts, Up: err == nil, Duration: time.Since(start), Err: err}
			series = append(series, c.scrapeSeries(t, res)...)
			res.Samples = len(series)
			out[i] = scraped{series: series, res: res}
		}()
	}
	wg.Wait()

	results := make([]ScrapeResult, len(states))
	if ctx.Err() != nil {
		// Cancelled mid-scrape (shutdown): the failures are ours, not the
		// targets', so record nothing rather than a false up 0.
		for i := range out {
			results[i] = out[i].res
		}
		return results
	}
	for i, st := range states {
		fresh := c.appendAll(st, out[i].series, ts)
		c.markStale(st, fresh, ts)
		c.mu.Lock()
		st.seen = fresh
		st.last = out[i].res
		c.mu.Unlock()
		results[i] = out[i].res
	}
	return results
}

// Sample is one scraped value of one series.
type Sample struct {
	Labels labels.Labels
	Value  float64
}

func (c *Collector) appendAll(st *targetState, series []Sample, ts time.Time) map[uint64]labels.Labels {
	fresh := make(map[uint64]labels.Labels, len(series))
	for _, s := range series {
		// Names were validated at parse time, so an append error is a bug worth surfacing loudly.
		if err := c.store.Append(s.Labels, ts, s.Value); err != nil {
			panic(err)
		}
		fresh[s.Labels.Hash()] = s.Labels
	}
	return fresh
}

// markStale ends every series the last scrape of st produced that is not in fresh.
func (c *Collector) markStale(st *targetState, fresh map[uint64]labels.Labels, ts time.Time) {
	c.mu.Lock()
	prev := st.seen
	c.mu.Unlock()
	for h, l := range prev {
		if _, ok := fresh[h]; ok {
			continue
		}
		_ = c.store.Append(l, ts, staleNaN)
	}
}

// scrapeSeries are the series Prometheus adds about the scrape itself.
func (c *Collector) scrapeSeries(t Target, res ScrapeResult) []Sample {
	up := 0.0
	if res.Up {
		up = 1
	}
	return []Sample{
		{targetLabels(t, "up", nil), up},
		{targetLabels(t, "scrape_duration_seconds", nil), res.Duration.Seconds()},
	}
}

func targetLabels(t Target, name string, extra []labels.Label) labels.Labels {
	b := labels.NewBuilder(labels.EmptyLabels())
	for k, v := range t.Labels {
		b.Set(k, v)
	}
	for _, l := range extra {
		b.Set(l.Name, l.Value)
	}
	b.Set(labels.MetricName, name)
	b.Set(model.JobLabel, t.Job)
	b.Set(model.InstanceLabel, t.Instance)
	return b.Labels()
}

func (c *Collector) scrape(ctx context.Context, t Target) ([]Sample, error) {
	switch t.Kind {
	case KindProbe:
		return c.probe(ctx, t), nil
	case KindJSON:
		body, err := c.get(ctx, t, "application/json")
		if err != nil {
			return nil, err
		}
		defer body.Close()
		flat, err := FlattenJSON(t.Prefix, body)
		if err != nil {
			return nil, fmt.Errorf("target %q (%s): %w", t.Name, t.shownURL(), err)
		}
		out := make([]Sample, 0, len(flat))
		for name, v := range flat {
			out = append(out, Sample{targetLabels(t, name, nil), v})
		}
		return out, nil
	default:
		body, err := c.get(ctx, t, "text/plain;version=0.0.4")
		if err != nil {
			return nil, err
		}
		defer body.Close()
		out, err := ParseText(body, t)
		if err != nil {
			return nil, fmt.Errorf("target %q (%s): %w", t.Name, t.shownURL(), err)
		}
		return out, nil
	}
}

// shownURL is the target's URL for a message: a password in it (the run's control
// token, see env.URL) is masked.
func (t Target) shownURL() string {
	if u, err := url.Parse(t.URL); err == nil && u.User != nil {
		return u.Redacted()
	}
	return t.URL
}

func (c *Collector) get(ctx context.Context, t Target, accept string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("target %q: GET %s: %w", t.Name, t.shownURL(), err)
	}
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("target %q: GET %s answered %s, want 2xx", t.Name, t.shownURL(), resp.Status)
	}
	return resp.Body, nil
}

// probe records the blackbox-exporter series for one GET. A transport error is
// status code 0 and success 0: the probe ran, the service did not answer.
func (c *Collector) probe(ctx context.Context, t Target) []Sample {
	start := time.Now()
	code := 0
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = c.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			code = resp.StatusCode
		}
	}
	success := 0.0
	if code >= 200 && code < 300 {
		success = 1
	}
	probe := []labels.Label{{Name: "probe", Value: t.Name}}
	return []Sample{
		{targetLabels(t, "probe_success", probe), success},
		{targetLabels(t, "probe_http_status_code", probe), float64(code)},
		{targetLabels(t, "probe_duration_seconds", probe), time.Since(start).Seconds()},
	}
}

// ParseText parses a Prometheus text exposition page into series labelled
// with t's job and instance (and t.Labels). Names are checked against the
// Prometheus 2.x (legacy) rules, as the rule files must load there. Labels the
// page itself sets that clash with job/instance are kept as exported_job /
// exported_instance, like Prometheus with honor_labels: false. Histograms and
// summaries become their classic _bucket/_sum/_count and quantile series.
func ParseText(r io.Reader, t Target) ([]Sample, error) {
	// The zero TextParser has an unset validation scheme and rejects every
	// name, so the scheme must be given explicitly.
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse Prometheus text: %w (the page must be text format 0.0.4 with Prometheus 2.x names)", err)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Sample
	for _, name := range names {
		mf := fams[name]
		for _, m := range mf.GetMetric() {
			base := metricLabels(m)
			add := func(suffix string, v float64, extra ...labels.Label) {
				out = append(out, Sample{pageLabels(t, name+suffix, append(slices.Clone(base), extra...)), v})
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add("", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add("", m.GetGauge().GetValue())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add("", q.GetValue(), labels.Label{Name: model.QuantileLabel, Value: formatFloat(q.GetQuantile())})
				}
				add("_sum", s.GetSampleSum())
				add("_count", float64(s.GetSampleCount()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				infSeen := false
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), +1) {
						infSeen = true
					}
					add("_bucket", float64(b.GetCumulativeCount()), labels.Label{Name: model.BucketLabel, Value: formatFloat(b.GetUpperBound())})
				}
				if !infSeen {
					add("_bucket", float64(h.GetSampleCount()), labels.Label{Name: model.BucketLabel, Value: "+Inf"})
				}
				add("_sum", h.GetSampleSum())
				add("_count", float64(h.GetSampleCount()))
			default:
				add("", m.GetUntyped().GetValue())
			}
		}
	}
	return out, nil
}

func metricLabels(m *dto.Metric) []labels.Label {
	out := make([]labels.Label, 0, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out = append(out, labels.Label{Name: lp.GetName(), Value: lp.GetValue()})
	}
	return out
}

func pageLabels(t Target, name string, own []labels.Label) labels.Labels {
	for i, l := range own {
		_, static := t.Labels[l.Name]
		if l.Name == model.JobLabel || l.Name == model.InstanceLabel || static {
			own[i].Name = "exported_" + l.Name
		}
	}
	return targetLabels(t, name, own)
}

func formatFloat(f float64) string {
	if math.IsInf(f, +1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
