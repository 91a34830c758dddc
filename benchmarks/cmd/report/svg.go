package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 760, 470
	padL, padR     = 80, 30
	padT, padB     = 50, 62
)

// series is one line of the chart.
type series struct {
	label, color string
	x, y         []float64 // rules, ns/op
}

// chartSeries returns the latency of every present system against rule
// count (sizes without a result are left out).
func chartSeries(o *Output) []series {
	var out []series
	for _, s := range present(o) {
		sr := series{label: s.label, color: s.color}
		for _, n := range o.Sizes() {
			if r, ok := o.Find(s.bench, "", n); ok && r.NsPerOp > 0 {
				sr.x = append(sr.x, float64(n))
				sr.y = append(sr.y, r.NsPerOp)
			}
		}
		if len(sr.x) > 0 {
			out = append(out, sr)
		}
	}
	return out
}

// SVG writes a log-log chart of decision latency against rule count, one
// line per system, as a self-contained SVG document.
func SVG(w io.Writer, o *Output, title string) error {
	ss := chartSeries(o)
	if len(ss) == 0 {
		return fmt.Errorf("no latency results to chart")
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for i := range s.x {
			minX, maxX = math.Min(minX, s.x[i]), math.Max(maxX, s.x[i])
			minY, maxY = math.Min(minY, s.y[i]), math.Max(maxY, s.y[i])
		}
	}
	x0, x1 := decades(minX, maxX)
	y0, y1 := decades(minY, maxY)
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(v float64) float64 { return padL + (math.Log10(v)-x0)/(x1-x0)*pw }
	py := func(v float64) float64 { return padT + ph - (math.Log10(v)-y0)/(y1-y0)*ph }

	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", padL, esc(title))

	// Grid: a line per decade, light ticks in between.
	for d := x0; d <= x1; d++ {
		x := px(math.Pow(10, d))
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#cccccc"/>`+"\n", x, padT, x, padT+ph)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, padT+ph+18, esc(countLabel(d)))
		for k := 2; k <= 9 && d < x1; k++ {
			xm := px(float64(k) * math.Pow(10, d))
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999999"/>`+"\n", xm, padT+ph, xm, padT+ph-4)
		}
	}
	for d := y0; d <= y1; d++ {
		y := py(math.Pow(10, d))
		p(`<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#cccccc"/>`+"\n", padL, y, padL+pw, y)
		p(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padL-8, y, esc(durLabel(d)))
		for k := 2; k <= 9 && d < y1; k++ {
			ym := py(float64(k) * math.Pow(10, d))
			p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#999999"/>`+"\n", padL, ym, padL+4, ym)
		}
	}
	p(`<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333333"/>`+"\n", padL, padT, pw, ph)
	p(`<text x="%.1f" y="%d" text-anchor="middle">permission rules (log scale)</text>`+"\n", padL+pw/2, chartH-16)
	p(`<text x="18" y="%.1f" text-anchor="middle" transform="rotate(-90 18 %.1f)">time per decision (log scale)</text>`+"\n", padT+ph/2, padT+ph/2)

	// Lines and points.
	for _, s := range ss {
		p(`<polyline fill="none" stroke="%s" stroke-width="2.5" points="`, s.color)
		for i := range s.x {
			if i > 0 {
				p(" ")
			}
			p("%.1f,%.1f", px(s.x[i]), py(s.y[i]))
		}
		p(`"/>` + "\n")
		for i := range s.x {
			p(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s, %s rules: %s</title></circle>`+"\n",
				px(s.x[i]), py(s.y[i]), s.color, esc(s.label), fmtInt(s.x[i]), esc(fmtDur(s.y[i])))
		}
	}

	// Legend, top left inside the plot.
	lx, ly := float64(padL+12), float64(padT+12)
	p(`<rect x="%.1f" y="%.1f" width="250" height="%d" fill="#ffffff" fill-opacity="0.9" stroke="#cccccc"/>`+"\n", lx-6, ly-6, 20*len(ss)+6)
	for i, s := range ss {
		y := ly + float64(20*i) + 8
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/>`+"\n", lx, y, lx+24, y, s.color)
		p(`<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+32, y, esc(s.label))
	}
	p("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// decades returns the log10 range, whole decades, that holds [lo, hi].
func decades(lo, hi float64) (float64, float64) {
	a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	return a, b
}

// countLabel names 10^d: "1k", "10k", "1M".
func countLabel(d float64) string {
	n := int(d)
	switch {
	case n >= 9:
		return fmt.Sprintf("%gG", math.Pow(10, float64(n-9)))
	case n >= 6:
		return fmt.Sprintf("%gM", math.Pow(10, float64(n-6)))
	case n >= 3:
		return fmt.Sprintf("%gk", math.Pow(10, float64(n-3)))
	default:
		return fmt.Sprintf("%g", math.Pow(10, float64(n)))
	}
}

// durLabel names 10^d nanoseconds: "10 ns", "1 µs", "100 ms", "1 s".
func durLabel(d float64) string {
	n := int(d)
	units := []string{"ns", "µs", "ms", "s"}
	u := min(max(n/3, 0), len(units)-1)
	return fmt.Sprintf("%g %s", math.Pow(10, float64(n-3*u)), units[u])
}

// esc escapes text for SVG.
func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
