package signals

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 2, 14, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func lbl(name string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{labels.MetricName, name}, kv...)...)
}

func mustAppend(t testing.TB, s *Store, l labels.Labels, ts time.Time, v float64) {
	t.Helper()
	require.NoError(t, s.Append(l, ts, v))
}

func TestStoreKeepsSamplesSortedAndReplacesSameTimestamp(t *testing.T) {
	s := NewStore()
	l := lbl("x", "job", "a")
	for _, sec := range []int{5, 1, 3, 2, 4} {
		mustAppend(t, s, l, at(sec), float64(sec))
	}
	mustAppend(t, s, l, at(3), 30)
	pts := s.Series(l, at(0), at(10))
	require.Len(t, pts, 5)
	for i, p := range pts {
		assert.Equal(t, at(i+1), p.T)
	}
	assert.Equal(t, 30.0, pts[2].V)
	assert.Len(t, s.Series(l, at(2), at(4)), 3, "window is inclusive on both ends")

	require.Error(t, s.Append(labels.FromStrings("job", "a"), at(1), 1), "a series needs a name")
	assert.Equal(t, map[string]struct{}{"x": {}}, s.MetricNames())
	assert.Equal(t, 1, s.NumSeries())
}

func TestStoreRangeSelectsByMatchers(t *testing.T) {
	s := NewStore()
	mustAppend(t, s, lbl("q", "client", "c01"), at(0), 1)
	mustAppend(t, s, lbl("q", "client", "c02"), at(0), 2)
	mustAppend(t, s, lbl("other"), at(0), 3)
	got := s.Range(at(0), at(1), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "q"),
		labels.MustNewMatcher(labels.MatchRegexp, "client", "c0[2-9]"))
	require.Len(t, got, 1)
	assert.Equal(t, "c02", got[0].Labels.Get("client"))
	assert.Len(t, s.Range(at(0), at(1)), 3, "no matcher selects every series")
}

func TestIncreaseOverCounterWithResetAndShortRun(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	l := lbl("sync_queue_block_events", "client", "c01", "job", "clients", "instance", "clients")
	// 0..59 over the first minute, a restart resets it, then 0..29: 59+29 = 88.
	for i := 0; i < 60; i++ {
		mustAppend(t, s, l, at(i), float64(i))
	}
	for i := 60; i < 90; i++ {
		mustAppend(t, s, l, at(i), float64(i-60))
	}
	// The run (89 s) is far shorter than the 15m window: the window covers it
	// whole, and extrapolation stops at the counter's zero.
	v, ok, err := e.Value(context.Background(), `increase(sync_queue_block_events[15m])`, at(89))
	require.NoError(t, err)
	require.True(t, ok)
	assert.InDelta(t, 88, v, 0.01)

	v, ok, err = e.Value(context.Background(), `resets(sync_queue_block_events[15m])`, at(89))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 1.0, v)
}

func TestAndUnlessAndAbsentSeries(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	id := []string{"client", "c01", "job", "clients", "instance", "clients"}
	for i := 0; i <= 30; i++ {
		mustAppend(t, s, lbl("sync_queue_block_events", id...), at(i), float64(i/5)) // grows to 6
		mustAppend(t, s, lbl("sync_queue_recovery_events", id...), at(i), 0)
	}
	nonRecovery := `increase(sync_queue_block_events[15m]) >= 5 and increase(sync_queue_recovery_events[15m]) == 0`

	v, ok, err := e.Value(ctx, nonRecovery, at(30))
	require.NoError(t, err)
	assert.True(t, ok, "both sides present and true: the trigger holds")
	assert.InDelta(t, 6, v, 0.01, "and keeps the left-hand value")

	_, ok, err = e.Value(ctx, `increase(sync_queue_block_events[15m]) >= 5 unless increase(sync_queue_recovery_events[15m]) == 0`, at(30))
	require.NoError(t, err)
	assert.False(t, ok, "unless drops what the right-hand side matches")

	_, ok, err = e.Value(ctx, `increase(sync_queue_block_events[15m]) >= 5 and increase(never_exported_total[15m]) == 0`, at(30))
	require.NoError(t, err)
	assert.False(t, ok, "A and B with B absent is empty: the trigger never fires")

	_, ok, err = e.Value(ctx, `never_exported_total`, at(30))
	require.NoError(t, err)
	assert.False(t, ok, "an absent series is not present")

	v, ok, err = e.Value(ctx, `absent(never_exported_total)`, at(30))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 1.0, v)

	v, ok, err = e.Value(ctx, `scalar(sum(sync_queue_block_events))`, at(30))
	require.NoError(t, err)
	assert.True(t, ok, "a scalar is present")
	assert.Equal(t, 6.0, v)
}

