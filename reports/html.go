package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html.tmpl
var reportTemplate string

// htmlFuncs only format values; html/template escapes everything they return
// except badge markup, which is built from constants.
func htmlFuncs() template.FuncMap {
	return template.FuncMap{
		"fmtTime":     fmtTime,
		"fmtDuration": fmtDuration,
		"fmtFloat":    fmtFloat,
		"fmtScale":    fmtScale,
		"fmtSecs":     fmtSecs,
		"join":        strings.Join,
		"num":         func(f float64) string { return fmt.Sprintf("%.1f", f) },
		"add":         func(a, b float64) float64 { return a + b },
		"sub":         func(a, b float64) float64 { return a - b },
		"div":         func(a, b float64) float64 { return a / b },
		"badge": func(pass bool) template.HTML {
			if pass {
				return `<span class="badge pass">pass</span>`
			}
			return `<span class="badge fail">fail</span>`
		},
		"agreeBadge": func(agree bool) template.HTML {
			if agree {
				return `<span class="badge pass">agrees</span>`
			}
			return `<span class="badge fail">DISAGREES</span>`
		},
		"gateBadge": func(result string) template.HTML {
			switch result {
			case "pass":
				return `<span class="badge pass">pass</span>`
			case "n/a":
				return `<span class="badge na">n/a</span>`
			case "skipped":
				return `<span class="badge fail">skipped</span>`
			}
			return `<span class="badge fail">fail</span>`
		},
	}
}

// renderHTML parses the template per call: cheap next to a run, and it
// keeps the package free of shared state.
func renderHTML(w io.Writer, v *view) error {
	t, err := template.New("report").Funcs(htmlFuncs()).Parse(reportTemplate)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	return t.Execute(w, v)
}
