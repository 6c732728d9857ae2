package web

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

func TestTimeTicks(t *testing.T) {
	utc := time.UTC
	india := time.FixedZone("", 5*3600+1800)
	berlin := time.FixedZone("", 3600)
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for _, tc := range []struct {
		rule       string
		start, end string
		zone       *time.Location
		wantEvery  time.Duration
		wantFirst  string
		wantN      int
	}{
		{"1 hour: every 10 minutes, on the tens", "2026-11-26T12:03:20Z", "2026-11-26T13:03:20Z", utc, 10 * time.Minute, "2026-11-26T12:10:00Z", 6},
		{"24 hours: every 4 hours from midnight", "2026-11-25T13:17:00Z", "2026-11-26T13:17:00Z", utc, 4 * time.Hour, "2026-11-25T16:00:00Z", 6},
		{"24 hours in a +05:30 zone: round hours there", "2026-11-25T13:17:00Z", "2026-11-26T13:17:00Z", india, 4 * time.Hour, "2026-11-25T14:30:00Z", 6},
		{"7 days: midnights of the browser's zone", "2026-11-19T13:17:00Z", "2026-11-26T13:17:00Z", berlin, 24 * time.Hour, "2026-11-19T23:00:00Z", 7},
		{"90 days: every two weeks", "2026-08-28T13:17:00Z", "2026-11-26T13:17:00Z", utc, 14 * 24 * time.Hour, "2026-08-29T00:00:00Z", 7},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			ticks, every := timeTicks(at(tc.start), at(tc.end), tc.zone, maxTicks)
			if every != tc.wantEvery || len(ticks) != tc.wantN || !ticks[0].Equal(at(tc.wantFirst)) {
				t.Errorf("%d ticks every %v from %v, want %d every %v from %s", len(ticks), every, ticks[0].UTC(), tc.wantN, tc.wantEvery, tc.wantFirst)
			}
			for _, x := range ticks {
				if x.Before(at(tc.start)) || x.After(at(tc.end)) {
					t.Errorf("tick %v outside the range", x)
				}
			}
		})
	}
}

// The chart's time axis is the chosen range, not the span of the points:
// an hour of data on the 24-hour chart fills the last 24th of it.
func TestChartSpansTheRange(t *testing.T) {
	end := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var pts []series.Point
	for i := range 60 {
		pts = append(pts, series.Point{Start: end.Add(-time.Hour + time.Duration(i)*time.Minute), Total: series.Categories{NativeIPv6: 6000}})
	}
	html := string(stackedChart(pts, time.Minute, chartFrame{Start: end.Add(-24 * time.Hour), End: end, Zone: time.UTC, Width: 900, Height: 240, Label: "x", Unit: humanRate}))
	m := regexp.MustCompile(`<polygon fill="#2e7d32" points="([0-9.]+),`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no native IPv6 band: %s", html)
	}
	if x, _ := strconv.ParseFloat(m[1], 64); x < 860 || x > 865 {
		t.Errorf("the band starts at x=%v, want 862.5 (23 of 24 hours in)", x)
	}
	if n := strings.Count(html, `vector-effect="non-scaling-stroke"`); n < 3+5 {
		t.Errorf("%d gridlines, want 3 across and at least 5 at round times", n)
	}
	for _, want := range []string{`<time datetime="2026-11-26T00:00:00Z" data-f="d">Nov 26</time>`, `<time datetime="2026-11-25T16:00:00Z" data-f="t">16:00</time>`} {
		if !strings.Contains(html, want) {
			t.Errorf("no axis label %s in %s", want, html)
		}
	}
}

// The bucket that is still filling gets a whole column, even in its
// first second, rather than one clamped at now.
func TestChartNewestBucketHasAColumn(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC)
	pts := []series.Point{{Start: now.Truncate(time.Minute), Total: series.Categories{NativeIPv6: 6000}}}
	html := string(stackedChart(pts, time.Minute, chartFrame{Start: now.Add(-24 * time.Hour), End: now, Zone: time.UTC, Width: 900, Height: 240, Label: "x", Unit: humanRate}))
	m := regexp.MustCompile(`<polygon fill="#2e7d32" points="([0-9.]+),[0-9.]+ ([0-9.]+),`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no native IPv6 band: %s", html)
	}
	x0, _ := strconv.ParseFloat(m[1], 64)
	x1, _ := strconv.ParseFloat(m[2], 64)
	if want := 900.0 / (24 * 60); x1-x0 < want-0.1 {
		t.Errorf("the newest minute spans x=%v..%v, want a column %.1f wide", x0, x1, want)
	}
}

