package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/promcanary"
)

// exitError ends the command with its own exit code; msg (if any) goes to stderr.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// stringList is a repeatable flag; a value may also list several, comma-separated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

// cmdCanary is release-gate step 6 on production: the program's rollback triggers, as a
// real Prometheus server evaluates them, watched for the span (harness/promcanary).
// Exit codes: 0 GO, 1 NO-GO, 3 INCONCLUSIVE (also after Ctrl-C), 2 bad usage or setup
// (the server does not hold the program's rules, or does not answer): no verdict.
func cmdCanary(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("canary", flag.ContinueOnError)
	prom := fs.String("prometheus", "", "the Prometheus server's URL, e.g. http://prometheus:9090 (user:password@ allowed, never printed)")
	span := fs.String("span", "30m", "how long to watch (Go duration)")
	var rules stringList
	fs.Var(&rules, "rules", "rule file the server must hold, repeatable; files after the flags count too (default PROGRAM/"+program.AlertsFile+")")
	forScaleText := fs.String("for-scale", "1", "the factor the server's copy of the rules was scaled by (for: and range windows), in (0, 1]: 1 is production timing; e.g. 1/30 for a fast-profile server")
	interval := fs.Duration("interval", 0, "tick (default: the server's evaluation interval, else 15s)")
	out := fs.String("out", "", "where evidence.json and the report go (default out/canary-<UTC time>)")
	dir := fs.String("program", defaultProgramDir(), "program directory (for the default rule file and the revision)")
	keep := fs.Bool("keep-watching", false, "after a NO-GO, watch the rest of the span anyway")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	// `--rules a.yml b.yml`: the canary has no other arguments.
	rules = append(rules, pos...)
	if *prom == "" {
		return usageError{"canary needs --prometheus URL (the server that evaluates the program's rules in production)"}
	}
	d, err := time.ParseDuration(*span)
	if err != nil || d <= 0 {
		return usageError{fmt.Sprintf("--span %q: want a positive Go duration, e.g. 30m", *span)}
	}
	if *interval < 0 {
		return usageError{fmt.Sprintf("--interval %s: want a positive duration (or leave it out)", *interval)}
	}
	forScale, err := promcanary.ParseForScale(*forScaleText)
	if err != nil {
		return usageError{"--" + err.Error()}
	}
	if len(rules) == 0 {
		rules = stringList{filepath.Join(*dir, program.AlertsFile)}
	}
	// Messages name the files as the release manager would: program/rules/alerts.yml.
	for i, r := range rules {
		rules[i] = promcanary.DisplayPath(r)
	}
	infos, err := promcanary.LoadRules(rules, forScale)
	if err != nil {
		return exitError{promcanary.ExitSetup, fmt.Sprintf("rule files:\n%s", indent(err.Error()))}
	}
	if *out == "" {
		*out = filepath.Join("out", "canary-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	if *out, err = filepath.Abs(*out); err != nil {
		return err
	}

	// Ctrl-C (or SIGTERM) ends the watch: the verdict is then INCONCLUSIVE and the
	// evidence still written. A second one kills at once.
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-sigCtx.Done()
		stop()
	}()
	res, err := promcanary.Run(sigCtx, promcanary.Options{
		URL:          *prom,
		Span:         d,
		Interval:     *interval,
		Rules:        infos,
		ForScale:     forScale,
		RuleFiles:    rules,
		OutDir:       *out,
		Provenance:   evidence.Provenance{HarnessRevision: revision(*dir)},
		KeepWatching: *keep,
		Progress:     stdout,
	})
	var se *promcanary.SetupError
	if errors.As(err, &se) {
		return exitError{promcanary.ExitSetup, se.Error()}
	}
	if err != nil {
		// The watch ran but its evidence was not written: say so, then the verdict.
		fmt.Fprintln(stderr, "pbchaos: canary evidence:", err)
	}
	for _, group := range []struct {
		title string
		lines []string
	}{{"loud triggers (NO-GO)", res.NoGo}, {"not judged (INCONCLUSIVE)", res.Inconclusive}, {"notes", res.Notes}} {
		if len(group.lines) == 0 {
			continue
		}
		fmt.Fprintf(stdout, "%s:\n", group.title)
		for _, l := range group.lines {
			fmt.Fprintf(stdout, "  - %s\n", l)
		}
	}
	if res.HTMLPath != "" {
		fmt.Fprintf(stdout, "evidence %s, report %s\n", res.EvidencePath, res.HTMLPath)
	}
	fmt.Fprintln(stdout, res.Line())
	if code := res.ExitCode(); code != promcanary.ExitGo {
		return exitError{code: code}
	}
	return nil
}
