// Package reports renders evidence (harness/evidence) for people: a
// Markdown file for review tools and one self-contained HTML page (inline
// CSS and SVG, no scripts, no external assets) for release managers. Both
// lead with the verdict, recomputed from the evidence at render time.
package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// File names WriteAll produces.
const (
	MarkdownFile = "report.md"
	HTMLFile     = "report.html"
)

// Option configures rendering.
type Option func(*options)

type options struct {
	red         *evidence.Redactor
	runbookBase string
	now         func() time.Time
}

// WithRedactor hides secrets in every byte written (the evidence is
// redacted before rendering and the output once more after).
func WithRedactor(r *evidence.Redactor) Option { return func(o *options) { o.red = r } }

// WithRunbookBase prefixes runbook paths in links, e.g.
// "https://github.com/acme/pocketbrain/blob/main/".
func WithRunbookBase(base string) Option { return func(o *options) { o.runbookBase = base } }

// WithClock replaces time.Now for the "generated" stamp (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func collect(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// prepare validates the run and returns a redacted copy to render.
func prepare(run *evidence.Run, o options) (*evidence.Run, error) {
	if run == nil {
		return nil, fmt.Errorf("render report: no evidence (nil run)")
	}
	if err := evidence.Validate(run); err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	return evidence.Redact(run, o.red)
}

// RenderMarkdown writes the Markdown report to w.
func RenderMarkdown(w io.Writer, run *evidence.Run, opts ...Option) error {
	o := collect(opts)
	r, err := prepare(run, o)
	if err != nil {
		return err
	}
	_, err = w.Write(o.red.Bytes([]byte(markdown(buildView(r, o)))))
	return err
}

// RenderHTML writes the HTML report to w.
func RenderHTML(w io.Writer, run *evidence.Run, opts ...Option) error {
	o := collect(opts)
	r, err := prepare(run, o)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := renderHTML(&buf, buildView(r, o)); err != nil {
		return err
	}
	_, err = w.Write(o.red.Bytes(buf.Bytes()))
	return err
}

func writeWith(path string, render func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	return evidence.WriteFileAtomic(path, buf.Bytes())
}

// WriteMarkdown renders the Markdown report to path atomically.
func WriteMarkdown(run *evidence.Run, path string, opts ...Option) error {
	return writeWith(path, func(w io.Writer) error { return RenderMarkdown(w, run, opts...) })
}

// WriteHTML renders the HTML report to path atomically.
func WriteHTML(run *evidence.Run, path string, opts ...Option) error {
	return writeWith(path, func(w io.Writer) error { return RenderHTML(w, run, opts...) })
}

// WriteAll writes evidence.json, report.md and report.html into dir, each
// atomically. Rendering happens before any write, so a run that cannot be
// rendered leaves the directory as it was.
func WriteAll(run *evidence.Run, dir string, opts ...Option) error {
	o := collect(opts)
	if err := os.MkdirAll(dir, evidence.DirMode); err != nil {
		return fmt.Errorf("write reports: %w (choose a writable output directory)", err)
	}
	js, err := evidence.Marshal(run, o.red)
	if err != nil {
		return err
	}
	var md, html bytes.Buffer
	if err := RenderMarkdown(&md, run, opts...); err != nil {
		return err
	}
	if err := RenderHTML(&html, run, opts...); err != nil {
		return err
	}
	for name, b := range map[string][]byte{evidence.FileName: js, MarkdownFile: md.Bytes(), HTMLFile: html.Bytes()} {
		if err := evidence.WriteFileAtomic(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}
