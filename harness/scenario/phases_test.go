package scenario

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/signals"
	"github.com/pocketbrain/chaos/harness/stack"
)

func TestPollReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	err := Poll(context.Background(), time.Minute, "third time", func() (bool, string, error) {
		calls++
		if calls == 1 {
			return false, "", errors.New("not yet reachable") // an error does not stop the wait
		}
		return calls == 3, "calls", nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)
}

func TestPollTimesOutWithItsLastWord(t *testing.T) {
	began := time.Now()
	err := Poll(context.Background(), 10*time.Millisecond, "never", func() (bool, string, error) {
		return false, "still 2", errors.New("boom")
	})
	require.Error(t, err)
	assert.Equal(t, "never: not within 10ms (last: still 2, error: boom)", err.Error())
	assert.Less(t, time.Since(began), time.Second, "one PollEvery past the deadline at most")
}

func TestPollStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Poll(ctx, time.Minute, "canceled", func() (bool, string, error) { return false, "seen", nil })
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, "canceled: context canceled (last: seen)", err.Error())
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, Sleep(ctx, 0), "nothing to wait: no error, even on an ended context")
	assert.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	assert.NoError(t, Sleep(context.Background(), time.Millisecond))
}

func TestTriggerCurveStepsAtEachTransition(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return from.Add(time.Duration(s) * time.Second) }
	trs := []signals.AlertTransition{
		{Alert: "A", T: at(-5), To: signals.AlertFiring}, // before the chart: not drawn
		{Alert: "A", T: at(2), To: signals.AlertPending},
		{Alert: "B", T: at(3), To: signals.AlertFiring}, // another alert
		{Alert: "A", T: at(4), To: signals.AlertFiring},
		{Alert: "A", T: at(6), To: signals.AlertInactive},
	}
	got := TriggerCurve(trs, "A", from, at(10))
	want := []evidence.Point{{T: from, V: 0}, {T: at(2), V: 0}, {T: at(2), V: 0.5}, {T: at(4), V: 0.5}, {T: at(4), V: 1}, {T: at(6), V: 1}, {T: at(6), V: 0}, {T: at(10), V: 0}}
	assert.Equal(t, want, got)
	assert.Equal(t, []evidence.Point{{T: from, V: 0}, {T: at(10), V: 0}}, TriggerCurve(trs, "C", from, at(10)), "never loud: flat")
}

func TestFaultWindow(t *testing.T) {
	inj, healed, now := time.Unix(10, 0), time.Unix(20, 0), time.Unix(30, 0)
	_, ok := faultWindow(time.Time{}, healed, now)
	assert.False(t, ok, "no injection, no window")
	w, ok := faultWindow(inj, healed, now)
	assert.True(t, ok)
	assert.Equal(t, evidence.Span{From: inj, To: healed, Label: "fault"}, w)
	w, _ = faultWindow(inj, time.Time{}, now)
	assert.Equal(t, now, w.To, "not healed: the window runs to now")
}

func TestQuietSpan(t *testing.T) {
	assert.Equal(t, 2*time.Second, quietSpan(time.Second, nil))
	assert.Equal(t, 32*time.Second, quietSpan(time.Second, []time.Duration{10 * time.Second, 30 * time.Second}))
	assert.Equal(t, 2*time.Second, quietSpan(time.Second, []time.Duration{0}))
}

func TestQuietBreaches(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	trs := []signals.AlertTransition{
		{Alert: "Q", T: t0.Add(-time.Second), To: signals.AlertPending}, // before the fault
		{Alert: "Q", T: t0.Add(time.Second), To: signals.AlertPending},
		{Alert: "Q", T: t0.Add(2 * time.Second), To: signals.AlertFiring},
		{Alert: "Q", T: t0.Add(3 * time.Second), To: signals.AlertInactive},
		{Alert: "Other", T: t0.Add(time.Second), To: signals.AlertFiring}, // not a quiet trigger
	}
	now := map[string]signals.AlertState{"Q": signals.AlertInactive, "Stuck": signals.AlertFiring, "Calm": signals.AlertInactive, "Other": signals.AlertFiring}
	loud := quietBreaches(trs, []string{"Q", "Stuck", "Calm"}, t0, func(n string) signals.AlertState { return now[n] })
	assert.Equal(t, map[string][]string{
		"Q":     {"pending at 2026-01-01T00:00:01Z", "firing at 2026-01-01T00:00:02Z"},
		"Stuck": {"firing now"}, // loud since before the fault, no transition since
	}, loud)
}

