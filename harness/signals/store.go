package signals

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// staleNaN is the Prometheus staleness marker (a constant in spirit; NaN
// cannot be a Go const). Appending it ends a series at that timestamp: PromQL
// stops looking back past it, the Exporter stops serving it.
var staleNaN = math.Float64frombits(value.StaleNaN)

// IsStale reports whether v is the staleness marker.
func IsStale(v float64) bool { return value.IsStaleNaN(v) }

// Point is one sample of a series.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// SeriesPoints is a series with its samples in time order.
type SeriesPoints struct {
	Labels labels.Labels `json:"labels"`
	Points []Point       `json:"points"`
}

// LatestSample is the newest sample of one series.
type LatestSample struct {
	Labels labels.Labels
	T      time.Time
	V      float64
}

// sample is a float sample in PromQL's own layout, so a series' slice can be
// handed to PromQL's iterator as it is (see series.Iterator).
type sample = promql.FPoint

type memSeries struct {
	lset labels.Labels
	// samples is sorted by t. Readers take the slice header under the read lock
	// and read it after releasing it, so anything other than an append at the
	// end replaces the backing array instead of writing into it.
	samples []sample
}

// Store is an in-memory series store. It implements storage.Queryable and is
// safe for concurrent use: the scrape loop appends while queries read.
type Store struct {
	mu     sync.RWMutex
	byHash map[uint64][]*memSeries
	byName map[string][]*memSeries
	count  int
}

var _ storage.Queryable = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{
		byHash: map[uint64][]*memSeries{},
		byName: map[string][]*memSeries{},
	}
}

// Append adds one sample; samples are kept sorted per series, a sample at an
// existing timestamp replaces the old value. Timestamps have millisecond
// precision, as in Prometheus.
func (s *Store) Append(l labels.Labels, t time.Time, v float64) error {
	return s.AppendMillis(l, t.UnixMilli(), v)
}

// AppendMillis is Append with a Prometheus millisecond timestamp.
func (s *Store) AppendMillis(l labels.Labels, t int64, v float64) error {
	name := l.Get(labels.MetricName)
	if name == "" {
		return errors.New("signals: append of a series without __name__ (" + l.String() + "): give every series a metric name")
	}
	h := l.Hash()
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.getOrCreate(h, name, l)
	n := len(ms.samples)
	switch {
	case n == 0 || ms.samples[n-1].T < t:
		ms.samples = append(ms.samples, sample{T: t, F: v})
	default:
		i := sort.Search(n, func(i int) bool { return ms.samples[i].T >= t })
		// Copy-on-write: a reader may hold the old slice.
		fresh := make([]sample, 0, n+1)
		fresh = append(fresh, ms.samples[:i]...)
		fresh = append(fresh, sample{T: t, F: v})
		if i < n && ms.samples[i].T == t {
			i++
		}
		fresh = append(fresh, ms.samples[i:]...)
		ms.samples = fresh
	}
	return nil
}

func (s *Store) getOrCreate(h uint64, name string, l labels.Labels) *memSeries {
	for _, ms := range s.byHash[h] {
		if labels.Equal(ms.lset, l) {
			return ms
		}
	}
	ms := &memSeries{lset: l.Copy()}
	s.byHash[h] = append(s.byHash[h], ms)
	s.byName[name] = append(s.byName[name], ms)
	s.count++
	return ms
}

// MetricNames returns the set of metric names (__name__) ever appended.
func (s *Store) MetricNames() map[string]struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]struct{}, len(s.byName))
	for n := range s.byName {
		out[n] = struct{}{}
	}
	return out
}

// NumSeries returns how many series the store holds.
func (s *Store) NumSeries() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// Snapshot returns the newest sample of every series whose newest sample is
// not a staleness marker, sorted by metric name, then labels.
func (s *Store) Snapshot() []LatestSample {
	s.mu.RLock()
	out := make([]LatestSample, 0, s.count)
	for _, list := range s.byName {
		for _, ms := range list {
			n := len(ms.samples)
			if n == 0 || IsStale(ms.samples[n-1].F) {
				continue
			}
			last := ms.samples[n-1]
			out = append(out, LatestSample{Labels: ms.lset, T: time.UnixMilli(last.T).UTC(), V: last.F})
		}
	}
	s.mu.RUnlock()
	// By name first: the exposition needs each family's samples together, and a
	// label name sorting before __name__ would break a plain labels order.
	slices.SortFunc(out, func(a, b LatestSample) int {
		if c := compareStrings(a.Labels.Get(labels.MetricName), b.Labels.Get(labels.MetricName)); c != 0 {
			return c
		}
		return labels.Compare(a.Labels, b.Labels)
	})
	return out
}

// Series returns the samples of the series with exactly these labels in
// [from, to], staleness markers included (IsStale tells them apart).
func (s *Store) Series(l labels.Labels, from, to time.Time) []Point {
	h := l.Hash()
	s.mu.RLock()
	var samples []sample
	for _, ms := range s.byHash[h] {
		if labels.Equal(ms.lset, l) {
			samples = ms.samples
			break
		}
	}
	s.mu.RUnlock()
	return toPoints(window(samples, from.UnixMilli(), to.UnixMilli()))
}

