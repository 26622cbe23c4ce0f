// Package promcanarytest is a fake Prometheus HTTP API for tests of the canary without
// Docker: /api/v1/rules, /api/v1/query (the canary's own queries only),
// /api/v1/status/config and /api/v1/status/buildinfo, as Prometheus 2.x serves them.
package promcanarytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pocketbrain/chaos/harness/signals"
)

// Rule is one rule the fake serves.
type Rule struct {
	Alert  string // alerting rule name ("" for a recording rule)
	Record string
	Expr   string
	For    time.Duration
	State  string // inactive, pending, firing
	Health string // ok, err, unknown
	Error  string // lastError
	Value  string // the active alert's value
}

// Server is the fake. Its fields may be changed between requests through Do.
type Server struct {
	*httptest.Server

	mu sync.Mutex
	// Rules are served in one group, GroupInterval apart.
	Rules         []Rule
	GroupInterval time.Duration
	// EvalInterval is the config's global evaluation_interval ("" leaves it out).
	EvalInterval string
	// Present maps every metric name with samples to the jobs exposing it.
	Present map[string][]string
	// Down counts down targets per job.
	Down map[string]int
	// Swept are ALERTS states the span query finds (alert → state), besides every loud
	// state the rules endpoint has served.
	Swept map[string]string
	// User and Pass, when set, are required as basic auth.
	User, Pass string
	// OnRules runs before the n-th (1-based) read of the rules is answered.
	OnRules func(s *Server, n int)

	dead      bool
	ruleReads int
	served    map[[2]string]bool // every loud alert state the rules endpoint served
	queries   []string
}

// New serves rules as a Prometheus that loaded them: every alert inactive and healthy,
// every series they read present in job "pocketbrain".
func New(rules []signals.RuleInfo) *Server {
	s := &Server{GroupInterval: 15 * time.Second, EvalInterval: "15s", Present: map[string][]string{},
		Down: map[string]int{}, Swept: map[string]string{}, served: map[[2]string]bool{}}
	for _, ri := range rules {
		expr := ri.Expr
		if ri.EffectiveExpr != "" {
			expr = ri.EffectiveExpr
		}
		r := Rule{Expr: expr, Health: "ok"}
		if ri.Kind == signals.AlertingRule {
			r.Alert, r.For, r.State = ri.Name, ri.EffectiveFor, "inactive"
		} else {
			r.Record = ri.Name
		}
		s.Rules = append(s.Rules, r)
		for _, m := range ri.Metrics {
			s.Present[m] = []string{"pocketbrain"}
		}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Do changes the fake under its lock.
func (s *Server) Do(fn func(s *Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

// Rule returns the served rule of that alert or record name (nil: none). Call it in Do
// or OnRules.
func (s *Server) Rule(name string) *Rule {
	for i := range s.Rules {
		if s.Rules[i].Alert == name || s.Rules[i].Record == name {
			return &s.Rules[i]
		}
	}
	return nil
}

// Remove drops the rule of that name. Call it in Do or OnRules.
func (s *Server) Remove(name string) {
	var keep []Rule
	for _, r := range s.Rules {
		if r.Alert != name && r.Record != name {
			keep = append(keep, r)
		}
	}
	s.Rules = keep
}

// Kill makes every later request fail as a dead server's (the connection drops).
// Call it in Do or OnRules.
func (s *Server) Kill() { s.dead = true }

// RuleReads counts the reads of the rules so far.
func (s *Server) RuleReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ruleReads
}

// Queries are the instant queries received, in order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		panic(http.ErrAbortHandler)
	}
	if s.User != "" || s.Pass != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != s.User || p != s.Pass {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	}
	switch r.URL.Path {
	case "/api/v1/rules":
		s.ruleReads++
		if s.OnRules != nil {
			s.OnRules(s, s.ruleReads)
			if s.dead {
				panic(http.ErrAbortHandler)
			}
		}
		ok(w, map[string]any{"groups": []any{s.group()}})
	case "/api/v1/status/config":
		y := "global:\n  scrape_interval: 15s\n"
		if s.EvalInterval != "" {
			y += "  evaluation_interval: " + s.EvalInterval + "\n"
		}
		ok(w, map[string]any{"yaml": y})
	case "/api/v1/status/buildinfo":
		ok(w, map[string]any{"version": "2.42.0", "revision": "fake", "branch": "fake", "buildUser": "fake", "buildDate": "fake", "goVersion": "go"})
	case "/api/v1/query":
		_ = r.ParseForm()
		q := r.Form.Get("query")
		s.queries = append(s.queries, q)
		vec, err := s.query(q)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": err.Error()})
			return
		}
		ok(w, map[string]any{"resultType": "vector", "result": vec})
	default:
		http.NotFound(w, r)
	}
}

