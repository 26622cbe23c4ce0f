package signals

import (
	"bytes"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/proto"
)

// Exporter serves the latest sample of every live series in a Store (scraped
// series, recording-rule outputs and ALERTS{alertname,alertstate}) as
// Prometheus text, so an engineer's own Prometheus can scrape a live run.
//
// Samples carry no timestamps: the scraping Prometheus stamps them, which
// avoids out-of-bounds rejections. Series already carry job and instance, so
// scrape with honor_labels: true to keep them (otherwise Prometheus renames them
// exported_job/exported_instance). Types are not kept, so every family is untyped.
type Exporter struct {
	store *Store
}

// NewExporter returns an Exporter over store.
func NewExporter(store *Store) *Exporter { return &Exporter{store: store} }

// ServeHTTP writes the exposition.
func (x *Exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	if err := WriteText(&buf, x.store.Snapshot()); err != nil {
		http.Error(w, "signals exporter: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	_, _ = w.Write(buf.Bytes())
}

// WriteText writes samples (sorted by labels, as Snapshot returns them) as
// Prometheus text, one untyped family per metric name.
func WriteText(w io.Writer, samples []LatestSample) error {
	var mf *dto.MetricFamily
	flush := func() error {
		if mf == nil {
			return nil
		}
		_, err := expfmt.MetricFamilyToText(w, mf)
		return err
	}
	for _, s := range samples {
		name := s.Labels.Get(labels.MetricName)
		if mf == nil || mf.GetName() != name {
			if err := flush(); err != nil {
				return err
			}
			mf = &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_UNTYPED.Enum()}
		}
		m := &dto.Metric{Untyped: &dto.Untyped{Value: proto.Float64(s.V)}}
		s.Labels.Range(func(l labels.Label) {
			if l.Name != labels.MetricName {
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
			}
		})
		mf.Metric = append(mf.Metric, m)
	}
	return flush()
}
