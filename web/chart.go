package web

import (
	"fmt"
	"html/template"
	"slices"
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

// stackedChart renders points as a stacked area chart: the bands are SVG
// polygons drawn on the server, so that the page needs no JavaScript and no
// chart library. The SVG stretches to its box (preserveAspectRatio none),
// so the axis labels are HTML around it, where they keep their shape at
// any width.
func stackedChart(points []series.Point, step time.Duration, width, height int, label string, unit func(perSecond float64) string) template.HTML {
	var b strings.Builder
	b.WriteString(`<figure class="chartbox">`)
	if len(points) == 0 {
		fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s"></svg><figcaption class="empty">nothing recorded yet</figcaption></figure>`, width, height, template.HTMLEscapeString(label))
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
	w, h := float64(width), float64(height)
	x := func(t time.Time) float64 { return w * t.Sub(start).Seconds() / span }
	y := func(rate float64) float64 { return h - h*rate/maxRate }
	fmt.Fprintf(&b, `<span class="ymax">%s</span>`, unit(maxRate))
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" preserveAspectRatio="none">`, width, height, template.HTMLEscapeString(label))
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
		slices.Reverse(bottom)
		fmt.Fprintf(&b, `<polygon fill="%s" points="%s %s"><title>%s</title></polygon>`, c.Color, strings.Join(top, " "), strings.Join(bottom, " "), c.Label)
	}
	b.WriteString(`</svg>`)
	fmt.Fprintf(&b, `<figcaption><span>%s</span><span>%s</span></figcaption></figure>`, start.Local().Format("Jan 2 15:04"), end.Local().Format("Jan 2 15:04"))
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

// perMinute formats a count per second as per minute (DNS answers).
func perMinute(perSec float64) string { return fmt.Sprintf("%.3g answers/min", perSec*60) }

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
