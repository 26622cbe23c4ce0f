// Package signals collects the stack's signals into an in-memory series store,
// evaluates PromQL over it with the real Prometheus engine, and runs Prometheus
// recording and alerting rules against it (DESIGN.md, "Signals").
//
// The pieces, bottom up:
//   - Store: series in memory, samples sorted per series, no retention (a run
//     is hours at most); a storage.Queryable. Staleness markers (IsStale) end
//     series the way Prometheus does.
//   - Engine: promql.Engine over the Store: Query, Vector, Value, RangeQuery.
//   - Collector: scrapes Prometheus text, flattened JSON and HTTP probes into
//     the Store, with up{job,instance} per target, all at one timestamp.
//   - Rules: Prometheus rule files (recording + alerting, checked with
//     Prometheus 2.x name rules) evaluated with the prometheus/rules package:
//     recording rules first, then alerting rules with Prometheus' for: and
//     keep_firing_for: semantics, optionally scaled (WithForScale).
//   - Monitor: scrape then evaluate, every interval, at one timestamp; WaitFor.
//   - Exporter: the latest value of every live series as Prometheus text.
//
// Typical use:
//
//	store := signals.NewStore()
//	col := signals.NewCollector(store)
//	_ = col.SetTarget(signals.Target{Name: "worker", Kind: signals.KindJSON, URL: u, Prefix: "pocketbrain_worker"})
//	rules, err := signals.LoadRuleFiles([]string{"aliases.yml", "triggers.yml"}, signals.WithForScale(1.0/60))
//	mon := signals.NewMonitor(col, signals.NewEngine(store), rules)
//	_, _ = mon.Tick(ctx)
//	err = rules.ValidateAgainst(store.MetricNames()) // refuse rules over series nobody exposes
//	_ = mon.Start(ctx); defer mon.Stop()
//	took, err := mon.WaitFor(ctx, "rollback trigger fires", mon.AlertFiring("QueueNonRecovery"))
//
// Not supported, by choice: native histograms (targets expose classic ones),
// a rule group's interval and query_offset (every rule is evaluated at every
// tick, at the tick's timestamp), JSON arrays (an index is not an identity).
package signals
