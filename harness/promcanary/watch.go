package promcanary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
)

// Verdict is the canary's decision.
type Verdict string

const (
	Go   Verdict = evidence.DecisionGo
	NoGo Verdict = evidence.DecisionNoGo
	// Inconclusive: the canary could not judge every trigger over the span. Never GO;
	// evidence has no such decision, so it is written in the window's Detail.
	Inconclusive Verdict = "INCONCLUSIVE"
)

// Exit codes of `pbchaos canary`, by verdict; a *SetupError is ExitSetup.
const (
	ExitGo           = 0
	ExitNoGo         = 1
	ExitSetup        = 2
	ExitInconclusive = 3
)

// DefaultInterval is the tick when neither the options nor the server give one
// (Prometheus's own default evaluation_interval is 1m; the program's groups use 15s).
const DefaultInterval = 15 * time.Second

// DefaultCallTimeout bounds one API call.
const DefaultCallTimeout = 10 * time.Second

// heartbeat is how often a quiet watch says so on Progress.
const heartbeat = 5 * time.Minute

// Trigger states as trace points, as the harness's charts draw triggers.
const (
	pointInactive evidence.Float = 0
	pointPending  evidence.Float = 0.5
	pointFiring   evidence.Float = 1
)

// WatchOptions configure Watch.
type WatchOptions struct {
	// Span is how long to watch (> 0).
	Span time.Duration
	// Interval is the tick (> 0); Run fills it from EvalInterval when zero.
	Interval time.Duration
	// IntervalSource says where Interval came from, for the evidence.
	IntervalSource string
	// Rules are the program's rules (LoadRules): the alerting ones are watched; the
	// recording ones resolve the series the triggers read.
	Rules []signals.RuleInfo
	// Server is the server's URL without credentials, for messages.
	Server string
	// CallTimeout bounds each API call (0: DefaultCallTimeout).
	CallTimeout time.Duration
	// KeepWatching watches the whole span after a NO-GO (default: stop at once; the
	// verdict cannot change).
	KeepWatching bool
	// Progress gets a line for every new finding and a heartbeat (nil: none).
	Progress io.Writer
	// Redactor hides secrets in messages (nil: none).
	Redactor *evidence.Redactor
}

// Result is what the canary saw and decided.
type Result struct {
	Verdict Verdict
	// Summary is the verdict's one-line reason (Line).
	Summary string
	// NoGo are the loud triggers ("QueueNonRecovery pending at …"); Inconclusive what
	// kept the canary from judging; Notes what it saw besides (down targets).
	NoGo, Inconclusive, Notes []string
	Server                    string
	ServerVersion             string
	Span                      time.Duration // as planned
	Interval                  time.Duration
	IntervalSource            string
	Started, Ended            time.Time
	// Ticks counts the ticks at which the server's rules were read.
	Ticks int
	// Interrupted: the context ended before the span (Ctrl-C); StoppedEarly: the watch
	// ended at the first NO-GO.
	Interrupted, StoppedEarly bool
	// Triggers are the alerting rules' states over the watch, one trace each.
	Triggers []evidence.TriggerTrace
	// Files written by Run ("" when none).
	EvidencePath, MarkdownPath, HTMLPath string
}

// Line is the command's last line: "canary verdict: GO (6 triggers quiet for 30m0s at …)".
func (r Result) Line() string { return fmt.Sprintf("canary verdict: %s (%s)", r.Verdict, r.Summary) }

// ExitCode is the command's exit code for the verdict.
func (r Result) ExitCode() int {
	switch r.Verdict {
	case Go:
		return ExitGo
	case NoGo:
		return ExitNoGo
	}
	return ExitInconclusive
}

// Window is the result as the evidence's canary window: Pass only for GO, the verdict
// and its reasons in Detail.
func (r Result) Window() evidence.Window {
	var d []string
	switch r.Verdict {
	case Go:
		d = append(d, "GO: "+r.Summary)
	case NoGo:
		d = append(d, "NO-GO: loud triggers: "+strings.Join(r.NoGo, "; "))
	default:
		d = append(d, "INCONCLUSIVE (not GO)")
	}
	if len(r.Inconclusive) > 0 {
		d = append(d, "not judged: "+strings.Join(r.Inconclusive, "; "))
	}
	if len(r.Notes) > 0 {
		d = append(d, "notes: "+strings.Join(r.Notes, "; "))
	}
	server := r.Server
	if r.ServerVersion != "" {
		server += " (Prometheus " + r.ServerVersion + ")"
	}
	d = append(d, fmt.Sprintf("watched %s through the HTTP API of %s, %d ticks every %s (%s); trigger points are states: 0 inactive, 0.5 pending, 1 firing",
		roundDur(r.Ended.Sub(r.Started)), server, r.Ticks, r.Interval, r.IntervalSource))
	return evidence.Window{
		Planned:  evidence.Millis(r.Span),
		Started:  r.Started,
		Ended:    r.Ended,
		Triggers: r.Triggers,
		Pass:     r.Verdict == Go,
		Detail:   strings.Join(d, ". "),
	}
}

