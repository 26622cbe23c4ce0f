package signals

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

const (
	benchSeries  = 500
	benchSamples = 3600 // 1 h of 1 s samples
)

func benchLabels() []labels.Labels {
	ls := make([]labels.Labels, benchSeries)
	for i := range ls {
		ls[i] = labels.FromStrings(labels.MetricName, "bench_counter_total",
			"client", "c"+strconv.Itoa(i), "job", "clients", "instance", "clients")
	}
	return ls
}

// BenchmarkAppend: one op is one sample appended, in scrape order (all series at one timestamp).
func BenchmarkAppend(b *testing.B) {
	ls := benchLabels()
	s := NewStore()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = s.Append(ls[i%benchSeries], at(i/benchSeries), float64(i/benchSeries))
	}
}

// BenchmarkQuery runs queries over 500 series × 1 h of 1 s samples (1.8M samples).
func BenchmarkQuery(b *testing.B) {
	ls := benchLabels()
	s := NewStore()
	for sec := 0; sec < benchSamples; sec++ {
		for i, l := range ls {
			_ = s.Append(l, at(sec), float64(sec*(i%3)))
		}
	}
	e := NewEngine(s)
	ctx := context.Background()
	end := at(benchSamples - 1)
	for _, q := range []struct{ name, expr string }{
		{"instant_one_series", `bench_counter_total{client="c7"}`},
		{"instant_all_series", `bench_counter_total`},
		{"sum_increase_15m", `sum(increase(bench_counter_total[15m]))`},
		{"trigger_and", `increase(bench_counter_total[15m]) >= 5 and increase(bench_counter_total[15m]) > 0`},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, err := e.Value(ctx, q.expr, end); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("range_1h_step15s_sum_rate_1m", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := e.RangeQuery(ctx, `sum(rate(bench_counter_total[1m]))`, at(0), end, 15*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
}