func ok(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func (s *Server) group() map[string]any {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	rules := []any{}
	for _, r := range s.Rules {
		if r.Record != "" {
			rules = append(rules, map[string]any{"type": "recording", "name": r.Record, "query": r.Expr, "labels": map[string]string{},
				"health": r.Health, "lastError": r.Error, "evaluationTime": 0.0001, "lastEvaluation": now})
			continue
		}
		alerts := []any{}
		if r.State == "pending" || r.State == "firing" {
			s.served[[2]string{r.Alert, r.State}] = true
			v := r.Value
			if v == "" {
				v = "1e+00"
			}
			alerts = append(alerts, map[string]any{"labels": map[string]string{"alertname": r.Alert}, "annotations": map[string]string{},
				"state": r.State, "activeAt": now, "value": v})
		}
		rules = append(rules, map[string]any{"type": "alerting", "name": r.Alert, "query": r.Expr, "duration": r.For.Seconds(),
			"labels": map[string]string{"severity": "rollback"}, "annotations": map[string]string{}, "alerts": alerts,
			"health": r.Health, "lastError": r.Error, "evaluationTime": 0.0001, "lastEvaluation": now, "state": r.State})
	}
	return map[string]any{"name": "pocketbrain-rollback-triggers", "file": "/etc/prometheus/alerts.yml",
		"interval": s.GroupInterval.Seconds(), "rules": rules, "evaluationTime": 0.0001, "lastEvaluation": now}
}

var nameRegex = regexp.MustCompile(`=~"((?:[^"\\]|\\.)*)"`)

func sample(labels map[string]string, v string) map[string]any {
	return map[string]any{"metric": labels, "value": []any{float64(time.Now().UnixMilli()) / 1000, v}}
}

// query answers the canary's three queries; anything else is refused.
func (s *Server) query(q string) ([]any, error) {
	out := []any{}
	switch {
	case strings.HasPrefix(q, "count by (__name__, job) "):
		m := nameRegex.FindStringSubmatch(q)
		if m == nil {
			return nil, fmt.Errorf("fake: no name regex in %q", q)
		}
		for _, n := range strings.Split(strings.ReplaceAll(m[1], `\\`, `\`), "|") {
			for _, job := range s.Present[n] {
				out = append(out, sample(map[string]string{"__name__": n, "job": job}, "1"))
			}
		}
	case q == "count by (job) (up == 0)":
		for job, n := range s.Down {
			if n > 0 {
				out = append(out, sample(map[string]string{"job": job}, fmt.Sprint(n)))
			}
		}
	case strings.HasPrefix(q, "count by (alertname, alertstate) "):
		states := maps.Clone(s.served)
		for a, st := range s.Swept {
			states[[2]string{a, st}] = true
		}
		for k := range states {
			out = append(out, sample(map[string]string{"alertname": k[0], "alertstate": k[1]}, "1"))
		}
	default:
		return nil, fmt.Errorf("fake: unsupported query %q", q)
	}
	return out, nil
}