// roundDur keeps a duration readable: whole seconds from a minute on, else milliseconds.
func roundDur(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// EvalInterval is the tick that sees every state a trigger takes: the server's global
// evaluation_interval, or a shorter interval of a group holding one of the triggers (a
// state lasts at least one evaluation of its group). source says which, for the
// evidence. A server that hides its configuration gets DefaultInterval.
func EvalInterval(ctx context.Context, api v1.API, want []signals.RuleInfo) (iv time.Duration, source string) {
	iv, source = DefaultInterval, fmt.Sprintf("default %s: the server's configuration gives no evaluation_interval", DefaultInterval)
	if cfg, err := api.Config(ctx); err == nil {
		var doc struct {
			Global struct {
				EvaluationInterval string `yaml:"evaluation_interval"`
			} `yaml:"global"`
		}
		if yaml.Unmarshal([]byte(cfg.YAML), &doc) == nil {
			if d, err := model.ParseDuration(doc.Global.EvaluationInterval); err == nil && d > 0 {
				iv, source = time.Duration(d), "the server's evaluation_interval"
			}
		}
	}
	if res, err := api.Rules(ctx, nil); err == nil {
		idx := indexRules(res)
		for _, ri := range alertsOf(want) {
			for _, c := range idx.alerts[ri.Name] {
				if c.interval > 0 && c.interval < iv {
					iv, source = c.interval, fmt.Sprintf("the interval of rule group %q", c.group)
				}
			}
		}
	}
	return iv, source
}

// finding is one kind of observation, counted over the ticks it recurs at.
type finding struct {
	key, msg    string
	first, last time.Time // zero: msg holds its own time
	n           int
}

func (f *finding) String() string {
	if f.first.IsZero() {
		return f.msg
	}
	s := f.msg + " at " + stamp(f.first)
	if f.n > 1 {
		s += fmt.Sprintf(" (%d ticks in all, the last at %s)", f.n, stamp(f.last))
	}
	return s
}

type findings struct {
	list  []*finding
	byKey map[string]*finding
}

// add records an occurrence and reports whether the key is new.
func (fs *findings) add(key string, at time.Time, msg string) bool {
	if fs.byKey == nil {
		fs.byKey = map[string]*finding{}
	}
	if f, ok := fs.byKey[key]; ok {
		f.n++
		f.last = at
		return false
	}
	f := &finding{key: key, msg: msg, first: at, last: at, n: 1}
	fs.byKey[key] = f
	fs.list = append(fs.list, f)
	return true
}

func (fs *findings) strings() []string {
	out := make([]string, len(fs.list))
	for i, f := range fs.list {
		out[i] = f.String()
	}
	return out
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// watcher is one watch's state.
type watcher struct {
	api    v1.API
	o      WatchOptions
	alerts []signals.RuleInfo
	traces map[string]*evidence.TriggerTrace
	// series are the metric names the triggers read (through recording rules), each
	// with the alerts reading it.
	series  []string
	readers map[string][]string
	jobs    map[string]bool // jobs seen serving those series

	ticks               int
	noGo, inconc, notes findings
	lastBeat, start     time.Time
	progress            io.Writer
	redact              func(string) string
}

// Watch watches the triggers of o.Rules on the server for o.Span. The error is for bad
// options only: what the server does decides the verdict.
func Watch(ctx context.Context, api v1.API, o WatchOptions) (Result, error) {
	if o.Span <= 0 {
		return Result{}, fmt.Errorf("span %s: want a positive duration, e.g. 30m", o.Span)
	}
	if o.Interval <= 0 {
		return Result{}, fmt.Errorf("interval %s: want a positive duration (0 only through Run, which reads the server's)", o.Interval)
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	w := &watcher{api: api, o: o, alerts: alertsOf(o.Rules), traces: map[string]*evidence.TriggerTrace{},
		readers: map[string][]string{}, jobs: map[string]bool{}, progress: o.Progress, redact: o.Redactor.String}
	if len(w.alerts) == 0 {
		return Result{}, errors.New("no alerting rule to watch: give the program's rules (LoadRules of program/rules/alerts.yml)")
	}
	if w.progress == nil {
		w.progress = io.Discard
	}
	for _, a := range w.alerts {
		if _, ok := w.traces[a.Name]; !ok {
			w.traces[a.Name] = &evidence.TriggerTrace{Alert: a.Name, Expr: WantExpr(a)}
		}
	}
	w.resolveSeries()

	w.start = time.Now()
	w.lastBeat = w.start
	deadline := w.start.Add(o.Span)
	end := w.start
	res := Result{Server: o.Server, Span: o.Span, Interval: o.Interval, IntervalSource: o.IntervalSource, Started: w.start}
	for {
		at := time.Now()
		w.tick(ctx, at)
		end = at
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		if len(w.noGo.list) > 0 && !o.KeepWatching {
			res.StoppedEarly = at.Before(deadline)
			break
		}
		if !at.Before(deadline) {
			break
		}
		w.beat(at)
		// The next point of the grid after now (a slow tick skips, never bunches), and
		// a last tick at the deadline.
		k := at.Sub(w.start)/o.Interval + 1
		next := w.start.Add(k * o.Interval)
		if next.After(deadline) {
			next = deadline
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			end = time.Now()
			res.Interrupted = true
		case <-t.C:
		}
		if res.Interrupted {
			break
		}
	}
	var interrupted []string
	if res.Interrupted {
		msg := fmt.Sprintf("interrupted after %s of the %s span", roundDur(end.Sub(w.start)), o.Span)
		w.say(end, "INCONCLUSIVE: %s", msg)
		interrupted = []string{msg}
	} else if !res.StoppedEarly {
		w.sweep(ctx, end)
	}
	if res.StoppedEarly {
		w.notes.add("stopped", time.Time{}, fmt.Sprintf("the watch ended at the first loud trigger, after %s of the %s span (the verdict cannot change)", roundDur(end.Sub(w.start)), o.Span))
	}
	res.Ended = end
	res.Ticks = w.ticks
	res.NoGo, res.Notes = w.noGo.strings(), w.notes.strings()
	res.Inconclusive = append(interrupted, w.inconc.strings()...)
	for _, a := range w.alerts {
		if tr := w.traces[a.Name]; tr != nil {
			res.Triggers = append(res.Triggers, *tr)
			w.traces[a.Name] = nil // one trace per alert name
		}
	}
	res.Verdict, res.Summary = judge(res, len(res.Triggers))
	return res, nil
}

// judge: any loud trigger is NO-GO; anything that kept the canary from judging is
// INCONCLUSIVE; only a complete, quiet watch is GO.
func judge(r Result, triggers int) (Verdict, string) {
	more := func(list []string) string {
		s := list[0]
		if len(list) > 1 {
			s += fmt.Sprintf("; and %d more", len(list)-1)
		}
		return s
	}
	switch {
	case len(r.NoGo) > 0:
		return NoGo, fmt.Sprintf("%s, on %s: halt the promotion", more(r.NoGo), r.Server)
	case len(r.Inconclusive) > 0:
		return Inconclusive, fmt.Sprintf("%s, on %s: not every trigger was judged over the span", more(r.Inconclusive), r.Server)
	case r.Ticks == 0:
		return Inconclusive, fmt.Sprintf("no tick read the server's rules, on %s", r.Server)
	}
	return Go, fmt.Sprintf("%d triggers quiet for %s at %s", triggers, r.Span, r.Server)
}

// resolveSeries lists the metric names the triggers read, following recording rules to
// their own inputs: a recorded series depends on the server's evaluation, its inputs on
// the scrape.
func (w *watcher) resolveSeries() {
	records := map[string]signals.RuleInfo{}
	for _, r := range w.o.Rules {
		if r.Kind == signals.RecordingRule {
			records[r.Name] = r
		}
	}
	set := map[string]map[string]bool{}
	var walk func(alert string, metrics []string, seen map[string]bool)
	walk = func(alert string, metrics []string, seen map[string]bool) {
		for _, m := range metrics {
			switch {
			case m == "ALERTS" || m == "ALERTS_FOR_STATE":
				// The server's own, absent while every alert is quiet.
			case records[m].Name != "" && !seen[m]:
				seen[m] = true
				walk(alert, records[m].Metrics, seen)
			default:
				if set[m] == nil {
					set[m] = map[string]bool{}
				}
				set[m][alert] = true
			}
		}
	}
	for _, a := range w.alerts {
		walk(a.Name, a.Metrics, map[string]bool{})
	}
	for m, as := range set {
		w.series = append(w.series, m)
		for a := range as {
			w.readers[m] = append(w.readers[m], a)
		}
		slices.Sort(w.readers[m])
	}
	slices.Sort(w.series)
}

func (w *watcher) say(at time.Time, format string, a ...any) {
	fmt.Fprintf(w.progress, "[canary] %s %s\n", stamp(at), w.redact(fmt.Sprintf(format, a...)))
}

func (w *watcher) beat(at time.Time) {
	if at.Sub(w.lastBeat) < heartbeat {
		return
	}
	w.lastBeat = at
	if len(w.noGo.list) == 0 && len(w.inconc.list) == 0 {
		w.say(at, "%s of %s: %d triggers quiet", roundDur(at.Sub(w.start)), w.o.Span, len(w.alerts))
	} else {
		w.say(at, "%s of %s: %d loud triggers, %d problems so far", roundDur(at.Sub(w.start)), w.o.Span, len(w.noGo.list), len(w.inconc.list))
	}
}

func (w *watcher) inconclusive(key string, at time.Time, format string, a ...any) {
	msg := w.redact(fmt.Sprintf(format, a...))
	if w.inconc.add(key, at, msg) {
		w.say(at, "INCONCLUSIVE: %s", msg)
	}
}

func (w *watcher) note(key string, at time.Time, format string, a ...any) {
	msg := w.redact(fmt.Sprintf(format, a...))
	if w.notes.add(key, at, msg) {
		w.say(at, "note: %s", msg)
	}
}

// loud records a trigger pending or firing; at is zero when msg holds its own time.
func (w *watcher) loud(alert, state string, at time.Time, msg string) {
	if w.noGo.add("loud:"+alert+":"+state, at, msg) {
		if at.IsZero() {
			at = time.Now()
		}
		w.say(at, "NO-GO: %s", msg)
	}
}

func (w *watcher) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.o.CallTimeout)
}

// tick reads every trigger's state and the series they read, once.
func (w *watcher) tick(ctx context.Context, at time.Time) {
	cctx, cancel := w.call(ctx)
	res, err := w.api.Rules(cctx, nil)
	cancel()
	if ctx.Err() != nil {
		return // interrupted: not the server's doing
	}
	if err != nil {
		w.inconclusive("unreachable", at, "the server did not answer (GET /api/v1/rules: %v)", err)
		return
	}
	w.ticks++
	idx := indexRules(res)
	for _, a := range w.alerts {
		w.alertTick(idx, a, at)
	}
	w.seriesTick(ctx, at)
	w.upTick(ctx, at)
}

func (w *watcher) alertTick(idx ruleIndex, a signals.RuleInfo, at time.Time) {
	cands := idx.alerts[a.Name]
	if len(cands) == 0 {
		w.inconclusive("gone:"+a.Name, at, "alert %s no longer loaded (were the rules reloaded during the canary?)", a.Name)
		return
	}
	if probs := compareRules(idx, []signals.RuleInfo{a}); len(probs) > 0 {
		w.inconclusive("changed:"+a.Name, at, "%s (the server's rules changed during the canary)", probs[0])
	}
	// Every copy of the name counts: the loudest state, the worst health.
	state, health, lastErr, value := "", v1.RuleHealth(""), "", ""
	for _, c := range cands {
		r := c.alerting
		if rank(r.State) > rank(state) {
			state = r.State
		}
		if healthRank(r.Health) > healthRank(health) {
			health, lastErr = r.Health, r.LastError
		}
		for _, al := range r.Alerts {
			if value == "" || parseFloat(al.Value) > parseFloat(value) {
				value = al.Value
			}
		}
	}
	tr := w.traces[a.Name]
	p := pointInactive
	switch state {
	case string(v1.AlertStatePending):
		p = pointPending
	case string(v1.AlertStateFiring):
		p = pointFiring
		tr.EverFired = true
	}
	tr.Points = append(tr.Points, evidence.Point{T: at, V: p})
	tr.MaxValue = max(tr.MaxValue, p)
	if p != pointInactive {
		msg := fmt.Sprintf("%s %s", a.Name, state)
		if value != "" {
			// Prometheus writes alert values as 1e+00.
			if f, err := strconv.ParseFloat(value, 64); err == nil {
				value = strconv.FormatFloat(f, 'g', -1, 64)
			}
			msg += " (value " + value + ")"
		}
		w.loud(a.Name, state, at, msg)
	}
	switch health {
	case v1.RuleHealthBad:
		w.inconclusive("health:"+a.Name, at, "alert %s: its evaluation failed (health err: %s)", a.Name, lastErr)
	case v1.RuleHealthUnknown:
		// A rule just loaded is not evaluated yet: allowed at the first tick only.
		if w.ticks > 1 {
			w.inconclusive("unknown:"+a.Name, at, "alert %s: not evaluated (health unknown)", a.Name)
		}
	}
}

func rank(state string) int {
	switch v1.AlertState(state) {
	case v1.AlertStateInactive:
		return 1
	case v1.AlertStatePending:
		return 2
	case v1.AlertStateFiring:
		return 3
	}
	return 0
}

func healthRank(h v1.RuleHealth) int {
	switch h {
	case v1.RuleHealthGood:
		return 1
	case v1.RuleHealthUnknown:
		return 2
	case v1.RuleHealthBad:
		return 3
	}
	return 0
}

func parseFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// nameRegex matches exactly the given metric names.
func nameRegex(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return strings.Join(q, "|")
}

// SeriesQuery is the one query per tick that says which of names have samples, and in
// which jobs.
func SeriesQuery(names []string) string {
	return fmt.Sprintf("count by (__name__, job) ({__name__=~%q})", nameRegex(names))
}

// DownQuery counts the down targets of every job.
const DownQuery = "count by (job) (up == 0)"

// SweepQuery finds every state an alert of names took over the last d (the server's
// ALERTS series), between the ticks too.
func SweepQuery(names []string, d time.Duration) string {
	secs := max(int64(d/time.Second), 1)
	return fmt.Sprintf("count by (alertname, alertstate) (count_over_time(ALERTS{alertname=~%q}[%ds]))", nameRegex(names), secs)
}

// query runs an instant query at the server's own now (its clock, not ours).
func (w *watcher) query(ctx context.Context, q string) (model.Vector, error) {
	cctx, cancel := w.call(ctx)
	defer cancel()
	v, _, _, err := w.api.Query(cctx, q, time.Time{})
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: want a vector, got %s", q, v.Type())
	}
	return vec, nil
}

