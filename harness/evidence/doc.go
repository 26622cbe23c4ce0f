// Package evidence is the evidence model of a chaos run: what was injected,
// what fired, how fast the stack recovered, whether data was lost, and the
// GO / NO-GO verdict derived from all of it. SCHEMA.md in this directory
// documents every JSON field of SchemaVersion.
//
// Suites record through a Recorder, which is safe for concurrent use and
// rewrites evidence.json atomically on every mutation, so a failed, killed
// or interrupted run still leaves valid JSON (complete=false, verdict
// INCOMPLETE):
//
//	rec, err := evidence.NewRecorder(outDir, evidence.Meta{RunID: id, Profile: evidence.ProfileFast},
//		evidence.WithRedactor(evidence.NewRedactor(append(generatedSecrets, evidence.SecretsFromEnv(os.Environ())...)...)))
//	stop := rec.InterruptOnSignal(os.Interrupt, syscall.SIGTERM); defer stop()
//
//	// In a row's spec:
//	row, err := rec.BeginRow(evidence.RowSpec{ID: "vps-path", Name: "...", Triggers: []string{"WorkerVpsPath"}})
//	row.SetFault("network", "vps", map[string]string{"toxic": "timeout"})
//	row.Injected(t); row.AddProof("toxiproxy vps bytes", "0")
//	row.Detected(t); row.Fired(t); row.Mitigated("heal vps", t); row.Recovered(t)
//	row.AddEvaluation(...); row.SetDataLoss(...); row.AddSeries(...); row.AddWindow(...)
//	// In AfterEach / DeferCleanup, map Ginkgo's outcome:
//	//   CurrentSpecReport().State: passed → Pass(); skipped/pending → Skip(msg);
//	//   interrupted/aborted → End(StatusInterrupted, msg); otherwise → Fail(FailureMessage()).
//
//	// In AfterSuite / ReportAfterSuite:
//	verdict, err := rec.Finish()
//	snap, _ := rec.Snapshot(); reports.WriteAll(snap, outDir, reports.WithRedactor(rec.Redactor()))
//
// Under `ginkgo -p` each process needs its own file (WithFileName) and the
// files are joined with Merge, as shards from several machines are.
package evidence