func TestStalenessAndLookback(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	l := lbl("up", "job", "worker", "instance", "worker")
	mustAppend(t, s, l, at(0), 1)
	_, ok, err := e.Value(ctx, "up", at(299))
	require.NoError(t, err)
	assert.True(t, ok, "within the 5m lookback")
	_, ok, err = e.Value(ctx, "up", at(301))
	require.NoError(t, err)
	assert.False(t, ok, "beyond the lookback")

	mustAppend(t, s, l, at(10), staleNaN)
	_, ok, err = e.Value(ctx, "up", at(11))
	require.NoError(t, err)
	assert.False(t, ok, "a staleness marker ends the series at once")
	assert.Empty(t, s.Snapshot(), "the exporter does not serve stale series")
}

func TestQueryVectorAndRangeQuery(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	ctx := context.Background()
	for i := 0; i <= 10; i++ {
		mustAppend(t, s, lbl("g", "k", "a"), at(i), float64(i))
		mustAppend(t, s, lbl("g", "k", "b"), at(i), 1)
	}
	val, err := e.Query(ctx, `g`, at(10))
	require.NoError(t, err)
	vec, ok := val.(promql.Vector)
	require.True(t, ok)
	assert.Len(t, vec, 2)

	v, ok, err := e.Value(ctx, `g`, at(10))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 11.0, v, "Value sums a vector")

	m, err := e.RangeQuery(ctx, `g{k="a"} * 2`, at(0), at(10), 2*time.Second)
	require.NoError(t, err)
	require.Len(t, m, 1)
	require.Len(t, m[0].Floats, 6)
	assert.Equal(t, 20.0, m[0].Floats[5].F)

	_, err = e.Query(ctx, `g[`, at(10))
	require.ErrorContains(t, err, "fix the PromQL")
	_, err = e.RangeQuery(ctx, `g`, at(0), at(1), 0)
	require.ErrorContains(t, err, "step")
}

func TestStoreConcurrentAppendAndQuery(t *testing.T) {
	s := NewStore()
	e := NewEngine(s)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			_ = s.Append(lbl("c", "i", string(rune('a'+i%5))), at(i), float64(i))
			if i%7 == 0 { // out-of-order writes take the copy-on-write path
				_ = s.Append(lbl("c", "i", "a"), at(i/2), 1)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			_, _, err := e.Value(context.Background(), `sum(rate(c[1m]))`, at(i*10))
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
}

func TestSeriesIteratorNextSeekAndReuse(t *testing.T) {
	s := NewStore()
	a, b := lbl("it", "s", "a"), lbl("it", "s", "b")
	for _, sec := range []int{1, 3, 5, 7} {
		mustAppend(t, s, a, at(sec), float64(sec))
	}
	mustAppend(t, s, b, at(2), 20)
	q, err := s.Querier(at(0).UnixMilli(), at(10).UnixMilli())
	require.NoError(t, err)
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "it"))

	require.True(t, set.Next())
	it := set.At().Iterator(nil)
	require.Equal(t, chunkenc.ValFloat, it.Next())
	ts, v := it.At()
	assert.Equal(t, at(1).UnixMilli(), ts)
	assert.Equal(t, 1.0, v)
	require.Equal(t, chunkenc.ValFloat, it.Seek(at(4).UnixMilli()), "seek lands on the first sample at or after t")
	assert.Equal(t, at(5).UnixMilli(), it.AtT())
	require.Equal(t, chunkenc.ValFloat, it.Seek(at(2).UnixMilli()), "seek never moves back")
	assert.Equal(t, at(5).UnixMilli(), it.AtT())
	require.Equal(t, chunkenc.ValFloat, it.Next())
	assert.Equal(t, at(7).UnixMilli(), it.AtT())
	assert.Equal(t, chunkenc.ValNone, it.Next())
	assert.Equal(t, chunkenc.ValNone, it.Seek(at(9).UnixMilli()))
	require.NoError(t, it.Err())

	require.True(t, set.Next())
	reused := set.At().Iterator(it)
	assert.Same(t, it, reused, "the iterator handed back is reset, not replaced")
	require.Equal(t, chunkenc.ValFloat, reused.Seek(0))
	ts, v = reused.At()
	assert.Equal(t, at(2).UnixMilli(), ts)
	assert.Equal(t, 20.0, v)
	assert.Equal(t, chunkenc.ValNone, reused.Next())
	assert.False(t, set.Next())
}