func (w *watcher) seriesTick(ctx context.Context, at time.Time) {
	if len(w.series) == 0 {
		return
	}
	q := SeriesQuery(w.series)
	vec, err := w.query(ctx, q)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.inconclusive("series-query", at, "the series the triggers read could not be checked (%s: %v)", q, err)
		return
	}
	present := map[string]bool{}
	for _, s := range vec {
		present[string(s.Metric[model.MetricNameLabel])] = true
		if job := string(s.Metric["job"]); job != "" {
			w.jobs[job] = true
		}
	}
	for _, m := range w.series {
		if !present[m] {
			w.inconclusive("absent:"+m, at, "series %s absent: %s cannot see it (is its target scraped? does it export the series from start?)", m, strings.Join(w.readers[m], ", "))
		}
	}
}

// upTick notes down targets of the jobs that serve the triggers' series: their share of
// the series is missing even when the series are not absent.
func (w *watcher) upTick(ctx context.Context, at time.Time) {
	vec, err := w.query(ctx, DownQuery)
	if ctx.Err() != nil || err != nil {
		return // a note only: the series check judges
	}
	for _, s := range vec {
		job := string(s.Metric["job"])
		if w.jobs[job] {
			w.note("down:"+job, at, "job %s, which serves series the triggers read: targets down (up == 0): %s", job, s.Value)
		}
	}
}

