package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/web/series"
)

// category is one band of the stacked chart, in stacking order.
type category struct {
	Key, Label, Color string
	value             func(series.Categories) uint64
}

var categories = []category{
	{"native_ipv6", "native IPv6", "#2e7d32", func(c series.Categories) uint64 { return c.NativeIPv6 }},
	{"nat64_dns64", "NAT64 via DNS64", "#f9a825", func(c series.Categories) uint64 { return c.NAT64DNS64 }},
	{"nat64_clat", "NAT64 from a CLAT", "#ef6c00", func(c series.Categories) uint64 { return c.NAT64CLAT }},
	{"nat44", "legacy NAT44", "#c62828", func(c series.Categories) uint64 { return c.NAT44 }},
}

// stackedChart renders points as a stacked area chart in SVG, drawn on the
// server so that the page needs no JavaScript and no chart library.
func stackedChart(points []series.Point, step time.Duration, width, height int) template.HTML {
	const padL, padB, padT = 56, 18, 6
	w, h := float64(width-padL), float64(height-padB-padT)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="traffic by category" preserveAspectRatio="none">`, width, height)
	if len(points) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty">no traffic recorded yet</text></svg>`, width/2-70, height/2)
		return template.HTML(b.String())
	}
	points, step = downsample(points, step, maxColumns)
	start := points[0].Start
	end := points[len(points)-1].Start.Add(step)
	span := end.Sub(start).Seconds()
	var maxRate float64
	for _, p := range points {
		if r := float64(p.Total.Total()) / step.Seconds(); r > maxRate {
			maxRate = r
		}
	}
	if maxRate == 0 {
		maxRate = 1
	}
	x := func(t time.Time) float64 { return padL + w*t.Sub(start).Seconds()/span }
	y := func(rate float64) float64 { return padT + h - h*rate/maxRate }
	// Bands from the bottom: each polygon runs along its top edge left to
	// right and back along the band below right to left.
	below := make([]float64, len(points))
	for _, c := range categories {
		var top, bottom []string
		for i, p := range points {
			rate := float64(c.value(p.Total)) / step.Seconds()
			x0, x1 := x(p.Start), x(p.Start.Add(step))
			top = append(top, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x0, y(below[i]+rate), x1, y(below[i]+rate)))
			bottom = append(bottom, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x1, y(below[i]), x0, y(below[i])))
			below[i] += rate
		}
		for i, j := 0, len(bottom)-1; i < j; i, j = i+1, j-1 {
			bottom[i], bottom[j] = bottom[j], bottom[i]
		}
		fmt.Fprintf(&b, `<polygon fill="%s" points="%s %s"><title>%s</title></polygon>`, c.Color, strings.Join(top, " "), strings.Join(bottom, " "), c.Label)
	}
	fmt.Fprintf(&b, `<text x="2" y="%d" class="axis">%s</text>`, padT+10, humanRate(maxRate))
	fmt.Fprintf(&b, `<text x="2" y="%d" class="axis">0</text>`, padT+int(h))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">%s</text>`, padL, height-4, start.Local().Format("Jan 2 15:04"))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`, width-2, height-4, end.Local().Format("Jan 2 15:04"))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// maxColumns bounds the chart's resolution: a chart is at most ~1000 px
// wide, so 1440 minute buckets would only add bytes and drawing time.
const maxColumns = 360

// downsample merges buckets into wider ones, aligned to the first, until
// there are at most max of them.
func downsample(points []series.Point, step time.Duration, max int) ([]series.Point, time.Duration) {
	if len(points) <= max {
		return points, step
	}
	span := points[len(points)-1].Start.Add(step).Sub(points[0].Start)
	wide := step * time.Duration((int64(span/step)+int64(max)-1)/int64(max))
	out := make([]series.Point, 0, max)
	start := points[0].Start
	for _, p := range points {
		at := start.Add(p.Start.Sub(start) / wide * wide)
		if n := len(out); n > 0 && out[n-1].Start.Equal(at) {
			out[n-1].Total = out[n-1].Total.Add(p.Total)
			out[n-1].DNS.A += p.DNS.A
			out[n-1].DNS.AAAA += p.DNS.AAAA
			out[n-1].DNS.Synthesized += p.DNS.Synthesized
			continue
		}
		out = append(out, series.Point{Start: at, Total: p.Total, DNS: p.DNS})
	}
	return out, wide
}

// humanRate formats bytes per second as bits per second.
func humanRate(bytesPerSec float64) string {
	bits := bytesPerSec * 8
	for _, u := range []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s"} {
		if bits < 1000 {
			return fmt.Sprintf("%.3g %s", bits, u)
		}
		bits /= 1000
	}
	return fmt.Sprintf("%.3g Tbit/s", bits)
}

// humanBytes formats a byte count.
func humanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 {
			return fmt.Sprintf("%.3g %s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.3g PB", f)
}

// share is the native IPv6 share of c in percent, or -1 without traffic.
func share(c series.Categories) float64 {
	if c.Total() == 0 {
		return -1
	}
	return 100 * float64(c.NativeIPv6) / float64(c.Total())
}
