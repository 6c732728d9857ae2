package web

import (
	"cmp"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

type shareView struct {
	Label   string
	Percent float64
	Bytes   string
}

// zoneCookie holds the browser's offset from UTC in minutes, which the
// page's script sets, so that charts mark round times and "today" starts
// at the browser's midnight.
const zoneCookie = "tz"

// zoneOf is the browser's zone as its cookie tells, else UTC.
func zoneOf(r *http.Request) *time.Location {
	c, err := r.Cookie(zoneCookie)
	if err != nil {
		return time.UTC
	}
	min, err := strconv.Atoi(c.Value)
	// UTC-12 to UTC+14 are the zones in use.
	if err != nil || min < -12*60 || min > 14*60 {
		return time.UTC
	}
	return time.FixedZone("", min*60)
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	zone := zoneOf(r)
	h := s.cfg.Backend.History()
	local := now.In(zone)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, zone)
	var shares []shareView
	for _, p := range []struct {
		label string
		since time.Time
	}{{"today", midnight}, {"7 days", now.Add(-7 * 24 * time.Hour)}, {"30 days", now.Add(-30 * 24 * time.Hour)}} {
		total := h.Sum(p.since)
		shares = append(shares, shareView{p.label, share(total), humanBytes(total.Total()) + " in all"})
	}
	links, res, step, span := pickRange(r)
	points, _ := h.Series(res, now.Add(-span))
	st := s.cfg.Backend.Snapshot()
	ins := s.cfg.Backend.Insights()
	b := s.base(r, "Overview", "overview", 30)
	s.render(w, "overview", struct {
		pageBase
		Internet Internet
		Shares   []shareView
		Ranges   []rangeLink
		Chart    template.HTML
		Legend   []legendItem
		IPv4     ipv4Need
		Status   StatusJSON
		System   systemView
		Limits   []LimitHit
	}{b, s.cfg.Backend.Findings().Internet, shares, links,
		stackedChart(points, step, chartFrame{Start: now.Add(-span), End: now, Zone: zone, Width: 900, Height: 240, Label: "traffic by category", Unit: humanRate}),
		legend(), ipv4NeedOf(st.Hosts, ins, b.LoggedIn), statusOf(st, now), s.system(now),
		s.limitsHitSince(ins.Limits, now.Add(-recentLimits))})
}

// ipv4Need is the overview's "N of M hosts still need IPv4, and for
// what", since the gizmo started. A host can be in several groups and
// counts once. Which host is in which group is a per-host detail, named
// only to a logged-in viewer; the names that needed NAT64 are the DNS
// page's aggregate.
type ipv4Need struct {
	Hosts, Need int
	// Legacy hold an IPv4 lease and have no IPv6; Dual hold one beside
	// IPv6 (they did not take option 108); CLAT translate IPv4 literals
	// themselves (RFC 6877); NAT64 reached IPv4-only names through DNS64.
	Legacy, Dual, CLAT, NAT64 needGroup
	// Names are the names that most often needed a synthesized AAAA.
	Names []string
}

// needGroup counts the hosts of one group; Hosts names them when the
// viewer may see it.
type needGroup struct {
	Count int
	Hosts []needHost
}

// needHost is a host in a group; Names are, for the NAT64 group, the
// names it most often needed a synthesized AAAA for.
type needHost struct {
	MAC, Name string
	Names     []string
}

func ipv4NeedOf(hosts map[string]*state.Host, ins Insights, named bool) ipv4Need {
	out := ipv4Need{Hosts: len(hosts)}
	for _, mac := range slices.Sorted(maps.Keys(hosts)) {
		h := hosts[mac]
		hi := ins.Hosts[mac]
		var need bool
		add := func(g *needGroup, names []NameCount) {
			g.Count++
			if named {
				nh := needHost{MAC: mac, Name: cmp.Or(h.Policy.Hostname, h.Hostname, mac)}
				for _, n := range names[:min(len(names), 2)] {
					nh.Names = append(nh.Names, strings.TrimSuffix(n.Name, "."))
				}
				g.Hosts = append(g.Hosts, nh)
			}
			need = true
		}
		switch kindOf(h, hi.CLAT).Key {
		case "legacy":
			add(&out.Legacy, nil)
		case "dual":
			add(&out.Dual, nil)
		}
		if hi.CLAT {
			add(&out.CLAT, nil)
		}
		if hi.Synthesized > 0 || hi.Traffic.NAT64DNS64 > 0 {
			add(&out.NAT64, hi.TopLegacy)
		}
		if need {
			out.Need++
		}
	}
	for _, n := range ins.DNS.TopLegacy[:min(len(ins.DNS.TopLegacy), 3)] {
		out.Names = append(out.Names, strings.TrimSuffix(n.Name, "."))
	}
	return out
}

// systemView is the overview's account of the gizmo itself.
type systemView struct {
	Firmware  *Firmware
	Started   time.Time
	ProcessUp string
	// SystemUp is the kernel's uptime ("" when unknown).
	SystemUp string
	Now      time.Time
}

func (s *Server) system(now time.Time) systemView {
	v := systemView{Started: s.cfg.Started, Now: now}
	if s.cfg.Firmware != nil {
		f := s.cfg.Firmware()
		v.Firmware = &f
	}
	if !s.cfg.Started.IsZero() {
		v.ProcessUp = humanDuration(now.Sub(s.cfg.Started))
	}
	path := cmp.Or(s.cfg.UptimeFile, "/proc/uptime")
	if b, err := os.ReadFile(path); err == nil {
		if d, err := parseUptime(string(b)); err == nil {
			v.SystemUp = humanDuration(d)
		}
	}
	return v
}

// parseUptime reads /proc/uptime: the seconds since boot, then the idle
// seconds of all CPUs (proc(5)).
func parseUptime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("uptime: empty")
	}
	sec, err := strconv.ParseFloat(f[0], 64)
	if err != nil || sec < 0 || sec > 1e10 {
		return 0, fmt.Errorf("uptime: %q is not a number of seconds", f[0])
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// humanDuration says how long in the two largest units: "3 days 4 h",
// "5 h 12 min", "42 s".
func humanDuration(d time.Duration) string {
	d = max(d, 0)
	days := int(d / (24 * time.Hour))
	h := int(d/time.Hour) % 24
	m := int(d/time.Minute) % 60
	sec := int(d/time.Second) % 60
	plural := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	}
	switch {
	case days > 0:
		return plural(days, "day", "days") + " " + strconv.Itoa(h) + " h"
	case h > 0:
		return strconv.Itoa(h) + " h " + strconv.Itoa(m) + " min"
	case m > 0:
		return strconv.Itoa(m) + " min"
	}
	return strconv.Itoa(sec) + " s"
}
