package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages parses each page with the shared layout.
func pages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, p := range []string{"overview", "hosts", "dns", "nat64", "login"} {
		out[p] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	return out
}

type pageBase struct {
	Title, Page string
	Refresh     int
	// LoggedIn shows per-host details and the switches; Secure is an HTTPS
	// page; LoginURL is the login page on HTTPS ("" without HTTPS).
	LoggedIn, Secure bool
	LoginURL         string
	// KeySHA256 is the TLS public key's fingerprint, which the owner
	// compares with the serial console's log and the browser's.
	KeySHA256 string
}

// base is the layout's data for a page.
func (s *Server) base(r *http.Request, title, page string, refresh int) pageBase {
	b := pageBase{Title: title, Page: page, Refresh: refresh, Secure: r.TLS != nil, LoginURL: "/login",
		LoggedIn: s.hasSession(r), KeySHA256: s.Identity().PublicKeySHA256()}
	if r.TLS == nil {
		u := &url.URL{Path: "/login"}
		r2 := *r
		r2.URL = u
		b.LoginURL = s.httpsURL(&r2)
	}
	return b
}

type rangeLink struct {
	Key, Label string
	Current    bool
}

// chartRanges map a ?range= value to a ring and how far back it shows.
var chartRanges = []struct {
	key, label, resolution string
	span                   time.Duration
}{
	{"1h", "1 hour", "10s", time.Hour},
	{"24h", "24 hours", "1m", 24 * time.Hour},
	{"7d", "7 days", "1h", 7 * 24 * time.Hour},
	{"90d", "90 days", "1h", 90 * 24 * time.Hour},
}

func pickRange(r *http.Request) (links []rangeLink, resolution string, step, span time.Duration) {
	want := r.URL.Query().Get("range")
	if want == "" {
		want = "24h"
	}
	idx := slices.IndexFunc(chartRanges, func(c struct {
		key, label, resolution string
		span                   time.Duration
	}) bool {
		return c.key == want
	})
	if idx < 0 {
		idx = 1
	}
	for i, c := range chartRanges {
		links = append(links, rangeLink{c.key, c.label, i == idx})
	}
	c := chartRanges[idx]
	for _, res := range series.DefaultResolutions {
		if res.Name == c.resolution {
			step = res.Step
		}
	}
	return links, c.resolution, step, c.span
}

type legendItem struct{ Label, Color string }

func legend() []legendItem {
	var out []legendItem
	for _, c := range categories {
		out = append(out, legendItem{c.Label, c.Color})
	}
	return out
}

func (s *Server) render(w http.ResponseWriter, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.pages[page].ExecuteTemplate(w, "layout", data); err != nil {
		s.log.Warn("rendering page failed", "page", page, "err", err)
	}
}

type shareView struct {
	Label   string
	Percent float64
	Bytes   string
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	h := s.cfg.Backend.History()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
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
	s.render(w, "overview", struct {
		pageBase
		Shares []shareView
		Ranges []rangeLink
		Chart  template.HTML
		Legend []legendItem
		Status StatusJSON
	}{s.base(r, "Overview", "overview", 30), shares, links, stackedChart(points, step, 900, 240, "traffic by category", humanRate), legend(), statusOf(s.cfg.Backend.Snapshot(), now)})
}

type hostView struct {
	MAC, Name, Vendor string
	Kind              hostKind
	Addrs             []netip.Addr
	IPv4Lease         string
	GotV6Only, CLAT   bool
	DNSSource         string
	Traffic           []trafficShare
	Split             template.HTML
	Exposed           []string
	TopLegacy         []NameCount
	Policy            state.HostPolicy
	// NameTaken is the name the host asked for that another host holds.
	NameTaken string
}

// hostKind is how far a host has gone towards IPv6-only, as the badge on
// its card says.
type hostKind struct{ Key, Label string }

func kindOf(h *state.Host, clat bool) hostKind {
	var v6 bool
	for a := range h.Addrs {
		v6 = v6 || a.Is6() && !a.Is4In6()
	}
	switch {
	case clat:
		// RFC 6877: the host is IPv6-only and translates its own IPv4.
		return hostKind{"clat", "IPv6-only with CLAT"}
	case h.GotV6OnlyPreferred:
		// RFC 8925: it asked for option 108 and gave up IPv4.
		return hostKind{"v6only", "IPv6-only (option 108)"}
	case h.IPv4Lease.IsValid() && v6:
		return hostKind{"dual", "dual-stack"}
	case h.IPv4Lease.IsValid():
		return hostKind{"legacy", "legacy IPv4-only"}
	case v6:
		return hostKind{"v6", "IPv6"}
	}
	return hostKind{"unknown", "no addresses yet"}
}

