package reports

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// Chart geometry, computed in Go so the template only prints numbers.
const (
	chartWidth   = 760.0
	marginLeft   = 70.0
	marginRight  = 20.0
	marginTop    = 26.0
	signalHeight = 150.0
	triggerH     = 56.0
	panelGap     = 26.0
	axisSpace    = 44.0
)

// Palettes, space separated (constants, so no shared mutable state).
const (
	signalPalette  = "#1f5fa8 #6a3d9a #2b8a3e #8c564b #0e7c86"
	triggerPalette = "#c92a2a #e8590c #a61e4d #5f3dc4"
)

func color(palette string, i int) string {
	cs := strings.Fields(palette)
	return cs[i%len(cs)]
}

type chart struct {
	Title   string
	Width   float64
	Height  float64
	PlotX   float64 // left edge of the plot area
	PlotW   float64
	Panels  []panel
	XTicks  []tick
	XLabel  string
	AxisY   float64 // y of the x-axis line (under the last panel)
	Shades  []shade
	Markers []marker
	Legend  []legendItem
	Empty   bool
}

type panel struct {
	Top, Height float64
	Bottom      float64
	YLabel      string
	YLabelY     float64 // vertical centre, for the rotated label
	YTicks      []tick
	Lines       []line
}

type tick struct {
	Pos   float64
	Label string
}

type line struct {
	D     string
	Color string
}

type shade struct {
	X, W   float64
	Top, H float64
	Label  string
}

type marker struct {
	X      float64
	Top, H float64
	Color  string
}

type legendItem struct {
	Color string
	Label string
	Dash  bool
}

// momentMarker is a vertical line at a measured moment.
type momentMarker struct {
	At    time.Time
	Label string
	Color string
}

// buildChart lays out signal series (top panel) and trigger series (bottom
// panel) on one time axis; each panel gets its own value axis because a
// counter in the thousands would flatten a 0/1 trigger.
func buildChart(title string, series []evidence.Series, windows []evidence.Span, origin time.Time, originLabel string, moments []momentMarker) chart {
	var sig, trig []evidence.Series
	for _, s := range series {
		if s.Kind == evidence.KindTrigger {
			trig = append(trig, s)
		} else {
			sig = append(sig, s)
		}
	}
	c := chart{Title: title, Width: chartWidth, PlotX: marginLeft, PlotW: chartWidth - marginLeft - marginRight}

	// Time domain over every point, window and moment.
	var tmin, tmax time.Time
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if tmin.IsZero() || t.Before(tmin) {
			tmin = t
		}
		if tmax.IsZero() || t.After(tmax) {
			tmax = t
		}
	}
	for _, s := range series {
		for _, p := range s.Points {
			see(p.T)
		}
	}
	if tmin.IsZero() {
		c.Empty = true
		return c
	}
	for _, w := range windows {
		see(w.From)
		see(w.To)
	}
	for _, m := range moments {
		see(m.At)
	}
	if origin.IsZero() {
		origin, originLabel = tmin, "first sample"
	}
	x0 := tmin.Sub(origin).Seconds()
	x1 := tmax.Sub(origin).Seconds()
	if x1 <= x0 {
		x1 = x0 + 1
	}
	xOf := func(t time.Time) float64 {
		return c.PlotX + (t.Sub(origin).Seconds()-x0)/(x1-x0)*c.PlotW
	}

	top := marginTop
	if len(sig) > 0 {
		p := valuePanel(sig, top, signalHeight, "value", signalPalette, xOf, false)
		c.Panels = append(c.Panels, p)
		top = p.Bottom + panelGap
	}
	if len(trig) > 0 {
		p := valuePanel(trig, top, triggerH, "trigger", triggerPalette, xOf, true)
		c.Panels = append(c.Panels, p)
		top = p.Bottom + panelGap
	}
	last := c.Panels[len(c.Panels)-1]
	c.AxisY = last.Bottom
	c.Height = last.Bottom + axisSpace
	first := c.Panels[0]

	step := niceStep((x1 - x0) / 8)
	for v := math.Ceil(x0/step) * step; v <= x1+1e-9; v += step {
		c.XTicks = append(c.XTicks, tick{Pos: c.PlotX + (v-x0)/(x1-x0)*c.PlotW, Label: fmtSeconds(v, step)})
	}
	c.XLabel = "seconds since " + originLabel + " (" + origin.UTC().Format("15:04:05") + " UTC)"

	for _, w := range windows {
		to := w.To
		if to.IsZero() {
			to = tmax
		}
		xa, xb := xOf(w.From), xOf(to)
		c.Shades = append(c.Shades, shade{X: xa, W: math.Max(xb-xa, 1), Top: first.Top, H: last.Bottom - first.Top, Label: w.Label})
	}
	// Moments are labelled in the legend: labels on the lines collide.
	for _, m := range moments {
		if !m.At.IsZero() {
			c.Markers = append(c.Markers, marker{X: xOf(m.At), Top: first.Top, H: last.Bottom - first.Top, Color: m.Color})
		}
	}
	for i, s := range sig {
		c.Legend = append(c.Legend, legendItem{Color: color(signalPalette, i), Label: s.Name})
	}
	for i, s := range trig {
		c.Legend = append(c.Legend, legendItem{Color: color(triggerPalette, i), Label: s.Name + " (trigger)"})
	}
	for _, m := range moments {
		if !m.At.IsZero() {
			c.Legend = append(c.Legend, legendItem{Color: m.Color, Label: m.Label, Dash: true})
		}
	}
	return c
}