// Range returns the raw samples in [from, to] of every series the matchers
// select (no matcher: all series), sorted by labels. Evidence uses it to plot
// a signal as scraped.
func (s *Store) Range(from, to time.Time, matchers ...*labels.Matcher) []SeriesPoints {
	sel := s.selectSeries(from.UnixMilli(), to.UnixMilli(), matchers)
	out := make([]SeriesPoints, 0, len(sel))
	for _, ss := range sel {
		if len(ss.samples) == 0 {
			continue
		}
		out = append(out, SeriesPoints{Labels: ss.lset, Points: toPoints(ss.samples)})
	}
	slices.SortFunc(out, func(a, b SeriesPoints) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}

func toPoints(samples []sample) []Point {
	out := make([]Point, len(samples))
	for i, sm := range samples {
		out[i] = Point{T: time.UnixMilli(sm.T).UTC(), V: sm.F}
	}
	return out
}

// window returns the sub-slice of sorted samples with mint <= t <= maxt.
func window(samples []sample, mint, maxt int64) []sample {
	lo := sort.Search(len(samples), func(i int) bool { return samples[i].T >= mint })
	hi := sort.Search(len(samples), func(i int) bool { return samples[i].T > maxt })
	if lo >= hi {
		return nil
	}
	return samples[lo:hi]
}

type seriesView struct {
	lset    labels.Labels
	samples []sample
}

// selectSeries returns views (not copies) of the matching series, limited to
// [mint, maxt]. The views stay valid after the lock is released (see memSeries).
func (s *Store) selectSeries(mint, maxt int64, matchers []*labels.Matcher) []seriesView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var candidates [][]*memSeries
	name, byName := "", false
	for _, m := range matchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			name, byName = m.Value, true
			break
		}
	}
	if byName {
		candidates = [][]*memSeries{s.byName[name]}
	} else {
		for _, list := range s.byName {
			candidates = append(candidates, list)
		}
	}
	var out []seriesView
	for _, list := range candidates {
	next:
		for _, ms := range list {
			for _, m := range matchers {
				if !m.Matches(ms.lset.Get(m.Name)) {
					continue next
				}
			}
			out = append(out, seriesView{lset: ms.lset, samples: window(ms.samples, mint, maxt)})
		}
	}
	return out
}

// Querier implements storage.Queryable.
func (s *Store) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{s: s, mint: mint, maxt: maxt}, nil
}

type querier struct {
	s          *Store
	mint, maxt int64
}

func (q *querier) Select(_ context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	views := q.s.selectSeries(mint, maxt, matchers)
	if sortSeries {
		slices.SortFunc(views, func(a, b seriesView) int { return labels.Compare(a.lset, b.lset) })
	}
	return &seriesSet{views: views, i: -1}
}

func (q *querier) LabelValues(_ context.Context, name string, _ *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	set := map[string]struct{}{}
	for _, v := range q.s.selectSeries(q.mint, q.maxt, matchers) {
		if val := v.lset.Get(name); val != "" && len(v.samples) > 0 {
			set[val] = struct{}{}
		}
	}
	return sortedKeys(set), nil, nil
}

func (q *querier) LabelNames(_ context.Context, _ *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	set := map[string]struct{}{}
	for _, v := range q.s.selectSeries(q.mint, q.maxt, matchers) {
		if len(v.samples) == 0 {
			continue
		}
		v.lset.Range(func(l labels.Label) { set[l.Name] = struct{}{} })
	}
	return sortedKeys(set), nil, nil
}

func (q *querier) Close() error { return nil }

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type seriesSet struct {
	views []seriesView
	i     int
}

func (ss *seriesSet) Next() bool {
	// Series without samples in the window are skipped, like the TSDB does.
	for ss.i++; ss.i < len(ss.views); ss.i++ {
		if len(ss.views[ss.i].samples) > 0 {
			return true
		}
	}
	return false
}

func (ss *seriesSet) At() storage.Series {
	v := ss.views[ss.i]
	return &series{lset: v.lset, samples: v.samples}
}
func (ss *seriesSet) Err() error                        { return nil }
func (ss *seriesSet) Warnings() annotations.Annotations { return nil }

type series struct {
	lset    labels.Labels
	samples []sample
}

func (s *series) Labels() labels.Labels { return s.lset }

// Iterator walks the series with PromQL's own iterator over float points
// (promql.StorageSeries) rather than one of ours: its Seek(int64)
// chunkenc.ValueType is what chunkenc.Iterator requires, but a method of that
// name and shape declared here trips go vet's stdmethods check (which wants
// io.Seeker's Seek(int64, int) (int64, error)), and the check stays on for the
// whole repository. The samples are not copied, and an iterator handed back
// for reuse is reset in place. Its Seek steps forward sample by sample instead
// of searching, which costs little here: Select has already cut the series to
// the query's window, and PromQL's memoized iterator reads every sample it
// passes anyway (BenchmarkQuery: within noise of the old binary-search Seek).
func (s *series) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	return promql.NewStorageSeries(promql.Series{Metric: s.lset, Floats: s.samples}).Iterator(it)
}