func TestIPv4Need(t *testing.T) {
	v6 := map[string]bool{"v6": true}
	host := func(mac, name string, lease bool, addrs map[string]bool) *state.Host {
		h := &state.Host{MAC: mac, Hostname: name}
		h.Addrs = hostAddrs(addrs["v6"])
		if lease {
			h.IPv4Lease = mustAddr("203.0.113.150")
		}
		return h
	}
	hosts := map[string]*state.Host{
		"02:00:00:00:00:01": host("02:00:00:00:00:01", "printer", true, nil),
		"02:00:00:00:00:02": host("02:00:00:00:00:02", "laptop", true, v6),
		"02:00:00:00:00:03": host("02:00:00:00:00:03", "phone", false, v6),
		"02:00:00:00:00:04": host("02:00:00:00:00:04", "tablet", false, v6),
		"02:00:00:00:00:05": host("02:00:00:00:00:05", "tv", false, v6),
	}
	ins := Insights{
		DNS: DNSInsights{TopLegacy: []NameCount{{"v4only.example.test.", 9}, {"old.example.", 3}}},
		Hosts: map[string]HostInsights{
			"02:00:00:00:00:03": {CLAT: true},
			"02:00:00:00:00:04": {Synthesized: 4, TopLegacy: []NameCount{{"old.example.", 4}}},
			"02:00:00:00:00:02": {Traffic: series.Categories{NAT64DNS64: 10}},
		},
	}
	got := ipv4NeedOf(hosts, ins, true)
	if got.Hosts != 5 || got.Need != 4 {
		t.Errorf("%d of %d need IPv4, want 4 of 5 (the tv is IPv6-only and used no NAT64)", got.Need, got.Hosts)
	}
	for _, g := range []struct {
		name  string
		group needGroup
		want  []string
	}{
		{"legacy-only", got.Legacy, []string{"printer"}},
		{"dual-stack", got.Dual, []string{"laptop"}},
		{"RFC 6877: CLAT", got.CLAT, []string{"phone"}},
		{"RFC 6147: DNS64 synthesis or NAT64 bytes", got.NAT64, []string{"laptop", "tablet"}},
	} {
		var names []string
		for _, h := range g.group.Hosts {
			names = append(names, h.Name)
		}
		if g.group.Count != len(g.want) || strings.Join(names, ",") != strings.Join(g.want, ",") {
			t.Errorf("%s: %d %v, want %v", g.name, g.group.Count, names, g.want)
		}
	}
	if n := got.NAT64.Hosts[1].Names; len(n) != 1 || n[0] != "old.example" {
		t.Errorf("the tablet's names %v, want old.example", n)
	}
	if strings.Join(got.Names, ",") != "v4only.example.test,old.example" {
		t.Errorf("names %v", got.Names)
	}
	if anon := ipv4NeedOf(hosts, ins, false); anon.Need != 4 || anon.CLAT.Count != 1 || anon.CLAT.Hosts != nil || anon.Legacy.Hosts != nil {
		t.Errorf("without a login the groups name hosts: %+v", anon)
	}
}

func hostAddrs(v6 bool) map[netip.Addr]time.Time {
	m := map[netip.Addr]time.Time{}
	if v6 {
		m[mustAddr("2001:db8:1000:100::10")] = time.Now()
	}
	return m
}

func TestParseUptime(t *testing.T) {
	if d, err := parseUptime("350735.47 234388.90\n"); err != nil || d != 350735470*time.Millisecond {
		t.Errorf("parseUptime = %v, %v", d, err)
	}
	for _, bad := range []string{"", "x 1", "-5 0"} {
		if _, err := parseUptime(bad); err == nil {
			t.Errorf("parseUptime(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{
		42 * time.Second: "42 s", 12 * time.Minute: "12 min", 5*time.Hour + 12*time.Minute: "5 h 12 min",
		26 * time.Hour: "1 day 2 h", 100 * time.Hour: "4 days 4 h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
