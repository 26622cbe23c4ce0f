package reports

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// view is the run prepared for display; both renderers read only this, so
// Markdown and HTML always say the same thing.
type view struct {
	Run          *evidence.Run
	Verdict      evidence.Verdict
	StaleVerdict string // the stored decision, when it differs from the recomputed one
	VerdictClass string
	BadRows      []rowRef
	BadGate      []evidence.GateStep
	// Scaled says the profile shortened production timing (see scaleNote);
	// ScaleNoteText is the evidence's scale note without its profile prefix.
	Scaled        bool
	ScaleNoteText string
	Generated     string
	Rows          []rowView
	Control       *windowView
	Canary        *windowView
	Windows       []windowSection // control then canary, for the HTML loop
	// ServerLine says whether the Prometheus server ran beside the embedded engine, and
	// how (serverLine, unescaped: the template escapes it); ServerOff that it was turned off.
	ServerLine string
	ServerOff  bool
}

type windowSection struct {
	ID, Title string
	W         *windowView
}

type rowRef struct {
	ID, Anchor, Name string
	Status           evidence.Status
}

type rowView struct {
	evidence.Row
	Anchor      string
	RunbookHref string
	Params      []kv
	Detect      string
	Fire        string
	Recover     string
	FaultLabel  string
	StatusClass string
	Chart       chart
	HasChart    bool
	Server      agreementView
}

type kv struct{ K, V string }

type windowView struct {
	Title string
	*evidence.Window
	Chart    chart
	HasChart bool
	Server   agreementView
	// Production is the canary's production-timing server (Compared false otherwise).
	Production agreementView
}

// agreementView is how the alerts the Prometheus server fired over a row or window compare
// with the embedded engine's, for display.
type agreementView struct {
	// State is the compact answer: agrees, DISAGREES, off (the server did not run),
	// not compared (it ran, no agreement recorded), — (evidence from before the server).
	State string
	Class string // badge class
	// Title names the server ("Prometheus server", or the canary's production-timing one).
	Title string
	// Compared says an agreement was recorded; the fields below are then set.
	Compared bool
	// Missing says the server ran but no agreement was recorded.
	Missing   bool
	Agree     bool
	From, To  time.Time
	Tolerance string
	Detail    string
	// Fired are the alerts either evaluator fired, in the evidence's order; Quiet counts
	// the others ("3 alerts quiet in both").
	Fired []alertView
	Quiet string
}

type alertView struct {
	Alert                   string
	Embedded, Server, Delta string
	Agree                   bool
}