// testStack is a stack with a store, an engine, one alerting rule (Loud: x > 0) and a
// monitor ticked by hand: enough for the phases that read signals and record evidence.
func testStack(t *testing.T) *stack.Stack {
	t.Helper()
	store := signals.NewStore()
	eng := signals.NewEngine(store)
	rules, err := signals.ParseRuleFiles([]signals.RuleFile{{Name: "t.yml", Content: []byte("groups:\n  - name: g\n    rules:\n      - alert: Loud\n        expr: x > 0\n")}})
	require.NoError(t, err)
	mon := signals.NewMonitor(nil, eng, rules, signals.WithInterval(10*time.Millisecond))
	return &stack.Stack{Store: store, Engine: eng, Rules: rules, Monitor: mon}
}

// testRow begins row R1 of a fresh recorder; row reads it back.
func testRow(t *testing.T) (rr *evidence.RowRecorder, row func() evidence.Row) {
	t.Helper()
	rec, err := evidence.NewRecorder(t.TempDir(), evidence.Meta{RunID: "test", Profile: evidence.ProfileFast, TimeScale: evidence.TimeScale{ForScale: 1}})
	require.NoError(t, err)
	rr, err = rec.BeginRow(evidence.RowSpec{ID: "R1", Name: "row"})
	require.NoError(t, err)
	return rr, func() evidence.Row {
		run, err := rec.Snapshot()
		require.NoError(t, err)
		require.Len(t, run.Rows, 1)
		return run.Rows[0]
	}
}

func TestRecordAddsEvaluationsAndNamesTheMisses(t *testing.T) {
	st := testStack(t)
	rr, row := testRow(t)
	now := time.Now().Truncate(time.Millisecond)
	require.NoError(t, st.Store.Append(labels.FromStrings(labels.MetricName, "x"), now, 3))
	_, err := st.Monitor.TickAt(context.Background(), now)
	require.NoError(t, err)
	var out bytes.Buffer
	s := (&Runner{Stack: st, Progress: &out}).Begin("R1", rr)

	require.NoError(t, s.Record(context.Background(), evidence.PhaseFault, true, "x > 0"))
	err = s.Record(context.Background(), evidence.PhaseSteady, false, "x > 0", "x > 5")
	require.Error(t, err)
	assert.Equal(t, `"x > 0" should does not hold (value 3, present true, err <nil>)`, err.Error())

	got := row()
	require.Len(t, got.Evaluations, 3)
	assert.Equal(t, evidence.Evaluation{Phase: "fault", Expr: "x > 0", Value: 3, Present: true, Want: "holds", Pass: true, At: now.UTC()}, got.Evaluations[0])
	assert.False(t, got.Evaluations[1].Pass)
	assert.Equal(t, "does not hold", got.Evaluations[2].Want)
	assert.True(t, got.Evaluations[2].Pass)
}

