// Command pbreport re-renders, merges and compares PocketBrain chaos evidence.
//
//	pbreport render EVIDENCE.json [-out DIR]      write report.md and report.html (DIR defaults to the file's directory)
//	pbreport merge -out DIR A.json B.json ...     merge shards into DIR/evidence.json, report.md, report.html
//	pbreport diff [-band 2s] [-rel 20%] OLD.json NEW.json
//	                                              print in Markdown what changed between two runs: status flips,
//	                                              times moved beyond the noise band, triggers, file hashes, verdicts
//
// diff exits 0 whatever the differences (it is a report) and 2 when an input
// cannot be read as evidence (missing, not JSON, another schema version).
//
// Values of environment variables whose names contain SECRET, PASSWORD,
// TOKEN or KEY are redacted from everything written.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pocketbrain/chaos/harness/evidence"
	"github.com/pocketbrain/chaos/reports"
)

const usage = `usage:
  pbreport render EVIDENCE.json [-out DIR]
  pbreport merge -out DIR A.json B.json ...
  pbreport diff [-band 2s] [-rel 20%] OLD.json NEW.json
`

// Exit codes: 0 ok, 1 the work failed, 2 the command line or an input file was wrong.
func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// inputError is an input file that cannot be read as evidence (exit 2, no usage).
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func run(args, environ []string, stdout, stderr io.Writer) int {
	err := dispatch(args, environ, stdout)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "pbreport:", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var ie inputError
	if errors.As(err, &ie) {
		return 2
	}
	return 1
}

func dispatch(args, environ []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	red := evidence.NewRedactor(evidence.SecretsFromEnv(environ)...)
	switch args[0] {
	case "render":
		return render(args[1:], red, stdout)
	case "merge":
		return merge(args[1:], red, stdout)
	case "diff":
		return diff(args[1:], red, stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// parse accepts flags before or after the file arguments
// ("render a.json -out x" reads naturally).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return files, nil
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func newFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "", "output directory")
	return fs, out
}

func render(args []string, red *evidence.Redactor, stdout io.Writer) error {
	fs, out := newFlags("render")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageError{fmt.Sprintf("render takes exactly one evidence file, got %d", len(files))}
	}
	run, err := evidence.Load(files[0])
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(files[0])
	}
	if err := os.MkdirAll(dir, evidence.DirMode); err != nil {
		return fmt.Errorf("create %s: %w (choose a writable -out directory)", dir, err)
	}
	opts := []reports.Option{reports.WithRedactor(red)}
	if err := reports.WriteMarkdown(run, filepath.Join(dir, reports.MarkdownFile), opts...); err != nil {
		return err
	}
	if err := reports.WriteHTML(run, filepath.Join(dir, reports.HTMLFile), opts...); err != nil {
		return err
	}
	// Keep the reports beside their data when written elsewhere.
	if !sameDir(dir, filepath.Dir(files[0])) {
		if err := evidence.Write(filepath.Join(dir, evidence.FileName), run, red); err != nil {
			return err
		}
	}
	return summary(stdout, run, dir)
}

func merge(args []string, red *evidence.Redactor, stdout io.Writer) error {
	fs, out := newFlags("merge")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return usageError{"merge needs -out DIR"}
	}
	if len(files) < 2 {
		return usageError{fmt.Sprintf("merge needs at least two evidence files, got %d", len(files))}
	}
	var runs []*evidence.Run
	for _, f := range files {
		r, err := evidence.Load(f)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	m, err := evidence.Merge(runs...)
	if err != nil {
		return fmt.Errorf("%w (inputs: %s)", err, strings.Join(files, ", "))
	}
	if err := reports.WriteAll(m, *out, reports.WithRedactor(red)); err != nil {
		return err
	}
	return summary(stdout, m, *out)
}

func diff(args []string, red *evidence.Redactor, stdout io.Writer) error {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	band := reports.DefaultBand
	fs.DurationVar(&band.Abs, "band", band.Abs, "noise band of a time, absolute")
	fs.Func("rel", "noise band of a time, relative to the old time (20% or 0.2)", func(s string) error {
		v, err := parseRel(s)
		band.Rel = v
		return err
	})
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 2 {
		return usageError{fmt.Sprintf("diff takes exactly two evidence files (OLD.json NEW.json), got %d", len(files))}
	}
	if band.Abs < 0 {
		return usageError{fmt.Sprintf("-band %s: the noise band cannot be negative", band.Abs)}
	}
	var runs [2]*evidence.Run
	for i, f := range files {
		r, err := evidence.Load(f)
		if err != nil {
			return inputError{err}
		}
		if runs[i], err = evidence.Redact(r, red); err != nil {
			return err
		}
	}
	var b strings.Builder
	if err := reports.RenderDiff(&b, reports.Compare(files[0], runs[0], files[1], runs[1], band)); err != nil {
		return err
	}
	_, err = io.WriteString(stdout, red.String(b.String()))
	return err
}

// parseRel reads a relative band: "20%" or "0.2".
func parseRel(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if p, ok := strings.CutSuffix(t, "%"); ok {
		t, scale = strings.TrimSpace(p), 0.01
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("want a fraction (0.2) or a percentage (20%%) of at least 0, got %q", s)
	}
	return v * scale, nil
}

func summary(w io.Writer, run *evidence.Run, dir string) error {
	v := evidence.ComputeVerdict(run)
	fmt.Fprintf(w, "%s  %d rows  → %s\n", v.Decision, len(run.Rows), filepath.Join(dir, reports.HTMLFile))
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	return nil
}

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
