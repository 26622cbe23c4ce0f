package stack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
)

// presenceStack is a Stack over the real program with no containers: the test appends
// samples to its store and ticks its monitor (no collector, no rules evaluated) at ts.
func presenceStack(t *testing.T) (*Stack, time.Time) {
	t.Helper()
	prog, err := program.Load("../../program")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := signals.LoadRuleFiles(prog.RulePaths())
	if err != nil {
		t.Fatal(err)
	}
	store := signals.NewStore()
	eng := signals.NewEngine(store)
	mon := signals.NewMonitor(nil, eng, nil)
	s := &Stack{Program: prog, Store: store, Engine: eng, Rules: rules, Monitor: mon, opts: Options{Roles: env.FullStack}}
	return s, time.Unix(1_700_000_000, 0)
}

// appendAt appends every series of every running target (up 1, each catalogued series 0)
// at ts, but the series named in skip, and with up 0 for the targets named in down.
func appendAt(t *testing.T, s *Stack, ts time.Time, down, skip map[string]bool) {
	t.Helper()
	add := func(ls labels.Labels, v float64) {
		if err := s.Store.Append(ls, ts, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, tg := range s.Program.Targets {
		up := 1.0
		if down[tg.Name] {
			up = 0
		}
		add(labels.FromStrings("__name__", "up", "job", tg.Name, "instance", tg.Name), up)
		if down[tg.Name] {
			continue
		}
		series := tg.Series
		if tg.Kind == "probe" {
			series = []string{"probe_success", "probe_http_status_code", "probe_duration_seconds"}
		}
		for _, n := range series {
			if skip[n] {
				continue
			}
			ls := labels.FromStrings("__name__", n, "job", tg.Name, "instance", tg.Name)
			if tg.Kind == "probe" {
				ls = labels.FromStrings("__name__", n, "job", tg.Name, "instance", tg.Name, "probe", tg.Name)
			}
			add(ls, 0)
		}
	}
}

func observed(t *testing.T, s *Stack, ts time.Time, alerts, exprs []string) []string {
	t.Helper()
	if _, err := s.Monitor.TickAt(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	ok, err := s.Observed(alerts, exprs)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.Unobserved(context.Background(), ts, alerts, exprs)
	if err != nil {
		t.Fatal(err)
	}
	if ok != (len(bad) == 0) {
		t.Fatalf("Observed = %v but Unobserved = %q", ok, bad)
	}
	return bad
}

// Issue 12 §3: quiet because absent is not quiet.
func TestObservedAllPresent(t *testing.T) {
	s, ts := presenceStack(t)
	appendAt(t, s, ts, nil, nil)
	if bad := observed(t, s, ts, s.AlertNames(), []string{"max(sync_queue_blocked) > 0"}); len(bad) > 0 {
		t.Fatalf("every target up and every series present, yet: %q", bad)
	}
}

func TestObservedTargetDown(t *testing.T) {
	s, ts := presenceStack(t)
	appendAt(t, s, ts, map[string]bool{"clients": true}, nil)
	// QueueNonRecovery reads the clients' queue events (through no recording rule).
	bad := observed(t, s, ts, []string{"QueueNonRecovery"}, nil)
	if len(bad) == 0 || !strings.Contains(strings.Join(bad, "; "), `target clients is down (up{job="clients"} = 0), read by QueueNonRecovery`) {
		t.Fatalf("clients down, want it named as read by QueueNonRecovery; got %q", bad)
	}
	// An expression reading only the server is not affected by the clients.
	if bad := observed(t, s, ts, nil, []string{"max(pocketbrain_postgres_ready) == 0"}); len(bad) > 0 {
		t.Fatalf("the server is up, yet: %q", bad)
	}
}

func TestObservedSeriesAbsent(t *testing.T) {
	s, ts := presenceStack(t)
	appendAt(t, s, ts, nil, map[string]bool{"pocketbrain_worker_reliability_kv_failures": true})
	// Through the recording rule kvFailures.
	bad := observed(t, s, ts, s.AlertNames(), nil)
	if len(bad) != 1 || !strings.Contains(bad[0], `series pocketbrain_worker_reliability_kv_failures{job="worker"} absent`) {
		t.Fatalf("want the worker's kv failures named absent; got %q", bad)
	}
	bad = observed(t, s, ts, nil, []string{"max(pocketbrain_worker_reliability_kv_failures) > 0"})
	if len(bad) != 1 {
		t.Fatalf("want the expression's series named absent; got %q", bad)
	}
}

func TestObservedLazySeriesMayBeAbsentButTargetUp(t *testing.T) {
	s, ts := presenceStack(t)
	e := []string{"sum(rate(toxiproxy_proxy_sent_bytes_total[1m])) > 0"}
	appendAt(t, s, ts, nil, map[string]bool{"toxiproxy_proxy_sent_bytes_total": true})
	if bad := observed(t, s, ts, nil, e); len(bad) > 0 {
		t.Fatalf("a lazy series may be absent, yet: %q", bad)
	}
	ts2 := ts.Add(time.Second)
	appendAt(t, s, ts2, map[string]bool{"toxiproxy": true}, nil)
	if bad := observed(t, s, ts2, nil, e); len(bad) != 1 || !strings.Contains(bad[0], "target toxiproxy is down") {
		t.Fatalf("a lazy series' target must be up; got %q", bad)
	}
}

// Quiet is false while an alert it covers cannot see what it reads, though none is loud.
func TestQuietNeedsObserved(t *testing.T) {
	s, ts := presenceStack(t)
	appendAt(t, s, ts, map[string]bool{"worker": true}, nil)
	if _, err := s.Monitor.TickAt(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Quiet()(context.Background()); err != nil || ok {
		t.Fatalf("Quiet with the worker down = %v, %v; want false", ok, err)
	}
}
