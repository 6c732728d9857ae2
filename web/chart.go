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
	{"lan_legacy", "LAN legacy (IPv4 devices on the LAN)", "#6a1b9a", func(c series.Categories) uint64 { return c.LANLegacy }},
}

// chartFrame is what a chart shows: the time range, the zone its round
// times are in, its size in SVG units and its words.
type chartFrame struct {
	Start, End    time.Time
	Zone          *time.Location
	Width, Height int
	Label         string
	Unit          func(perSecond float64) string
}

// stackedChart renders points as a stacked area chart over the frame's
// whole range, whether or not the points reach its start: the bands are
// SVG polygons drawn on the server, so that the page needs no chart
// library. The SVG stretches to its box (preserveAspectRatio none), so the
// axis labels are HTML around it, where they keep their shape at any
// width; the gridlines keep a one-pixel stroke (non-scaling-stroke).
func stackedChart(points []series.Point, step time.Duration, f chartFrame) template.HTML {
	var b strings.Builder
	b.WriteString(`<figure class="chartbox">`)
	if len(points) == 0 || !f.End.After(f.Start) {
		fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s"></svg><figcaption class="empty">nothing recorded yet</figcaption></figure>`, f.Width, f.Height, template.HTMLEscapeString(f.Label))
		return template.HTML(b.String())
	}
	points, step = downsample(points, step, maxColumns)
	// The newest bucket is still filling. The frame ends where that bucket
	// ends, so that it gets a column as wide as the others; ending at now
	// would clamp it to a sliver, or to nothing in its first seconds.
	if end := points[len(points)-1].Start.Add(step); end.After(f.End) {
		f.Start, f.End = f.Start.Add(end.Sub(f.End)), end
	}
	span := f.End.Sub(f.Start).Seconds()
	var maxRate float64
	for _, p := range points {
		if r := float64(p.Total.Total()) / step.Seconds(); r > maxRate {
			maxRate = r
		}
	}
	if maxRate == 0 {
		maxRate = 1
	}
	w, h := float64(f.Width), float64(f.Height)
	x := func(t time.Time) float64 { return min(w, max(0, w*t.Sub(f.Start).Seconds()/span)) }
	y := func(rate float64) float64 { return h - h*rate/maxRate }
	fmt.Fprintf(&b, `<div class="plot"><span class="ylab" style="top:0">%s</span><span class="ylab" style="top:50%%">%s</span>`, f.Unit(maxRate), f.Unit(maxRate/2))
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" preserveAspectRatio="none">`, f.Width, f.Height, template.HTMLEscapeString(f.Label))
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
	ticks, every := timeTicks(f.Start, f.End, f.Zone, maxTicks)
	b.WriteString(`<g class="grid">`)
	for _, q := range []float64{0.25, 0.5, 0.75} {
		fmt.Fprintf(&b, `<line x1="0" x2="%d" y1="%.1f" y2="%.1f" vector-effect="non-scaling-stroke"/>`, f.Width, h*q, h*q)
	}
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="0" y2="%d" vector-effect="non-scaling-stroke"/>`, x(t), x(t), f.Height)
	}
	b.WriteString(`</g></svg></div><figcaption class="axis">`)
	for _, t := range ticks {
		pct := 100 * x(t) / w
		align := ""
		switch {
		case pct < 6:
			align = ` class="first"`
		case pct > 94:
			align = ` class="last"`
		}
		fmt.Fprintf(&b, `<span%s style="left:%.2f%%">%s</span>`, align, pct, tickLabel(t, every, f.Zone))
	}
	b.WriteString(`</figcaption></figure>`)
	return template.HTML(b.String())
}

// maxTicks is how many labelled times an axis gets at most: "Nov 26" fits
// seven times across a phone.
const maxTicks = 7

// tickSteps are the round intervals an axis is marked in.
var tickSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// timeTicks are the round times in [start, end] at the smallest interval
// that gives at most max of them: whole minutes or hours since midnight in
// zone, or midnights.
func timeTicks(start, end time.Time, zone *time.Location, max int) ([]time.Time, time.Duration) {
	every := tickSteps[len(tickSteps)-1]
	for _, e := range tickSteps {
		if end.Sub(start)/e <= time.Duration(max) {
			every = e
			break
		}
	}
	l := start.In(zone)
	t := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, zone)
	if every < 24*time.Hour {
		// Minutes and hours count from midnight: a zone's offset may be
		// a half hour.
		t = t.Add((l.Sub(t) + every - 1) / every * every)
	} else if t.Before(start) {
		t = t.AddDate(0, 0, 1)
	}
	var out []time.Time
	for ; !t.After(end); t = t.Add(every) {
		out = append(out, t)
	}
	return out, every
}

// tickLabel is an axis label: the time of day, or the date at midnight
// and for day-wide intervals. A <time> element, which the page's script
// shows in the browser's zone.
func tickLabel(t time.Time, every time.Duration, zone *time.Location) template.HTML {
	l := t.In(zone)
	text, kind := l.Format("15:04"), "t"
	if every >= 24*time.Hour || l.Hour() == 0 && l.Minute() == 0 {
		text, kind = l.Format("Jan 2"), "d"
	}
	return template.HTML(fmt.Sprintf(`<time datetime="%s" data-f="%s">%s</time>`, t.UTC().Format(time.RFC3339), kind, text))
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