// trafficShare is one category of a host's traffic.
type trafficShare struct {
	Key, Label, Color, Bytes string
	Percent                  float64
}

func trafficShares(c series.Categories) []trafficShare {
	var out []trafficShare
	total := c.Total()
	for _, cat := range categories {
		if v := cat.value(c); v > 0 {
			out = append(out, trafficShare{cat.Key, cat.Label, cat.Color, humanBytes(v), 100 * float64(v) / float64(total)})
		}
	}
	return out
}

// splitBar draws a host's traffic split as a bar of category colours.
func splitBar(c series.Categories) template.HTML {
	total := c.Total()
	if total == 0 {
		return ""
	}
	var b strings.Builder
	for _, cat := range categories {
		if v := cat.value(c); v > 0 {
			fmt.Fprintf(&b, `<span style="width:%.2f%%;background:%s" title="%s: %s"></span>`, 100*float64(v)/float64(total), cat.Color, cat.Label, humanBytes(v))
		}
	}
	return template.HTML(b.String())
}

func dnsSource(sources map[string]uint64) string {
	var names []string
	for k, v := range sources {
		if v > 0 {
			names = append(names, fmt.Sprintf("%s (%d)", k, v))
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// hostViews are the host cards; without details, only what GET /api/hosts
// tells anyone on the LAN (name, MAC, addresses).
func (s *Server) hostViews(details bool) []hostView {
	st := s.cfg.Backend.Snapshot()
	var ins Insights
	if details {
		ins = s.cfg.Backend.Insights()
	}
	var out []hostView
	for _, h := range st.Hosts {
		hj := hostOf(h)
		mac, _ := net.ParseMAC(h.MAC)
		hi := ins.Hosts[h.MAC]
		tr := hi.Traffic
		out = append(out, hostView{
			MAC: h.MAC, Name: hj.Hostname, Vendor: s.oui.Vendor(mac), Kind: kindOf(h, hi.CLAT), Addrs: hj.Addrs, IPv4Lease: hj.IPv4Lease,
			GotV6Only: h.GotV6OnlyPreferred, CLAT: hi.CLAT, DNSSource: dnsSource(hi.DNSSources),
			Traffic: trafficShares(tr), Split: splitBar(tr), Exposed: hi.ExposedPorts, Policy: h.Policy,
			TopLegacy: hi.TopLegacy[:min(len(hi.TopLegacy), 3)], NameTaken: h.NameTaken,
		})
	}
	slices.SortFunc(out, func(a, b hostView) int {
		if an, bn := a.Name != "", b.Name != ""; an != bn { // named hosts first
			if an {
				return -1
			}
			return 1
		}
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.MAC, b.MAC)
	})
	return out
}

// hosts lists the hosts; their traffic, DNS names and statistics, and the
// switches, only for a logged-in viewer.
func (s *Server) hosts(w http.ResponseWriter, r *http.Request) {
	details, ok := s.viewer(w, r)
	if !ok {
		return
	}
	b := s.base(r, "Hosts", "hosts", 0)
	b.LoggedIn = details
	s.render(w, "hosts", struct {
		pageBase
		Hosts []hostView
	}{b, s.hostViews(details)})
}

// formPolicy handles the hosts page's plain HTML form: it works without
// JavaScript, with the login session's cookie.
func (s *Server) formPolicy(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "changing a policy") {
		return
	}
	hw, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(hw) != 6 {
		http.Error(w, fmt.Sprintf("%q is not a MAC address", r.PathValue("mac")), http.StatusBadRequest)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPolicyBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	for k := range r.PostForm {
		if k != "dns64" && k != "v6only_preferred" && k != "hostname" {
			http.Error(w, fmt.Sprintf("unknown field %q", k), http.StatusBadRequest)
			return
		}
	}
	p := state.DefaultHostPolicy()
	if h, ok := s.cfg.Backend.Snapshot().Hosts[hw.String()]; ok {
		p = h.Policy
	}
	p.DNS64, p.V6OnlyPreferred = r.PostForm.Get("dns64") == "on", r.PostForm.Get("v6only_preferred") == "on"

	if err := validHostname(r.PostForm.Get("hostname")); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.Hostname = r.PostForm.Get("hostname")
	if err := s.cfg.Backend.SetPolicy(hw.String(), p); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrInvalid) {
			code = http.StatusBadRequest
		}
		http.Error(w, err.Error(), code)
		return
	}
	s.log.Info("policy changed", "mac", hw.String(), "dns64", p.DNS64, "v6only_preferred", p.V6OnlyPreferred)
	http.Redirect(w, r, "/hosts#h-"+hw.String(), http.StatusSeeOther)
}

