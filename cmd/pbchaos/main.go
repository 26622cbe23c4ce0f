// Command pbchaos is the engineer's entry point to the chaos harness besides the suites.
//
//	pbchaos check [-program DIR]
//	    validate the program (matrix, targets, rule files, baseline.yaml and
//	    release-gate.yaml) offline, in seconds, no Docker.
//	pbchaos sweep [--all [--any-host]] [-run ID] [--dry-run]
//	    remove leftovers by label, listing each object (kind, name, run, host, pid)
//	    before removing it: by default only those of owners verified dead (this host,
//	    this boot, this pid namespace, pid gone or reused); whatever cannot be verified
//	    is kept and said why. --all removes everything with the harness label of this
//	    host, live or not (stop your own runs first); --any-host: of every host;
//	    -run removes one environment's objects; --dry-run lists and removes nothing.
//	pbchaos hold ROW-ID [-timeout 30m] [-out DIR] [-program DIR]
//	    boot the stack, run the row until its detection and triggers fire, then HOLD the
//	    stack faulted until Enter (or the timeout), printing the live endpoints, the runbook
//	    and the harness's /metrics; then mitigate, check recovery, write the evidence and
//	    the report into DIR, and tear everything down (also on Ctrl-C).
//	pbchaos times [-wall 95s] EVIDENCE.json
//	    per-row detect/fire/recover times, each row's overhead before injection, after
//	    recovery and waiting for the server, and, given the wall time, the overhead ratio.
//	pbchaos canary --prometheus URL [--span 30m] [--rules FILE ...] [--for-scale F] [--interval D] [--out DIR]
//	    release-gate step 6 on production: check the server holds the program's rollback
//	    triggers as written, watch them for the span through its HTTP API, write the
//	    evidence and the report; last line: the verdict (GO, NO-GO or INCONCLUSIVE).
//
// Exit codes: 0 ok, 1 the work failed (a clear error on stderr), 2 the command line was
// wrong, 130 interrupted. canary: 0 GO, 1 NO-GO, 3 INCONCLUSIVE (also on Ctrl-C), 2 bad
// usage or setup.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const usage = `usage:
  pbchaos check [-program DIR]
  pbchaos sweep [--all [--any-host]] [-run ID] [--dry-run]
  pbchaos hold ROW-ID [-timeout 30m] [-out DIR] [-program DIR] [-v]
  pbchaos times [-wall DURATION] EVIDENCE.json
  pbchaos canary --prometheus URL [--span 30m] [--rules FILE ...] [--for-scale F] [--interval D] [--out DIR] [--keep-watching] [-program DIR]
`

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errInterrupted makes the exit code 130.
var errInterrupted = errors.New("interrupted")

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	if err == nil {
		return 0
	}
	var ue usageError
	var ee exitError
	switch {
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(stderr, "pbchaos:", ee.msg)
		}
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "pbchaos:", err)
		fmt.Fprint(stderr, usage)
		return 2
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(stderr, "pbchaos:", err)
		return 130
	}
	fmt.Fprintln(stderr, "pbchaos:", err)
	return 1
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	switch args[0] {
	case "check":
		return cmdCheck(args[1:], stdout)
	case "sweep":
		return cmdSweep(ctx, args[1:], stdout)
	case "hold":
		return cmdHold(ctx, args[1:], stdin, stdout, stderr)
	case "times":
		return cmdTimes(args[1:], stdout)
	case "canary":
		return cmdCanary(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// parse parses flags that may come before or after the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// defaultProgramDir finds program/ in the working directory or above it (the module
// root), so `go run ./cmd/pbchaos` works from anywhere in the checkout.
func defaultProgramDir() string {
	if d := os.Getenv("PB_PROGRAM"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return "program"
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "program", "matrix.yaml")); err == nil && !st.IsDir() {
			return filepath.Join(dir, "program")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "program"
		}
		dir = parent
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ")
}