func TestTimelineDrawsSignalsTriggersAndTheFaultWindow(t *testing.T) {
	st := testStack(t)
	rr, row := testRow(t)
	ctx := context.Background()
	s := (&Runner{Stack: st}).Begin("R1", rr)
	start := s.Started().Add(-time.Second).Truncate(time.Millisecond)
	for i := range 5 {
		ts := start.Add(time.Duration(i) * 200 * time.Millisecond)
		require.NoError(t, st.Store.Append(labels.FromStrings(labels.MetricName, "x"), ts, float64(i)))
		_, err := st.Monitor.TickAt(ctx, ts)
		require.NoError(t, err)
	}
	s.injected = start.Add(300 * time.Millisecond)

	s.Timeline(ctx, Chart{From: start, Signals: []string{"max(x) > 0", "absent_metric"}, Triggers: []string{"Loud"}})
	got := row()
	require.NotNil(t, got.Timeline)
	var names []string
	for _, se := range got.Timeline.Series {
		names = append(names, se.Name+"/"+se.Kind)
	}
	assert.Equal(t, []string{"max(x)/signal", "absent_metric/signal", "Loud (0 quiet, 0.5 pending, 1 firing)/trigger"}, names,
		"a signal is drawn without its comparison; an empty one is kept unless OmitEmpty")
	assert.NotEmpty(t, got.Timeline.Series[0].Points)
	assert.Empty(t, got.Timeline.Series[1].Points)
	loud := got.Timeline.Series[2].Points
	require.GreaterOrEqual(t, len(loud), 4)
	assert.EqualValues(t, 1, loud[len(loud)-1].V, "Loud fires from the second tick on (for: 0)")
	require.Len(t, got.Timeline.Windows, 1)
	assert.Equal(t, "fault", got.Timeline.Windows[0].Label)
	assert.True(t, got.Timeline.Windows[0].From.Equal(s.injected.UTC()))

	rr2, row2Of := testRow(t)
	s2 := (&Runner{Stack: st}).Begin("R1", rr2)
	s2.Timeline(ctx, Chart{From: start, Signals: []string{"absent_metric", "x"}, OmitEmpty: true})
	row2 := row2Of()
	require.Len(t, row2.Timeline.Series, 1, "OmitEmpty leaves the empty signal out")
	assert.Equal(t, "x", row2.Timeline.Series[0].Name)
	assert.Empty(t, row2.Timeline.Windows, "not injected: no fault window")
}

func TestHoldQuietFailsOnAQuietTriggerThatWentLoud(t *testing.T) {
	st := testStack(t)
	rr, row := testRow(t)
	ctx := context.Background()
	var out bytes.Buffer
	s := (&Runner{Stack: st, Progress: &out}).Begin("R1", rr)
	s.injected = time.Now().Add(-time.Minute) // the quiet span has passed: no wait
	ts := time.Now().Truncate(time.Millisecond)
	_, err := st.Monitor.TickAt(ctx, ts)
	require.NoError(t, err)

	require.NoError(t, s.HoldQuiet(ctx, []string{"Loud"}), "x absent: Loud stays quiet")
	assert.Contains(t, out.String(), "[R1] quiet     ok: Loud stayed quiet for 1m")

	require.NoError(t, st.Store.Append(labels.FromStrings(labels.MetricName, "x"), ts.Add(time.Second), 1))
	_, err = st.Monitor.TickAt(ctx, ts.Add(time.Second))
	require.NoError(t, err)
	err = s.HoldQuiet(ctx, []string{"Loud"})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "quiet triggers: Loud (firing at "), err.Error())

	evs := row().Evaluations
	require.Len(t, evs, 2)
	assert.True(t, evs[0].Pass)
	assert.False(t, evs[1].Pass)
	assert.Equal(t, `ALERTS{alertname="Loud"}`, evs[1].Expr)
}

func TestValidVerdict(t *testing.T) {
	assert.NoError(t, ValidVerdict(&evidence.DataLoss{Verdict: evidence.DataLossValid}))
	assert.EqualError(t, ValidVerdict(&evidence.DataLoss{Verdict: "invalid", Detail: "lost 2"}), "data-loss check: verdict invalid: lost 2")
	assert.Error(t, ValidVerdict(nil))
}

func TestCheckDataLossRecordsTheVerdict(t *testing.T) {
	rr, row := testRow(t)
	var out bytes.Buffer
	r := &Runner{Progress: &out}
	_, err := r.Begin("R1", rr).CheckDataLoss(context.Background())
	require.Error(t, err, "no DataLoss check wired")

	r.DataLoss = func(context.Context) (*evidence.DataLoss, error) {
		return &evidence.DataLoss{Verdict: evidence.DataLossValid, Ops: 7}, errors.New("seeded data lost")
	}
	dl, err := r.Begin("R1", rr).CheckDataLoss(context.Background())
	require.EqualError(t, err, "data-loss check: seeded data lost")
	assert.Equal(t, 7, dl.Ops)
	assert.Regexp(t, `^\[R1\] check     final sync and data-loss check\n\[R1\] check     verdict valid after \d+(\.\d+)?[µm]?s \(7 ops\)\n$`, out.String())
	require.NotNil(t, row().DataLoss, "the verdict is recorded even when the check also failed")
}