func buildView(run *evidence.Run, o options) *view {
	v := &view{Run: run, Verdict: evidence.ComputeVerdict(run), Generated: o.now().UTC().Format(time.RFC3339)}
	if run.Verdict.Decision != "" && run.Verdict.Decision != v.Verdict.Decision {
		v.StaleVerdict = run.Verdict.Decision
	}
	v.VerdictClass = map[string]string{evidence.DecisionGo: "go", evidence.DecisionNoGo: "nogo"}[v.Verdict.Decision]
	if v.VerdictClass == "" {
		v.VerdictClass = "incomplete"
	}
	v.Scaled = scaleNote(run, func(s string) string { return s }) != ""
	v.ScaleNoteText = scaleNoteText(run)
	v.ServerLine = serverLine(run.PrometheusServer, func(s string) string { return s })
	v.ServerOff = run.PrometheusServer != nil && !run.PrometheusServer.Enabled
	for _, g := range run.Gate {
		if g.Result != evidence.GatePass && g.Result != evidence.GateNA {
			v.BadGate = append(v.BadGate, g)
		}
	}
	for _, r := range run.Rows {
		rv := rowView{
			Row:         r,
			Anchor:      anchor(r.ID),
			Detect:      fmtDur(r.Times.Detect),
			Fire:        fmtDur(r.Times.Fire),
			Recover:     fmtDur(r.Times.Recover),
			FaultLabel:  strings.TrimSpace(r.Fault.Kind + " " + r.Fault.Target),
			StatusClass: statusClass(r.Status),
			Server:      agreementOf(run.PrometheusServer, r.Server, r.Status == evidence.StatusPassed),
		}
		rv.RunbookHref = safeHref(o.runbookBase + r.Runbook)
		for _, k := range slices.Sorted(maps.Keys(r.Fault.Params)) {
			rv.Params = append(rv.Params, kv{k, r.Fault.Params[k]})
		}
		if r.Timeline != nil {
			var moments []momentMarker
			inj := r.Fault.InjectedAt
			if !inj.IsZero() && r.Times.Detect != nil {
				moments = append(moments, momentMarker{At: inj.Add(r.Times.Detect.Duration), Label: "detected +" + rv.Detect, Color: "#2b8a3e"})
			}
			if !inj.IsZero() && r.Times.Fire != nil {
				moments = append(moments, momentMarker{At: inj.Add(r.Times.Fire.Duration), Label: "fired +" + rv.Fire, Color: "#c92a2a"})
			}
			mit := r.Mitigation.AppliedAt
			if !mit.IsZero() {
				moments = append(moments, momentMarker{At: mit, Label: "mitigation", Color: "#495057"})
				if r.Times.Recover != nil {
					moments = append(moments, momentMarker{At: mit.Add(r.Times.Recover.Duration), Label: "recovered +" + rv.Recover, Color: "#1f5fa8"})
				}
			}
			rv.Chart = buildChart("Timeline of row "+r.ID, r.Timeline.Series, r.Timeline.Windows, inj, "fault injected", moments)
			rv.HasChart = !rv.Chart.Empty
		}
		v.Rows = append(v.Rows, rv)
		if r.Status != evidence.StatusPassed || (r.DataLoss != nil && r.DataLoss.Verdict != evidence.DataLossValid) || r.DataLoss == nil ||
			(rv.Server.Compared && !rv.Server.Agree) || rv.Server.Missing {
			v.BadRows = append(v.BadRows, rowRef{ID: r.ID, Anchor: rv.Anchor, Name: r.Name, Status: r.Status})
		}
	}
	v.Control = windowViewOf("Control (no fault)", run.Control, run.PrometheusServer)
	v.Canary = windowViewOf("Canary", run.Canary, run.PrometheusServer)
	v.Windows = []windowSection{{"control", "Control (no fault)", v.Control}, {"canary", "Canary", v.Canary}}
	return v
}

func windowViewOf(title string, w *evidence.Window, ps *evidence.PrometheusServer) *windowView {
	if w == nil {
		return nil
	}
	wv := &windowView{Title: title, Window: w, Server: agreementOf(ps, w.Server, w.Pass)}
	if w.ProductionServer != nil {
		wv.Production = agreementOf(ps, w.ProductionServer, w.Pass)
		wv.Production.Title = "Production-timing Prometheus server (the rule files as written)"
	}
	var series []evidence.Series
	for _, t := range w.Triggers {
		series = append(series, evidence.Series{Name: t.Alert, Expr: t.Expr, Kind: evidence.KindTrigger, Points: t.Points})
	}
	wv.Chart = buildChart(title+" triggers", series, nil, w.Started, "window start", nil)
	wv.HasChart = !wv.Chart.Empty
	return wv
}

// serverLine says whether the Prometheus server ran beside the embedded engine, and how;
// esc escapes what comes from the evidence (version, image, rules, reason) for the output
// format. Nil is evidence from before the server existed.
func serverLine(ps *evidence.PrometheusServer, esc func(string) string) string {
	const alone = ": every row and window was judged by the embedded engine alone"
	if ps == nil {
		return "not recorded (evidence from before the Prometheus server)" + alone
	}
	if !ps.Enabled {
		reason := strings.TrimSpace(ps.Reason)
		if reason == "" {
			reason = "no reason recorded"
		}
		return "off (" + esc(reason) + ")" + alone
	}
	parts := []string{"on"}
	if ps.Version != "" {
		parts = append(parts, esc(ps.Version))
	}
	if ps.Image != "" {
		parts = append(parts, "image "+esc(ps.Image))
	}
	if ps.Rules != "" {
		parts = append(parts, "rules "+esc(ps.Rules))
	}
	if ps.ScrapeInterval.Duration > 0 || ps.EvalInterval.Duration > 0 {
		parts = append(parts, "scrape "+fmtDuration(ps.ScrapeInterval.Duration)+" / eval "+fmtDuration(ps.EvalInterval.Duration))
	}
	if ps.BootSeconds > 0 {
		parts = append(parts, "boot "+fmtSecs(ps.BootSeconds))
	}
	if ps.MemoryBytes > 0 {
		parts = append(parts, "peak memory "+fmtMB(ps.MemoryBytes))
	}
	return strings.Join(parts, ", ")
}