// sweep reads the server's ALERTS over the watch, to catch a state shorter than a tick.
func (w *watcher) sweep(ctx context.Context, end time.Time) {
	names := make([]string, len(w.alerts))
	for i, a := range w.alerts {
		names[i] = a.Name
	}
	q := SweepQuery(names, end.Sub(w.start))
	vec, err := w.query(ctx, q)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.inconclusive("sweep", end, "the server's ALERTS over the span could not be read (%s: %v)", q, err)
		return
	}
	for _, s := range vec {
		alert, state := string(s.Metric["alertname"]), string(s.Metric["alertstate"])
		tr := w.traces[alert]
		if tr == nil || (state != string(v1.AlertStatePending) && state != string(v1.AlertStateFiring)) {
			continue
		}
		if state == string(v1.AlertStateFiring) {
			tr.EverFired = true
			tr.MaxValue = max(tr.MaxValue, pointFiring)
		} else {
			tr.MaxValue = max(tr.MaxValue, pointPending)
		}
		if _, seen := w.noGo.byKey["loud:"+alert+":"+state]; !seen {
			w.loud(alert, state, time.Time{}, fmt.Sprintf("%s %s between two ticks, within the span %s to %s (the server's ALERTS series)", alert, state, stamp(w.start), stamp(end)))
		}
	}
}