// valuePanel draws series on a shared value axis; step draws a step line
// (right for alert states, which hold until the next sample).
func valuePanel(series []evidence.Series, top, height float64, label string, palette string, xOf func(time.Time) float64, step bool) panel {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			v := float64(p.V)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	lo = math.Min(lo, 0)
	if step {
		hi = math.Max(hi, 1)
	}
	if hi <= lo {
		hi = lo + 1
	}
	ystep := niceStep((hi - lo) / 4)
	if step && hi <= 1 {
		ystep = 1
	}
	lo = math.Floor(lo/ystep) * ystep
	hi = math.Ceil(hi/ystep) * ystep
	p := panel{Top: top, Height: height, Bottom: top + height, YLabel: label, YLabelY: top + height/2}
	yOf := func(v float64) float64 { return p.Bottom - (v-lo)/(hi-lo)*height }
	for v := lo; v <= hi+ystep/1e6; v += ystep {
		p.YTicks = append(p.YTicks, tick{Pos: yOf(v), Label: fmtValue(v)})
	}
	for i, s := range series {
		var b strings.Builder
		pen := false
		var prevY float64
		for _, pt := range s.Points {
			v := float64(pt.V)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				pen = false // a gap, not a line through garbage
				continue
			}
			x, y := xOf(pt.T), yOf(v)
			switch {
			case !pen:
				fmt.Fprintf(&b, "M%.1f %.1f", x, y)
			case step:
				fmt.Fprintf(&b, " L%.1f %.1f L%.1f %.1f", x, prevY, x, y)
			default:
				fmt.Fprintf(&b, " L%.1f %.1f", x, y)
			}
			pen, prevY = true, y
		}
		p.Lines = append(p.Lines, line{D: b.String(), Color: color(palette, i)})
	}
	return p
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}

func fmtSeconds(v, step float64) string {
	if math.Abs(v) < 1e-9 {
		return "0"
	}
	if step >= 60 && math.Mod(step, 60) == 0 {
		return fmt.Sprintf("%gm", v/60)
	}
	return fmt.Sprintf("%gs", math.Round(v*1000)/1000)
}

func fmtValue(v float64) string {
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e5)/10)
	case a >= 1e4:
		return fmt.Sprintf("%gk", math.Round(v/100)/10)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}