// agreementOf prepares a row's or window's agreement with the Prometheus server; passed
// says whether the row or window passed (the verdict asks an agreement only of those).
func agreementOf(ps *evidence.PrometheusServer, a *evidence.ServerAgreement, passed bool) agreementView {
	switch {
	case a == nil && ps == nil:
		return agreementView{State: "—", Class: "na"}
	case a == nil && !ps.Enabled:
		return agreementView{State: "off", Class: "na"}
	case a == nil:
		class := "na"
		if passed {
			class = "fail" // a NO-GO reason: see evidence.ComputeVerdict
		}
		return agreementView{State: "not compared", Class: class, Missing: true}
	}
	av := agreementView{State: "agrees", Class: "pass", Compared: true, Agree: a.Agree,
		From: a.From, To: a.To, Tolerance: fmtDuration(a.Tolerance.Duration), Detail: a.Detail}
	if !a.Agree {
		av.State, av.Class = "DISAGREES", "fail"
	}
	quiet := 0
	for _, al := range a.Alerts {
		if !al.EmbeddedFired && !al.ServerFired {
			quiet++
			continue
		}
		delta := "—"
		if al.Delta != nil {
			delta = fmtDelta(al.Delta.Duration)
		}
		fv := alertView{Alert: al.Alert, Embedded: firedAt(al.EmbeddedFired, al.EmbeddedAt),
			Server: firedAt(al.ServerFired, al.ServerAt), Delta: delta, Agree: al.Agree}
		if al.AtTheEdge != "" {
			fv.Delta = "at the for: edge: " + al.AtTheEdge
		}
		av.Fired = append(av.Fired, fv)
	}
	switch {
	case len(a.Alerts) == 0:
		av.Quiet = "No alerts compared"
	case quiet == 1:
		av.Quiet = "1 alert quiet in both"
	default:
		av.Quiet = fmt.Sprintf("%d alerts quiet in both", quiet)
	}
	return av
}

// firedAt is when an evaluator first fired an alert, or that it did not.
func firedAt(fired bool, at time.Time) string {
	switch {
	case !fired:
		return "not fired"
	case at.IsZero():
		return "fired, time not recorded"
	}
	return fmtTime(at)
}

// agreeMark is resultMark for an alert's agreement.
func agreeMark(agree bool) string {
	if agree {
		return "✔ agrees"
	}
	return "✘ DISAGREES"
}

// safeHref keeps relative and http(s) links; anything else (javascript:,
// data:) is shown as text, not linked.
func safeHref(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return s
}

// scaleNote says how the profile shortened production timing ("" when it did not);
// esc escapes what comes from the evidence (profile, note) for the output format.
func scaleNote(run *evidence.Run, esc func(string) string) string {
	if run.TimeScale.ForScale == 0 || run.TimeScale.ForScale == 1 {
		return ""
	}
	s := fmt.Sprintf("Profile %s shortened every production `for:` duration ×%s", esc(strconv.Quote(run.Profile)), fmtScale(run.TimeScale.ForScale))
	if note := scaleNoteText(run); note != "" {
		s += " (" + esc(note) + ")"
	}
	return s + "."
}

// profilePrefix is how a profile's scale note starts ("fast profile: every for: …").
var profilePrefix = regexp.MustCompile(`^[A-Za-z0-9_-]+ profile:\s*`)

// scaleNoteText is the evidence's scale note without the profile's name it starts with:
// the report names the profile from run.Profile, so that a release run is never called
// fast (harnesses before this one wrote "fast profile:" into every profile's note).
func scaleNoteText(run *evidence.Run) string {
	return strings.TrimSpace(profilePrefix.ReplaceAllString(run.TimeScale.Note, ""))
}

// anchor makes an HTML id from a row id (ids are data, so keep it tame).
func anchor(id string) string {
	var b strings.Builder
	b.WriteString("row-")
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func statusClass(s evidence.Status) string {
	switch s {
	case evidence.StatusPassed:
		return "pass"
	case evidence.StatusSkipped, evidence.StatusRunning, evidence.StatusInterrupted:
		return "warn"
	}
	return "fail"
}

func fmtDur(d *evidence.Duration) string {
	if d == nil {
		return "not reached"
	}
	return fmtDuration(d.Duration)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func resultMark(pass bool) string {
	if pass {
		return "✔ pass"
	}
	return "✘ fail"
}