// dnsChart draws A, AAAA and synthesized answers over time with the
// traffic chart's machinery: each kind is mapped onto one band.
func dnsChart(points []series.Point, step time.Duration) template.HTML {
	mapped := make([]series.Point, len(points))
	for i, p := range points {
		mapped[i] = series.Point{Start: p.Start, Total: series.Categories{
			NativeIPv6: p.DNS.AAAA - min(p.DNS.AAAA, p.DNS.Synthesized),
			NAT64DNS64: p.DNS.Synthesized,
			NAT44:      p.DNS.A,
		}}
	}
	return stackedChart(mapped, step, 900, 200, "DNS answers by kind", perMinute)
}

func (s *Server) dns(w http.ResponseWriter, r *http.Request) {
	links, res, step, span := pickRange(r)
	points, _ := s.cfg.Backend.History().Series(res, time.Now().Add(-span))
	s.render(w, "dns", struct {
		pageBase
		Ranges []rangeLink
		Chart  template.HTML
		Legend []legendItem
		DNS    DNSInsights
	}{s.base(r, "DNS", "dns", 30), links, dnsChart(points, step),
		[]legendItem{{"AAAA (native)", categories[0].Color}, {"AAAA synthesized (DNS64)", categories[1].Color}, {"A", categories[3].Color}},
		s.cfg.Backend.Insights().DNS})
}

func (s *Server) nat64(w http.ResponseWriter, r *http.Request) {
	ins := s.cfg.Backend.Insights()
	use := 0.0
	if ins.NAT64.Capacity > 0 {
		use = 100 * float64(ins.NAT64.Sessions) / float64(ins.NAT64.Capacity)
	}
	s.render(w, "nat64", struct {
		pageBase
		NAT64    NAT64Insights
		TableUse float64
		High     int // the meter turns amber at 80 % of the table
		Firewall map[string]CounterValue
		Status   StatusJSON
	}{s.base(r, "NAT64", "nat64", 10), ins.NAT64, use, ins.NAT64.Capacity * 4 / 5, ins.Firewall, statusOf(s.cfg.Backend.Snapshot(), time.Now())})
}

func (s *Server) apiSeries(w http.ResponseWriter, r *http.Request) {
	res := r.URL.Query().Get("resolution")
	if res == "" {
		res = "1m"
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since: %q is not an RFC 3339 time", v)
			return
		}
		since = t
	}
	get := s.cfg.Backend.History().Series
	switch v := r.URL.Query().Get("hosts"); v {
	case "", "0", "false":
	case "1", "true":
		details, ok := s.viewer(w, r)
		if !ok {
			return
		}
		if !details {
			w.Header().Set("WWW-Authenticate", `Basic realm="gizmo"`)
			writeError(w, http.StatusUnauthorized, "per-host series need the appliance password (log in, or HTTP basic auth over HTTPS)")
			return
		}
		get = s.cfg.Backend.History().HostSeries
	default:
		writeError(w, http.StatusBadRequest, "hosts: %q is not a boolean (1 or 0)", v)
		return
	}
	points, err := get(res, since)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v (resolutions: 10s, 1m, 1h)", err)
		return
	}
	writeJSON(w, http.StatusOK, points)
}

// apiInsights gives everyone the aggregates (nat64.sessions among them) and
// a logged-in viewer also the per-host part: which names each host looks
// up is the household's business.
func (s *Server) apiInsights(w http.ResponseWriter, r *http.Request) {
	details, ok := s.viewer(w, r)
	if !ok {
		return
	}
	ins := s.cfg.Backend.Insights()
	if !details {
		ins.Hosts = map[string]HostInsights{}
	}
	writeJSON(w, http.StatusOK, ins)
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}
